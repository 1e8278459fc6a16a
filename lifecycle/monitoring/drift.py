"""Drift checks: is production still the world the model learned, and is the model still right?

The statistics come from Evidently (through :mod:`lifecycle.monitoring._evidently`), with the
model's categorical inputs declared as categorical (:data:`CATEGORICAL_FEATURES`: a category code
is not a number, and a distance between codes means nothing):

* :func:`drift_statistics`: what the policy reads per column, a p-value (K-S, chi-square) and a
  distance (normed Wasserstein, Jensen-Shannon);
* :func:`column_drift`: Evidently's own default drift test per column (the one a ``ValueDrift``
  metric picks by column type and size), and :func:`run_drift_report` / :func:`drift_table`: the
  same as an Evidently report, with its plots, and read back from it.

:class:`DriftMonitor` is one check of one window against a reference: input drift, prediction
drift, the estimated precision (CBPE) and, when labels are given, the realised precision, decided
by :mod:`lifecycle.monitoring.policy` as a single look. It is what ``lifecycle monitor`` runs; the
weekly schedule (:mod:`lifecycle.monitoring.schedule`) runs the same statistics week by week.
Monitored features are :data:`MONITORED_FEATURES`: ten model inputs whose distribution is stable
week to week on unchanged traffic (features that grow with a user's history, like
``user_txn_count``, drift by construction and are left out).

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError, SchemaError
from lifecycle.monitoring import _evidently
from lifecycle.monitoring.cbpe import CBPE, NotFittedError
from lifecycle.monitoring.policy import Policy, decide

MONITORED_FEATURES: tuple[str, ...] = (
    "amount", "hour", "is_night", "category_code", "channel_code", "device_code",
    "user_txn_count_1h", "user_amount_mean", "amount_vs_user_avg",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("is_night", "category_code", "channel_code", "device_code")
SCORE_COLUMN = "score"
__all__ = ["CATEGORICAL_FEATURES", "MONITORED_FEATURES", "DriftMonitor", "MonitorDecision", "NotFittedError",
           "column_drift", "drift_statistics", "drift_table", "run_drift_report"]


def drift_statistics(reference: pd.DataFrame, current: pd.DataFrame,
                     categorical: Collection[str] = CATEGORICAL_FEATURES) -> pd.DataFrame:
    """Per column: ``p_value`` (K-S, or chi-square for categories), ``distance`` (Evidently's normed
    Wasserstein, or Jensen-Shannon) and ``distance_threshold`` (Evidently's default, 0.1)."""
    return _evidently.significance_and_size(reference, current, categorical)


def column_drift(reference: pd.DataFrame, current: pd.DataFrame, method: str | None = None,
                 threshold: float | None = None, categorical: Collection[str] = CATEGORICAL_FEATURES) -> pd.DataFrame:
    """Evidently's drift test of every column, as a ``ValueDrift`` metric runs it (without its plots).

    Returns:
        Indexed by ``feature``: ``method``, ``drift_score``, ``threshold``, ``drifted``.
    """
    return _evidently.column_tests(reference, current, categorical, method, threshold)


def run_drift_report(reference: pd.DataFrame, current: pd.DataFrame, method: str | None = None,
                     threshold: float | None = None, preset: bool = False, drift_share: float = 0.5,
                     categorical: Collection[str] = CATEGORICAL_FEATURES):
    """An Evidently report of the windows (``ValueDrift`` per column, or the ``DataDriftPreset``), with
    the categorical columns declared as such. Returns the snapshot (``.dict()``, ``.save_html()``)."""
    return _evidently.run_report(reference, current, [c for c in categorical if c in reference.columns],
                                 method, threshold, preset, drift_share)


def drift_table(snapshot) -> pd.DataFrame:
    """Per-column ``method``, ``drift_score``, ``threshold`` and ``drifted`` read from a report's snapshot."""
    return _evidently.report_drift_table(snapshot)


@dataclass
class MonitorDecision:
    """What one check found and decided: ``action`` (none, alert, retrain), ``kind``, ``precision``
    (held, fell, cannot judge yet) and ``reasons`` with the numbers; ``feature_drift`` has one row
    per monitored feature plus ``score``; ``estimate`` is CBPE's; ``quality`` the labelled flags'."""

    action: str
    kind: str
    precision: str
    reasons: list[str]
    drifted_features: list[str]
    feature_drift: pd.DataFrame
    estimate: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    rows: int = 0

    @property
    def drift_share(self) -> float:
        """Share of monitored features that drifted."""
        return len(self.drifted_features) / max(len(self.feature_drift.drop(index=SCORE_COLUMN, errors="ignore")), 1)

    def summary(self) -> dict[str, Any]:
        """One flat row for a table of checks (plain Python values)."""
        return {"action": self.action, "kind": self.kind, "precision": self.precision,
                "drifted_features": ", ".join(self.drifted_features) or "-",
                "estimated_precision": _rounded(self.estimate.get("precision")),
                "realised_precision": _rounded(self.quality.get("precision")),
                "labelled_flags": self.quality.get("labelled_flags", 0)}

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable (for the ``lifecycle monitor`` command and logs)."""
        table = self.feature_drift.reset_index().to_dict("records")
        return {**{k: v for k, v in self.__dict__.items() if k != "feature_drift"}, "drift_share": self.drift_share,
                "feature_drift": [{k: _plain(v) for k, v in row.items()} for row in table]}

    def __str__(self) -> str:
        return f"{self.action} ({self.kind})\n" + "\n".join(f"- {reason}" for reason in self.reasons)


class DriftMonitor:
    """One check of a window against a reference, decided by the policy (see the module doc).

    Example:
        >>> monitor = DriftMonitor(decision_threshold=champion.threshold)
        >>> monitor.fit(reference_features, reference_scores, reference_labels)
        >>> decision = monitor.check(current_features, current_scores, labels=late_labels)
        >>> decision.action, decision.reasons

    Args:
        decision_threshold: the model's threshold (``TrainedModel.threshold``): flags are scores at or
            above it. Needed with scores; not for input drift alone.
        features: the feature columns to watch.
        categorical: which of them are categories.
        policy: the policy's settings (default: one look, ``Policy(looks=1)``).
    """

    def __init__(self, decision_threshold: float | None = None, features: Sequence[str] = MONITORED_FEATURES,
                 categorical: Sequence[str] = CATEGORICAL_FEATURES, policy: Policy | None = None) -> None:
        self.decision_threshold = decision_threshold
        self.features = list(features)
        self.categorical = [c for c in categorical if c in self.features]
        self.policy = policy or Policy(looks=1)

    def fit(self, reference_features: pd.DataFrame, reference_scores: Sequence[float] | None = None,
            reference_labels: Sequence[int] | None = None) -> DriftMonitor:
        """Learn the reference window: its features and scores, and (with labels) CBPE's calibration.

        Returns:
            self, with ``reference_`` and, given labels, ``cbpe_`` (whose ``reference_precision_`` is
            the reference's precision at the threshold).

        Raises:
            SchemaError: a monitored feature is missing, lengths disagree, or labels come without scores.
            ConfigError: scores without a ``decision_threshold``.
        """
        self.reference_ = self._frame(reference_features, reference_scores, "reference")
        if reference_labels is not None:
            if reference_scores is None:
                raise SchemaError("reference labels were given without scores; calibrating needs the model's scores")
            self.cbpe_ = CBPE(self.decision_threshold).fit(reference_scores, reference_labels)
        return self

    def check(self, current_features: pd.DataFrame, current_scores: Sequence[float] | None = None,
              labels: Sequence[float] | None = None) -> MonitorDecision:
        """Compare a window with the reference and decide.

        Args:
            current_features: the window's features (same columns as the reference).
            current_scores: the model's scores on them (needed if the reference had scores).
            labels: their ``is_fraud`` as far as known (NaN: not arrived yet), when labels have come.

        Returns:
            The :class:`MonitorDecision`; the window stays in ``current_`` for :meth:`save_report`.

        Raises:
            NotFittedError: :meth:`fit` was not called.
            SchemaError: missing features, scores given on one side only, or lengths that disagree.
        """
        if not hasattr(self, "reference_"):
            raise NotFittedError("this DriftMonitor is not fitted yet; call monitor.fit(reference_features, "
                                 "reference_scores, reference_labels) with the window the model was validated on")
        with_scores = SCORE_COLUMN in self.reference_
        if (current_scores is not None) != with_scores:
            raise SchemaError(f"the reference was fitted {'with' if with_scores else 'without'} scores but "
                              f"current_scores is {'missing' if with_scores else 'given'}; pass scores on both "
                              "sides (prediction drift) or on neither (input drift only)")
        self.current_ = current = self._frame(current_features, current_scores, "current")
        table = drift_statistics(self.reference_, current, self.categorical)
        estimate, quality, reference = self._performance(current, labels)
        decision = decide(self.policy, table, estimate, quality, reference, SCORE_COLUMN)
        self.last_decision_ = MonitorDecision(decision.action, decision.kind, decision.precision, decision.reasons,
                                              decision.drifted_features, table, estimate, quality, len(current))
        return self.last_decision_

    def save_report(self, path: str | Path) -> Path:
        """Save the last check's Evidently report (one ``ValueDrift`` per column, with plots) as HTML.

        Args:
            path: an ``.html`` file, or a folder (the file is then ``drift_report.html`` in it).

        Returns:
            The file written (a few MB: link it or show it in an iframe, do not inline it).

        Raises:
            NotFittedError: no check has run yet.
        """
        if not hasattr(self, "current_"):
            raise NotFittedError("no report yet: call monitor.check(current_features, ...) before save_report()")
        path = Path(path)
        if path.suffix.lower() != ".html":
            path = path / "drift_report.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        run_drift_report(self.reference_, self.current_, categorical=self.categorical).save_html(str(path))
        return path

    def _frame(self, features: pd.DataFrame, scores: Sequence[float] | None, name: str) -> pd.DataFrame:
        missing = [f for f in self.features if f not in features.columns]
        if missing:
            raise SchemaError(f"{name} features lack monitored column(s) {missing}; build them with "
                              f"lifecycle.features.build_features (got columns {list(features.columns)})")
        frame = features[self.features].astype(float).reset_index(drop=True)
        if scores is not None:
            if self.decision_threshold is None:
                raise ConfigError("scores were given but decision_threshold is None; create the monitor with "
                                  "DriftMonitor(decision_threshold=trained.threshold)")
            scores = np.asarray(scores, dtype=float)
            if len(scores) != len(frame):
                raise SchemaError(f"{name}: {len(scores)} scores for {len(frame)} rows of features")
            frame[SCORE_COLUMN] = scores
        return frame

    def _performance(self, current: pd.DataFrame, labels: Sequence[float] | None
                     ) -> tuple[dict[str, float], dict[str, Any], dict[str, int]]:
        cbpe = getattr(self, "cbpe_", None)
        reference = ({"flags": cbpe.reference_flags_, "true_flags": cbpe.reference_true_flags_} if cbpe
                     else {"flags": 0, "true_flags": 0})
        estimate = {"precision": float("nan"), "precision_se": float("nan")}
        if cbpe is not None and SCORE_COLUMN in current:
            estimate = cbpe.estimate(current[SCORE_COLUMN].to_numpy())
        quality: dict[str, Any] = {"labelled_flags": 0, "true_flags": 0, "precision": None}
        if labels is not None:
            labels = np.asarray(labels, dtype=float)
            if SCORE_COLUMN not in current:
                raise SchemaError("labels were given without scores; precision needs the model's flags")
            if len(labels) != len(current):
                raise SchemaError(f"current: {len(labels)} labels for {len(current)} rows")
            labelled = (current[SCORE_COLUMN].to_numpy() >= self.decision_threshold) & ~np.isnan(labels)
            n, k = int(labelled.sum()), int(np.nansum(labels[labelled]))
            quality = {"labelled_flags": n, "true_flags": k, "precision": k / n if n else None}
        return estimate, quality, reference


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
