"""Seeded card-transaction data with fraud, and its drift scenarios; schema checks on read.

Nothing is downloaded: every table comes from :func:`generate_transactions`. The same
arguments give the same rows, and :func:`write_transactions` writes them to the same bytes.

How the data behaves (what a fraud analyst would recognise):

* Users have their own spending habits: a typical amount (log-normal), favourite merchant
  categories, a preferred channel, a home country, a daily rhythm (some are night owls).
* Activity follows the day (quiet at night, peaks at lunch and evening) and the week.
* Fraud (about 1.5% of rows) comes in bursts on a compromised card: several transactions
  within minutes, often far above the user's usual amount, at odd hours, at risky merchants
  (electronics, gift cards), online, or abroad. Each burst shows some of these signs, not all;
  some genuine transactions show them too (a holiday abroad, a new laptop).

Scenarios (the lessons on monitoring tell them apart):

* ``baseline``: as above.
* ``data_drift``: the inputs shift: amounts inflate and a share of users move their activity
  to later hours. The link between inputs and fraud is unchanged.
* ``concept_drift``: the inputs stay close to baseline, the link changes. Fraudsters switch to
  card testing (long bursts of small online payments in the user's usual categories), and a
  new instant-credit product makes genuine customers buy big, late, online and at risky
  merchants (at home, one purchase at a time): most of what looks like the old fraud pattern
  is now legitimate. A model trained on baseline flags the wrong rows and loses precision
  while no input column's distribution moves much; a model retrained on fresh labels learns
  to tell the two apart again.

Taught in notebooks/01_data_versioning.ipynb and notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError, SchemaError

SCENARIOS = ("baseline", "data_drift", "concept_drift")
CATEGORIES = ("grocery", "restaurant", "fuel", "transport", "retail", "online_shopping",
              "entertainment", "travel", "electronics", "gift_cards")
CHANNELS = ("chip", "contactless", "online")
DEVICES = ("terminal", "mobile", "desktop")
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "MX", "BR", "IN", "JP")

# Expected columns and the kind of value each holds, in file order.
COLUMNS = {
    "transaction_id": "text",
    "user_id": "text",
    "timestamp": "datetime",
    "amount": "number",
    "merchant_category": "category",
    "channel": "category",
    "device": "category",
    "country": "category",
    "is_fraud": "0/1",
}
ALLOWED = {"merchant_category": CATEGORIES, "channel": CHANNELS, "device": DEVICES, "country": COUNTRIES}

# Typical amount per category relative to the user's own typical amount.
_CATEGORY_SCALE = np.array([1.0, 0.7, 0.8, 0.35, 1.3, 1.2, 0.9, 3.0, 2.5, 1.1])
_RISKY = np.array([CATEGORIES.index(c) for c in ("electronics", "gift_cards", "online_shopping")])
# Share of a day's transactions per hour (0–23): quiet nights, lunch and evening peaks.
_HOURLY = np.array([0.6, 0.35, 0.25, 0.2, 0.2, 0.35, 0.9, 2.0, 3.2, 3.6, 4.0, 4.6,
                    6.0, 5.6, 4.6, 4.4, 4.8, 5.6, 6.4, 6.2, 5.0, 3.6, 2.2, 1.2])
_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.05, 1.2, 1.3, 0.95])  # Monday … Sunday
FRAUD_RATE = 0.015
# concept_drift: genuine instant-credit purchases that look like the old fraud pattern, per unit of
# that pattern's fraud that turned genuine (more than 1: the product is popular).
_INSTANT_CREDIT_VOLUME = 2.0
_SECONDS_PER_DAY = 86_400


def generate_transactions(rows: int = 50_000, seed: int = 42, scenario: str = "baseline",
                          start: str | date = "2026-01-01", days: int = 30, users: int = 2_000,
                          fraud_rate: float = FRAUD_RATE, concept_shift: float = 0.6) -> pd.DataFrame:
    """Generate card transactions, sorted by time.

    The user population depends only on ``seed`` and ``users``, so later windows
    (another ``start``) of one seed are the same customers, a month later.

    Args:
        rows: number of transactions.
        seed: random seed; the same arguments give the same table.
        scenario: one of :data:`SCENARIOS`.
        start: first day of the window (``YYYY-MM-DD``).
        days: length of the window in days.
        users: size of the customer population.
        fraud_rate: share of fraudulent rows (about; bursts make it approximate).
        concept_shift: for ``concept_drift``, the share of fraud that now uses the new tactic, and
            of the old fraud pattern's volume that is now legitimate (0 = no change, 1 = all;
            the product adds as much again of such genuine buying).

    Returns:
        A DataFrame with the columns of :data:`COLUMNS`; ``timestamp`` as datetime64.

    Raises:
        ConfigError: an unknown scenario or an out-of-range argument.
    """
    _check_arguments(rows, scenario, days, users, fraud_rate, concept_shift)
    start_day = np.datetime64(pd.Timestamp(start).date(), "D")
    people = _make_users(users, seed)
    window = int((start_day - np.datetime64("2000-01-01", "D")).astype(int))
    rng = np.random.default_rng([seed, 1, window, SCENARIOS.index(scenario)])

    n_fraud_target = int(round(rows * fraud_rate))
    new_tactic = scenario == "concept_drift"
    old_rows = int(round(n_fraud_target * (1 - concept_shift))) if new_tactic else n_fraud_target
    new_rows = n_fraud_target - old_rows
    if new_tactic:
        # The old pattern's fraud shrinks to (1 - concept_shift), and genuine instant-credit buying
        # that looks like it grows to _INSTANT_CREDIT_VOLUME × concept_shift (of the fraud volume).
        old_rows = int(round(n_fraud_target * (1 + (_INSTANT_CREDIT_VOLUME - 1) * concept_shift)))
    bursts = _fraud_bursts(rng, people, old_rows, start_day, days, burst_mean=2.5)
    if new_tactic:
        genuine_share = _INSTANT_CREDIT_VOLUME * concept_shift / (1 + (_INSTANT_CREDIT_VOLUME - 1) * concept_shift)
        bursts = _instant_credit_purchases(rng, people, bursts, genuine_share, days)
        testing = _card_testing_bursts(rng, people, new_rows, start_day, days)
        bursts = {k: np.concatenate([bursts[k], testing[k]]) for k in bursts}
    n_legit = max(rows - len(bursts["user"]), 0)
    # Draw extra genuine rows, then drop those on cards blocked after a fraud burst.
    legit = _legit_transactions(rng, people, int(n_legit * 1.25) + 10, start_day, days, scenario)
    legit = _block_cards(rng, legit, bursts, n_legit)
    table = {k: np.concatenate([legit[k], bursts[k]])[:rows] for k in legit}
    if scenario == "data_drift":
        table["amount"] = table["amount"] * 1.45  # inflation and a new premium segment
    return _assemble(table, start_day)


def _block_cards(rng: np.random.Generator, legit: dict[str, np.ndarray], bursts: dict[str, np.ndarray],
                 n_keep: int) -> dict[str, np.ndarray]:
    """The bank blocks a card once its fraud is reported: the user's genuine spending stops for a
    while (a new card takes about a week). Keeps ``n_keep`` genuine rows, chosen at random."""
    fraud = bursts["is_fraud"] == 1
    blocked = np.zeros(len(legit["user"]), dtype=bool)
    if fraud.any():
        ends = pd.DataFrame({"user": bursts["user"][fraud], "end": bursts["seconds"][fraud]}).groupby("user")["end"]
        first_end = ends.min()
        end = first_end.reindex(legit["user"]).to_numpy()
        reported = end + rng.uniform(0.5, 2, len(end)) * _SECONDS_PER_DAY
        blocked = (legit["seconds"] > reported) & (legit["seconds"] < reported + 7 * _SECONDS_PER_DAY)
    keep = np.flatnonzero(~blocked)
    keep = np.sort(rng.choice(keep, size=min(n_keep, len(keep)), replace=False))
    return {k: v[keep] for k, v in legit.items()}


def _check_arguments(rows: int, scenario: str, days: int, users: int, fraud_rate: float,
                     concept_shift: float) -> None:
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if not isinstance(rows, int | np.integer) or rows < 1:
        raise ConfigError(f"rows must be a positive integer, got {rows!r}")
    if days < 1 or users < 1:
        raise ConfigError(f"days and users must be at least 1, got days={days!r}, users={users!r}")
    if not 0 <= fraud_rate < 0.5:
        raise ConfigError(f"fraud_rate must be in [0, 0.5), got {fraud_rate!r}")
    if not 0 <= concept_shift <= 1:
        raise ConfigError(f"concept_shift must be in [0, 1], got {concept_shift!r}")


def _make_users(users: int, seed: int) -> dict[str, np.ndarray]:
    """Each customer's habits; depends on the seed only, not on the window."""
    rng = np.random.default_rng([seed, 0, users])
    home = rng.choice(len(COUNTRIES), size=users, p=_normalise(np.array([30, 12, 10, 8, 7, 6, 5, 6, 5, 5, 4, 2])))
    return {
        "typical_log_amount": rng.normal(3.4, 0.55, users),  # e^3.4 ≈ 30
        "spread": rng.uniform(0.35, 0.7, users),
        "category_prefs": rng.dirichlet(np.full(len(CATEGORIES), 0.6), users),
        "online_share": rng.beta(2, 5, users),
        "contactless_share": rng.beta(3, 3, users),
        "mobile_share": rng.beta(4, 2, users),
        "hour_shift": rng.choice([-2, -1, 0, 0, 0, 0, 1, 2, 4], size=users),
        "activity": rng.gamma(2.0, 1.0, users),
        "home": home,
        "travels": rng.random(users) < 0.15,
    }


