"""Fraud features, one definition for training and serving (no train/serve skew).

Two ways to compute the same point-in-time features:

* :func:`build_features` for a table (training, backfills): vectorised, 1M rows in seconds.
* :class:`FeatureState` for one new transaction at a time (the model server): keeps each
  user's running state and updates it after every transaction.

Both see, for each transaction, only that user's *earlier* transactions — never the row
itself or the future. The tutorial's whole-table group-by (:func:`naive_user_features`) is
kept to show what leakage costs, and :func:`encode_raw_columns` (a row's own columns, no history)
to show what engineering adds.

One module of more than 300 lines, on purpose: it is one thing, the feature definition, written twice
(for a table and for one transaction) because training and serving need both speeds. Kept side by side,
a change to one is made next to the other; ``tests/unit/test_features.py`` pins that they agree.
:func:`split_by_time` belongs with them: it is the point in time the features respect.

Taught in notebooks/02_feature_engineering.ipynb (and used by every later lesson).
"""

from __future__ import annotations

import calendar
import math
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.data import CATEGORIES, CHANNELS, COUNTRIES, DEVICES
from lifecycle.errors import SchemaError

FEATURE_GROUPS: dict[str, list[str]] = {
    "base": ["amount", "category_code", "channel_code", "device_code"],
    "temporal": ["hour", "day_of_week", "is_weekend", "is_night"],
    "aggregation": ["user_txn_count", "user_amount_mean", "user_amount_std"],
    "velocity": ["user_txn_count_1h", "seconds_since_last_txn"],
    "ratio": ["amount_vs_user_avg", "amount_zscore", "category_share_for_user", "country_share_for_user"],
}
FEATURE_COLUMNS: list[str] = [name for group in FEATURE_GROUPS.values() for name in group]
# The tutorial's feature set: the row's own columns, hour, weekend, and the user's mean/std/count of
# amount with the amount relative to that mean. Lesson 02 measures its leak on exactly these.
TUTORIAL_FEATURES: list[str] = ["amount", "category_code", "channel_code", "device_code", "hour", "is_weekend",
                                "user_txn_count", "user_amount_mean", "user_amount_std", "amount_vs_user_avg"]
RAW_INPUTS = ("user_id", "timestamp", "amount", "merchant_category", "channel", "device", "country")

BURST_WINDOW_SECONDS = 3_600
NO_HISTORY_GAP_SECONDS = 30 * 86_400.0  # "never seen before": as if the last transaction was a month ago
_CODES = {"merchant_category": CATEGORIES, "channel": CHANNELS, "device": DEVICES}
RAW_CATEGORICALS = {**_CODES, "country": COUNTRIES}
_CODE_OF = {column: {value: float(i) for i, value in enumerate(vocabulary)} for column, vocabulary in _CODES.items()}


