"""Monitoring, lesson 07's stage: drift checks (Evidently), performance without labels (CBPE), the weekly
schedule, the decision policy, the dashboard, and retraining.

Modules: :mod:`~lifecycle.monitoring.drift` (drift statistics per column, with categories as
categories; :class:`DriftMonitor`, one check of one window), :mod:`~lifecycle.monitoring.cbpe`
(estimated precision from calibrated scores), :mod:`~lifecycle.monitoring.policy` (when to retrain or
alert, each a test with a stated error rate), :mod:`~lifecycle.monitoring.schedule` (the weekly checks
over a period), :mod:`~lifecycle.monitoring.period` (a period scored once, monitored under any label
delay), :mod:`~lifecycle.monitoring.false_alarms` (the policy's false-alarm rate on quiet periods),
:mod:`~lifecycle.monitoring.dashboard` (snapshots in an Evidently workspace, its panels, its UI),
:mod:`~lifecycle.monitoring.retraining` (scoring windows, retraining on the labels that have arrived, the
``lifecycle monitor`` command). Evidently's internals live in
``_evidently`` only.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it; imported on first use, so `import lifecycle.monitoring` imports no Evidently.
_EXPORTS = {
    **{name: "lifecycle.monitoring.drift" for name in (
        "MONITORED_FEATURES", "CATEGORICAL_FEATURES", "MonitorDecision", "DriftMonitor", "column_drift",
        "drift_statistics", "run_drift_report", "drift_table")},
    **{name: "lifecycle.monitoring.cbpe" for name in (
        "CBPE", "NotFittedError", "expected_confusion", "weekly_expected_confusion")},
    **{name: "lifecycle.monitoring.period" for name in (
        "Reference", "ScoredPeriod", "score_period", "score_periods", "monitor_period", "retraining_rows")},
    "resampled_false_alarms": "lifecycle.monitoring.false_alarms",
    **{name: "lifecycle.monitoring.policy" for name in ("ACTIONS", "KINDS", "Policy", "WeekDecision", "decide")},
    **{name: "lifecycle.monitoring.schedule" for name in (
        "week_of", "check_days", "weekly_drift", "weekly_performance", "run_schedule", "first_week",
        "days_to_detect")},
    **{name: "lifecycle.monitoring.dashboard" for name in (
        "MonitoringDashboard", "start_ui", "ui_command")},
    **{name: "lifecycle.monitoring.retraining" for name in (
        "EXIT_CODES", "score_window", "reference_window", "quality_over_time", "retrain_on_window",
        "retrain_on_labels", "choose_threshold_near_best", "monitor_command")},
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.monitoring", _EXPORTS, globals())
