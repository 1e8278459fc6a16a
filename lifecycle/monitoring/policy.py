"""The monitoring policy: when a weekly check says *retrain*, *alert* or nothing, each a test with a stated error rate.

Three signals, each judged by a test, never by a fixed margin:

* **Realised precision**, on the flags whose labels have arrived (a blocked transaction is labelled
  only when an analyst reviews it): the labelled flags of the last ``label_weeks`` weeks against the
  reference's precision, through a one-sided interval on the difference (Newcombe's, from two Wilson
  intervals) that is wide when there are few labelled flags. Below ``min_labelled_flags`` the policy
  says it **cannot judge yet**, whatever the numbers.
* **Estimated precision** (CBPE, no labels needed): the week's estimate against the reference's
  precision, through the same kind of interval with the estimate's standard error.
* **Input drift** by Evidently's tests, with the multiple-column problem accounted for: a feature
  drifted when its drift test (K-S for numbers, chi-square for categories) is significant at
  ``alpha / (looks × features)`` (Bonferroni over features and weekly looks) *and* its drift
  distance reaches Evidently's default threshold (on tens of thousands of rows every test is
  significant; the distance says whether the move is big enough to matter). The model's score is
  tested the same way (prediction drift, at ``alpha / looks``).

The decision, in this order:

1. realised precision fell: **retrain** (``concept_drift`` if the inputs did not move, else ``data_drift``);
2. estimated precision fell *and* inputs or predictions drifted: **retrain** (``data_drift``), before
   the labels arrive;
3. input drift, prediction drift or an estimated fall alone: **alert**;
4. otherwise: nothing.

**Error rates.** Repeated weekly looks are accounted for by Bonferroni: over a period of ``looks``
weekly checks with no drift, each of the two ways to retrain fires with probability at most
``alpha / 2``, so a false retrain happens in at most ``alpha`` of quiet periods (and the input-drift
alert in at most ``alpha``). Bonferroni is conservative when looks overlap (the label window spans
weeks); the lesson measures the real rate over seeded quiet periods.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError

ACTIONS = ("none", "alert", "retrain")
KINDS = ("none", "data_drift", "prediction_drift", "concept_drift")
VERDICTS = ("held", "fell", "cannot judge yet")


@dataclass(frozen=True)
class Policy:
    """The policy's settings (see the module doc).

    Args:
        alpha: the false-alarm rate over a whole period of quiet weeks, for each kind of alarm.
        looks: weekly checks planned in a period (Bonferroni over looks).
        min_labelled_flags: labelled flags below which realised precision is not judged.
        label_weeks: how many recent weeks of flags the realised precision counts.
    """

    alpha: float = 0.05
    looks: int = 12
    min_labelled_flags: int = 30
    label_weeks: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}")
        for name in ("looks", "min_labelled_flags", "label_weeks"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    @property
    def retrain_level(self) -> float:
        """Each retrain test's level at one look: ``alpha / (2 × looks)``."""
        return self.alpha / (2 * self.looks)

    def feature_level(self, features: int) -> float:
        """Each feature's drift test's level at one look: ``alpha / (looks × features)``."""
        return self.alpha / (self.looks * max(features, 1))

    @property
    def prediction_level(self) -> float:
        """The score's drift test's level at one look: ``alpha / looks``."""
        return self.alpha / self.looks


@dataclass
class WeekDecision:
    """What one weekly check decided, and why (``reasons`` give the numbers)."""

    action: str
    kind: str
    precision: str
    reasons: list[str]
    drifted_features: list[str] = field(default_factory=list)
    signals: dict[str, bool] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.action} ({self.kind})\n" + "\n".join(f"- {reason}" for reason in self.reasons)


