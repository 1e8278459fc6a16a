"""Seeded card-transaction data with fraud: one window of traffic, or a production period where drift starts.

Nothing is downloaded: every table comes from :func:`generate_transactions`. The same arguments
give the same rows, and :func:`~lifecycle.data.write_transactions` writes them to the same bytes.

How the data behaves (what a fraud analyst would recognise):

* Users have their own spending habits: a typical amount (log-normal), favourite merchant
  categories, a preferred channel, a home country, a daily rhythm (some are night owls).
* Activity follows the day (quiet at night, peaks at lunch and evening) and the week.
* Fraud (about 1.5% of rows) comes in bursts on a compromised card: several transactions
  within minutes, often far above the user's usual amount, at odd hours, at risky merchants
  (electronics, gift cards), online, or abroad. Each burst shows some of these signs, not all;
  some genuine transactions show them too (a holiday abroad, a new laptop).
* The bank blocks a card once its fraud is reported: the user's genuine spending pauses.

The drift scenarios (:mod:`lifecycle.data.scenarios`) change the inputs or the link between
inputs and fraud, suddenly or gradually; :func:`generate_period` puts quiet weeks before them.

Taught in notebooks/01_data_versioning.ipynb and notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.data import _sampling as sampling
from lifecycle.data import scenarios
from lifecycle.data.schema import CATEGORIES, CHANNELS, COUNTRIES, DEVICES, write_transactions
from lifecycle.errors import ConfigError

FRAUD_RATE = 0.015
DAY = sampling.SECONDS_PER_DAY
# Typical amount per category relative to the user's own typical amount.
_CATEGORY_SCALE = np.array([1.0, 0.7, 0.8, 0.35, 1.3, 1.2, 0.9, 3.0, 2.5, 1.1])
_RISKY = np.array([CATEGORIES.index(c) for c in ("electronics", "gift_cards", "online_shopping")])


def generate_transactions(rows: int = 50_000, seed: int = 42, scenario: str = "baseline",
                          start: str | date = "2026-01-01", days: int = 30, users: int = 2_000,
                          fraud_rate: float = FRAUD_RATE, concept_shift: float = 0.6, inflation: float = 0.45,
                          hour_shift: int = 5, ramp_days: float = 0) -> pd.DataFrame:
    """Generate card transactions, sorted by time.

    The user population depends only on ``seed`` and ``users``, so later windows
    (another ``start``) of one seed are the same customers, a month later.

    Args:
        rows: number of transactions.
        seed: random seed; the same arguments give the same table.
        scenario: one of :data:`~lifecycle.data.scenarios.SCENARIOS`.
        start: first day of the window (``YYYY-MM-DD``).
        days: length of the window in days.
        users: size of the customer population.
        fraud_rate: share of fraudulent rows (about; bursts make it approximate).
        concept_shift: for ``concept_drift``, the share of fraud that now uses the new tactic, and
            of the old fraud pattern's volume that is now legitimate (0 = no change, 1 = all).
        inflation: for ``data_drift``, how much dearer everything gets (0.45: 45%).
        hour_shift: for ``data_drift``, how many hours later the moving third of customers shop.
        ramp_days: 0 for a sudden drift (full strength from the first day); otherwise the days over
            which the scenario's strength grows linearly from nothing to full.

    Returns:
        A DataFrame with the columns of :data:`~lifecycle.data.COLUMNS`; ``timestamp`` as datetime64.

    Raises:
        ConfigError: an unknown scenario or an out-of-range argument.
    """
    _check_arguments(rows, scenario, days, users, fraud_rate, concept_shift, inflation, ramp_days)
    start_day = np.datetime64(pd.Timestamp(start).date(), "D")
    people = _make_users(users, seed)
    window = int((start_day - np.datetime64("2000-01-01", "D")).astype(int))
    rng = np.random.default_rng([seed, 1, window, scenarios.SCENARIOS.index(scenario)])

    n_fraud = int(round(rows * fraud_rate))
    if scenario == "concept_drift":
        old_pattern = _fraud_bursts(rng, people, scenarios.old_pattern_rows(n_fraud, concept_shift), days, 2.5)
        bursts = scenarios.concept_drift_bursts(rng, people, old_pattern, n_fraud, concept_shift, ramp_days, days)
    else:
        bursts = _fraud_bursts(rng, people, n_fraud, days, burst_mean=2.5)
    n_legit = max(rows - len(bursts["user"]), 0)
    # Draw extra genuine rows, then drop those on cards blocked after a fraud burst.
    drift = {"hour_shift": hour_shift, "ramp_days": ramp_days} if scenario == "data_drift" else None
    legit = _legit_transactions(rng, people, int(n_legit * 1.25) + 10, start_day, days, drift)
    legit = _block_cards(rng, legit, bursts, n_legit)
    table = {k: np.concatenate([legit[k], bursts[k]])[:rows] for k in legit}
    if scenario == "data_drift":  # inflation and a new premium segment
        table["amount"] = scenarios.inflated_amounts(table["amount"], table["seconds"], inflation, ramp_days)
    return _assemble(table, start_day)


def generate_period(rows: int, seed: int = 42, scenario: str = "baseline", start: str | date = "2026-02-01",
                    days: int = 84, drift_day: int = 28, users: int = 2_000, **strength: Any) -> pd.DataFrame:
    """A production period: ``drift_day`` quiet days, then the scenario from that day on.

    The quiet days are the same rows whatever the scenario (a ``baseline`` window of their own), so
    scenarios of one seed differ only from ``drift_day`` on, as one world that takes different turns.

    Args:
        rows: transactions over the whole period (spread in proportion to the days).
        seed: random seed (the same customers as every other window of this seed).
        scenario: what happens from ``drift_day``.
        start: the period's first day.
        days: the period's length.
        drift_day: the day (from ``start``, 0-based) the drift starts; 0 starts it at once.
        users: size of the customer population.
        **strength: the scenario's ``concept_shift``, ``inflation``, ``hour_shift``, ``ramp_days``
            (a ramp starts on ``drift_day``) or ``fraud_rate`` (see :func:`generate_transactions`).

    Returns:
        The period's transactions, sorted by time.

    Raises:
        ConfigError: ``drift_day`` outside the period, or a bad argument for the generator.
    """
    if not 0 <= drift_day < days:
        raise ConfigError(f"drift_day must be in [0, days), got drift_day={drift_day!r} with days={days!r}")
    first = pd.Timestamp(start)
    quiet_rows = int(round(rows * drift_day / days))
    fraud_rate = {"fraud_rate": strength["fraud_rate"]} if "fraud_rate" in strength else {}
    parts = [generate_transactions(quiet_rows, seed, "baseline", first, drift_day, users, **fraud_rate)
             ] if quiet_rows else []
    parts.append(generate_transactions(rows - quiet_rows, seed, scenario, first + pd.Timedelta(days=drift_day),
                                       days - drift_day, users, **strength))
    return pd.concat(parts, ignore_index=True)


def _check_arguments(rows: int, scenario: str, days: int, users: int, fraud_rate: float, concept_shift: float,
                     inflation: float, ramp_days: float) -> None:
    if scenario not in scenarios.SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose one of {', '.join(scenarios.SCENARIOS)}")
    if not isinstance(rows, int | np.integer) or rows < 1:
        raise ConfigError(f"rows must be a positive integer, got {rows!r}")
    if days < 1 or users < 1:
        raise ConfigError(f"days and users must be at least 1, got days={days!r}, users={users!r}")
    if not 0 <= fraud_rate < 0.5:
        raise ConfigError(f"fraud_rate must be in [0, 0.5), got {fraud_rate!r}")
    if not 0 <= concept_shift <= 1:
        raise ConfigError(f"concept_shift must be in [0, 1], got {concept_shift!r}")
    if inflation <= -1:
        raise ConfigError(f"inflation must be above -1 (prices cannot vanish), got {inflation!r}")
    if ramp_days < 0:
        raise ConfigError(f"ramp_days must be 0 (sudden) or more (gradual), got {ramp_days!r}")


def _make_users(users: int, seed: int) -> dict[str, np.ndarray]:
    """Each customer's habits; depends on the seed only, not on the window."""
    rng = np.random.default_rng([seed, 0, users])
    home = rng.choice(len(COUNTRIES), size=users,
                      p=sampling.normalise(np.array([30, 12, 10, 8, 7, 6, 5, 6, 5, 5, 4, 2])))
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


