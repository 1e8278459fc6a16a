"""Small random-sampling helpers shared by the generator and its scenarios (vectorised, seeded by the caller).

Also the shape of a day: :data:`HOURLY` (the share of a day's transactions per hour) and
:data:`WEEKDAY` (Monday … Sunday).
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_DAY = 86_400
# Share of a day's transactions per hour (0–23): quiet nights, lunch and evening peaks.
HOURLY = np.array([0.6, 0.35, 0.25, 0.2, 0.2, 0.35, 0.9, 2.0, 3.2, 3.6, 4.0, 4.6,
                   6.0, 5.6, 4.6, 4.4, 4.8, 5.6, 6.4, 6.2, 5.0, 3.6, 2.2, 1.2])
WEEKDAY = np.array([1.0, 1.0, 1.0, 1.05, 1.2, 1.3, 0.95])  # Monday … Sunday


def channels(rng: np.random.Generator, people: dict, user: np.ndarray) -> np.ndarray:
    """Each row's channel code (chip 0, contactless 1, online 2) from its user's habits."""
    u = rng.random(len(user))
    online = u < people["online_share"][user]
    contactless = ~online & (rng.random(len(user)) < people["contactless_share"][user])
    return np.where(online, 2, np.where(contactless, 1, 0))


def devices(rng: np.random.Generator, people: dict, user: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Each row's device code (terminal 0, mobile 1, desktop 2): online rows use the user's phone or computer."""
    mobile = rng.random(len(user)) < people["mobile_share"][user]
    return np.where(channel == 2, np.where(mobile, 1, 2), 0)


def burst_lengths(rng: np.random.Generator, n_rows: int, mean: float, low: int, high: int) -> np.ndarray:
    """Burst lengths in [low, high] adding up to exactly ``n_rows``."""
    if n_rows <= 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.clip(rng.poisson(mean, n_rows // low + 1), low, high)
    ends = np.cumsum(lengths)
    keep = np.searchsorted(ends, n_rows) + 1
    lengths = lengths[:keep].copy()
    lengths[-1] -= ends[keep - 1] - n_rows
    return lengths[lengths > 0]


def cumsum_within(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at each new (contiguous) group."""
    total = np.cumsum(values)
    offset = np.maximum.accumulate(np.where(starts(group), total - values, 0))
    return total - offset


def starts(group: np.ndarray) -> np.ndarray:
    """True where a new (contiguous) group begins."""
    return np.r_[True, group[1:] != group[:-1]] if len(group) else np.zeros(0, dtype=bool)


def weekdays(start_day: np.datetime64, days: int) -> np.ndarray:
    """Weekday (Monday = 0) of each day of a window."""
    # 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
    return ((start_day + np.arange(days)).astype("datetime64[D]").astype(np.int64) + 3) % 7


def sample(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws from one categorical distribution ``p``."""
    return np.minimum(np.searchsorted(np.cumsum(p), rng.random(n)), len(p) - 1)


def sample_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One draw per row from that row's own categorical distribution."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((u > cumulative).sum(axis=1), probabilities.shape[1] - 1)


def normalise(weights: np.ndarray) -> np.ndarray:
    """Weights scaled to sum to 1."""
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()
