"""The weekly monitoring schedule over a period of logged predictions.

Every week, when the week closes, a check compares the week with the reference (the rows the
model was validated on): input drift per feature and prediction drift (Evidently's tests), the
*estimated* precision of the week's flags (CBPE, from scores alone) and the *realised* precision on
the labels that have arrived by then; :func:`~lifecycle.monitoring.policy.decide` turns them into
an action.

The work is split by cost, so that what a learner changes is cheap to redo:

* **expensive, cacheable**: scoring the period (features and scores:
  :func:`~lifecycle.monitoring.retraining.score_window`) and the weekly drift tests
  (:func:`weekly_drift`: they depend only on the features and scores);
* **cheap, re-runnable** (milliseconds): when the labels arrive
  (:func:`~lifecycle.data.label_arrivals`), the weekly estimated and realised precision
  (:func:`weekly_performance`), and the policy over the weeks (:func:`run_schedule`). A new label
  delay or policy setting re-runs only these.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lifecycle.data import labels_as_of
from lifecycle.monitoring.cbpe import weekly_expected_confusion
from lifecycle.monitoring.policy import Policy, WeekDecision, decide

SCORE_COLUMN = "score"
WEEK = pd.Timedelta(days=7)
# Rows of a week the drift tests look at (see weekly_drift), and the sample key of the reference.
SAMPLE_ROWS = 2_000
REFERENCE_KEY = 1_000_000


def week_of(timestamps: Sequence, start: str | pd.Timestamp, weeks: int) -> np.ndarray:
    """Each row's week (0-based, counted from ``start``); rows outside the ``weeks`` weeks get -1."""
    days = (pd.to_datetime(np.asarray(timestamps)) - pd.Timestamp(start)).days.to_numpy()
    week = days // 7
    return np.where((days >= 0) & (week < weeks), week, -1).astype(np.int64)


def check_days(start: str | pd.Timestamp, weeks: int) -> pd.DatetimeIndex:
    """The moment each week's check runs: the end of the week."""
    return pd.DatetimeIndex([pd.Timestamp(start) + (w + 1) * WEEK for w in range(weeks)])


def weekly_drift(reference_features: pd.DataFrame, reference_scores: Sequence[float], features: pd.DataFrame,
                 scores: Sequence[float], week: np.ndarray, weeks: int, columns: Sequence[str],
                 categorical: Sequence[str] = (), sample_rows: int | None = SAMPLE_ROWS, seed: int = 0
                 ) -> pd.DataFrame:
    """Evidently's drift statistics of every monitored column and the score, week by week.

    Args:
        reference_features, reference_scores: the reference window.
        features, scores: the period's, one row per logged prediction.
        week: each row's week (:func:`week_of`).
        weeks: how many weeks.
        columns: the monitored features.
        categorical: which of them are categories (tested as such).
        sample_rows: test at most this many rows of each week (and twice as many of the reference),
            drawn at random with ``seed``; None tests every row. The tests' cost then no longer grows
            with traffic, and a sample of thousands still finds any drift big enough to matter.
        seed: the sample's seed.

    Returns:
        Indexed by ``(week, feature)`` (the score as feature ``"score"``): ``p_value``, ``distance``
        and ``distance_threshold`` (see :func:`~lifecycle.monitoring.drift.drift_statistics`).
    """
    from lifecycle.monitoring.drift import drift_statistics

    reference = checked_rows(reference_features, reference_scores, columns, REFERENCE_KEY, sample_rows, seed)
    tables = {w: drift_statistics(reference, checked_rows(features[week == w], np.asarray(scores)[week == w], columns,
                                                          w, sample_rows, seed), categorical)
              for w in range(weeks) if (week == w).any()}
    return pd.concat(tables, names=["week", "feature"])


def checked_rows(features: pd.DataFrame, scores: Sequence[float], columns: Sequence[str], key: int,
                 sample_rows: int | None = SAMPLE_ROWS, seed: int = 0) -> pd.DataFrame:
    """The rows a drift check tests: the monitored columns and ``score`` of at most ``sample_rows`` rows
    (twice as many for the reference, ``key`` :data:`REFERENCE_KEY`), the same sample for the same
    ``(seed, key)``: the dashboard's snapshot of a week shows the rows its check tested."""
    frame = features[list(columns)].astype(float).reset_index(drop=True)
    frame[SCORE_COLUMN] = np.asarray(scores, dtype=float)
    limit = None if sample_rows is None else sample_rows * (2 if key == REFERENCE_KEY else 1)
    if limit is None or len(frame) <= limit:
        return frame
    rng = np.random.default_rng([seed, 3, key])
    return frame.iloc[np.sort(rng.choice(len(frame), size=limit, replace=False))].reset_index(drop=True)


