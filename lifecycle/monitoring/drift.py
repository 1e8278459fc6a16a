"""Drift monitoring: is production still the world the model learned, and is the model still right?

:class:`DriftMonitor` compares a current window of traffic with a reference window (rows the model
was validated on, not fitted on) and checks three signals, with Evidently 0.7 doing the statistics:

* **data drift**: for each monitored feature, Evidently's drift score (on more than 1000 rows a
  normed Wasserstein distance, or a Jensen-Shannon distance for columns with few values: drift
  when >= 0.1; on fewer rows a K-S / chi² p-value: drift when < 0.05), and the share of drifted
  features;
* **prediction drift**: the same drift score on the model's fraud score, and the alert rate (the
  share of rows at or above the model's decision threshold) against the reference's;
* **model quality** on labelled feedback (labels arrive late: chargebacks, analyst reviews):
  precision and recall at the model's own threshold, and PR-AUC.

The policy, applied in this order by :meth:`DriftMonitor.check`:

1. Quality fell (precision by at least ``max_precision_drop`` or PR-AUC by at least
   ``max_pr_auc_drop`` below the reference, judged on at least ``min_frauds`` labelled frauds):
   **retrain**. With input drift the kind is ``data_drift`` (the inputs moved and the model
   suffers); without it ``concept_drift`` (same inputs, different right answers).
2. Input drift (drift share >= ``drift_share``) while quality held: **alert**, kind
   ``data_drift``: worth a look, but retraining buys no measured quality.
3. Input drift and no labels yet: **alert**; **retrain** when prediction drift is large too
   (the model's decisions moved with its inputs and nothing says they are still right).
4. Prediction drift alone: **alert**, kind ``prediction_drift``.
5. Otherwise: no action.

Every decision carries its reasons as sentences with the numbers. A check runs Evidently's drift
tests only (:func:`column_drift`); the Evidently report of the last check, with its plots, is
built and saved as HTML by :meth:`DriftMonitor.save_report` (a few MB: keep it out of notebook
outputs). Monitored features are :data:`MONITORED_FEATURES`: ten model inputs whose
distribution is stable week to week on unchanged traffic (features that grow with a user's
history, like ``user_txn_count``, drift by construction and are left out).

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError, LifecycleError, SchemaError

MONITORED_FEATURES: tuple[str, ...] = (
    "amount", "hour", "is_night", "category_code", "channel_code", "device_code",
    "user_txn_count_1h", "user_amount_mean", "amount_vs_user_avg", "country_share_for_user",
)
SCORE_COLUMN = "score"
ACTIONS = ("none", "alert", "retrain")
KINDS = ("none", "data_drift", "prediction_drift", "concept_drift")


class NotFittedError(LifecycleError, RuntimeError):
    """A monitor was used before :meth:`DriftMonitor.fit` (or a report saved before a check)."""


@dataclass
class MonitorDecision:
    """What one monitoring check found and decided.

    ``action`` is one of :data:`ACTIONS`, ``kind`` one of :data:`KINDS`; ``reasons`` explain them
    with the numbers. ``feature_drift`` has one row per monitored feature (``method``,
    ``drift_score``, ``threshold``, ``drifted``). ``prediction`` holds ``score_drift`` (with its
    method, threshold and verdict), ``alert_rate`` and ``reference_alert_rate`` when scores were
    given; ``quality`` and ``reference_quality`` hold ``precision``, ``recall``, ``f1``, ``pr_auc``,
    ``rows`` and ``frauds`` when labels were given.
    """

    action: str
    kind: str
    reasons: list[str]
    drifted_features: list[str]
    drift_share: float
    feature_drift: pd.DataFrame
    prediction: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, float] | None = None
    reference_quality: dict[str, float] | None = None
    rows: int = 0

    def summary(self) -> dict[str, Any]:
        """One flat row for a table of checks (plain Python values)."""
        quality = self.quality or {}
        return {"action": self.action, "kind": self.kind, "drift_share": round(self.drift_share, 3),
                "drifted_features": ", ".join(self.drifted_features) or "-",
                "score_drift": _rounded(self.prediction.get("score_drift")),
                "alert_rate": _rounded(self.prediction.get("alert_rate"), 4),
                "precision": _rounded(quality.get("precision")), "pr_auc": _rounded(quality.get("pr_auc"))}

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable (for the ``lifecycle monitor`` command and logs)."""
        table = self.feature_drift.reset_index().to_dict("records")
        return {**{k: v for k, v in self.__dict__.items() if k != "feature_drift"},
                "feature_drift": [{k: _plain(v) for k, v in row.items()} for row in table]}

    def __str__(self) -> str:
        return f"{self.action} ({self.kind})\n" + "\n".join(f"- {reason}" for reason in self.reasons)


