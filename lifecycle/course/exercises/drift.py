"""Exercise 07: tell data drift from concept drift on a weekly check, and decide whether to retrain.

The rules are lesson 07's policy (:mod:`lifecycle.monitoring.policy`), with its numbers:

* A feature **drifted** when its drift test's ``p_value`` is below :data:`FEATURE_LEVEL` (the
  lesson's level per feature and weekly look) *and* its ``distance`` reaches
  :data:`DRIFT_DISTANCE`; the inputs drifted when any feature did.
* Realised precision is judged only on at least :data:`MIN_LABELLED_FLAGS` labelled *flags* (a
  precision is about the flagged transactions: ``labelled_rows`` counts every labelled
  transaction, mostly genuine approvals, and says nothing about it). Then
  :func:`precision_fell` (the lesson's interval test) says whether it fell.
* ``diagnose``: ``"data_drift"`` when the inputs drifted; else ``"concept_drift"`` when precision
  fell; else ``"none"``.
* ``should_retrain``: True when precision fell, or when :func:`estimate_fell` (CBPE's estimate,
  no labels needed) and the inputs drifted; input drift alone raises an alert, not a retrain.

Taught in exercises/07_drift_or_concept.ipynb (lesson: notebooks/07_monitoring.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lifecycle.course.exercises._checking import Case, CheckResult, Verdict, describe, run_check
from lifecycle.monitoring.policy import Policy, estimate_test, labels_test

DIAGNOSES = ("none", "data_drift", "concept_drift")
FEATURES = ("amount", "hour", "is_night", "category_code", "channel_code", "device_code", "user_txn_count_1h",
            "user_amount_mean", "amount_vs_user_avg")
_POLICY = Policy(looks=12)  # lesson 07: twelve weekly checks
FEATURE_LEVEL = _POLICY.feature_level(len(FEATURES))
DRIFT_DISTANCE = 0.1
MIN_LABELLED_FLAGS = _POLICY.min_labelled_flags
REFERENCE = {"reference_flags": 400, "reference_true_flags": 340}  # precision 0.85 on the reference


def precision_fell(window: dict[str, Any]) -> bool:
    """The lesson's test: is the realised precision of the labelled flags significantly below the reference's?

    Call it only with at least :data:`MIN_LABELLED_FLAGS` labelled flags (it does not check).
    """
    return labels_test(window["true_flags"], window["labelled_flags"], window["reference_true_flags"],
                       window["reference_flags"], _POLICY.retrain_level)[0]


def estimate_fell(window: dict[str, Any]) -> bool:
    """The lesson's test: is CBPE's estimated precision significantly below the reference's?"""
    return estimate_test(window["estimated_precision"], window["estimated_se"], window["reference_true_flags"],
                         window["reference_flags"], _POLICY.retrain_level)[0]


def window(name: str, drifted: dict[str, tuple[float, float]], labelled_flags: int, true_flags: int,
           estimated_precision: float = 0.86, labelled_rows: int | None = None,
           reference: dict[str, int] | None = None) -> dict[str, Any]:
    """A weekly check's summary: features not in ``drifted`` (``{feature: (p_value, distance)}``) look quiet."""
    tests = {feature: {"p_value": 0.3 + 0.05 * i, "distance": round(0.01 + 0.006 * i, 3)}
             for i, feature in enumerate(FEATURES)}
    for feature, (p_value, distance) in drifted.items():
        tests[feature] = {"p_value": p_value, "distance": distance}
    return {"window": name, "feature_drift": tests, "labelled_rows": labelled_rows or labelled_flags * 60,
            "labelled_flags": labelled_flags, "true_flags": true_flags, "estimated_precision": estimated_precision,
            "estimated_se": 0.02, **(reference or REFERENCE)}


def _inputs_drifted(summary: dict[str, Any]) -> bool:
    return any(test["p_value"] < FEATURE_LEVEL and test["distance"] >= DRIFT_DISTANCE
               for test in summary["feature_drift"].values())


def _judged_fall(summary: dict[str, Any]) -> bool:
    return summary["labelled_flags"] >= MIN_LABELLED_FLAGS and precision_fell(summary)