def weekly_performance(scores: Sequence[float], threshold: float, probabilities: Sequence[float], week: np.ndarray,
                       weeks: int, arrivals: pd.DataFrame, start: str | pd.Timestamp, label_weeks: int = 3
                       ) -> pd.DataFrame:
    """Estimated and realised precision of each week's check.

    Args:
        scores: the model's scores; a row is a flag when its score is at or above ``threshold``.
        threshold: the model's decision threshold.
        probabilities: the scores calibrated on the reference (:meth:`CBPE.probabilities
            <lifecycle.monitoring.CBPE.probabilities>`).
        week: each row's week (:func:`week_of`).
        weeks: how many weeks.
        arrivals: when each row's label arrives (:func:`~lifecycle.data.label_arrivals`, same rows).
        start: the period's first day.
        label_weeks: how many recent weeks of flags the realised precision counts.

    Returns:
        One row per week: ``week`` (1-based), ``check_day``, ``rows``, ``flags``,
        ``estimated_precision``, ``estimated_se`` (CBPE), ``labelled_flags`` and ``true_flags`` (the
        label window's flags labelled by the check, and the frauds among them),
        ``realised_precision``, ``label_coverage`` (share of the period's rows so far that are
        labelled), and ``precision``: the week's true precision, known only in hindsight.
    """
    scores = np.asarray(scores, dtype=float)
    flagged = scores >= threshold
    inside = week >= 0
    expected = weekly_expected_confusion(np.asarray(probabilities)[inside], flagged[inside], week[inside], weeks)
    truth = arrivals["is_fraud"].to_numpy()
    # When each row first has a label (for the coverage), as sorted numbers: one search per week, not one pass.
    # (np.fmin skips NaT as DataFrame.min(axis=1) does, at a fraction of its cost.)
    first = np.fmin.reduce([arrivals[column].to_numpy() for column in ("reviewed_at", "chargeback_at", "matures_at")])
    first = np.sort(first[inside])  # NaT (never labelled) sorts last
    flags = np.flatnonzero(flagged & inside)  # few: the realised precision looks only at them
    flag_week, flag_arrivals, flag_truth = week[flags], arrivals.iloc[flags], truth[flags]
    rows_per_week = np.bincount(week[inside], minlength=weeks)
    so_far = np.cumsum(rows_per_week)
    rows = []
    for w, day in enumerate(check_days(start, weeks)):
        window = (flag_week > w - label_weeks) & (flag_week <= w)
        labelled, label = labels_as_of(flag_arrivals, day)  # all the flags at once: cheaper than one slice a week
        labelled, label = labelled[window], label[window]
        this_week = flag_week == w
        rows.append({"week": w + 1, "check_day": day, "rows": int(rows_per_week[w]), "flags": int(this_week.sum()),
                     "estimated_precision": expected["precision"][w], "estimated_se": expected["precision_se"][w],
                     "labelled_flags": int(labelled.sum()), "true_flags": int(label[labelled].sum()),
                     "realised_precision": label[labelled].mean() if labelled.any() else np.nan,
                     "label_coverage": _coverage(first, np.datetime64(day), int(so_far[w])),
                     "precision": flag_truth[this_week].mean() if this_week.any() else np.nan})
    return pd.DataFrame(rows)


def _coverage(first_label: np.ndarray, day: np.datetime64, so_far: int) -> float:
    """Share of the ``so_far`` rows of the weeks checked by ``day`` labelled by then (a row is labelled from its
    first label on; a later week's rows cannot be labelled before ``day``, so the sorted search counts only these)."""
    if not so_far:
        return float("nan")
    return float(np.searchsorted(first_label, day, side="right")) / so_far


def run_schedule(drift: pd.DataFrame, performance: pd.DataFrame, reference: dict[str, int],
                 policy: Policy | None = None) -> tuple[pd.DataFrame, list[WeekDecision]]:
    """The policy's decision at every weekly check.

    Args:
        drift: :func:`weekly_drift`'s table.
        performance: :func:`weekly_performance`'s table.
        reference: ``flags`` and ``true_flags`` of the reference window (``CBPE.reference_flags_``,
            ``CBPE.reference_true_flags_``).
        policy: the settings (default :class:`~lifecycle.monitoring.policy.Policy()`).

    Returns:
        ``(table, decisions)``: ``performance`` with ``drifted_features``, ``action``, ``kind``,
        ``precision_verdict`` and one column per signal (``labels``, ``estimate``, ``input_drift``,
        ``prediction_drift``: whether it fired); and the week's :class:`WeekDecision` s.
    """
    policy = policy or Policy()
    decisions = []
    for row in performance.itertuples():
        week_drift = drift.xs(row.week - 1, level="week")
        decisions.append(decide(policy, week_drift, {"precision": row.estimated_precision,
                                                     "precision_se": row.estimated_se},
                                {"labelled_flags": row.labelled_flags, "true_flags": row.true_flags}, reference))
    table = performance.assign(
        drifted_features=[", ".join(d.drifted_features) or "-" for d in decisions],
        action=[d.action for d in decisions], kind=[d.kind for d in decisions],
        precision_verdict=[d.precision for d in decisions],
        **{signal: [d.signals[signal] for d in decisions] for signal in decisions[0].signals} if decisions else {})
    return table, decisions


def first_week(table: pd.DataFrame, column: str = "action", value: object = "retrain") -> int | None:
    """The first week (1-based) whose ``column`` equals ``value`` (``True`` for a signal), or None."""
    hits = table.loc[table[column] == value, "week"]
    return int(hits.iloc[0]) if len(hits) else None


def days_to_detect(table: pd.DataFrame, drift_start: str | pd.Timestamp, column: str = "action",
                   value: object = "retrain") -> int | None:
    """Days from the drift's start to the first check where ``column`` equals ``value`` (None: never)."""
    week = first_week(table, column, value)
    if week is None:
        return None
    day = table.loc[table["week"] == week, "check_day"].iloc[0]
    return int((day - pd.Timestamp(drift_start)).days)