class DriftMonitor:
    """Decide from drift and quality whether to do nothing, alert, or retrain (see the module doc).

    Example:
        >>> monitor = DriftMonitor(decision_threshold=champion.threshold)
        >>> monitor.fit(reference_features, reference_scores, reference_labels)
        >>> decision = monitor.check(current_features, current_scores, labels=late_labels)
        >>> decision.action, decision.reasons
        >>> monitor.save_report(settings.workspace / "reports" / "drift.html")

    Args:
        decision_threshold: the model's threshold (``TrainedModel.threshold``): precision, recall and
            the alert rate are measured at it. Needed for scores and labels; not for input drift.
        features: the feature columns to watch.
        drift_share: share of drifted features from which input drift counts as significant.
        max_precision_drop: a fall in precision (absolute) from the reference that triggers a retrain.
        max_pr_auc_drop: a fall in PR-AUC (absolute) from the reference that triggers a retrain.
        alert_rate_change: a factor by which the alert rate may grow or shrink before it counts
            as prediction drift (2: a reference of 5,000 rows flags only about 50, so its own
            rate is uncertain by about a third).
        min_frauds: labelled frauds a window needs before its quality is judged.
        method: an Evidently drift method for every column (e.g. ``"psi"``); None lets Evidently
            choose by column type and size.
        threshold: the drift threshold for that method; None keeps the method's default.
    """

    def __init__(self, decision_threshold: float | None = None, features: Sequence[str] = MONITORED_FEATURES,
                 drift_share: float = 0.3, max_precision_drop: float = 0.15, max_pr_auc_drop: float = 0.1,
                 alert_rate_change: float = 2.0, min_frauds: int = 20, method: str | None = None,
                 threshold: float | None = None) -> None:
        self.decision_threshold = decision_threshold
        self.features = list(features)
        self.drift_share = drift_share
        self.max_precision_drop = max_precision_drop
        self.max_pr_auc_drop = max_pr_auc_drop
        self.alert_rate_change = alert_rate_change
        self.min_frauds = min_frauds
        self.method = method
        self.threshold = threshold

    def fit(self, reference_features: pd.DataFrame, reference_scores: Sequence[float] | None = None,
            reference_labels: Sequence[int] | None = None) -> DriftMonitor:
        """Learn the reference window: its features, scores, alert rate and quality.

        Args:
            reference_features: features of rows the model was validated on, not fitted on.
            reference_scores: the model's scores on those rows (enables prediction drift).
            reference_labels: their ``is_fraud`` (enables judging quality drops).

        Returns:
            self.

        Raises:
            SchemaError: a monitored feature is missing, or lengths disagree.
            ConfigError: scores or labels without a ``decision_threshold``, or a bad setting.
        """
        if not 0 < self.drift_share <= 1:
            raise ConfigError(f"drift_share must be in (0, 1], got {self.drift_share!r}")
        if self.alert_rate_change < 1:
            raise ConfigError(f"alert_rate_change must be >= 1 (a factor), got {self.alert_rate_change!r}")
        reference = self._frame(reference_features, reference_scores, "reference")
        quality = self._quality(reference_labels, reference, "reference") if reference_labels is not None else None
        self.reference_alert_rate_ = (float((reference[SCORE_COLUMN] >= self.decision_threshold).mean())
                                      if reference_scores is not None else None)
        self.reference_quality_, self.reference_ = quality, reference
        return self

    def check(self, current_features: pd.DataFrame, current_scores: Sequence[float] | None = None,
              labels: Sequence[int] | None = None) -> MonitorDecision:
        """Compare a current window with the reference and decide (the policy is in the module doc).

        Args:
            current_features: the window's features (same columns as the reference).
            current_scores: the model's scores on them (needed if the reference had scores).
            labels: their ``is_fraud``, when the late labels have arrived.

        Returns:
            The :class:`MonitorDecision` (also kept in ``last_decision_``); the window stays in
            ``current_`` for :meth:`save_report`.

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
        current = self._frame(current_features, current_scores, "current")
        table = column_drift(self.reference_, current, self.method, self.threshold)
        self.current_ = current
        feature_drift = table.drop(index=SCORE_COLUMN, errors="ignore")
        drifted = [name for name in feature_drift.index if feature_drift.at[name, "drifted"]]
        drift_share = len(drifted) / len(feature_drift)
        prediction = self._prediction(table, current) if with_scores else {}
        quality = self._quality(labels, current, "current") if labels is not None else None
        action, kind, reasons = self._decide(feature_drift, drifted, drift_share, prediction, quality)
        self.last_decision_ = MonitorDecision(action, kind, reasons, drifted, drift_share, feature_drift, prediction,
                                              quality, self.reference_quality_, len(current))
        return self.last_decision_

    def save_report(self, path: str | Path) -> Path:
        """Save the last check's Evidently report (the ``DataDriftPreset`` view) as HTML.

        The report is rendered here rather than in :meth:`check`: its plots cost about 20x the
        check's drift tests, and only the windows someone will look at need them.

        Args:
            path: an ``.html`` file, or a folder (the file is then ``drift_report.html`` in it);
                folders are created. The course keeps reports in ``workspace/reports/``.

        Returns:
            The file written.

        Raises:
            NotFittedError: no check has run yet.
        """
        if not hasattr(self, "current_"):
            raise NotFittedError("no report yet: call monitor.check(current_features, ...) before save_report()")
        path = Path(path)
        if path.suffix.lower() != ".html":
            path = path / "drift_report.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        run_drift_report(self.reference_, self.current_, self.method, self.threshold, preset=True,
                         drift_share=self.drift_share).save_html(str(path))
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

    def _quality(self, labels: Sequence[int], frame: pd.DataFrame, name: str) -> dict[str, float]:
        from lifecycle.training import evaluate

        labels = np.asarray(labels)
        if SCORE_COLUMN not in frame:
            raise SchemaError(f"{name} labels were given without scores; quality needs the model's scores too")
        if len(labels) != len(frame):
            raise SchemaError(f"{name}: {len(labels)} labels for {len(frame)} rows")
        metrics = evaluate(labels, frame[SCORE_COLUMN].to_numpy(), self.decision_threshold)
        return {**{k: metrics[k] for k in ("precision", "recall", "f1", "pr_auc")},
                "rows": int(len(labels)), "frauds": int(labels.sum())}

    def _prediction(self, table: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
        score = table.loc[SCORE_COLUMN]
        return {"score_drift": float(score["drift_score"]), "score_method": score["method"],
                "score_threshold": float(score["threshold"]), "score_drifted": bool(score["drifted"]),
                "alert_rate": float((current[SCORE_COLUMN] >= self.decision_threshold).mean()),
                "reference_alert_rate": self.reference_alert_rate_}

    def _decide(self, features: pd.DataFrame, drifted: list[str], drift_share: float, prediction: dict[str, Any],
                quality: dict[str, float] | None) -> tuple[str, str, list[str]]:
        reasons = [_drift_sentence(features, drifted, drift_share, self.drift_share)]
        input_drift, prediction_drift, judged, dropped = drift_share >= self.drift_share, False, False, False
        if prediction:
            sentence, prediction_drift = _prediction_sentence(prediction, self.alert_rate_change)
            reasons.append(sentence)
        if quality is not None:
            sentence, judged, dropped = self._quality_sentence(quality)
            reasons.append(sentence)
        if dropped and input_drift:
            action, kind, why = "retrain", "data_drift", "the inputs moved and the model's quality fell with them"
        elif dropped:
            action, kind, why = "retrain", "concept_drift", ("quality fell while the inputs did not move: the "
                                                             "same inputs now mean something else")
        elif input_drift and judged:
            action, kind, why = "alert", "data_drift", "the inputs moved but quality held; retraining buys nothing yet"
        elif input_drift and prediction_drift:
            action, kind, why = "retrain", "data_drift", ("inputs and decisions moved, and no labels yet say the "
                                                          "decisions are still right")
        elif input_drift:
            action, kind, why = "alert", "data_drift", "the inputs moved; judge the model when the labels arrive"
        elif prediction_drift:
            action, kind, why = "alert", "prediction_drift", "the scores moved although no input feature did"
        else:
            action, kind, why = "none", "none", "inputs, predictions and quality look like the reference"
        return action, kind, reasons + [f"Decision: {action} ({kind}): {why}."]

    def _quality_sentence(self, quality: dict[str, float]) -> tuple[str, bool, bool]:
        """(sentence, judged, dropped) for the current window's quality."""
        seen = (f"precision {quality['precision']:.3f}, recall {quality['recall']:.3f}, PR-AUC "
                f"{quality['pr_auc']:.3f} at threshold {self.decision_threshold:.3f} on {quality['rows']:,} "
                f"labelled rows ({quality['frauds']} frauds)")
        if quality["frauds"] < self.min_frauds:
            return f"Quality: {seen}; too few frauds to judge (need {self.min_frauds}).", False, False
        reference = self.reference_quality_
        if reference is None:
            return f"Quality: {seen}; no reference quality to compare with (fit with reference_labels).", False, False
        precision_drop = reference["precision"] - quality["precision"]
        pr_auc_drop = reference["pr_auc"] - quality["pr_auc"]
        dropped = precision_drop >= self.max_precision_drop or pr_auc_drop >= self.max_pr_auc_drop
        sentence = (f"Quality {'fell' if dropped else 'held'}: precision {reference['precision']:.3f} -> "
                    f"{quality['precision']:.3f} (drop {precision_drop:+.3f}, limit {self.max_precision_drop}), "
                    f"PR-AUC {reference['pr_auc']:.3f} -> {quality['pr_auc']:.3f} (drop {pr_auc_drop:+.3f}, "
                    f"limit {self.max_pr_auc_drop}); {seen}.")
        return sentence, True, dropped


