"""Monitoring, lesson 07's stage: drift checks (Evidently), the decision policy, and retraining.

Modules: :mod:`~lifecycle.monitoring.drift` (the drift monitor: input drift per feature, prediction
drift, quality on late labels, and what to do about it), :mod:`~lifecycle.monitoring.retraining`
(scoring windows, quality over time, retraining on a fresh window, the ``lifecycle monitor`` command).

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it; imported on first use, so `import lifecycle.monitoring` imports no Evidently.
_EXPORTS = {
    **{name: "lifecycle.monitoring.drift" for name in (
        "MONITORED_FEATURES", "ACTIONS", "KINDS", "NotFittedError", "MonitorDecision", "DriftMonitor",
        "column_drift", "run_drift_report", "drift_table")},
    **{name: "lifecycle.monitoring.retraining" for name in (
        "EXIT_CODES", "score_window", "reference_window", "quality_over_time", "retrain_on_window",
        "choose_threshold_near_best", "monitor_command")},
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.monitoring", _EXPORTS, globals())
