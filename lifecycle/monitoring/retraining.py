"""Closing the loop: score production windows, watch quality as late labels arrive, retrain on fresh data.

* :func:`score_window` computes a window's point-in-time features and the model's scores, as the
  server did; :func:`reference_window` makes a monitor's reference from a model's training history.
* :func:`quality_over_time` gives precision, recall and PR-AUC per period of labelled traffic.
* :func:`retrain_on_window` trains a challenger on a fresh labelled window of production data with
  the same recipe as :func:`~lifecycle.training.train_fraud_model` (fit on the earlier rows, choose
  the threshold on the latest ones); logging it as ``challenger`` and the canary rollout are the
  jobs of :mod:`lifecycle.tracking` and lesson 06.
* :func:`monitor_command` is ``lifecycle monitor``: one monitoring cycle of the registered champion
  on a window of traffic, for a scheduler.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError, SchemaError
from lifecycle.training import TrainedModel

# Exit statuses of `lifecycle monitor --exit-code` (2 is taken by errors).
EXIT_CODES = {"none": 0, "alert": 3, "retrain": 4}


def score_window(model: Any, transactions: pd.DataFrame, history: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """Point-in-time features of a window and the model's scores on them (what the server computed).

    Args:
        model: a fitted classifier (``TrainedModel.model``).
        transactions: the window's raw transactions.
        history: earlier transactions (the users' past).

    Returns:
        ``(features, scores)``.
    """
    from lifecycle.features import build_features
    from lifecycle.training import predict_scores

    features = build_features(transactions, history=history)
    return features, predict_scores(model, features)


def reference_window(model: Any, history: pd.DataFrame, fraction: float = 0.2
                     ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A monitor's reference from a model's training history: its latest ``fraction`` of rows (the
    rows :func:`~lifecycle.training.train_fraud_model` held out of fitting to choose the threshold),
    with the earlier rows as their past.

    Returns:
        ``(features, scores, labels)`` for :meth:`DriftMonitor.fit <lifecycle.monitoring.DriftMonitor.fit>`.
    """
    from lifecycle.features import split_by_time

    earlier, latest = split_by_time(history, fraction)
    features, scores = score_window(model, latest, history=earlier)
    return features, scores, latest["is_fraud"].to_numpy()


def quality_over_time(timestamps: Sequence, labels: Sequence[int], scores: Sequence[float], threshold: float,
                      freq: str = "7D") -> pd.DataFrame:
    """Precision, recall and PR-AUC per period of labelled traffic (for a plot of quality over time).

    Args:
        timestamps: when each row happened.
        labels: their ``is_fraud``.
        scores: the model's scores.
        threshold: the model's decision threshold.
        freq: period length (a pandas frequency, e.g. ``"7D"`` or ``"1D"``).

    Returns:
        One row per period: ``start``, ``rows``, ``frauds``, ``precision``, ``recall``, ``pr_auc``.
    """
    from lifecycle.training import evaluate

    frame = pd.DataFrame({"timestamp": pd.to_datetime(np.asarray(timestamps)), "label": np.asarray(labels),
                          "score": np.asarray(scores, dtype=float)})
    rows = []
    for start, group in frame.groupby(pd.Grouper(key="timestamp", freq=freq)):
        if len(group):
            metrics = evaluate(group["label"].to_numpy(), group["score"].to_numpy(), threshold)
            rows.append({"start": start, "rows": len(group), "frauds": int(group["label"].sum()),
                         **{k: metrics[k] for k in ("precision", "recall", "pr_auc")}})
    return pd.DataFrame(rows)


def retrain_on_window(window: pd.DataFrame, history: pd.DataFrame | None = None, kind: str = "hgb",
                      seed: int = 42, validation_fraction: float = 0.3, evaluation: pd.DataFrame | None = None,
                      f1_tolerance: float = 0.02, min_frauds: int = 20, **params: Any) -> TrainedModel:
    """Train a challenger on a fresh labelled window of production traffic.

    The recipe of :func:`~lifecycle.training.train_fraud_model`, on the new window only (older
    labels follow the old concept): fit on its earlier rows, choose the decision threshold (best F1)
    on its latest ``validation_fraction``. Features are point-in-time with ``history`` as the
    users' past, as the server computes them.

    Args:
        window: raw transactions with their late labels (``is_fraud``), e.g. the prediction log
            joined with chargebacks.
        history: transactions before the window (e.g. the champion's training window).
        kind: model kind (see :func:`~lifecycle.training.make_model`).
        seed: random seed.
        validation_fraction: share of the window (its latest rows) that chooses the threshold. The
            default is larger than training's 0.2: a fresh window is small, and a threshold chosen on
            a few dozen frauds moves precision by several points.
        evaluation: a later labelled window to report metrics on (its past: history and window);
            without it the metrics are on the validation rows, where the threshold was chosen.
        min_frauds: frauds the window needs (in each part) to train and choose a threshold.
        **params: hyper-parameters for the model.

    Returns:
        The :class:`~lifecycle.training.TrainedModel` (``train_rows`` counts the rows fitted).

    Raises:
        SchemaError: the window has no ``is_fraud`` column.
        ConfigError: too few frauds to fit or to choose a threshold.
    """
    from lifecycle.features import build_features, split_by_time
    from lifecycle.training import evaluate, fit_model, make_model, predict_scores

    if "is_fraud" not in window.columns:
        raise SchemaError("the retraining window has no 'is_fraud' column; join the late labels to the "
                          f"prediction log first (got columns {list(window.columns)})")
    fit_rows, valid_rows = split_by_time(window, validation_fraction)
    frauds = (int(fit_rows["is_fraud"].sum()), int(valid_rows["is_fraud"].sum()))
    if min(frauds) < min_frauds:
        raise ConfigError(f"too few labelled frauds to retrain: {frauds[0]} to fit and {frauds[1]} to choose the "
                          f"threshold (need {min_frauds} each); use a longer window ({len(window):,} rows now)")
    features = build_features(window, history=history)
    model = make_model(kind, seed, **params)
    seconds = fit_model(model, features.loc[fit_rows.index], fit_rows["is_fraud"])
    valid_scores = predict_scores(model, features.loc[valid_rows.index])
    threshold = choose_threshold_near_best(valid_rows["is_fraud"].to_numpy(), valid_scores, f1_tolerance)
    if evaluation is None:
        metrics = evaluate(valid_rows["is_fraud"].to_numpy(), valid_scores, threshold)
    else:
        past = window if history is None else pd.concat([history, window], ignore_index=True)
        _, scores = score_window(model, evaluation, history=past)
        metrics = evaluate(evaluation["is_fraud"].to_numpy(), scores, threshold)
    return TrainedModel(model=model, kind=kind, threshold=threshold, metrics=metrics, fit_seconds=seconds,
                        train_rows=len(fit_rows), params=params)


def retrain_on_labels(features: pd.DataFrame, labels: Sequence[int], usable: Sequence[bool], timestamps: Sequence,
                      alert_rate: float, kind: str = "hgb", seed: int = 42, recent_days: float = 14,
                      min_frauds: int = 20, **params: Any) -> TrainedModel:
    """Train a challenger on the rows whose labels can be trusted on the retrain day, with their logged features.

    What a retrain on the retrain day can use: the features the server computed for every logged
    prediction (point-in-time, whatever became of the labels), and the labels that have arrived by
    then (:func:`~lifecycle.data.training_labels_as_of`); no later label is used. Every usable row
    is fitted: the newest labels are the ones that know the new world.

    The threshold is not chosen on labels: the recent labelled rows are a biased sample (reviewed
    flags, no recent approvals), and a best-F1 threshold on them would be off. It keeps the team's
    review capacity instead: the challenger flags the share ``alert_rate`` of the last
    ``recent_days`` of traffic (labelled or not), as the champion did on its reference.

    Args:
        features: logged features (e.g. the champion's training month, then the production period so far).
        labels: each row's label as known on the retrain day (ignored where not ``usable``).
        usable: whether each row's label may be fitted.
        timestamps: when each row happened.
        alert_rate: the share of traffic to flag (e.g. the champion's reference alert rate).
        kind, seed, **params: the model (see :func:`~lifecycle.training.make_model`).
        recent_days: the traffic the alert rate is matched on.
        min_frauds: labelled frauds the fit needs.

    Returns:
        The :class:`~lifecycle.training.TrainedModel`; ``metrics`` holds its ``alert_rate`` and
        ``threshold`` (measure its precision on the weeks after the retrain).

    Raises:
        SchemaError: lengths disagree.
        ConfigError: too few usable frauds, or an alert rate outside (0, 1).
    """
    from lifecycle.training import fit_model, make_model, predict_scores

    labels, usable = np.asarray(labels), np.asarray(usable, dtype=bool)
    stamps = pd.to_datetime(np.asarray(timestamps))
    if not len(features) == len(labels) == len(usable) == len(stamps):
        raise SchemaError(f"{len(features)} feature rows, {len(labels)} labels, {len(usable)} usable flags and "
                          f"{len(stamps)} timestamps: give one of each per logged prediction")
    if not 0 < alert_rate < 1:
        raise ConfigError(f"alert_rate must be in (0, 1), got {alert_rate!r}")
    frauds = int(labels[usable].sum())
    if frauds < min_frauds:
        raise ConfigError(f"too few labelled frauds to retrain: {frauds} (need {min_frauds}); wait for more labels "
                          f"({int(usable.sum()):,} usable rows now)")
    frame = features.reset_index(drop=True)
    model = make_model(kind, seed, **params)
    seconds = fit_model(model, frame.iloc[np.flatnonzero(usable)], labels[usable])
    recent = np.flatnonzero(stamps >= stamps.max() - pd.Timedelta(days=recent_days))
    threshold = float(np.quantile(predict_scores(model, frame.iloc[recent]), 1 - alert_rate))
    return TrainedModel(model=model, kind=kind, threshold=threshold,
                        metrics={"alert_rate": float(alert_rate), "threshold": threshold}, fit_seconds=seconds,
                        train_rows=int(usable.sum()), params=params)


def choose_threshold_near_best(labels: np.ndarray, scores: np.ndarray, f1_tolerance: float = 0.02) -> float:
    """The highest score threshold whose F1 is within ``f1_tolerance`` (relative) of the best F1.

    Near its best, F1 is flat over a wide range of thresholds, and on a few dozen frauds the exact
    maximum lands anywhere in it (precision then moves by 5-10 points between retrains). Among
    thresholds that are as good, the highest gives fewer false alarms. ``f1_tolerance=0`` is
    :func:`~lifecycle.training.choose_threshold` (best F1, ties to the higher threshold).
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    if len(thresholds) == 0:
        return 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    return float(thresholds[np.flatnonzero(f1 >= f1.max() * (1 - f1_tolerance))[-1]])


def monitor_command(args: Any) -> int:
    """``lifecycle monitor``: one monitoring check of a registered model on a window of traffic.

    The reference is the model's training history (:func:`reference_window`); the current window is
    ``args.current``, a transactions CSV whose ``is_fraud`` column, when present, is taken as labels
    that have all arrived. One check is one look of :class:`~lifecycle.monitoring.policy.Policy`
    (``--alpha``). Prints the decision and its reasons, saves the Evidently report (default
    ``workspace/reports/monitor-<window>.html``) and, with ``--json``, the decision as JSON.
    ``lifecycle monitor ui`` is :func:`lifecycle.monitoring.dashboard.ui_command`.

    Returns:
        0; with ``--exit-code`` the action's status in :data:`EXIT_CODES` (for a scheduler).

    Raises:
        ConfigError: no ``--current`` window.
    """
    from lifecycle.config import load_settings
    from lifecycle.data import read_transactions
    from lifecycle.monitoring.drift import DriftMonitor
    from lifecycle.monitoring.policy import Policy
    from lifecycle.tracking import load_served_model

    if not args.current:
        raise ConfigError("lifecycle monitor needs --current PATH.csv (the window to check), e.g. one written by "
                          "'lifecycle data generate'; 'lifecycle monitor ui' serves the dashboard")
    settings = load_settings()
    current_path = Path(args.current)
    labelled = current_path.is_file() and "is_fraud" in pd.read_csv(current_path, nrows=0).columns
    current = read_transactions(current_path, require_label=labelled)
    served = load_served_model(args.model_uri, settings)
    monitor = DriftMonitor(decision_threshold=served.threshold, policy=Policy(alpha=args.alpha, looks=1))
    monitor.fit(*reference_window(served.model, served.history))
    features, scores = score_window(served.model, current, history=served.history)
    decision = monitor.check(features, scores, labels=current["is_fraud"] if labelled else None)
    report = monitor.save_report(args.report or settings.workspace / "reports" / f"monitor-{current_path.stem}.html")
    print(f"{served.uri} (version {served.version}) on {len(current):,} rows of {current_path}"
          f"{'' if labelled else ' (no labels yet)'}: {decision}\nreport: {report}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": served.uri, "version": served.version, "report": str(report),
                                               **decision.to_dict()}, indent=2, default=str) + "\n")
    return EXIT_CODES[decision.action] if args.exit_code else 0
