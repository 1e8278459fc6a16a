"""The "Try it" playgrounds at the end of lessons 02, 03, 06 and 07: a knob on the real system.

Each is one function that builds it from the lesson's fitted state, so a lesson's cell is one line;
each computes its numbers with a library function a test can call with the same settings.

Modules: :mod:`~lifecycle.course.playgrounds.features` (02: feature groups, the threshold, the cost of
an alert), :mod:`~lifecycle.course.playgrounds.tracking` (03: a run of your own, tracked in MLflow),
:mod:`~lifecycle.course.playgrounds.canary` (06: the canary policy against a failure you choose),
:mod:`~lifecycle.course.playgrounds.monitoring` (07: drift by hand, and the day the policy would retrain; its
scored periods, one per drift, in :mod:`~lifecycle.course.playgrounds.drift_periods`).
Each but 03's keeps a setting as an MLflow run with *Log this setting* (03's *Run* logs every run).
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

_EXPORTS = {
    "feature_playground": "lifecycle.course.playgrounds.features",
    "evaluate_setting": "lifecycle.course.playgrounds.features",
    "fit_feature_scores": "lifecycle.course.playgrounds.features",
    "tracking_playground": "lifecycle.course.playgrounds.tracking",
    "run_experiment": "lifecycle.course.playgrounds.tracking",
    "canary_playground": "lifecycle.course.playgrounds.canary",
    "evaluate_policy": "lifecycle.course.playgrounds.canary",
    "drift_playground": "lifecycle.course.playgrounds.monitoring",
    "drift_worlds": "lifecycle.course.playgrounds.drift_periods",
    "evaluate_drift": "lifecycle.course.playgrounds.monitoring",
    "DriftSetting": "lifecycle.course.playgrounds.drift_periods",
    "DriftWorlds": "lifecycle.course.playgrounds.drift_periods",
    "format_value": "lifecycle.course.playgrounds._base",
    "log_setting": "lifecycle.course.playgrounds._base",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.course.playgrounds", _EXPORTS, globals())
