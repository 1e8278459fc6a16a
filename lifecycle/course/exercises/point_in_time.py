"""Exercise 02: write a point-in-time feature, ``user_txn_count_24h``, and have it checked.

The rule the learner implements: for a transaction of user *u* at time *t*, count *u*'s transactions
with a timestamp in ``[t − 24 h, t)``. Strictly earlier only: not the transaction itself, not one in
the same second (neither came before the other; a table's row order is no clock), never a later one.
One exactly 24 h earlier counts. The answer is one number per row, aligned with the input's rows.

The checker compares the learner's answer with a reference on hidden cases and, when it is wrong,
recognises the usual mistakes (a whole-table group-by that sees the future, a rolling window that
includes the row, NaN for "nothing before", answers in time order instead of row order).

Taught in exercises/02_point_in_time_feature.ipynb (lesson: notebooks/02_feature_engineering.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from lifecycle.course.exercises._checking import Case, CheckResult, Verdict, describe, run_check

WINDOW_SECONDS = 24 * 3600
FEATURE_NAME = "user_txn_count_24h"
_SHOWN_ROWS = 8  # answers of up to this many rows are shown in full
_FUTURE = ("your feature sees the future: it counts {what}. When the model scores a transaction, the later "
           "ones have not happened yet, so the feature is bigger offline than it can ever be in production. "
           "Count only the same user's rows with timestamp in [t - 24 h, t).")
_NAN = ("your feature is NaN where nothing came before. A count of nothing is 0, and models and servers need "
        "a number (pandas' rolling count gives NaN for an empty window: fill it with 0).")
_TIME_ORDER = ("your numbers are right but in time order, not in the input's row order: the input is not sorted. "
               "Return a Series indexed like the input (compute on a sorted copy, keep its index, don't "
               "reset_index), or put the values back in the input's order.")
_ITSELF = ("your feature sees the row itself: it counts this transaction (pandas' time-based rolling window "
           "includes the current row unless you pass closed='left'). For a count that is off by one; for an "
           "amount feature it would leak the row's own value into its feature. Count strictly earlier rows.")


def _pairs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Pairwise facts between rows i (the row scored) and j (a candidate history row)."""
    seconds = frame["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    users = frame["user_id"].to_numpy()
    time_rank = np.empty(len(frame), dtype=np.int64)
    time_rank[np.argsort(seconds, kind="stable")] = np.arange(len(frame))
    return {"gap": seconds[None, :] - seconds[:, None],  # gap[i, j] = t_j - t_i
            "same_user": users[None, :] == users[:, None],
            "self": np.eye(len(frame), dtype=bool),
            "earlier_row": time_rank[None, :] < time_rank[:, None]}


def _count(frame: pd.DataFrame, rule: Callable[[dict[str, np.ndarray]], np.ndarray],
           any_user: bool = False) -> np.ndarray:
    """For each row, how many rows ``rule`` selects (of the same user unless ``any_user``)."""
    pairs = _pairs(frame)
    selected = rule(pairs) if any_user else rule(pairs) & pairs["same_user"]
    return selected.sum(axis=1).astype(float)


def reference_count_24h(frame: pd.DataFrame) -> np.ndarray:
    """The answer, one count per row of ``frame`` in its row order (the specification, pair by pair)."""
    return _count(frame, lambda p: (p["gap"] >= -WINDOW_SECONDS) & (p["gap"] < 0))


def _nan_where_nothing_before(frame: pd.DataFrame) -> np.ndarray:
    values = reference_count_24h(frame)
    return np.where(values == 0, np.nan, values)


def _in_time_order(frame: pd.DataFrame) -> np.ndarray:
    order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    return reference_count_24h(frame)[order]


# Known wrong answers, most serious first: (how to compute it, what it means).
MISTAKES: list[tuple[Callable[[pd.DataFrame], np.ndarray], str]] = [
    (lambda f: _count(f, lambda p: np.ones_like(p["self"])),
     _FUTURE.format(what="every transaction of the user in the whole table, this one and later ones included "
                         "(a group-by over the whole table, like the tutorial's)")),
    (lambda f: _count(f, lambda p: ~p["self"]),
     _FUTURE.format(what="every other transaction of the user in the whole table, later ones included "
                         "(a group-by over the whole table, minus one)")),
    (lambda f: _count(f, lambda p: (np.abs(p["gap"]) <= WINDOW_SECONDS) & ~p["self"]),
     _FUTURE.format(what="the user's transactions in the 24 hours after this one as well as before")),
    (lambda f: _count(f, lambda p: (p["gap"] > -WINDOW_SECONDS) & (p["gap"] <= 0)), _ITSELF),
    (lambda f: _count(f, lambda p: (p["gap"] >= -WINDOW_SECONDS) & (p["gap"] <= 0)), _ITSELF),
    (lambda f: _count(f, lambda p: (p["gap"] >= -WINDOW_SECONDS) & (p["gap"] < 0), any_user=True),
     "your feature counts other users' transactions too. The feature is per user: count only rows with the "
     "same user_id (group by user_id first)."),
    (lambda f: _count(f, lambda p: p["gap"] < 0),
     "your feature counts all of the user's earlier transactions, not only those of the last 24 hours. "
     "A transaction more than 24 h before t does not count."),
    (lambda f: _count(f, lambda p: (p["gap"] > -WINDOW_SECONDS) & (p["gap"] < 0)),
     "your feature leaves out a transaction made exactly 24 hours earlier. The window is [t - 24 h, t): "
     "its start counts (with pandas, rolling('24h', closed='left') includes it)."),
    (lambda f: _count(f, lambda p: (p["gap"] >= -WINDOW_SECONDS)
                      & ((p["gap"] < 0) | ((p["gap"] == 0) & p["earlier_row"]))),
     "your feature counts a transaction made in the same second because it comes first in the table. "
     "Two transactions in the same second: neither happened before the other, so neither counts."),
    (lambda f: _count(f, lambda p: (p["gap"] >= -WINDOW_SECONDS) & (p["gap"] <= 0) & ~p["self"]),
     "your feature counts the user's other transactions made in the same second. Neither happened before "
     "the other, so neither counts: only timestamps strictly before t."),
    (_nan_where_nothing_before, _NAN),
    (_in_time_order, _TIME_ORDER),
]


def _rows(*rows: tuple[str, str]) -> pd.DataFrame:
    """A raw transactions frame from (user_id, timestamp) pairs, with every raw column filled."""
    n = len(rows)
    return pd.DataFrame({
        "transaction_id": [f"t{i:03d}" for i in range(n)],
        "user_id": [user for user, _ in rows],
        "timestamp": pd.to_datetime([stamp for _, stamp in rows]),
        "amount": [round(12.5 + 7.25 * i, 2) for i in range(n)],
        "merchant_category": "grocery", "channel": "chip", "device": "terminal", "country": "US",
        "is_fraud": 0,
    })


def _shuffled(frame: pd.DataFrame, order: list[int]) -> pd.DataFrame:
    """The rows in another order, each keeping its index label (100, 101, …: not positions, so an
    answer whose index was reset to 0, 1, … cannot line up by accident)."""
    return frame.set_axis(frame.index + 100).iloc[order]


def _cases() -> list[Case]:
    from lifecycle.data import generate_transactions

    frames = [
        ("one user, three transactions an hour apart",
         _rows(("u1", "2026-01-05 09:00"), ("u1", "2026-01-05 10:00"), ("u1", "2026-01-05 11:00")),
         "each transaction counts the user's transactions of the 24 hours before it: 0, then 1, then 2."),
        ("a user's first transaction",
         _rows(("u1", "2026-01-05 09:00"), ("u1", "2026-01-05 10:00"), ("u2", "2026-01-05 10:30"),
               ("u1", "2026-01-05 11:00")),
         "u2's only transaction has nothing before it: its count is 0 (not NaN, not u1's count)."),
        ("two users, interleaved",
         _rows(("u1", "2026-01-05 09:00"), ("u2", "2026-01-05 09:30"), ("u1", "2026-01-05 10:00"),
               ("u2", "2026-01-05 12:00"), ("u1", "2026-01-05 13:00")),
         "count only the same user's transactions: group by user_id."),
        ("a gap of more than 24 hours",
         _rows(("u1", "2026-01-05 08:00"), ("u1", "2026-01-05 20:00"), ("u1", "2026-01-07 09:00"),
               ("u1", "2026-01-07 10:00")),
         "after 37 quiet hours the count starts again from 0: only the last 24 hours count."),
        ("a transaction exactly 24 hours earlier",
         _rows(("u1", "2026-01-05 12:00:00"), ("u1", "2026-01-06 12:00:00"), ("u1", "2026-01-07 12:00:01")),
         "the window is [t - 24 h, t): a transaction exactly 24 h earlier counts, one 24 h and 1 s earlier "
         "does not."),
        ("two transactions in the same second",
         _rows(("u1", "2026-01-05 09:00:00"), ("u1", "2026-01-05 09:05:00"), ("u1", "2026-01-05 09:05:00"),
               ("u2", "2026-01-05 09:05:00")),
         "two transactions in the same second do not count each other: only strictly earlier timestamps."),
        ("rows not in time order",
         _shuffled(_rows(("u1", "2026-01-05 08:00"), ("u2", "2026-01-05 08:30"), ("u1", "2026-01-05 09:00"),
                         ("u2", "2026-01-05 12:00"), ("u1", "2026-01-05 12:30"), ("u2", "2026-01-06 09:00")),
                   [3, 0, 5, 1, 4, 2]),
         "the input can come in any order: sort a copy by time to compute, and return the answer aligned "
         "with the input's rows (a Series with the input's index)."),
        ("a realistic table: 400 generated transactions of 40 users over 4 days",
         generate_transactions(rows=400, seed=11, days=4, users=40),
         "take the row named above: list its user's transactions of the 24 hours before it and count them by "
         "hand; then compare with what your function does for that row."),
    ]
    cases = []
    for name, frame, hint in frames:
        expected = reference_count_24h(frame)
        shown = describe(expected) if len(frame) <= _SHOWN_ROWS else f"{len(frame)} counts, one per row"
        cases.append(Case(name, (frame,), expected, hint, shown))
    return cases


def _aligned(answer: object, frame: pd.DataFrame) -> tuple[np.ndarray | None, str]:
    """The answer as floats in the input's row order, or None and what is wrong with its shape."""
    n = len(frame)
    if answer is None:
        return None, "None: your function returned nothing (is its `return` missing?)"
    if isinstance(answer, pd.DataFrame):
        return None, (f"a DataFrame with columns {list(answer.columns)}; return one number per row, as a Series "
                      "(select the column)")
    if isinstance(answer, pd.Series):
        if len(answer) != n:
            return None, f"a Series of {len(answer)} values for {n} rows"
        if not answer.index.equals(frame.index):
            if answer.index.is_unique and set(answer.index) == set(frame.index):
                answer = answer.reindex(frame.index)
            else:
                values = _floats(answer.to_numpy())
                return values, (f"a Series whose index {describe(list(answer.index[:6]))} does not match the input's "
                                f"{describe(list(frame.index[:6]))}")
        return _floats(answer.to_numpy()), ""
    if isinstance(answer, np.ndarray | list | tuple):
        values = np.asarray(answer, dtype=object).ravel()
        if len(values) != n:
            return None, f"{len(values)} values for {n} rows"
        return _floats(values), ""
    return None, f"a {type(answer).__name__}; return a pandas Series with one number per row"


def _floats(values: np.ndarray) -> np.ndarray | None:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None


def _same(values: np.ndarray, other: np.ndarray) -> bool:
    return values.shape == other.shape and bool(np.all((values == other) | (np.isnan(values) & np.isnan(other))))


def _diagnose(frame: pd.DataFrame, values: np.ndarray) -> str | None:
    for compute, meaning in MISTAKES:
        if _same(values, compute(frame)):
            return meaning
    if np.isnan(values).any():
        return _NAN
    return None


def _judge(case: Case, answer: object) -> Verdict:
    frame, expected = case.args[0], case.expected
    values, problem = _aligned(answer, frame)
    if values is None or problem:
        if values is None and not problem:
            problem = f"values that are not numbers: {describe(list(np.asarray(answer, dtype=object)[:6]))}"
        hint = _TIME_ORDER if values is not None and _same(values, _in_time_order(frame)) else \
            "return a pandas Series indexed like the input (one count per transaction)."
        return Verdict(False, f"a Series of {len(frame)} counts", problem, hint)
    if _same(values, expected):
        return Verdict(True)
    hint = _diagnose(frame, values) or case.hint
    if len(frame) <= _SHOWN_ROWS:
        return Verdict(False, describe(expected), describe(values), hint)
    wrong = np.flatnonzero(~((values == expected) | (np.isnan(values) & np.isnan(expected))))
    row = frame.iloc[wrong[0]]
    where = f"for the row labelled {frame.index[wrong[0]]} (user {row['user_id']} at {row['timestamp']})"
    return Verdict(False, f"{describe(expected[wrong[0]])} {where}",
                   f"{describe(values[wrong[0]])} ({len(wrong)} of {len(frame)} rows differ)", hint)


def check_point_in_time_feature(function: Callable[[pd.DataFrame], pd.Series], show: bool = True) -> CheckResult:
    """Check the learner's ``user_txn_count_24h(transactions) -> Series`` on hidden cases.

    Args:
        function: the learner's function; it gets a raw transactions frame (columns of
            :data:`lifecycle.data.COLUMNS`, any row order) and returns one count per row.
        show: print the result's message (what the notebook shows).

    Returns:
        The :class:`~lifecycle.course.exercises.CheckResult`; never raises because an answer is wrong.

    Taught in exercises/02_point_in_time_feature.ipynb.
    """
    return run_check("02 point-in-time feature", "check_point_in_time_feature", function, FEATURE_NAME,
                     _cases(), _judge, show)