def _legit_transactions(rng: np.random.Generator, people: dict, n: int, start_day: np.datetime64,
                        days: int, scenario: str) -> dict[str, np.ndarray]:
    user = rng.choice(len(people["activity"]), size=n, p=_normalise(people["activity"]))
    day = rng.choice(days, size=n, p=_normalise(_WEEKDAY[_weekdays(start_day, days)]))
    shift = people["hour_shift"][user]
    if scenario == "data_drift":
        # A share of customers (new night-shift and overseas users) move their activity later.
        shift = np.where((user % 3) == 0, shift + 5, shift)
    hour = (_sample(rng, _normalise(_HOURLY), n) + shift) % 24
    seconds = day * _SECONDS_PER_DAY + hour * 3600 + rng.integers(0, 3600, n)
    category = _sample_rows(rng, people["category_prefs"][user])
    amount = np.exp(people["typical_log_amount"][user] + rng.normal(0, 1, n) * people["spread"][user])
    amount *= _CATEGORY_SCALE[category]
    splurge = rng.random(n) < 0.012  # a new laptop, a holiday: genuine but unusual
    amount[splurge] *= rng.uniform(3, 9, splurge.sum())
    channel = _channels(rng, people, user)
    abroad = people["travels"][user] & (rng.random(n) < 0.08)
    country = np.where(abroad, rng.integers(0, len(COUNTRIES), n), people["home"][user])
    return {"user": user, "seconds": seconds, "amount": amount, "category": category,
            "channel": channel, "device": _devices(rng, people, user, channel), "country": country,
            "is_fraud": np.zeros(n, dtype=np.int8), "burst": np.full(n, -1)}