def reference_diagnose(summary: dict[str, Any]) -> str:
    """The right diagnosis of one window."""
    if _inputs_drifted(summary):
        return "data_drift"
    return "concept_drift" if _judged_fall(summary) else "none"


def reference_should_retrain(summary: dict[str, Any]) -> bool:
    """The right retraining decision for one window."""
    return _judged_fall(summary) or (estimate_fell(summary) and _inputs_drifted(summary))


def example_window(seed: int = 42) -> dict[str, Any]:
    """A window summary to try ``diagnose`` and ``should_retrain`` on (not one of the hidden cases)."""
    rng = np.random.default_rng(seed)
    drifted = {"amount": (1e-9, round(rng.uniform(0.15, 0.4), 3))}
    flags = int(rng.integers(80, 200))
    return window("2026-03, week 2", drifted, flags, int(flags * rng.uniform(0.8, 0.88)))


BIG = (1e-12, 0.35)  # a drift test far below the level, and a large distance
# (name, window, hint for diagnose, hint for should_retrain)
_WINDOWS = [
    ("a quiet week", window("quiet", {}, 200, 172),
     "nothing moved: no feature drifted and precision 0.86 on 200 labelled flags against 0.85.",
     "the model does as well as on its reference: no reason to retrain."),
    ("the tutorial's story: precision 95% -> 78%, inputs stable",
     window("story", {}, 300, 234, estimated_precision=0.95,
            reference={"reference_flags": 400, "reference_true_flags": 380}),
     "no feature drifted, yet precision on 300 labelled flags fell to 0.78: the same inputs now mean something "
     "else. That is concept drift (and CBPE, at 0.95, cannot see it).",
     "precision fell, measured on 300 labelled flags: retrain on the labels that have arrived."),
    ("inputs drifted, precision holds",
     window("inflation", {"amount": BIG, "amount_vs_user_avg": (1e-8, 0.2)}, 200, 170),
     "amount and amount_vs_user_avg drifted (tests far below the level, distances >= 0.1): data drift, even though "
     "precision holds.",
     "input drift alone is an alert, not a retrain: precision holds (0.85 on 200 flags) and so does the estimate."),
    ("inputs drifted and precision fell", window("both", {"amount": BIG, "hour": BIG}, 300, 195),
     "the inputs drifted: call it data drift. With the inputs moving you cannot tell from these numbers whether "
     "the link changed too.",
     "precision fell to 0.65 on 300 labelled flags: retrain, whatever the diagnosis."),
    ("no labels yet, inputs stable", window("fresh", {}, 0, 0),
     "no drift, no labelled flags: nothing to see yet, 'none'.",
     "no labels and no drift: nothing says the model got worse."),
    ("no labels yet, inputs drifted, the estimate fell",
     window("fresh-drift", {"amount": BIG, "hour": BIG}, 0, 0, estimated_precision=0.7),
     "the inputs drifted: data drift, labels or not.",
     "CBPE's estimate fell (0.70 against 0.85) while the inputs drifted: retrain before the labels arrive."),
    ("a significant test but a tiny distance", window("tiny", {"hour": (1e-15, 0.03)}, 200, 171),
     f"hour's test is significant but its distance is 0.03 < {DRIFT_DISTANCE:g}: on thousands of rows every test "
     "is significant; the distance says whether the move matters. No drift.",
     "precision holds: no retraining."),
    ("precision fell, but on only 12 labelled flags (of 2,400 labelled rows)",
     window("few-flags", {}, 12, 6, labelled_rows=2_400),
     f"6 frauds in 12 labelled flags look alarming, but 12 are too few to judge precision (the lesson needs "
     f"{MIN_LABELLED_FLAGS}); the 2,400 labelled rows are mostly genuine approvals and say nothing about precision. "
     "'none'.",
     f"a precision from 12 flags is noise: use labelled_flags, not labelled_rows, and wait for {MIN_LABELLED_FLAGS}."),
    ("precision dipped, within the noise", window("dip", {}, 300, 249),
     "0.83 on 300 labelled flags against 0.85: the interval covers the reference, precision_fell says False. 'none'.",
     "a dip the test does not call a fall: no retraining."),
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