def _legit_transactions(rng: np.random.Generator, people: dict, n: int, start_day: np.datetime64, days: int,
                        drift: dict[str, Any] | None) -> dict[str, np.ndarray]:
    user = rng.choice(len(people["activity"]), size=n, p=sampling.normalise(people["activity"]))
    day = rng.choice(days, size=n, p=sampling.normalise(sampling.WEEKDAY[sampling.weekdays(start_day, days)]))
    shift = people["hour_shift"][user]
    if drift is not None:  # data_drift: a share of customers move their activity later
        shift = scenarios.moved_hours(user, shift, day, drift["hour_shift"], drift["ramp_days"])
    hour = (sampling.sample(rng, sampling.normalise(sampling.HOURLY), n) + shift) % 24
    seconds = day * DAY + hour * 3600 + rng.integers(0, 3600, n)
    category = sampling.sample_rows(rng, people["category_prefs"][user])
    amount = np.exp(people["typical_log_amount"][user] + rng.normal(0, 1, n) * people["spread"][user])
    amount *= _CATEGORY_SCALE[category]
    splurge = rng.random(n) < 0.012  # a new laptop, a holiday: genuine but unusual
    amount[splurge] *= rng.uniform(3, 9, splurge.sum())
    channel = sampling.channels(rng, people, user)
    abroad = people["travels"][user] & (rng.random(n) < 0.08)
    country = np.where(abroad, rng.integers(0, len(COUNTRIES), n), people["home"][user])
    return {"user": user, "seconds": seconds, "amount": amount, "category": category,
            "channel": channel, "device": sampling.devices(rng, people, user, channel), "country": country,
            "is_fraud": np.zeros(n, dtype=np.int8), "burst": np.full(n, -1)}