def build_features(transactions: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Point-in-time features for every transaction of a table.

    Args:
        transactions: raw transactions (at least :data:`RAW_INPUTS`), in any order.
        history: earlier transactions whose users' habits count as the past (e.g. the training
            window when scoring a later one). Not returned.

    Returns:
        A frame indexed like ``transactions`` with the columns of :data:`FEATURE_COLUMNS`.

    Raises:
        SchemaError: a raw input column is missing.
    """
    _require(transactions, "transactions")
    frame = transactions[list(RAW_INPUTS)]
    if history is not None and len(history):
        _require(history, "history")
        frame = pd.concat([history[list(RAW_INPUTS)], frame], ignore_index=True)
    n_new = len(transactions)
    seconds = frame["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    user = pd.factorize(frame["user_id"])[0]
    order = np.lexsort((np.arange(len(frame)), seconds, user))  # by user, then time, then arrival
    amount = frame["amount"].to_numpy(dtype=float)[order]
    user_sorted, seconds_sorted = user[order], seconds[order]
    first = np.r_[True, user_sorted[1:] != user_sorted[:-1]]

    count = _previous_count(first)
    total = _previous_sum(amount, first)
    total_sq = _previous_sum(amount * amount, first)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, 0.0)
        std = np.where(count > 0, np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0)), 0.0)
    gap = np.where(first, NO_HISTORY_GAP_SECONDS, np.r_[0, np.diff(seconds_sorted)]).astype(float)
    key = user_sorted.astype(np.int64) * (1 << 40) + seconds_sorted
    in_window = np.arange(len(key)) - np.searchsorted(key, key - BURST_WINDOW_SECONDS, side="left")
    category_share = _share_of_previous(frame["merchant_category"].to_numpy()[order], user_sorted, count)
    country_share = _share_of_previous(frame["country"].to_numpy()[order], user_sorted, count)

    history_columns = FEATURE_GROUPS["aggregation"] + FEATURE_GROUPS["velocity"] + FEATURE_GROUPS["ratio"]
    out = np.empty(len(frame), dtype=[(name, float) for name in history_columns])
    out["user_txn_count"], out["user_amount_mean"], out["user_amount_std"] = count, mean, std
    out["user_txn_count_1h"], out["seconds_since_last_txn"] = in_window, gap
    out["amount_vs_user_avg"], out["amount_zscore"] = _ratios(amount, mean, std, count)
    out["category_share_for_user"], out["country_share_for_user"] = category_share, country_share
    unsorted = np.empty_like(out)
    unsorted[order] = out
    result = pd.DataFrame(unsorted[len(frame) - n_new:], index=transactions.index)
    return _with_row_features(transactions, result)[FEATURE_COLUMNS]


def naive_user_features(transactions: pd.DataFrame) -> pd.DataFrame:
    """The tutorial's features: user statistics over the *whole* table (the row and its future included).

    This leaks: a fraud burst inflates its own user's mean and count. Kept to measure the cost.

    Returns:
        A frame like :func:`build_features`'s (same columns) computed the leaky way.
    """
    _require(transactions, "transactions")
    point_in_time = build_features(transactions)
    grouped = transactions.groupby("user_id")["amount"]
    mean = grouped.transform("mean").to_numpy()
    std = grouped.transform("std", ddof=0).to_numpy()
    count = grouped.transform("size").to_numpy(dtype=float)
    amount = transactions["amount"].to_numpy(dtype=float)
    naive = point_in_time.copy()
    naive["user_txn_count"], naive["user_amount_mean"], naive["user_amount_std"] = count, mean, std
    naive["amount_vs_user_avg"], naive["amount_zscore"] = _ratios(amount, mean, std, count)
    return naive


def encode_raw_columns(transactions: pd.DataFrame) -> pd.DataFrame:
    """A transaction's own columns, encoded for a model, and nothing else (the "poor features" baseline).

    ``amount``, ``timestamp_seconds`` (seconds since 1970, the time as a plain number) and a 0/1
    column per known value of each categorical column (an unknown value gets all zeros). No user
    history, no hour of day: what a model sees if nobody engineers features.

    Args:
        transactions: raw transactions (at least :data:`RAW_INPUTS`).

    Returns:
        A frame indexed like ``transactions``, the same columns for every table.

    Raises:
        SchemaError: a raw input column is missing.
    """
    _require(transactions, "transactions")
    columns = {"amount": transactions["amount"].to_numpy(dtype=float),
               "timestamp_seconds": transactions["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
               .astype(float)}
    for column, vocabulary in RAW_CATEGORICALS.items():
        values = transactions[column].to_numpy()
        columns.update({f"{column}={value}": (values == value).astype(float) for value in vocabulary})
    return pd.DataFrame(columns, index=transactions.index)


def _ratios(amount: np.ndarray, mean: np.ndarray, std: np.ndarray, count: np.ndarray) -> tuple:
    with np.errstate(invalid="ignore", divide="ignore"):
        vs_avg = np.where((count > 0) & (mean > 0), amount / mean, 1.0)
        zscore = np.where((count > 1) & (std > 0), (amount - mean) / std, 0.0)
    return vs_avg, zscore


def _with_row_features(transactions: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Features of the row alone (no history): the raw inputs encoded, and time of day/week."""
    stamp = pd.to_datetime(transactions["timestamp"])
    features["amount"] = transactions["amount"].to_numpy(dtype=float)
    for column, name in (("merchant_category", "category_code"), ("channel", "channel_code"),
                         ("device", "device_code")):
        features[name] = _encode(transactions[column], _CODES[column])
    features["hour"] = stamp.dt.hour.to_numpy(dtype=float)
    features["day_of_week"] = stamp.dt.dayofweek.to_numpy(dtype=float)
    features["is_weekend"] = (features["day_of_week"] >= 5).astype(float)
    features["is_night"] = (features["hour"] < 6).astype(float)
    return features


