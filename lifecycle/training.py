"""Model factories, fitting, and the metrics that matter for rare fraud.

Accuracy is useless when 98.5% of rows are genuine; the course reports PR-AUC (threshold-free)
and precision, recall and F1 at the model's decision threshold, which is chosen on training
data and kept with the model so the server decides exactly as evaluation did. Two models scored
on the same rows are compared by :func:`pr_auc_gain` (in :mod:`lifecycle._pr_auc`), a paired bootstrap
of the PR-AUC difference: with a few dozen frauds, one of them ranked differently moves PR-AUC by a point.

Taught in notebooks/02_feature_engineering.ipynb and notebooks/03_experiment_tracking.ipynb.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lifecycle._pr_auc import PrAucGain, pr_auc_gain  # noqa: F401  (public here: lessons and the registry use it)
from lifecycle.errors import ConfigError
from lifecycle.features import FEATURE_COLUMNS, build_features

# The tutorial's model, as written there: slow to fit (lesson 03 measures how slow) and prone to overfit.
TUTORIAL_GBC = {"n_estimators": 500, "max_depth": 6, "learning_rate": 0.05}
MODEL_KINDS = ("gbc", "hgb", "random_forest", "logreg", "mlp")


def same_budget_hgb(gbc_params: dict[str, Any] | None = None, early_stopping: bool = False) -> dict[str, Any]:
    """``hgb`` parameters with a GradientBoosting model's budget: as many trees, the same learning rate,
    the same depth (no leaf cap, no minimum leaf size beyond GradientBoosting's), no early stopping.

    What is left between the two is the algorithm (histograms of binned features instead of sorted
    rows), so a fit-time ratio measures the algorithm alone. ``early_stopping=True`` changes one thing
    more: HistGradientBoosting may stop before the last tree when a validation split stops improving.

    Args:
        gbc_params: ``n_estimators``, ``max_depth`` and ``learning_rate`` (default :data:`TUTORIAL_GBC`).
        early_stopping: let it stop early (the only other change).

    Taught in notebooks/03_experiment_tracking.ipynb.
    """
    gbc_params = {**TUTORIAL_GBC, **(gbc_params or {})}
    return {"max_iter": gbc_params["n_estimators"], "learning_rate": gbc_params["learning_rate"],
            "max_depth": gbc_params["max_depth"], "max_leaf_nodes": None, "min_samples_leaf": 1,
            "early_stopping": early_stopping}


def make_model(kind: str = "hgb", seed: int = 42, **params: Any):
    """A fresh, unfitted scikit-learn classifier.

    Args:
        kind: ``gbc`` (the tutorial's GradientBoostingClassifier), ``hgb``
            (HistGradientBoostingClassifier, the course default), ``random_forest``, ``logreg``
            or ``mlp`` (a small multilayer perceptron, two hidden layers of 64 and 32 units, that
            stops on validation loss: :class:`lifecycle._mlp.EarlyStoppedMLP`). ``logreg`` and
            ``mlp`` standardise their inputs.
        seed: random seed of the model.
        **params: hyper-parameters that replace the defaults of that kind.

    Returns:
        The estimator.

    Raises:
        ConfigError: an unknown kind, or a parameter the estimator does not take.
    """
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "gbc":
        model = GradientBoostingClassifier(**{**TUTORIAL_GBC, "random_state": seed})
    elif kind == "hgb":
        model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, max_leaf_nodes=31,
                                               early_stopping=True, validation_fraction=0.15,
                                               n_iter_no_change=20, random_state=seed)
    elif kind == "random_forest":
        model = RandomForestClassifier(n_estimators=100, min_samples_leaf=2, n_jobs=1, random_state=seed)
    elif kind == "logreg":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    elif kind == "mlp":
        from lifecycle._mlp import EarlyStoppedMLP

        model = make_pipeline(StandardScaler(), EarlyStoppedMLP(hidden_layer_sizes=(64, 32), random_state=seed))
    else:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    if params:
        target = model.steps[-1][1] if hasattr(model, "steps") else model
        unknown = set(params) - set(target.get_params())
        if unknown:
            raise ConfigError(f"{kind} takes no parameter(s) {sorted(unknown)}; "
                              f"it takes {sorted(target.get_params())}")
        target.set_params(**params)
    return model


def fit_model(model, features: pd.DataFrame, labels: pd.Series,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Fit ``model`` in place; returns the seconds it took by ``clock``: wall-clock time by default,
    or ``time.process_time`` for this process's CPU time, which does not grow when other programs
    compete for the cores (the steadier measure for comparing fit times)."""
    start = clock()
    model.fit(features, np.asarray(labels))
    return clock() - start


def predict_scores(model, features: pd.DataFrame) -> np.ndarray:
    """Fraud probability of each row."""
    return model.predict_proba(features)[:, 1]


def choose_threshold(labels: np.ndarray, scores: np.ndarray, f1_tolerance: float = 0.0) -> float:
    """The highest score threshold whose F1 on these rows is within ``f1_tolerance`` (relative) of the
    best F1; with the default 0, the best-F1 threshold (ties: the higher threshold).

    Near its best, F1 is flat over a wide range of thresholds, and on a few dozen frauds the exact
    maximum lands anywhere in it; among thresholds that are as good, the highest gives fewer false
    alarms (retraining on a small fresh window uses a tolerance, lesson 07).
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    if len(thresholds) == 0:
        return 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    return float(thresholds[np.flatnonzero(f1 >= f1.max() * (1 - f1_tolerance))[-1]])


def evaluate(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """PR-AUC, and precision/recall/F1 of the decision ``score >= threshold``."""
    from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

    labels = np.asarray(labels)
    decision = np.asarray(scores) >= threshold
    return {
        "pr_auc": float(average_precision_score(labels, scores)) if labels.any() else float("nan"),
        "precision": float(precision_score(labels, decision, zero_division=0)),
        "recall": float(recall_score(labels, decision, zero_division=0)),
        "f1": float(f1_score(labels, decision, zero_division=0)),
        "threshold": float(threshold),
    }


@dataclass
class TrainedModel:
    """A fitted model with what serving and the registry need to know about it."""

    model: Any
    kind: str
    threshold: float
    metrics: dict[str, float]
    fit_seconds: float
    train_rows: int
    params: dict[str, Any] = field(default_factory=dict)
    feature_columns: list[str] = field(default_factory=lambda: list(FEATURE_COLUMNS))
    fit_cpu_seconds: float = float("nan")  # this process's CPU time of the fit (steady under load)


def fit_with_threshold(features: pd.DataFrame, transactions: pd.DataFrame, kind: str = "hgb", seed: int = 42,
                       validation_fraction: float = 0.2, f1_tolerance: float = 0.0, threads: int | None = None,
                       min_frauds: int = 0, **params: Any) -> TrainedModel:
    """The kit's one recipe for a fraud model: fit on the earlier rows, choose the decision threshold on
    the latest ``validation_fraction`` of them (rows the model has not seen, as production traffic will
    be), never on a test window. Training, the pipeline's train stage and retraining all use it.

    Args:
        features: the rows' features (:data:`~lifecycle.features.FEATURE_COLUMNS`), indexed like ``transactions``.
        transactions: the same rows with ``timestamp`` (the split is in time) and the label ``is_fraud``.
        kind: see :func:`make_model`.
        seed: random seed of the model.
        validation_fraction: share of the rows (the latest) kept to choose the threshold.
        f1_tolerance: see :func:`choose_threshold`.
        threads: cap the model's thread pools (OpenMP, BLAS) while it fits and scores (None: leave them).
        min_frauds: frauds each part needs; fewer raise ConfigError (a threshold chosen on a handful
            of frauds is noise).
        **params: hyper-parameters for :func:`make_model`.

    Returns:
        The :class:`TrainedModel`; its ``metrics`` are on the validation rows, where the threshold
        was chosen (callers score a later window for honest ones), ``train_rows`` counts the rows fitted.

    Raises:
        ConfigError: an unknown kind or parameter, or fewer than ``min_frauds`` frauds in a part.
    """
    from contextlib import nullcontext

    from lifecycle.features import split_by_time

    fit_rows, valid_rows = split_by_time(transactions, validation_fraction)
    frauds = (int(fit_rows["is_fraud"].sum()), int(valid_rows["is_fraud"].sum()))
    if min(frauds) < min_frauds:
        raise ConfigError(f"too few labelled frauds: {frauds[0]} to fit and {frauds[1]} to choose the threshold "
                          f"(need {min_frauds} each); use more rows ({len(transactions):,} now)")
    model = make_model(kind, seed, **params)  # loads scikit-learn's OpenMP runtime before it is capped
    if threads is None:
        limits: Any = nullcontext()
    else:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(threads)
    with limits:
        cpu_clock = time.process_time()
        seconds = fit_model(model, features.loc[fit_rows.index], fit_rows["is_fraud"])
        cpu_seconds = time.process_time() - cpu_clock
        valid_scores = predict_scores(model, features.loc[valid_rows.index])
    labels = valid_rows["is_fraud"].to_numpy()
    threshold = choose_threshold(labels, valid_scores, f1_tolerance)
    return TrainedModel(model=model, kind=kind, threshold=threshold, metrics=evaluate(labels, valid_scores, threshold),
                        fit_seconds=seconds, train_rows=len(fit_rows), params=params, fit_cpu_seconds=cpu_seconds)


def train_fraud_model(train: pd.DataFrame, test: pd.DataFrame, kind: str = "hgb", seed: int = 42,
                      validation_fraction: float = 0.2, **params: Any) -> TrainedModel:
    """Fit a fraud model on ``train`` (:func:`fit_with_threshold`) and evaluate it on the later window ``test``.

    Features are point-in-time: every row sees only its user's earlier transactions, and ``test``
    rows see all of ``train`` as history, as the server would.

    Args:
        train: earlier raw transactions with ``is_fraud``.
        test: later raw transactions with ``is_fraud``.
        kind: see :func:`make_model`.
        seed: random seed.
        validation_fraction: share of ``train`` (the latest rows) kept to choose the threshold.
        **params: hyper-parameters for :func:`make_model`.

    Returns:
        The :class:`TrainedModel`, with test metrics.
    """
    trained = fit_with_threshold(build_features(train), train, kind, seed, validation_fraction, **params)
    test_features = build_features(test, history=train)
    trained.metrics = evaluate(test["is_fraud"].to_numpy(), predict_scores(trained.model, test_features),
                               trained.threshold)
    return trained
