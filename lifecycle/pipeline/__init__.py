"""The training pipeline as code, lesson 04's stage: the stages, and the engines that run them.

Modules: :mod:`~lifecycle.pipeline.stages` (ingest → validate → features → train → evaluate →
register, declared: files in, files out, parameters from ``params.yaml``; ``python -m lifecycle.pipeline
STAGE`` runs one), :mod:`~lifecycle.pipeline.steps` (what each stage does), :mod:`~lifecycle.pipeline.dvc`
(``dvc.yaml`` from the stage list, ``dvc repro`` in the lesson 01 sandbox), :mod:`~lifecycle.pipeline.provenance`
(the kit's code as parameters, the data version ingested), :mod:`~lifecycle.pipeline.flow` (the same stages as
a Prefect flow), :mod:`~lifecycle.pipeline.prefect_server` (Prefect's settings and its local API server); DVC's
and Prefect's internals in :mod:`~lifecycle.pipeline._dvc` and :mod:`~lifecycle.pipeline._prefect`.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it; imported on first use, so `import lifecycle.pipeline` imports
# neither DVC nor Prefect.
_EXPORTS = {
    **{name: "lifecycle.pipeline.stages" for name in (
        "SOURCE", "METRICS", "MODEL", "CODE_PARAMS_FILE", "DEFAULT_PARAMS", "STAGES", "STAGE_NAMES", "Stage",
        "get_stage", "run_stage", "read_params")},
    **{name: "lifecycle.pipeline.steps" for name in (
        "PARAMS_FILE", "ingest_data", "validate_data", "build_feature_table", "train_model", "load_model_bundle",
        "evaluate_model", "register_model")},
    **{name: "lifecycle.pipeline.dvc" for name in (
        "PIPELINE_FILES", "ReproRun", "pipeline_definition", "write_pipeline", "write_params", "set_param",
        "reset_pipeline", "stage_environment", "reproduce", "commit_pipeline")},
    "parse_repro_output": "lifecycle.pipeline._dvc",
    **{name: "lifecycle.pipeline.provenance" for name in (
        "code_params", "write_code_params", "stage_code_params", "ingested_lineage")},
    **{name: "lifecycle.pipeline.flow" for name in (
        "PREFECT_FOLDER", "TRANSIENT_ERRORS", "stage_fingerprint", "run_stage_task", "prefect_flow", "PrefectRun",
        "run_prefect_flow")},
    **{name: "lifecycle.pipeline.prefect_server" for name in (
        "PREFECT_INSTALL_HINT", "PrefectServer", "prefect_installed", "require_prefect", "configure_prefect",
        "start_prefect_server", "start_prefect_api", "drain_prefect_workers")},
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.pipeline", _EXPORTS, globals())
