"""The drift scenarios of the generator, and how strongly they act over time.

* ``baseline``: nothing changes.
* ``data_drift``: the inputs shift, the link between inputs and fraud does not. Amounts inflate
  (``inflation``: 0.45 is 45% dearer) and a third of the customers (new night-shift and overseas
  users) move their activity ``hour_shift`` hours later.
* ``concept_drift``: the inputs stay close to baseline, the link changes. Fraudsters switch to card
  testing (long bursts of small online payments in the user's usual categories), and a new
  instant-credit product makes genuine customers buy big, late, online and at risky merchants (at
  home, one purchase at a time): most of what looks like the old fraud pattern is now legitimate.
  ``concept_shift`` is the share of fraud that uses the new tactic, and of the old pattern's volume
  that is now genuine (the product adds as much again of such genuine buying).

**Sudden or gradual.** With ``ramp_days=0`` a scenario acts at full strength from the window's first
day (a step). With ``ramp_days=d`` its strength grows linearly from 0 on the first day to full on
day ``d`` (then stays): the share of fraud using new tactics ramps up over weeks, more customers move
their hours each week, prices creep up. :func:`drift_strength` is that profile; the generator
applies it per burst of fraud and per transaction.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import numpy as np

from lifecycle.data._sampling import (
    HOURLY,
    SECONDS_PER_DAY,
    burst_lengths,
    cumsum_within,
    devices,
    normalise,
    sample,
    sample_rows,
    starts,
)
from lifecycle.data.schema import CHANNELS

# The order is part of each window's random seed: append new scenarios, never reorder.
SCENARIOS = ("baseline", "data_drift", "concept_drift")
# concept_drift: genuine instant-credit purchases that look like the old fraud pattern, per unit of
# that pattern's fraud that turned genuine (more than 1: the product is popular).
INSTANT_CREDIT_VOLUME = 2.0
# data_drift: users who move their hours do so one twentieth of them at a time as the drift ramps up.
_MOVE_STEPS = 20


def drift_strength(seconds: np.ndarray, ramp_days: float) -> np.ndarray:
    """The share of a scenario's full effect at each moment (seconds from the window's start): 1 for a
    sudden drift (``ramp_days=0``), rising linearly from 0 to 1 over ``ramp_days`` otherwise."""
    seconds = np.asarray(seconds, dtype=float)
    if ramp_days <= 0:
        return np.ones(len(seconds))
    return np.clip(seconds / (ramp_days * SECONDS_PER_DAY), 0.0, 1.0)


def old_pattern_rows(n_fraud: int, concept_shift: float) -> int:
    """Rows in the old fraud pattern under full concept drift: the remaining fraud plus the genuine
    instant-credit buying that looks like it."""
    return int(round(n_fraud * (1 + (INSTANT_CREDIT_VOLUME - 1) * concept_shift)))


def thin_bursts(rng: np.random.Generator, bursts: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """Keep each burst (all its rows) with its own probability ``keep`` (one value per row, constant
    within a burst): how a gradual drift makes a kind of burst rarer or commoner over time."""
    first = starts(bursts["burst"])
    kept_burst = rng.random(int(first.sum())) < keep[first]
    rows = kept_burst[np.cumsum(first) - 1]
    return {k: v[rows] for k, v in bursts.items()}


def burst_strength(bursts: dict[str, np.ndarray], ramp_days: float) -> np.ndarray:
    """:func:`drift_strength` at each burst's first transaction, repeated over the burst's rows."""
    first = starts(bursts["burst"])
    at_start = drift_strength(bursts["seconds"][first], ramp_days)
    return at_start[np.cumsum(first) - 1] if len(first) else np.zeros(0)


def instant_credit_purchases(rng: np.random.Generator, people: dict, bursts: dict[str, np.ndarray],
                             genuine_share: float | np.ndarray, days: int) -> dict[str, np.ndarray]:
    """The other half of ``concept_drift``: a share ``genuine_share`` of the old fraud pattern's
    bursts (a number, or one per row for a gradual drift) is now genuine customers using a new
    instant-credit product. They make the same big, late, online, risky purchases, but at home and
    one at a time (on different days, at the same time of day), so a model trained on fresh labels
    can tell them from fraud; a model trained before the change flags many of them."""
    n_bursts = bursts["burst"].max() + 1 if len(bursts["burst"]) else 0
    gradual = np.ndim(genuine_share) > 0
    if gradual:  # one share per row, constant within a burst: spread to burst ids
        per_burst = np.zeros(n_bursts)
        per_burst[bursts["burst"]] = genuine_share
        genuine_share = per_burst
    genuine = (rng.random(n_bursts) < genuine_share)[bursts["burst"]]
    out = {k: v.copy() for k, v in bursts.items()}
    out["is_fraud"][genuine] = 0
    out["country"][genuine] = people["home"][bursts["user"][genuine]]
    time_of_day = bursts["seconds"][genuine] % SECONDS_PER_DAY
    if gradual:  # stay near the burst's own day, where the ramp put it
        day = bursts["seconds"][genuine] // SECONDS_PER_DAY + rng.integers(-3, 4, int(genuine.sum()))
        day = np.clip(day, 0, days - 1)
    else:
        day = rng.integers(0, days, int(genuine.sum()))
    out["seconds"][genuine] = day * SECONDS_PER_DAY + time_of_day
    return out


def card_testing_bursts(rng: np.random.Generator, people: dict, n_rows: int, days: int) -> dict[str, np.ndarray]:
    """The new tactic of ``concept_drift``: long bursts of small online payments that look ordinary."""
    lengths = burst_lengths(rng, n_rows, 6.0, low=4, high=10)
    n_bursts = len(lengths)
    burst = np.repeat(np.arange(n_bursts), lengths)
    burst_user = rng.integers(0, len(people["activity"]), n_bursts)
    user = burst_user[burst]
    n = len(burst)
    hour = (sample(rng, normalise(HOURLY), n_bursts) + people["hour_shift"][burst_user]) % 24
    start = rng.integers(0, days, n_bursts) * SECONDS_PER_DAY + hour * 3600 + rng.integers(0, 3600, n_bursts)
    gaps = rng.exponential(90, n).astype(np.int64)
    gaps[starts(burst)] = 0
    seconds = start[burst] + cumsum_within(gaps, burst)
    amount = np.exp(people["typical_log_amount"][user]) * rng.uniform(0.1, 0.5, n)
    category = sample_rows(rng, people["category_prefs"][user])
    channel = np.full(n, CHANNELS.index("online"))
    return {"user": user, "seconds": seconds, "amount": amount, "category": category,
            "channel": channel, "device": devices(rng, people, user, channel),
            "country": people["home"][user], "is_fraud": np.ones(n, dtype=np.int8), "burst": burst + 1_000_000}


def concept_drift_bursts(rng: np.random.Generator, people: dict, old_pattern: dict[str, np.ndarray],
                         n_fraud: int, concept_shift: float, ramp_days: float, days: int) -> dict[str, np.ndarray]:
    """``concept_drift``'s fraud and look-alikes, from the old pattern's bursts drawn at full-drift volume
    (:func:`old_pattern_rows`). At strength ``s`` (a share of ``concept_shift``), the old pattern keeps
    ``1 + (V - 1) c`` of its baseline volume, ``V c / (1 + (V - 1) c)`` of it genuine (``c = s ×
    concept_shift``, ``V`` = :data:`INSTANT_CREDIT_VOLUME`), and card testing adds ``c`` of the fraud."""
    volume = INSTANT_CREDIT_VOLUME
    new_rows = n_fraud - int(round(n_fraud * (1 - concept_shift)))
    if ramp_days > 0:
        shift = burst_strength(old_pattern, ramp_days) * concept_shift
        old_pattern = thin_bursts(rng, old_pattern, (1 + (volume - 1) * shift) / (1 + (volume - 1) * concept_shift))
        shift = burst_strength(old_pattern, ramp_days) * concept_shift
        genuine_share = volume * shift / (1 + (volume - 1) * shift)
    else:
        genuine_share = volume * concept_shift / (1 + (volume - 1) * concept_shift)
    bursts = instant_credit_purchases(rng, people, old_pattern, genuine_share, days)
    testing = card_testing_bursts(rng, people, new_rows, days)
    if ramp_days > 0 and concept_shift > 0:
        testing = thin_bursts(rng, testing, burst_strength(testing, ramp_days))
    return {k: np.concatenate([bursts[k], testing[k]]) for k in bursts}


def moved_hours(user: np.ndarray, shift: np.ndarray, day: np.ndarray, hour_shift: int,
                ramp_days: float) -> np.ndarray:
    """``data_drift``'s hours: a third of the users (``user % 3 == 0``) move ``hour_shift`` hours later,
    all at once, or a twentieth of them at a time as a gradual drift ramps up."""
    moving = (user % 3) == 0
    if ramp_days > 0:
        step = ((user // 3) % _MOVE_STEPS + 1) / _MOVE_STEPS
        moving &= drift_strength(day * SECONDS_PER_DAY, ramp_days) >= step
    return np.where(moving, shift + hour_shift, shift)


def inflated_amounts(amount: np.ndarray, seconds: np.ndarray, inflation: float, ramp_days: float) -> np.ndarray:
    """``data_drift``'s amounts: ``1 + inflation`` times dearer at full strength."""
    if ramp_days <= 0:
        return amount * (1 + inflation)
    return amount * (1 + inflation * drift_strength(seconds, ramp_days))