def _fraud_bursts(rng: np.random.Generator, people: dict, n_rows: int, start_day: np.datetime64,
                  days: int, burst_mean: float) -> dict[str, np.ndarray]:
    """Compromised cards: bursts of 1–6 transactions within minutes, each burst showing some signs."""
    lengths = _burst_lengths(rng, n_rows, burst_mean, low=1, high=6)
    n_bursts = len(lengths)
    burst_user = rng.integers(0, len(people["activity"]), n_bursts)
    odd_hour = rng.random(n_bursts) < 0.5
    burst_hour = np.where(odd_hour, rng.integers(0, 6, n_bursts), _sample(rng, _normalise(_HOURLY), n_bursts))
    big = rng.random(n_bursts) < 0.7
    risky = rng.random(n_bursts) < 0.6
    online = rng.random(n_bursts) < 0.7
    foreign = rng.random(n_bursts) < 0.3

    burst = np.repeat(np.arange(n_bursts), lengths)
    user = burst_user[burst]
    n = len(burst)
    start = rng.integers(0, days, n_bursts) * _SECONDS_PER_DAY + burst_hour * 3600 + rng.integers(0, 3600, n_bursts)
    gaps = rng.exponential(240, n).astype(np.int64)
    gaps[_starts(burst)] = 0
    seconds = start[burst] + _cumsum_within(gaps, burst)
    normal = np.exp(people["typical_log_amount"][user] + rng.normal(0, 1, n) * people["spread"][user])
    inflated = np.exp(people["typical_log_amount"][user] + np.log(rng.uniform(3, 12, n)))
    amount = np.where(big[burst], inflated, normal)
    own_category = _sample_rows(rng, people["category_prefs"][user])
    category = np.where(risky[burst], rng.choice(_RISKY, n), own_category)
    channel = np.where(online[burst], CHANNELS.index("online"), _channels(rng, people, user))
    country = np.where(foreign[burst], rng.integers(0, len(COUNTRIES), n), people["home"][user])
    return {"user": user, "seconds": seconds, "amount": amount, "category": category,
            "channel": channel, "device": _devices(rng, people, user, channel), "country": country,
            "is_fraud": np.ones(n, dtype=np.int8), "burst": burst}