def _encode(values: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    return pd.Categorical(values, categories=vocabulary).codes.astype(float)  # unknown → -1


def _previous_count(first: np.ndarray) -> np.ndarray:
    """How many rows of the same user came before each row (input sorted by user)."""
    index = np.arange(len(first))
    return (index - np.maximum.accumulate(np.where(first, index, 0))).astype(float)


def _previous_sum(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Sum of the same user's earlier values (input sorted by user), in arrival order.

    A running sum per user, not a difference of one long cumulative sum (which would lose
    precision over a million rows); it matches :class:`FeatureState`'s to ~1e-13 relative
    (pandas compensates its sums, the streaming state adds plainly)."""
    group = np.cumsum(first)
    running = pd.Series(values).groupby(group).cumsum().to_numpy()
    return np.where(first, 0.0, np.r_[0.0, running[:-1]])


def _share_of_previous(values: np.ndarray, user_sorted: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Share of the user's earlier rows that had the same value as this row."""
    same = pd.DataFrame({"u": user_sorted, "v": values}).groupby(["u", "v"], sort=False).cumcount().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, same / count, 0.0)


def _require(frame: pd.DataFrame, name: str) -> None:
    missing = [c for c in RAW_INPUTS if c not in frame.columns]
    if missing:
        raise SchemaError(f"{name}: missing column(s) {missing} needed for features; "
                          f"expected at least {list(RAW_INPUTS)}, got {list(frame.columns)}")


@dataclass
class _UserHistory:
    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    last_seconds: int | None = None
    recent: deque = field(default_factory=deque)
    categories: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)


_NO_HISTORY = _UserHistory()  # read-only stand-in for a user never seen before