def column_drift(reference: pd.DataFrame, current: pd.DataFrame, method: str | None = None,
                 threshold: float | None = None) -> pd.DataFrame:
    """Evidently's drift test of every column of two frames (all numerical), without a report.

    The statistics a ``ValueDrift`` metric of an Evidently ``Report`` computes, chosen and run the
    same way (Evidently's ``get_stattest`` picks the test by column type and size, with its default
    threshold), minus the plots the report renders for each column, which take most of a report's
    time (:meth:`DriftMonitor.save_report` builds the full report). The unit tests check that both
    give the same table.

    Args:
        reference: the reference window.
        current: the current window, same columns.
        method: an Evidently drift method for every column (e.g. ``"psi"``); None: Evidently chooses.
        threshold: the drift threshold for that method; None: the method's default.

    Returns:
        One row per column, indexed by ``feature``: ``method`` (the test's name), ``drift_score``,
        ``threshold`` and ``drifted``, as :func:`drift_table` reads them from a report.
    """
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType
    from evidently.legacy.options.data_drift import DataDriftOptions

    options = DataDriftOptions(all_features_stattest=method, all_features_threshold=threshold)
    rows = {}
    for column in reference.columns:
        # as Evidently's own drift calculation: infinities and missing values are left out
        reference_column = reference[column].replace([-np.inf, np.inf], np.nan).dropna()
        current_column = current[column].replace([-np.inf, np.inf], np.nan).dropna()
        if reference_column.empty or current_column.empty:
            raise SchemaError(f"column {column!r} has no finite values in the "
                              f"{'reference' if reference_column.empty else 'current'} window; drift needs some")
        test = get_stattest(reference_column, current_column, ColumnType.Numerical,
                            options.get_feature_stattest_func(column, ColumnType.Numerical.value))
        result = test(reference_column, current_column, ColumnType.Numerical,
                      options.get_threshold(column, ColumnType.Numerical.value))
        rows[column] = {"method": test.display_name, "drift_score": float(result.drift_score),
                        "threshold": float(result.actual_threshold), "drifted": bool(result.drifted)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "feature"
    return table


def run_drift_report(reference: pd.DataFrame, current: pd.DataFrame, method: str | None = None,
                     threshold: float | None = None, preset: bool = False, drift_share: float = 0.5):
    """Run Evidently's drift tests over every column of two frames (all numerical).

    ``method``/``threshold`` apply to every column (None: Evidently chooses by column type and
    size). ``preset=False`` runs one ``ValueDrift`` per column (the statistics of
    :func:`column_drift`, plus a plot per column); ``preset=True`` runs the ``DataDriftPreset``
    (with ``drift_share`` for its dataset verdict), whose report adds the summary table but
    computes each column's drift three times (about 3x slower).

    Returns:
        The Evidently snapshot (``.dict()``, ``.save_html()``).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = list(reference.columns)
    definition = DataDefinition(numerical_columns=columns)
    metrics = ([DataDriftPreset(columns=columns, method=method, threshold=threshold, drift_share=drift_share)]
               if preset else [ValueDrift(column=column, method=method, threshold=threshold) for column in columns])
    current_data = Dataset.from_pandas(current, data_definition=definition)
    reference_data = Dataset.from_pandas(reference, data_definition=definition)
    return Report(metrics, include_tests=True).run(current_data=current_data, reference_data=reference_data)


def drift_table(snapshot) -> pd.DataFrame:
    """Per-column drift from an Evidently snapshot: ``method``, ``drift_score``, ``threshold`` and
    ``drifted`` (Evidently's own test verdict), indexed by column."""
    result = snapshot.dict()
    rows = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            rows[config["column"]] = {"method": config["method"], "drift_score": float(metric["value"]),
                                      "threshold": float(config["threshold"])}
    for test in result["tests"]:
        column = test.get("metric_config", {}).get("params", {}).get("column")
        if column in rows and test["name"].startswith("Value Drift"):
            rows[column]["drifted"] = test["status"] == "FAIL"
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "feature"
    return table


def _drift_sentence(features: pd.DataFrame, drifted: list[str], share: float, limit: float) -> str:
    def describe(name: str) -> str:
        score, threshold = features.at[name, "drift_score"], features.at[name, "threshold"]
        if "p_value" in features.at[name, "method"]:
            return f"{name} p-value {score:.3f} (drift below {threshold:.2f})"
        return f"{name} {score:.3f} (threshold {threshold:.2f})"

    counted = f"{len(drifted)} of {len(features)} monitored features drifted (share {share:.2f}"
    if share >= limit:
        return f"Input drift: {counted} >= {limit:.2f}): " + "; ".join(describe(f) for f in drifted) + "."
    # How close each feature is to its threshold; p-value tests (small windows) drift when *below* it.
    p_value = features["method"].str.contains("p_value")
    closeness = np.where(p_value, features["threshold"] / features["drift_score"].clip(lower=1e-12),
                         features["drift_score"] / features["threshold"])
    largest = features.index[int(np.argmax(closeness))]
    also = f" ({', '.join(drifted)} drifted)" if drifted else ""
    return f"No significant input drift: {counted} < {limit:.2f}){also}; largest: {describe(largest)}."


def _prediction_sentence(prediction: dict[str, Any], change: float) -> tuple[str, bool]:
    rate, reference = prediction["alert_rate"], prediction["reference_alert_rate"]
    ratio = rate / reference if reference else float("inf") if rate else 1.0
    moved = prediction["score_drifted"] or not 1 / change <= ratio <= change
    return (f"Prediction drift {'found' if moved else 'none'}: score drift {prediction['score_drift']:.3f} "
            f"(threshold {prediction['score_threshold']:.2f}); alert rate {rate:.2%} vs {reference:.2%} in the "
            f"reference (x{ratio:.2f}, limit x{change:g})."), moved


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
