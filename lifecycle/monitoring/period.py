"""A monitored production period: score it once, then run the weekly schedule as often as you like.

:func:`score_period` is the expensive part (point-in-time features, the model's scores, the weekly
drift tests): it depends on the traffic and the model only, so a lesson or a playground computes
it once per world and keeps the :class:`ScoredPeriod`. :func:`monitor_period` is the cheap part
(when labels arrive, CBPE, realised precision, the policy): re-run it for another label delay or
policy in milliseconds. :func:`resampled_false_alarms` measures how often the policy would retrain
on quiet periods, and :func:`retraining_rows` gives what a retrain on a given day may fit.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.data import LabelDelay, label_arrivals, training_labels_as_of
from lifecycle.monitoring.cbpe import CBPE
from lifecycle.monitoring.drift import CATEGORICAL_FEATURES, MONITORED_FEATURES
from lifecycle.monitoring.policy import Policy, drifted, estimate_test, labels_test
from lifecycle.monitoring.schedule import (
    REFERENCE_KEY,
    checked_rows,
    run_schedule,
    week_of,
    weekly_drift,
    weekly_performance,
)


@dataclass
class Reference:
    """What the monitor compares with: the rows the model was validated on (not fitted on).

    Build it with :meth:`from_window`; ``cbpe`` is calibrated on these rows.
    """

    features: pd.DataFrame
    scores: np.ndarray
    labels: np.ndarray
    threshold: float
    cbpe: CBPE

    @classmethod
    def from_window(cls, model: Any, threshold: float, window: pd.DataFrame, history: pd.DataFrame) -> Reference:
        """Score ``window`` (with ``history`` as the users' past) and calibrate CBPE on it."""
        from lifecycle.monitoring.retraining import score_window

        features, scores = score_window(model, window, history=history)
        labels = window["is_fraud"].to_numpy()
        return cls(features, scores, labels, threshold, CBPE(threshold).fit(scores, labels))

    @property
    def counts(self) -> dict[str, int]:
        """``flags`` and ``true_flags`` (frauds among them): what the policy compares precision with."""
        return {"flags": self.cbpe.reference_flags_, "true_flags": self.cbpe.reference_true_flags_}

    @property
    def alert_rate(self) -> float:
        """The share of the reference the model flags."""
        return float(np.mean(self.scores >= self.threshold))


@dataclass
class ScoredPeriod:
    """A production period scored by a model: the cacheable part of monitoring it (see :func:`score_period`)."""

    transactions: pd.DataFrame
    features: pd.DataFrame
    scores: np.ndarray
    flagged: np.ndarray
    week: np.ndarray
    start: pd.Timestamp
    weeks: int
    drift: pd.DataFrame = field(repr=False)
    sample_rows: int | None = 2_000
    seed: int = 0

    def rows_before(self, day: str | pd.Timestamp) -> np.ndarray:
        """Which rows happened before ``day``."""
        return (self.transactions["timestamp"] < pd.Timestamp(day)).to_numpy()

    def checked_week(self, week: int) -> pd.DataFrame:
        """The rows week ``week`` (0-based)'s drift check tested: monitored features and ``score``."""
        rows = self.week == week
        return checked_rows(self.features[rows], self.scores[rows], MONITORED_FEATURES, week, self.sample_rows,
                            self.seed)

    def checked_reference(self, reference: Reference) -> pd.DataFrame:
        """The reference rows the drift checks compared with."""
        return checked_rows(reference.features, reference.scores, MONITORED_FEATURES, REFERENCE_KEY,
                            self.sample_rows, self.seed)


def score_period(model: Any, reference: Reference, transactions: pd.DataFrame, history: pd.DataFrame,
                 start: str | pd.Timestamp, weeks: int, sample_rows: int | None = 2_000, seed: int = 0) -> ScoredPeriod:
    """Score a period and run its weekly drift tests (the expensive part; keep the result).

    Args:
        model: the monitored model (``TrainedModel.model``).
        reference: the monitor's :class:`Reference`.
        transactions: the period's traffic, as logged.
        history: earlier transactions (the users' past).
        start: the period's first day; weeks are counted from it.
        weeks: how many weekly checks.
        sample_rows, seed: as :func:`~lifecycle.monitoring.schedule.weekly_drift`.
    """
    from lifecycle.monitoring.retraining import score_window

    features, scores = score_window(model, transactions, history=history)
    week = week_of(transactions["timestamp"], start, weeks)
    drift = weekly_drift(reference.features, reference.scores, features, scores, week, weeks, MONITORED_FEATURES,
                         CATEGORICAL_FEATURES, sample_rows, seed)
    return ScoredPeriod(transactions.reset_index(drop=True), features.reset_index(drop=True), scores,
                        scores >= reference.threshold, week, pd.Timestamp(start), weeks, drift, sample_rows, seed)


def score_periods(model: Any, reference: Reference, periods: Mapping[str, pd.DataFrame], history: pd.DataFrame,
                  start: str | pd.Timestamp, weeks: int, shared_until: str | pd.Timestamp,
                  sample_rows: int | None = 2_000, seed: int = 0) -> dict[str, ScoredPeriod]:
    """:func:`score_period` for several worlds that share their first days (``generate_period``'s quiet days).

    The shared rows are scored, and their whole weeks drift-tested, once; each world's own rows are
    scored with the shared ones as part of the users' past. A world whose first days differ from the
    first world's is scored on its own.

    Returns:
        One :class:`ScoredPeriod` per world, as :func:`score_period` would give.
    """
    from lifecycle.monitoring.retraining import score_window

    cut, start = pd.Timestamp(shared_until), pd.Timestamp(start)
    first = next(iter(periods.values()))
    quiet = first[first["timestamp"] < cut]
    quiet_features, quiet_scores = score_window(model, quiet, history=history)
    past = pd.concat([history, quiet], ignore_index=True)
    shared_weeks = max((cut - start).days // 7, 0)
    quiet_drift = weekly_drift(reference.features, reference.scores, quiet_features, quiet_scores,
                               week_of(quiet["timestamp"], start, shared_weeks), shared_weeks, MONITORED_FEATURES,
                               CATEGORICAL_FEATURES, sample_rows, seed) if shared_weeks else None
    scored = {}
    for name, transactions in periods.items():
        own_quiet = transactions[transactions["timestamp"] < cut]
        if not own_quiet["transaction_id"].tolist() == quiet["transaction_id"].tolist():
            scored[name] = score_period(model, reference, transactions, history, start, weeks, sample_rows, seed)
            continue
        rest = transactions[transactions["timestamp"] >= cut]
        rest_features, rest_scores = score_window(model, rest, history=past)
        features = pd.concat([quiet_features, rest_features], ignore_index=True)
        scores = np.r_[quiet_scores, rest_scores]
        week = week_of(pd.concat([quiet["timestamp"], rest["timestamp"]]), start, weeks)
        later = np.where(week >= shared_weeks, week, -1)
        drift = weekly_drift(reference.features, reference.scores, features, scores, later, weeks,
                             MONITORED_FEATURES, CATEGORICAL_FEATURES, sample_rows, seed)
        drift = pd.concat([quiet_drift, drift]) if quiet_drift is not None else drift
        scored[name] = ScoredPeriod(pd.concat([quiet, rest], ignore_index=True), features, scores,
                                    scores >= reference.threshold, week, start, weeks, drift, sample_rows, seed)
    return scored


def monitor_period(period: ScoredPeriod, reference: Reference, delay: LabelDelay | None = None,
                   policy: Policy | None = None, seed: int = 42) -> tuple[pd.DataFrame, list, pd.DataFrame]:
    """The weekly schedule over a scored period (the cheap part: milliseconds).

    Returns:
        ``(table, decisions, arrivals)``: :func:`~lifecycle.monitoring.schedule.run_schedule`'s table
        and decisions, and when each row's label arrives.
    """
    policy = policy or Policy(looks=period.weeks)
    arrivals = label_arrivals(period.transactions, period.flagged, seed, delay)
    performance = weekly_performance(period.scores, reference.threshold, reference.cbpe.probabilities(period.scores),
                                     period.week, period.weeks, arrivals, period.start, policy.label_weeks)
    table, decisions = run_schedule(period.drift, performance, reference.counts, policy)
    return table, decisions, arrivals


def resampled_false_alarms(period: ScoredPeriod, reference: Reference, windows: int = 50,
                           delay: LabelDelay | None = None, policy: Policy | None = None, seed: int = 0,
                           null: bool = True) -> pd.DataFrame:
    """How often the policy would retrain on quiet periods: ``windows`` resampled copies of a quiet period.

    Each copy draws every week's transactions again from that week of ``period`` and the reference's
    rows again from the reference (with replacement, as many as each had: a bootstrap, so that both
    sides of every comparison vary as they would from quarter to quarter), recalibrates CBPE on the
    drawn reference, draws again which flags get reviewed and when, and runs the policy's two retrain
    tests week by week (realised precision on the labelled flags so far, and CBPE's estimate). The
    drift tests run on the resampled rows only in the weeks where they could change the decision (the
    estimate fell: that retrain also needs input or prediction drift), so a copy costs milliseconds.

    With ``null`` (the default) the flags' outcomes, the reference's and the period's alike, are drawn
    from their pooled outcomes: the quarters are then quiet *relative to the reference* too, which is
    what a false alarm is. Without it, each copy keeps its flags' own outcomes and the reference is
    resampled around its own: that measures the rate *for this reference*, higher when its precision
    came out high by chance. The rate over fresh seeds (new references, new periods) is
    benchmarks/monitoring.py's.

    Returns:
        One row per copy: ``seed``, ``retrain`` (any retrain decision in the period), ``first_week``,
        and whether each retrain test fired (``labels``, ``estimate``).
    """
    from lifecycle.monitoring.cbpe import weekly_expected_confusion
    from lifecycle.monitoring.schedule import check_days

    delay, policy = delay or LabelDelay(), policy or Policy(looks=period.weeks)
    members = [np.flatnonzero(period.week == w) for w in range(period.weeks)]
    reference_outcomes = reference.labels[reference.scores >= reference.threshold]
    pooled = np.r_[reference_outcomes, period.transactions["is_fraud"].to_numpy()[period.flagged]]
    stamps = period.transactions["timestamp"].to_numpy().astype("datetime64[s]").astype(np.int64)
    checks = check_days(period.start, period.weeks).to_numpy().astype("datetime64[s]").astype(np.int64)
    truth = period.transactions["is_fraud"].to_numpy()
    rows = []
    for copy in range(windows):
        rng = np.random.default_rng([seed, 4, copy])
        drawn = rng.integers(0, len(reference.scores), len(reference.scores))
        cbpe = CBPE(reference.threshold).fit(reference.scores[drawn], reference.labels[drawn])
        counts = {"flags": cbpe.reference_flags_, "true_flags": cbpe.reference_true_flags_}
        if null:
            counts["true_flags"] = int(rng.choice(pooled, size=counts["flags"]).sum())
        pick = np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members if len(m)])
        week, flagged = period.week[pick], period.flagged[pick]
        flags = pick[flagged]  # blocked rows: labelled only by review; the estimated precision needs only them
        estimate = weekly_expected_confusion(cbpe.probabilities(period.scores[flags]), np.ones(len(flags), bool),
                                             period.week[flags], period.weeks)
        outcome = rng.choice(pooled, size=len(flags)) if null else truth[flags]
        reviewed = rng.random(len(flags)) < delay.review_probability
        review_days = delay.review_median_days * np.exp(delay.review_sigma * rng.standard_normal(len(flags)))
        reviewed_at = np.where(reviewed, stamps[flags] + review_days * 86_400, np.inf)
        first, fired = None, {"labels": False, "estimate": False}
        for w in range(period.weeks):
            window = ((period.week[flags] > w - policy.label_weeks) & (period.week[flags] <= w)
                      & (reviewed_at <= checks[w]))
            n, k = int(window.sum()), int(outcome[window].sum())
            labels_fell = n >= policy.min_labelled_flags and labels_test(
                k, n, counts["true_flags"], counts["flags"], policy.retrain_level)[0]
            estimate_fell = estimate_test(estimate["precision"][w], estimate["precision_se"][w], counts["true_flags"],
                                          counts["flags"], policy.retrain_level)[0]
            retrain = labels_fell
            if estimate_fell and not labels_fell:  # that retrain needs drift too: test the resampled week
                week_rows = pick[week == w]
                table = weekly_drift(reference.features, reference.scores, period.features.iloc[week_rows],
                                     period.scores[week_rows], np.zeros(len(week_rows), dtype=np.int64), 1,
                                     MONITORED_FEATURES, CATEGORICAL_FEATURES, seed=copy).xs(0, level="week")
                features = table.drop(index="score")
                retrain = bool(drifted(features, policy.feature_level(len(features)))
                               or drifted(table.loc[["score"]], policy.prediction_level))
            fired = {"labels": fired["labels"] or labels_fell, "estimate": fired["estimate"] or estimate_fell}
            if retrain and first is None:
                first = w + 1
        rows.append({"seed": copy, "retrain": first is not None, "first_week": first, **fired})
    return pd.DataFrame(rows)


def retraining_rows(period: ScoredPeriod, arrivals: pd.DataFrame, day: str | pd.Timestamp,
                    history_features: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any]:
    """What a retrain on ``day`` may fit: the champion's (fully labelled) training month, then the period's
    rows before ``day`` with the labels usable then (:func:`~lifecycle.data.training_labels_as_of`).

    Returns:
        ``features``, ``labels``, ``usable``, ``timestamps`` for
        :func:`~lifecycle.monitoring.retraining.retrain_on_labels`, and ``label_coverage``: the share
        of the period's rows before ``day`` whose label had arrived.
    """
    from lifecycle.data import labels_as_of

    before = period.rows_before(day)
    usable, label = training_labels_as_of(arrivals, day)
    labelled, _ = labels_as_of(arrivals, day)
    return {"features": pd.concat([history_features, period.features[before]], ignore_index=True),
            "labels": np.r_[history["is_fraud"].to_numpy(), label[before]],
            "usable": np.r_[np.ones(len(history), dtype=bool), usable[before]],
            "timestamps": pd.concat([history["timestamp"], period.transactions["timestamp"][before]],
                                    ignore_index=True),
            "label_coverage": float(labelled[before].mean()) if before.any() else float("nan")}
