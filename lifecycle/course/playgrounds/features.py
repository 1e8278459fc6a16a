"""Lesson 02's playground: feature groups and the decision threshold, and what an alert costs.

A fraud team does not deploy "the best F1": it weighs what a missed fraud costs (the chargeback: the
transaction's amount) against what an alert costs (an analyst's review), or works within an alert
budget per day. :func:`feature_playground` fits one model per combination of feature groups once
(cached), then every control only re-reads cached scores: the PR curve with the operating point,
precision, recall, alerts per 1,000 transactions, the share of fraud amount caught, and the threshold
that minimises the cost, beside the best-F1 one.

Taught in notebooks/02_feature_engineering.ipynb ("Try it").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.course.playgrounds._base import Playground
from lifecycle.errors import ConfigError

LABELS = {"pr_auc": "PR-AUC of these groups", "precision": "precision", "recall": "recall",
          "alerts_per_1000": "alerts per 1,000 transactions", "amount_caught": "share of fraud amount caught",
          "cost": "cost at this threshold ($)", "best_cost_threshold": "threshold with the lowest cost",
          "best_cost": "lowest cost ($)", "best_f1_threshold": "best-F1 threshold"}


@dataclass
class FeatureScores:
    """Test-window scores of one model per combination of feature groups (the expensive part, done once)."""

    groups: tuple[str, ...]
    labels: np.ndarray
    amounts: np.ndarray
    days: float
    scores: dict[frozenset[str], np.ndarray] = field(default_factory=dict)

    def of(self, groups: tuple[str, ...] | frozenset[str]) -> np.ndarray:
        key = frozenset(groups)
        if key not in self.scores:
            raise ConfigError(f"no model for feature groups {sorted(key)}; the playground fitted "
                              f"{[sorted(k) for k in self.scores]}")
        return self.scores[key]


def fit_feature_scores(train: pd.DataFrame, test: pd.DataFrame, seed: int = 42,
                       groups: tuple[str, ...] | None = None, validation_fraction: float = 0.2,
                       **params: Any) -> FeatureScores:
    """Fit a HistGradientBoosting model for every combination of ``groups`` (``base`` always in) and
    keep its scores on ``test``.

    Args:
        train: earlier raw transactions with ``is_fraud``.
        test: later raw transactions with ``is_fraud`` (scored with ``train`` as history).
        seed: random seed.
        groups: the groups to toggle (default: every group of :data:`~lifecycle.features.FEATURE_GROUPS`
            but ``base``).
        validation_fraction: fit on the same rows as :func:`~lifecycle.training.train_fraud_model`.
        **params: hyper-parameters for the model (default: 100 iterations, early stopping).
    """
    from lifecycle.features import FEATURE_GROUPS, build_features, split_by_time
    from lifecycle.training import fit_model, make_model, predict_scores

    groups = tuple(groups or [g for g in FEATURE_GROUPS if g != "base"])
    fit_rows = split_by_time(train, validation_fraction)[0].index
    train_x, test_x = build_features(train).loc[fit_rows], build_features(test, history=train)
    span = (test["timestamp"].max() - test["timestamp"].min()) / pd.Timedelta(days=1)
    result = FeatureScores(groups, test["is_fraud"].to_numpy(), test["amount"].to_numpy(), max(span, 1.0))
    for size in range(len(groups) + 1):
        for chosen in itertools.combinations(groups, size):
            columns = [c for g in ("base", *chosen) for c in FEATURE_GROUPS[g]]
            model = make_model("hgb", seed, **{"max_iter": 100, **params})
            fit_model(model, train_x[columns], train.loc[fit_rows, "is_fraud"])
            result.scores[frozenset(chosen)] = predict_scores(model, test_x[columns])
    return result


def evaluate_setting(scores: FeatureScores, groups: tuple[str, ...], threshold: float, review_cost: float = 5.0,
                     alert_budget_per_day: float = 0.0) -> dict[str, Any]:
    """What one setting gives on the test window: the numbers the playground shows.

    Args:
        scores: from :func:`fit_feature_scores`.
        groups: the feature groups switched on.
        threshold: flag a transaction when its score is at least this.
        review_cost: dollars an analyst's review of one alert costs; a missed fraud costs its amount.
        alert_budget_per_day: if positive, the lowest-cost threshold may raise at most this many alerts a day.

    Returns:
        PR-AUC, precision, recall, alerts per 1,000 transactions, share of fraud amount caught, the cost
        at ``threshold``, the lowest-cost threshold (within the budget) and its cost, the best-F1
        threshold, the PR curve, and a sentence saying what this setting means.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    score, labels, amounts = scores.of(groups), scores.labels, scores.amounts
    flagged = score >= threshold
    caught = flagged & (labels == 1)
    fraud_amount = float(amounts[labels == 1].sum()) or 1.0
    precision_curve, recall_curve, thresholds = precision_recall_curve(labels, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision_curve * recall_curve / (precision_curve + recall_curve))[:-1]
    best_f1 = float(thresholds[np.flatnonzero(f1 == f1.max())[-1]]) if len(thresholds) else 0.5
    costs, flagged_counts = _costs(score, labels, amounts, thresholds, review_cost)
    allowed = (flagged_counts / scores.days <= alert_budget_per_day if alert_budget_per_day > 0
               else np.ones(len(thresholds), dtype=bool))
    best = int(np.argmin(np.where(allowed, costs, np.inf))) if allowed.any() else len(thresholds) - 1
    cost = _cost(flagged, labels, amounts, review_cost)
    values = {
        "pr_auc": float(average_precision_score(labels, score)),
        "precision": float(caught.sum() / flagged.sum()) if flagged.any() else 0.0,
        "recall": float(caught.sum() / max(int(labels.sum()), 1)),
        "alerts_per_1000": float(1000 * flagged.mean()),
        "amount_caught": float(amounts[caught].sum() / fraud_amount),
        "cost": cost, "best_cost_threshold": float(thresholds[best]), "best_cost": float(costs[best]),
        "best_f1_threshold": best_f1, "curve": (recall_curve, precision_curve),
    }
    values["sentence"] = _sentence(values, groups, scores.groups, threshold, alert_budget_per_day)
    return values


