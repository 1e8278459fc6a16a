"""Exercise 07: tell data drift from concept drift on a monitoring window, and decide whether to retrain.

A window summary is a dict: ``drift_share`` (the share of input features whose drift score reached
:data:`FEATURE_DRIFT_SCORE`), ``feature_drift`` (each feature's score), ``labelled_rows`` (how many
transactions of the window have a confirmed label yet), ``precision_at_training`` and
``precision_now`` (None when no labels have come back). The rules:

* The inputs drifted when ``drift_share`` is at least :data:`DRIFT_SHARE_THRESHOLD`; one drifting
  feature among many does not make the data drift.
* Quality is measured when at least :data:`MIN_LABELLED_ROWS` rows are labelled; it dropped when
  ``precision_at_training - precision_now`` is more than :data:`PRECISION_DROP`.
* ``diagnose``: ``"data_drift"`` when the inputs drifted; else ``"concept_drift"`` when quality
  dropped (same inputs, different answers: the link between them changed); else ``"none"``.
* ``should_retrain``: True exactly when quality dropped (measured). Input drift alone raises an
  alert, not a retrain: the model may still be right, and only labels can tell.

Taught in exercises/07_drift_or_concept.ipynb (lesson: notebooks/07_monitoring.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lifecycle.course.exercises._checking import Case, CheckResult, Verdict, describe, run_check

DIAGNOSES = ("none", "data_drift", "concept_drift")
FEATURE_DRIFT_SCORE = 0.1
DRIFT_SHARE_THRESHOLD = 0.3
MIN_LABELLED_ROWS = 200
PRECISION_DROP = 0.05
FEATURES = ("amount", "hour", "category_code", "channel_code", "user_txn_count", "user_amount_mean",
            "amount_vs_user_avg", "seconds_since_last_txn")


def window(name: str, drifted: dict[str, float], labelled_rows: int, precision_now: float | None,
           precision_at_training: float = 0.95) -> dict[str, Any]:
    """A window summary: features not in ``drifted`` get a small score; the share follows the scores."""
    scores = {feature: drifted.get(feature, round(0.01 + 0.007 * i, 3)) for i, feature in enumerate(FEATURES)}
    share = sum(score >= FEATURE_DRIFT_SCORE for score in scores.values()) / len(scores)
    return {"window": name, "drift_share": share, "feature_drift": scores, "labelled_rows": labelled_rows,
            "precision_at_training": precision_at_training,
            "precision_now": precision_now if labelled_rows else None}


def _quality_dropped(summary: dict[str, Any]) -> bool:
    return (summary["labelled_rows"] >= MIN_LABELLED_ROWS and summary["precision_now"] is not None
            and summary["precision_at_training"] - summary["precision_now"] > PRECISION_DROP)


def reference_diagnose(summary: dict[str, Any]) -> str:
    """The right diagnosis of one window."""
    if summary["drift_share"] >= DRIFT_SHARE_THRESHOLD:
        return "data_drift"
    return "concept_drift" if _quality_dropped(summary) else "none"


def reference_should_retrain(summary: dict[str, Any]) -> bool:
    """The right retraining decision for one window."""
    return _quality_dropped(summary)


def example_window(seed: int = 42) -> dict[str, Any]:
    """A window summary to try ``diagnose`` and ``should_retrain`` on (not one of the hidden cases)."""
    rng = np.random.default_rng(seed)
    drifted = {"amount": round(rng.uniform(0.15, 0.4), 3), "hour": round(rng.uniform(0.1, 0.3), 3)}
    return window("2026-02, week 1", drifted, int(rng.integers(800, 2_000)), round(rng.uniform(0.92, 0.95), 3))


# (name, window, hint for diagnose, hint for should_retrain)
_WINDOWS = [
    ("a quiet window", window("quiet", {}, 1_500, 0.94),
     "nothing moved: inputs stable and precision 0.94 against 0.95 at training.",
     "the model does as well as at training: no reason to retrain."),
    ("the tutorial's story: precision 95% -> 78%, inputs stable", window("story", {}, 1_500, 0.78),
     "the inputs did not move (drift share 0), yet precision fell 17 points: the same inputs now mean "
     "something else. That is concept drift.",
     "precision fell 17 points on 1,500 labels: the model is worse at its job. Retrain on fresh labelled data."),
    ("inputs drifted, precision holds", window("inflation", {"amount": 0.42, "user_amount_mean": 0.31,
                                                             "amount_vs_user_avg": 0.12}, 1_500, 0.94),
     f"3 of 8 features drifted (share 0.375 >= {DRIFT_SHARE_THRESHOLD:g}): that is data drift, even though "
     "precision holds.",
     "data drift alone does not call for retraining: precision holds (0.94 against 0.95). Alert, watch, and "
     "retrain when quality falls."),
    ("inputs drifted and precision fell", window("both", {"amount": 0.5, "hour": 0.33, "user_amount_mean": 0.28,
                                                          "amount_vs_user_avg": 0.2}, 1_500, 0.81),
     "the inputs drifted (share 0.5): call it data drift. With the inputs moving you cannot tell from these "
     "numbers whether the link changed too.",
     "precision fell 14 points, measured on 1,500 labels: retrain, whatever the diagnosis."),
    ("no labels yet, inputs stable", window("fresh", {}, 0, None),
     "no input drift, and no labels to measure quality (precision_now is None): nothing to see yet, 'none'.",
     "no labels, no measured quality drop: do not retrain (and check precision_now is not None before "
     "comparing it)."),
    ("no labels yet, inputs drifted",
     window("fresh-drift", {"amount": 0.38, "hour": 0.25, "channel_code": 0.17}, 0, None),
     "the inputs drifted (share 0.375): data drift, labels or not.",
     "drifted inputs without labels: raise an alert and collect labels; the rule retrains only on a measured "
     "quality drop."),
    ("one feature of eight drifted", window("one-feature", {"hour": 0.45}, 1_500, 0.94),
     f"one feature drifted (share 0.125 < {DRIFT_SHARE_THRESHOLD:g}): use drift_share, not the largest single "
     "score. One moving feature is not data drift by the rule.",
     "precision holds: no retraining."),
    ("precision fell, but on only 40 labelled rows", window("few-labels", {}, 40, 0.80),
     f"40 labels are too few to measure precision (the rule needs {MIN_LABELLED_ROWS}): quality is unknown, "
     "inputs are stable: 'none'.",
     f"a precision from 40 labels is noise: wait for {MIN_LABELLED_ROWS} before retraining on it."),
    ("precision dipped two points, within the margin", window("dip", {}, 1_500, 0.93),
     f"a drop of 0.02 is within the margin of {PRECISION_DROP:g}: 'none'.",
     f"a drop of 0.02 is within the margin of {PRECISION_DROP:g}: no retraining."),
]


def _judge(allowed: tuple, kind: str) -> Callable[[Case, Any], Verdict]:
    def judge(case: Case, answer: Any) -> Verdict:
        if isinstance(answer, np.bool_ | np.str_):
            answer = answer.item()
        # The type first: comparing an array or a Series with == would not give one True/False.
        if type(answer) is not type(case.expected) or answer not in allowed:
            return Verdict(False, describe(case.expected), describe(answer),
                           f"return {kind}: one of {', '.join(repr(a) for a in allowed)}.")
        if answer == case.expected:
            return Verdict(True)
        return Verdict(False, describe(case.expected), describe(answer), case.hint)
    return judge


def check_diagnose(function: Callable[[dict], str], show: bool = True) -> CheckResult:
    """Check the learner's ``diagnose(window) -> "none" | "data_drift" | "concept_drift"`` on hidden windows.

    Args:
        function: the learner's function; it gets one window summary (see :func:`window`).
        show: print the result's message.

    Returns:
        The :class:`~lifecycle.course.exercises.CheckResult`; never raises because an answer is wrong.

    Taught in exercises/07_drift_or_concept.ipynb.
    """
    cases = [Case(name, (summary,), reference_diagnose(summary), hint) for name, summary, hint, _ in _WINDOWS]
    return run_check("07 diagnose", "check_diagnose", function, "diagnose", cases,
                     _judge(DIAGNOSES, "a text"), show)


def check_should_retrain(function: Callable[[dict], bool], show: bool = True) -> CheckResult:
    """Check the learner's ``should_retrain(window) -> bool`` on hidden windows.

    Args:
        function: the learner's function; it gets one window summary (see :func:`window`).
        show: print the result's message.

    Returns:
        The :class:`~lifecycle.course.exercises.CheckResult`; never raises because an answer is wrong.

    Taught in exercises/07_drift_or_concept.ipynb.
    """
    cases = [Case(name, (summary,), reference_should_retrain(summary), hint) for name, summary, _, hint in _WINDOWS]
    return run_check("07 should retrain", "check_should_retrain", function, "should_retrain", cases,
                     _judge((True, False), "True or False"), show)
