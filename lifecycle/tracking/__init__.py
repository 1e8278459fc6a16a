"""Experiment tracking and the model registry (MLflow), lesson 03's stage.

Modules: :mod:`~lifecycle.tracking.runs` (the store, logging a fraud model as a run, comparing
runs), :mod:`~lifecycle.tracking.registry` (versions, aliases, loading a version to serve),
:mod:`~lifecycle.tracking.promotion` (the promotion rule: challenger against champion on a holdout),
:mod:`~lifecycle.tracking.export` (a version as plain files a server reads without MLflow),
:mod:`~lifecycle.tracking.server` (a real ``mlflow server`` on 127.0.0.1).

Taught in notebooks/03_experiment_tracking.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it; imported on first use so `import lifecycle.tracking` stays light.
_EXPORTS = {
    "EXPERIMENT": "lifecycle.tracking.runs",
    "HISTORY_ARTIFACT": "lifecycle.tracking.runs",
    "use_experiment": "lifecycle.tracking.runs",
    "mlflow_client": "lifecycle.tracking.runs",
    "log_fraud_model": "lifecycle.tracking.runs",
    "compare_runs": "lifecycle.tracking.runs",
    "CHAMPION": "lifecycle.tracking.registry",
    "CHALLENGER": "lifecycle.tracking.registry",
    "register_run": "lifecycle.tracking.registry",
    "set_alias": "lifecycle.tracking.registry",
    "alias_version": "lifecycle.tracking.registry",
    "promote": "lifecycle.tracking.registry",
    "should_promote": "lifecycle.tracking.promotion",
    "PromotionCheck": "lifecycle.tracking.promotion",
    "PROMOTION_ALPHA": "lifecycle.tracking.promotion",
    "describe_gain": "lifecycle.tracking.promotion",
    "compare_with_champion": "lifecycle.tracking.promotion",
    "apply_promotion": "lifecycle.tracking.promotion",
    "ServedModel": "lifecycle.tracking.registry",
    "load_served_model": "lifecycle.tracking.registry",
    "ensure_champion": "lifecycle.tracking.registry",
    "export_served_model": "lifecycle.tracking.export",
    "load_exported_model": "lifecycle.tracking.export",
    "MlflowServer": "lifecycle.tracking.server",
    "start_mlflow_server": "lifecycle.tracking.server",
    "mlflow_ui_command": "lifecycle.tracking.server",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.tracking", _EXPORTS, globals())