def _cost(flagged: np.ndarray, labels: np.ndarray, amounts: np.ndarray, review_cost: float) -> float:
    missed = (~flagged) & (labels == 1)
    return float(amounts[missed].sum() + review_cost * flagged.sum())


def _costs(score: np.ndarray, labels: np.ndarray, amounts: np.ndarray, thresholds: np.ndarray,
           review_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """The cost, and the number of alerts, at every threshold at once: sort by score, then running sums."""
    order = np.argsort(-score, kind="stable")
    fraud_amount = np.where(labels[order] == 1, amounts[order], 0.0)
    caught_amount = np.cumsum(fraud_amount)
    sorted_scores = score[order]
    flagged_count = np.searchsorted(-sorted_scores, -thresholds, side="right")  # rows with score >= t
    caught = np.concatenate([[0.0], caught_amount])[flagged_count]
    return fraud_amount.sum() - caught + review_cost * flagged_count, flagged_count


def _sentence(values: dict[str, Any], groups: tuple[str, ...], every: tuple[str, ...], threshold: float,
              budget: float) -> str:
    off = [g for g in every if g not in groups]
    features = f"without {', '.join(off)}" if off else "with every feature group"
    gap = threshold - values["best_cost_threshold"]
    where = ("at the lowest-cost threshold" if abs(gap) < 0.005 else
             f"{abs(gap):.2f} {'above' if gap > 0 else 'below'} the lowest-cost threshold")
    budget_note = f" (within {budget:g} alerts a day)" if budget > 0 else ""
    return (f"{features.capitalize()}, PR-AUC is {values['pr_auc']:.3f}. At threshold {threshold:.2f} the model "
            f"catches {values['recall']:.0%} of frauds ({values['amount_caught']:.0%} of the fraud amount) with "
            f"{values['alerts_per_1000']:.1f} alerts per 1,000 transactions, {where}{budget_note}; the best-F1 "
            f"threshold is {values['best_f1_threshold']:.2f}.")


def _draw(values: dict[str, Any], settings: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    recall, precision = values["curve"]
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
    axis.plot(recall, precision, color="#3b6ea5", lw=1.5)
    axis.plot([values["recall"]], [values["precision"]], "o", color="#c0392b", ms=8, label="this threshold")
    axis.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
             title=f"PR curve (PR-AUC {values['pr_auc']:.3f})")
    axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return figure


def feature_playground(train: pd.DataFrame, test: pd.DataFrame, seed: int = 42, threshold: float = 0.5,
                       review_cost: float = 20.0, settings: Any = None) -> Playground:
    """The "Try it" of lesson 02: toggle feature groups, move the threshold, price the alerts.

    Args:
        train: the lesson's training window; test: its later test window.
        seed: random seed of the models.
        threshold: the threshold the playground starts at.
        review_cost: the default cost of one analyst review, in dollars.
        settings: where *Log this setting* logs (an MLflow run tagged ``playground=02``).

    Returns:
        The :class:`~lifecycle.course.playgrounds._base.Playground` (display it; ``.values`` holds the numbers).
    """
    import ipywidgets as widgets

    scores = fit_feature_scores(train, test, seed)
    wide = {"style": {"description_width": "initial"}, "layout": widgets.Layout(width="460px")}
    controls = {
        "groups": widgets.SelectMultiple(options=scores.groups, value=scores.groups, rows=len(scores.groups),
                                         description="feature groups (ctrl-click)", **wide),
        "threshold": widgets.FloatSlider(value=threshold, min=0.01, max=0.99, step=0.01,
                                         description="decision threshold (score ≥)", **wide),
        "review_cost": widgets.FloatSlider(value=review_cost, min=0.0, max=100.0, step=1.0,
                                           description="analyst review per alert ($)", **wide),
        "alert_budget_per_day": widgets.FloatSlider(value=0.0, min=0.0, max=200.0, step=5.0,
                                                    description="alert budget per day (0: none)", **wide),
    }

    def compute(groups: tuple[str, ...], threshold: float, review_cost: float,
                alert_budget_per_day: float) -> dict[str, Any]:
        return evaluate_setting(scores, tuple(groups), threshold, review_cost, alert_budget_per_day)

    playground = Playground("Try it: features and the threshold", controls, LABELS, compute, _draw,
                            css="lifecycle-playground-features", lesson="02", tracking=settings)
    playground.scores = scores
    return playground