def _instant_credit_purchases(rng: np.random.Generator, people: dict, bursts: dict[str, np.ndarray],
                              genuine_share: float, days: int) -> dict[str, np.ndarray]:
    """The other half of ``concept_drift``: a share ``genuine_share`` of the old fraud pattern's
    bursts is now genuine customers using a new instant-credit product. They make the same big,
    late, online, risky purchases, but at home and one at a time (on different days, at the same
    time of day), so a model trained on fresh labels can tell them from fraud; a model trained
    before the change flags many of them."""
    n_bursts = bursts["burst"].max() + 1 if len(bursts["burst"]) else 0
    genuine = (rng.random(n_bursts) < genuine_share)[bursts["burst"]]
    out = {k: v.copy() for k, v in bursts.items()}
    out["is_fraud"][genuine] = 0
    out["country"][genuine] = people["home"][bursts["user"][genuine]]
    time_of_day = bursts["seconds"][genuine] % _SECONDS_PER_DAY
    out["seconds"][genuine] = rng.integers(0, days, int(genuine.sum())) * _SECONDS_PER_DAY + time_of_day
    return out


def _card_testing_bursts(rng: np.random.Generator, people: dict, n_rows: int, start_day: np.datetime64,
                         days: int) -> dict[str, np.ndarray]:
    """The new tactic of ``concept_drift``: long bursts of small online payments that look ordinary."""
    lengths = _burst_lengths(rng, n_rows, 6.0, low=4, high=10)
    n_bursts = len(lengths)
    burst = np.repeat(np.arange(n_bursts), lengths)
    burst_user = rng.integers(0, len(people["activity"]), n_bursts)
    user = burst_user[burst]
    n = len(burst)
    hour = (_sample(rng, _normalise(_HOURLY), n_bursts) + people["hour_shift"][burst_user]) % 24
    start = rng.integers(0, days, n_bursts) * _SECONDS_PER_DAY + hour * 3600 + rng.integers(0, 3600, n_bursts)
    gaps = rng.exponential(90, n).astype(np.int64)
    gaps[_starts(burst)] = 0
    seconds = start[burst] + _cumsum_within(gaps, burst)
    amount = np.exp(people["typical_log_amount"][user]) * rng.uniform(0.1, 0.5, n)
    category = _sample_rows(rng, people["category_prefs"][user])
    channel = np.full(n, CHANNELS.index("online"))
    return {"user": user, "seconds": seconds, "amount": amount, "category": category,
            "channel": channel, "device": _devices(rng, people, user, channel),
            "country": people["home"][user], "is_fraud": np.ones(n, dtype=np.int8), "burst": burst + 1_000_000}