class FeatureState:
    """Running per-user state for scoring one transaction at a time (what the server keeps).

    ``features(txn)`` gives the same numbers :func:`build_features` gives for that row when the
    table holds the same earlier transactions. Transactions must arrive in time order per user.

    Example:
        >>> state = FeatureState().fit(training_transactions)
        >>> row = state.features(new_transaction)   # then state.update(new_transaction)
    """

    def __init__(self) -> None:
        self.users_: dict[str, _UserHistory] = {}

    def fit(self, history: pd.DataFrame) -> FeatureState:
        """Learn every user's state from earlier transactions; returns self."""
        _require(history, "history")
        self.users_ = {}
        ordered = history.sort_values(["timestamp"], kind="stable")
        for txn in ordered[list(RAW_INPUTS)].to_dict("records"):
            self.update(txn)
        return self

    def features(self, txn: dict[str, Any]) -> dict[str, float]:
        """The features of one transaction given the state before it (the state is not changed)."""
        return self._features(txn, _clock(txn["timestamp"]))

    def _features(self, txn: dict[str, Any], clock: tuple[int, int, int]) -> dict[str, float]:
        user = self.users_.get(str(txn["user_id"])) or _NO_HISTORY
        seconds, hour, day_of_week = clock
        amount = float(txn["amount"])
        n = user.count
        mean = user.total / n if n else 0.0
        std = math.sqrt(max(user.total_sq / n - mean * mean, 0.0)) if n else 0.0
        # The scalar form of _ratios (same IEEE operations, same bits), without numpy's per-call cost.
        vs_avg = amount / mean if n > 0 and mean > 0 else 1.0
        zscore = (amount - mean) / std if n > 1 and std > 0 else 0.0
        since = seconds - BURST_WINDOW_SECONDS
        return {
            "amount": amount,
            "category_code": _CODE_OF["merchant_category"].get(txn["merchant_category"], -1.0),
            "channel_code": _CODE_OF["channel"].get(txn["channel"], -1.0),
            "device_code": _CODE_OF["device"].get(txn["device"], -1.0),
            "hour": float(hour), "day_of_week": float(day_of_week),
            "is_weekend": float(day_of_week >= 5), "is_night": float(hour < 6),
            "user_txn_count": float(n), "user_amount_mean": mean, "user_amount_std": std,
            "user_txn_count_1h": float(len(user.recent) - bisect_left(user.recent, since)),
            "seconds_since_last_txn": float(seconds - user.last_seconds) if n else NO_HISTORY_GAP_SECONDS,
            "amount_vs_user_avg": vs_avg, "amount_zscore": zscore,
            "category_share_for_user": user.categories.get(txn["merchant_category"], 0) / n if n else 0.0,
            "country_share_for_user": user.countries.get(txn["country"], 0) / n if n else 0.0,
        }

    def update(self, txn: dict[str, Any]) -> None:
        """Add one transaction to its user's state.

        One that arrives late (older than the user's latest) still counts in the totals; it joins
        the last hour's times in order, and does not move the user's clock back.
        """
        self._update(txn, _clock(txn["timestamp"])[0])

    def _update(self, txn: dict[str, Any], seconds: int) -> None:
        user = self.users_.setdefault(str(txn["user_id"]), _UserHistory())
        amount = float(txn["amount"])
        user.count += 1
        user.total += amount
        user.total_sq += amount * amount
        recent = user.recent  # times of the user's last hour, ascending
        if user.last_seconds is None or seconds >= user.last_seconds:
            user.last_seconds = seconds
            recent.append(seconds)
            while recent[0] < seconds - BURST_WINDOW_SECONDS:
                recent.popleft()
        elif seconds >= user.last_seconds - BURST_WINDOW_SECONDS:
            recent.insert(bisect_right(recent, seconds), seconds)
        user.categories[txn["merchant_category"]] = user.categories.get(txn["merchant_category"], 0) + 1
        user.countries[txn["country"]] = user.countries.get(txn["country"], 0) + 1

    def score_and_update(self, txn: dict[str, Any]) -> dict[str, float]:
        """Features of ``txn`` from the state before it, then add it to the state."""
        clock = _clock(txn["timestamp"])
        row = self._features(txn, clock)
        self._update(txn, clock[0])
        return row


def _seconds(timestamp: Any) -> int:
    return _clock(timestamp)[0]


def _clock(timestamp: Any) -> tuple[int, int, int]:
    """Seconds since 1970 (UTC, floored), hour and weekday (Monday = 0) of a timestamp.

    A naive ``datetime`` (what the model server receives) is read directly: ~10x cheaper than
    building a ``pd.Timestamp``, and the same numbers.
    """
    if type(timestamp) is datetime:
        if timestamp.tzinfo is None:
            return calendar.timegm(timestamp.timetuple()), timestamp.hour, timestamp.weekday()
    stamp = timestamp if isinstance(timestamp, pd.Timestamp) else pd.Timestamp(timestamp)
    return int(stamp.value // 1_000_000_000), stamp.hour, stamp.dayofweek


def split_by_time(transactions: pd.DataFrame, test_fraction: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split at a point in time: the earlier rows train, the later ``test_fraction`` test.

    A random split would let the model learn from a user's future; production only ever
    scores transactions that come after the training data.
    """
    ordered = transactions.sort_values("timestamp", kind="stable")
    cut = ordered["timestamp"].iloc[int(len(ordered) * (1 - test_fraction))]
    return ordered[ordered["timestamp"] < cut], ordered[ordered["timestamp"] >= cut]


__all__ = ["FEATURE_COLUMNS", "FEATURE_GROUPS", "FeatureState", "build_features", "encode_raw_columns",
           "naive_user_features", "split_by_time", "COUNTRIES"]
