"""A monitored production period: score it once, then run the weekly schedule as often as you like.

:func:`score_period` is the expensive part (point-in-time features, the model's scores, the weekly
drift tests): it depends on the traffic and the model only, so a lesson or a playground computes
it once per world and keeps the :class:`ScoredPeriod`. :func:`monitor_period` is the cheap part
(when labels arrive, CBPE, realised precision, the policy): re-run it for another label delay or
policy in milliseconds. Worlds that share their first days (``generate_period``'s quiet days) share
their scoring too: :func:`score_periods` scores those days once (:class:`SharedDays`), and
:func:`score_with_shared` scores one more world on them. :func:`retraining_rows` gives what a retrain
on a given day may fit; the policy's false-alarm rate is :mod:`~lifecycle.monitoring.false_alarms`'.

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
from lifecycle.monitoring.policy import Policy
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


@dataclass
class SharedDays:
    """The first days several worlds share (``generate_period``'s quiet days before ``cut``), scored once.

    ``transactions``, ``features`` and ``scores`` are those days' rows; ``past`` is the users' past for
    the days after them (the history, then these days); ``drift`` holds the weekly drift tests of the
    ``weeks`` whole weeks they cover (None when they cover none).
    """

    cut: pd.Timestamp
    transactions: pd.DataFrame
    features: pd.DataFrame
    scores: np.ndarray
    past: pd.DataFrame
    weeks: int
    drift: pd.DataFrame | None

    @classmethod
    def score(cls, model: Any, reference: Reference, transactions: pd.DataFrame, history: pd.DataFrame,
              start: str | pd.Timestamp, cut: str | pd.Timestamp, sample_rows: int | None = 2_000,
              seed: int = 0) -> SharedDays:
        """Score the rows of ``transactions`` before ``cut`` and drift-test their whole weeks."""
        from lifecycle.monitoring.retraining import score_window

        cut, start = pd.Timestamp(cut), pd.Timestamp(start)
        quiet = transactions[transactions["timestamp"] < cut]
        features, scores = score_window(model, quiet, history=history)
        weeks = max((cut - start).days // 7, 0)
        drift = weekly_drift(reference.features, reference.scores, features, scores,
                             week_of(quiet["timestamp"], start, weeks), weeks, MONITORED_FEATURES,
                             CATEGORICAL_FEATURES, sample_rows, seed) if weeks else None
        return cls(cut, quiet, features, scores, pd.concat([history, quiet], ignore_index=True), weeks, drift)

    @classmethod
    def of_period(cls, period: ScoredPeriod, history: pd.DataFrame, cut: str | pd.Timestamp) -> SharedDays:
        """The shared days of a period scored already (by :func:`score_periods` with this ``cut``): no work."""
        cut = pd.Timestamp(cut)
        before = period.rows_before(cut)
        quiet = period.transactions[before]
        weeks = max((cut - period.start).days // 7, 0)
        drift = (period.drift[period.drift.index.get_level_values("week") < weeks] if weeks else None)
        return cls(cut, quiet, period.features[before].reset_index(drop=True), period.scores[before],
                   pd.concat([history, quiet], ignore_index=True), weeks, drift)


def score_with_shared(model: Any, reference: Reference, shared: SharedDays, transactions: pd.DataFrame,
                      history: pd.DataFrame, start: str | pd.Timestamp, weeks: int, sample_rows: int | None = 2_000,
                      seed: int = 0) -> ScoredPeriod:
    """:func:`score_period` of a world whose first days are ``shared``'s: only its own rows are scored, with
    the shared ones as part of the users' past (a world whose first days differ is scored on its own)."""
    from lifecycle.monitoring.retraining import score_window

    own = transactions[transactions["timestamp"] < shared.cut]
    if not own["transaction_id"].tolist() == shared.transactions["transaction_id"].tolist():
        return score_period(model, reference, transactions, history, start, weeks, sample_rows, seed)
    rest = transactions[transactions["timestamp"] >= shared.cut]
    rest_features, rest_scores = score_window(model, rest, history=shared.past)
    features = pd.concat([shared.features, rest_features], ignore_index=True)
    scores = np.r_[shared.scores, rest_scores]
    week = week_of(pd.concat([shared.transactions["timestamp"], rest["timestamp"]]), start, weeks)
    later = np.where(week >= shared.weeks, week, -1)
    drift = weekly_drift(reference.features, reference.scores, features, scores, later, weeks,
                         MONITORED_FEATURES, CATEGORICAL_FEATURES, sample_rows, seed)
    drift = pd.concat([shared.drift, drift]) if shared.drift is not None else drift
    return ScoredPeriod(pd.concat([shared.transactions, rest], ignore_index=True), features, scores,
                        scores >= reference.threshold, week, pd.Timestamp(start), weeks, drift, sample_rows, seed)


def score_periods(model: Any, reference: Reference, periods: Mapping[str, pd.DataFrame], history: pd.DataFrame,
                  start: str | pd.Timestamp, weeks: int, shared_until: str | pd.Timestamp,
                  sample_rows: int | None = 2_000, seed: int = 0) -> dict[str, ScoredPeriod]:
    """:func:`score_period` for several worlds that share their first days (``generate_period``'s quiet days).

    The shared rows (before ``shared_until``) are scored, and their whole weeks drift-tested, once
    (:class:`SharedDays`); each world's own rows are scored with the shared ones as part of the users'
    past (:func:`score_with_shared`). A world whose first days differ from the first world's is scored
    on its own.

    Returns:
        One :class:`ScoredPeriod` per world, as :func:`score_period` would give.
    """
    shared = SharedDays.score(model, reference, next(iter(periods.values())), history, start, shared_until,
                              sample_rows, seed)
    return {name: score_with_shared(model, reference, shared, transactions, history, start, weeks, sample_rows, seed)
            for name, transactions in periods.items()}


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