def _assemble(table: dict[str, np.ndarray], start_day: np.datetime64) -> pd.DataFrame:
    order = np.lexsort((table["user"], table["seconds"]))
    seconds = table["seconds"][order]
    n = len(order)
    stamp = start_day.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    day_tag = str(start_day).replace("-", "")
    users = np.char.add("u", np.char.zfill(table["user"][order].astype(str), 5))
    ids = np.char.add(f"t{day_tag}-", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    return pd.DataFrame({
        "transaction_id": ids.astype(object),
        "user_id": users.astype(object),
        "timestamp": stamp,
        "amount": np.round(np.maximum(table["amount"][order], 0.5), 2),
        "merchant_category": np.asarray(CATEGORIES, dtype=object)[table["category"][order]],
        "channel": np.asarray(CHANNELS, dtype=object)[table["channel"][order]],
        "device": np.asarray(DEVICES, dtype=object)[table["device"][order]],
        "country": np.asarray(COUNTRIES, dtype=object)[table["country"][order]],
        "is_fraud": table["is_fraud"][order].astype(np.int64),
    })


def _channels(rng: np.random.Generator, people: dict, user: np.ndarray) -> np.ndarray:
    u = rng.random(len(user))
    online = u < people["online_share"][user]
    contactless = ~online & (rng.random(len(user)) < people["contactless_share"][user])
    return np.where(online, 2, np.where(contactless, 1, 0))


def _devices(rng: np.random.Generator, people: dict, user: np.ndarray, channel: np.ndarray) -> np.ndarray:
    mobile = rng.random(len(user)) < people["mobile_share"][user]
    return np.where(channel == 2, np.where(mobile, 1, 2), 0)


def _burst_lengths(rng: np.random.Generator, n_rows: int, mean: float, low: int, high: int) -> np.ndarray:
    """Burst lengths in [low, high] adding up to exactly ``n_rows``."""
    if n_rows <= 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.clip(rng.poisson(mean, n_rows // low + 1), low, high)
    ends = np.cumsum(lengths)
    keep = np.searchsorted(ends, n_rows) + 1
    lengths = lengths[:keep].copy()
    lengths[-1] -= ends[keep - 1] - n_rows
    return lengths[lengths > 0]


def _cumsum_within(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at each new (contiguous) group."""
    total = np.cumsum(values)
    starts = _starts(group)
    offset = np.maximum.accumulate(np.where(starts, total - values, 0))
    return total - offset


def _starts(group: np.ndarray) -> np.ndarray:
    """True where a new (contiguous) group begins."""
    return np.r_[True, group[1:] != group[:-1]] if len(group) else np.zeros(0, dtype=bool)


def _weekdays(start_day: np.datetime64, days: int) -> np.ndarray:
    # 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
    return ((start_day + np.arange(days)).astype("datetime64[D]").astype(np.int64) + 3) % 7


def _sample(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(np.cumsum(p), rng.random(n)), len(p) - 1)


def _sample_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One draw per row from that row's own categorical distribution."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((u > cumulative).sum(axis=1), probabilities.shape[1] - 1)


def _normalise(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


def write_transactions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write transactions as CSV with a fixed format (same table → same bytes).

    Args:
        frame: a table with the columns of :data:`COLUMNS`.
        path: the CSV file to write (folders are created).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame[list(COLUMNS)].copy()
    out["timestamp"] = np.datetime_as_string(out["timestamp"].to_numpy(dtype="datetime64[s]"), unit="s")
    out["amount"] = np.char.mod("%.2f", out["amount"].to_numpy())
    out.to_csv(path, index=False, lineterminator="\n")
    return path


def read_transactions(path: str | Path, require_label: bool = True) -> pd.DataFrame:
    """Read a transactions CSV and check it against :data:`COLUMNS`.

    Args:
        path: the CSV file.
        require_label: whether ``is_fraud`` must be present (False for unlabelled traffic).

    Returns:
        The table with ``timestamp`` parsed and ``amount``/``is_fraud`` typed.

    Raises:
        SchemaError: the file is missing, or columns are missing or hold values of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"no transactions file at {path}; create one with "
                          f"'lifecycle data generate --out {path}'")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return validate_transactions(frame, source=str(path), require_label=require_label)


def validate_transactions(frame: pd.DataFrame, source: str = "table", require_label: bool = True) -> pd.DataFrame:
    """Check and type a transactions table; see :func:`read_transactions`."""
    expected = [c for c in COLUMNS if require_label or c != "is_fraud"]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {missing}; expected columns {expected}, "
                          f"got {list(frame.columns)}")
    out = frame.copy()
    problems = []
    for column in expected:
        kind = COLUMNS[column]
        values = out[column]
        if kind == "datetime":
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
            out[column], bad = parsed, parsed.isna()
        elif kind == "number":
            parsed = pd.to_numeric(values, errors="coerce")
            out[column], bad = parsed.astype(float), parsed.isna() | (parsed < 0)
        elif kind == "0/1":
            parsed = pd.to_numeric(values, errors="coerce")
            out[column], bad = parsed.fillna(-1).astype(np.int64), ~parsed.isin([0, 1])
        elif kind == "category":
            bad = ~values.isin(ALLOWED[column])
        else:
            bad = values.astype(str).str.len() == 0
        if bad.any():
            rows = [int(i) for i in np.flatnonzero(bad.to_numpy())[:3]]
            examples = [values.iloc[i] for i in rows]
            want = {"datetime": "an ISO timestamp like 2026-01-01T08:15:00",
                    "number": "a non-negative number", "0/1": "0 or 1",
                    "category": f"one of {list(ALLOWED.get(column, ()))}", "text": "a non-empty id"}[kind]
            problems.append(f"column {column!r} must hold {want}; {int(bad.sum())} row(s) do not, "
                            f"e.g. rows {rows} hold {examples}")
    if problems:
        raise SchemaError(f"{source}: " + "; ".join(problems))
    return out


def generate_command(args: Any) -> int:
    """The ``lifecycle data generate`` command (see :mod:`lifecycle.cli`)."""
    frame = generate_transactions(args.rows, args.seed, args.scenario, args.start, args.days, args.users)
    path = write_transactions(frame, args.out)
    print(f"wrote {len(frame):,} transactions ({frame['is_fraud'].mean():.2%} fraud, "
          f"scenario {args.scenario}, seed {args.seed}) to {path}")
    return 0