def wilson_interval(successes: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion (``z``: the normal quantile of each side)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(centre - half), float(centre + half)


def difference_upper_bound(current: float, current_low: float, current_high: float, reference: float,
                           reference_low: float) -> float:
    """Newcombe's upper bound for ``current − reference`` from each side's interval."""
    return float(current - reference + np.sqrt((current_high - current) ** 2 + (reference - reference_low) ** 2))


def labels_test(true_flags: int, labelled_flags: int, reference_true: int, reference_flags: int,
                level: float) -> tuple[bool, float]:
    """(fell, upper bound of current − reference precision) for labelled flags at one-sided ``level``."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - level))
    low, high = wilson_interval(true_flags, labelled_flags, z)
    reference_low, _ = wilson_interval(reference_true, reference_flags, z)
    current, reference = true_flags / max(labelled_flags, 1), reference_true / max(reference_flags, 1)
    upper = difference_upper_bound(current, low, high, reference, reference_low)
    return upper < 0, upper


def estimate_test(estimate: float, standard_error: float, reference_true: int, reference_flags: int,
                  level: float) -> tuple[bool, float]:
    """(fell, upper bound of estimated − reference precision) for a CBPE estimate at one-sided ``level``."""
    from scipy.stats import norm

    if not np.isfinite(estimate):
        return False, float("nan")
    z = float(norm.ppf(1 - level))
    reference = reference_true / max(reference_flags, 1)
    reference_low, _ = wilson_interval(reference_true, reference_flags, z)
    upper = difference_upper_bound(estimate, estimate - z * standard_error, estimate + z * standard_error,
                                   reference, reference_low)
    return upper < 0, upper


def drifted(table: pd.DataFrame, level: float) -> list[str]:
    """Columns of a drift table (``p_value``, ``distance``, ``distance_threshold``) that drifted:
    significant at ``level`` and at least as far as the distance threshold."""
    moved = (table["p_value"] < level) & (table["distance"] >= table["distance_threshold"])
    return [str(name) for name in table.index[moved.to_numpy()]]


def decide(policy: Policy, drift: pd.DataFrame, estimate: dict[str, float], labels: dict[str, int],
           reference: dict[str, int], score_column: str = "score") -> WeekDecision:
    """One week's decision (the rules are in the module doc).

    Args:
        policy: the settings.
        drift: this week's drift table, one row per monitored feature plus ``score_column`` (see
            :func:`drifted`).
        estimate: CBPE's ``precision`` and ``precision_se`` for the week's flags.
        labels: ``labelled_flags`` and ``true_flags`` (frauds among them) in the label window.
        reference: ``flags`` and ``true_flags`` of the reference window.

    Returns:
        The :class:`WeekDecision`.
    """
    features = drift.drop(index=score_column, errors="ignore")
    moved = drifted(features, policy.feature_level(len(features)))
    prediction = score_column in drift.index and bool(drifted(drift.loc[[score_column]], policy.prediction_level))
    reference_precision = reference["true_flags"] / max(reference["flags"], 1)
    n, k = int(labels["labelled_flags"]), int(labels["true_flags"])
    judged = n >= policy.min_labelled_flags
    label_fell, label_upper = (labels_test(k, n, reference["true_flags"], reference["flags"], policy.retrain_level)
                               if judged else (False, float("nan")))
    estimate_fell, estimate_upper = estimate_test(estimate["precision"], estimate["precision_se"],
                                                  reference["true_flags"], reference["flags"], policy.retrain_level)
    reasons = [_drift_reason(features, moved, policy), _prediction_reason(drift, score_column, prediction),
               _estimate_reason(estimate, reference_precision, estimate_fell, estimate_upper),
               _label_reason(k, n, reference_precision, judged, label_fell, label_upper, policy)]
    input_drift = bool(moved)
    if label_fell:
        action, kind = "retrain", "data_drift" if input_drift else "concept_drift"
        why = ("the inputs moved and the labels show precision fell with them" if input_drift else
               "the labels show precision fell while the inputs did not move: the same inputs now mean something else")
    elif estimate_fell and (input_drift or prediction):
        action, kind, why = "retrain", "data_drift", ("the inputs moved and the model's own calibrated scores expect "
                                                      "fewer of its flags to be fraud; act before the labels arrive")
    elif input_drift or prediction or estimate_fell:
        action = "alert"
        kind = "data_drift" if input_drift else "prediction_drift"
        why = "something moved, but no test says the model got worse yet; watch the labels"
    else:
        action, kind, why = "none", "none", "inputs, scores and precision look like the reference"
    verdict = "fell" if label_fell else "held" if judged else "cannot judge yet"
    signals = {"labels": label_fell, "estimate": estimate_fell, "input_drift": input_drift,
               "prediction_drift": prediction}
    return WeekDecision(action, kind, verdict, reasons + [f"Decision: {action} ({kind}): {why}."], moved, signals)


def _drift_reason(features: pd.DataFrame, moved: list[str], policy: Policy) -> str:
    level = policy.feature_level(len(features))
    if moved:
        detail = "; ".join(f"{name} p={features.at[name, 'p_value']:.1e}, distance {features.at[name, 'distance']:.3f}"
                           for name in moved)
        return (f"Input drift in {len(moved)} of {len(features)} features (test at {level:.1e}, distance >= 0.1): "
                f"{detail}.")
    largest = features["distance"].idxmax()
    return (f"No input drift (each feature tested at {level:.1e}, distance >= 0.1); largest distance: "
            f"{largest} {features.at[largest, 'distance']:.3f}.")


def _prediction_reason(drift: pd.DataFrame, score_column: str, moved: bool) -> str:
    if score_column not in drift.index:
        return "Prediction drift: not checked (no scores)."
    row: Any = drift.loc[score_column]
    return (f"Prediction drift {'found' if moved else 'none'}: score distance {row['distance']:.3f}, "
            f"p={row['p_value']:.1e}.")


def _estimate_reason(estimate: dict[str, float], reference: float, fell: bool, upper: float) -> str:
    if not np.isfinite(estimate["precision"]):
        return "Estimated precision (CBPE): no flags this week."
    return (f"Estimated precision (CBPE) {estimate['precision']:.3f} vs reference {reference:.3f}: "
            f"{'fell' if fell else 'held'} (upper bound of the difference {upper:+.3f}).")


def _label_reason(k: int, n: int, reference: float, judged: bool, fell: bool, upper: float, policy: Policy) -> str:
    if not judged:
        return (f"Realised precision: cannot judge yet, {n} labelled flags of the last {policy.label_weeks} weeks "
                f"(need {policy.min_labelled_flags}).")
    return (f"Realised precision {k / n:.3f} on {n} labelled flags vs reference {reference:.3f}: "
            f"{'fell' if fell else 'held'} (upper bound of the difference {upper:+.3f}).")