def _fraud_bursts(rng: np.random.Generator, people: dict, n_rows: int, days: int,
                  burst_mean: float) -> dict[str, np.ndarray]:
    """Compromised cards: bursts of 1–6 transactions within minutes, each burst showing some signs."""
    lengths = sampling.burst_lengths(rng, n_rows, burst_mean, low=1, high=6)
    n_bursts = len(lengths)
    burst_user = rng.integers(0, len(people["activity"]), n_bursts)
    odd_hour = rng.random(n_bursts) < 0.5
    burst_hour = np.where(odd_hour, rng.integers(0, 6, n_bursts),
                          sampling.sample(rng, sampling.normalise(sampling.HOURLY), n_bursts))
    big = rng.random(n_bursts) < 0.7
    risky = rng.random(n_bursts) < 0.6
    online = rng.random(n_bursts) < 0.7
    foreign = rng.random(n_bursts) < 0.3

    burst = np.repeat(np.arange(n_bursts), lengths)
    user = burst_user[burst]
    n = len(burst)
    start = rng.integers(0, days, n_bursts) * DAY + burst_hour * 3600 + rng.integers(0, 3600, n_bursts)
    gaps = rng.exponential(240, n).astype(np.int64)
    gaps[sampling.starts(burst)] = 0
    seconds = start[burst] + sampling.cumsum_within(gaps, burst)
    normal = np.exp(people["typical_log_amount"][user] + rng.normal(0, 1, n) * people["spread"][user])
    inflated = np.exp(people["typical_log_amount"][user] + np.log(rng.uniform(3, 12, n)))
    amount = np.where(big[burst], inflated, normal)
    own_category = sampling.sample_rows(rng, people["category_prefs"][user])
    category = np.where(risky[burst], rng.choice(_RISKY, n), own_category)
    channel = np.where(online[burst], CHANNELS.index("online"), sampling.channels(rng, people, user))
    country = np.where(foreign[burst], rng.integers(0, len(COUNTRIES), n), people["home"][user])
    return {"user": user, "seconds": seconds, "amount": amount, "category": category,
            "channel": channel, "device": sampling.devices(rng, people, user, channel), "country": country,
            "is_fraud": np.ones(n, dtype=np.int8), "burst": burst}


def _block_cards(rng: np.random.Generator, legit: dict[str, np.ndarray], bursts: dict[str, np.ndarray],
                 n_keep: int) -> dict[str, np.ndarray]:
    """The bank blocks a card once its fraud is reported: the user's genuine spending stops for a
    while (a new card takes about a week). Keeps ``n_keep`` genuine rows, chosen at random."""
    fraud = bursts["is_fraud"] == 1
    blocked = np.zeros(len(legit["user"]), dtype=bool)
    if fraud.any():
        ends = pd.DataFrame({"user": bursts["user"][fraud], "end": bursts["seconds"][fraud]}).groupby("user")["end"]
        end = ends.min().reindex(legit["user"]).to_numpy()
        reported = end + rng.uniform(0.5, 2, len(end)) * DAY
        blocked = (legit["seconds"] > reported) & (legit["seconds"] < reported + 7 * DAY)
    keep = np.flatnonzero(~blocked)
    keep = np.sort(rng.choice(keep, size=min(n_keep, len(keep)), replace=False))
    return {k: v[keep] for k, v in legit.items()}


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


def generate_command(args: Any) -> int:
    """The ``lifecycle data generate`` command (see :mod:`lifecycle.cli`)."""
    if args.drift_day:
        frame = generate_period(args.rows, args.seed, args.scenario, args.start, args.days, args.drift_day,
                                args.users, ramp_days=args.ramp_days)
    else:
        frame = generate_transactions(args.rows, args.seed, args.scenario, args.start, args.days, args.users,
                                      ramp_days=args.ramp_days)
    path = write_transactions(frame, args.out)
    print(f"wrote {len(frame):,} transactions ({frame['is_fraud'].mean():.2%} fraud, "
          f"scenario {args.scenario}, seed {args.seed}) to {path}")
    return 0
