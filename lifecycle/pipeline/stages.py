"""The training pipeline as stages, declared: what each reads, writes and depends on, and how to run one.

    ingest → validate → features → train → evaluate → register

Each stage reads the files the one before wrote and writes its own, so any engine can run them:
``dvc repro`` (each stage is ``python -m lifecycle.pipeline STAGE``, run in the folder holding
``params.yaml``), a Prefect flow (each stage a task), or a plain loop (:func:`run_stage`).
:data:`STAGES` declares what every stage reads, writes and depends on; ``dvc.yaml`` and Prefect's
cache keys are both derived from it (:mod:`lifecycle.pipeline.dvc`, :mod:`lifecycle.pipeline.flow`).
The work itself is in :mod:`lifecycle.pipeline.steps`.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.config import Settings
from lifecycle.errors import ConfigError, LifecycleError
from lifecycle.pipeline.steps import (
    PARAMS_FILE,
    build_feature_table,
    evaluate_model,
    ingest_data,
    register_model,
    train_model,
    validate_data,
)

SOURCE = "data/transactions.csv"  # the raw data, tracked by DVC in the lesson 01 sandbox
INGESTED = "pipeline/ingested.csv"
VALIDATED = "pipeline/validated.parquet"
VALIDATION_REPORT = "pipeline/validation.json"
FEATURES = "pipeline/features.parquet"
MODEL = "pipeline/model.pkl"
TRAIN_REPORT = "pipeline/train.json"
METRICS = "metrics.json"
REGISTERED = "pipeline/registered.json"
# The kit's code and packages the stages run, by md5 and version (lifecycle.pipeline.provenance).
CODE_PARAMS_FILE = "lifecycle_code.yaml"

# The pipeline's parameters (the sandbox's params.yaml). Keys under `train` other than `kind` and
# `validation_fraction` are hyper-parameters of lifecycle.training.make_model.
DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 42,
    "validate": {"min_rows": 1_000, "max_fraud_rate": 0.1},
    "features": {"test_fraction": 0.25},
    "train": {"kind": "hgb", "validation_fraction": 0.2, "learning_rate": 0.1, "max_iter": 300},
    "register": {"alias": "challenger"},
}


@dataclass(frozen=True)
class Stage:
    """One stage: the files it reads (``deps``) and writes (``outs`` cached by DVC, ``records`` and
    ``metrics`` kept in git), the ``params`` it reads (keys or sections of ``params.yaml``), and the
    library ``code`` modules besides this one that decide its result (paths under ``lifecycle/``, without
    ``.py``) and the third-party ``packages`` whose version does. DVC's run-cache can restore a stage only
    if all it writes is cached: ``records`` are for side effects that must not be replayed."""

    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    records: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()

    @property
    def modules(self) -> tuple[str, ...]:
        return ("pipeline/stages", *self.code)

    def code_files(self) -> list[Path]:
        """The library files this stage runs: a change to them changes its result."""
        package = Path(__file__).resolve().parent.parent  # lifecycle/
        return [package / f"{module}.py" for module in self.modules]


STAGES: tuple[Stage, ...] = (
    Stage("ingest", (SOURCE,), outs=(INGESTED,), code=("pipeline/steps",)),
    Stage("validate", (INGESTED,), outs=(VALIDATED,), params=("validate",), metrics=(VALIDATION_REPORT,),
          code=("pipeline/steps", "data/schema"), packages=("pandas",)),
    Stage("features", (VALIDATED,), outs=(FEATURES,), params=("features",), code=("pipeline/steps", "features"),
          packages=("pandas", "numpy")),
    Stage("train", (FEATURES,), outs=(MODEL, TRAIN_REPORT), params=("seed", "train"),
          code=("pipeline/steps", "training", "features"), packages=("scikit-learn", "numpy")),
    Stage("evaluate", (FEATURES, MODEL), metrics=(METRICS,), code=("pipeline/steps", "training"),
          packages=("scikit-learn",)),
    Stage("register", (MODEL, TRAIN_REPORT, METRICS, VALIDATED, FEATURES), params=("register",),
          records=(REGISTERED,), code=("pipeline/steps", "tracking/runs", "tracking/registry", "_lineage"),
          packages=("mlflow",)),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def get_stage(name: str) -> Stage:
    """The stage called ``name``; raises ConfigError if there is none."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ConfigError(f"unknown pipeline stage {name!r}; the stages are {', '.join(STAGE_NAMES)}")


# The keys each stage's section of params.yaml may hold (train: any; the rest go to make_model).
_SECTION_KEYS: dict[str, set[str] | None] = {"validate": {"min_rows", "max_fraud_rate"},
                                             "features": {"test_fraction"}, "train": None, "register": {"alias"}}


def run_stage(name: str, folder: str | Path, params: dict[str, Any], source: str | Path | None = None,
              settings: Settings | None = None, run_name: str = "pipeline") -> dict[str, Any]:
    """Run one stage with its files under ``folder`` and its parameters from ``params``.

    Args:
        name: one of :data:`STAGE_NAMES`.
        folder: the pipeline folder (``data/``, ``pipeline/``, ``metrics.json`` are under it).
        params: the pipeline parameters, as in ``params.yaml`` (see :data:`DEFAULT_PARAMS`).
        source: the raw data ``ingest`` reads (default ``folder/data/transactions.csv``); ``register`` records
            its data version (:func:`~lifecycle.pipeline.provenance.ingested_lineage`).
        settings: for ``register``: which MLflow store and registered model.
        run_name: for ``register``: the MLflow run's name and ``pipeline`` tag.

    Returns:
        The stage's report (rows, metrics, the registered version…).

    Raises:
        ConfigError: an unknown stage, or parameters missing or unknown.
    """
    get_stage(name)
    at = Path(folder)
    section = _section(params, name) if name in _SECTION_KEYS else {}
    if name == "ingest":
        return ingest_data(source or at / SOURCE, at / INGESTED)
    if name == "validate":
        return validate_data(at / INGESTED, at / VALIDATED, at / VALIDATION_REPORT, **section)
    if name == "features":
        return build_feature_table(at / VALIDATED, at / FEATURES, **section)
    if name == "train":
        if "seed" not in params:
            raise ConfigError(f"params has no 'seed' (it has {sorted(params)}); add 'seed: 42' to {PARAMS_FILE}")
        return train_model(at / FEATURES, at / MODEL, at / TRAIN_REPORT, seed=params["seed"], **section)
    if name == "evaluate":
        return evaluate_model(at / FEATURES, at / MODEL, at / METRICS)
    from lifecycle.pipeline.provenance import ingested_lineage

    return register_model(at / MODEL, at / TRAIN_REPORT, at / METRICS, at / VALIDATED, at / FEATURES,
                          at / REGISTERED, settings=settings, run_name=run_name,
                          lineage=ingested_lineage(Path(source or at / SOURCE), at / INGESTED), **section)


def _section(params: dict[str, Any], name: str) -> dict[str, Any]:
    section = params.get(name)
    if not isinstance(section, dict):
        raise ConfigError(f"params has no section {name!r} for stage {name!r}; expected e.g. "
                          f"{name}: {DEFAULT_PARAMS[name]} in {PARAMS_FILE}")
    allowed = _SECTION_KEYS[name]
    unknown = sorted(set(section) - allowed) if allowed is not None else []
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} under {name!r} in {PARAMS_FILE}; "
                          f"stage {name!r} takes {sorted(allowed)}")
    return dict(section)


def read_params(folder: str | Path) -> dict[str, Any]:
    """The pipeline parameters in ``folder/params.yaml``.

    Raises:
        ConfigError: the file is missing or does not hold a mapping.
    """
    import yaml

    path = Path(folder) / PARAMS_FILE
    if not path.is_file():
        raise ConfigError(f"no {PARAMS_FILE} in {Path(folder).resolve()}; run the stage in the pipeline's folder "
                          "(dvc repro does), or write one with lifecycle.pipeline.write_pipeline()")
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must hold a mapping of parameters, got {type(params).__name__}")
    return params


def main(argv: list[str] | None = None) -> int:
    """``python -m lifecycle.pipeline STAGE``: run one stage in the current folder (what ``dvc.yaml`` calls);
    ``python -m lifecycle.pipeline code``: refresh ``lifecycle_code.yaml`` there (before ``dvc repro``).

    Prints the stage's report as one JSON line. A :class:`~lifecycle.errors.LifecycleError` prints as
    ``error: …`` and exits with status 2, which stops ``dvc repro``.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["code"]:
        from lifecycle.pipeline.provenance import write_code_params

        print(f"wrote {write_code_params(Path.cwd()).name}")
        return 0
    if len(argv) != 1 or argv[0] not in STAGE_NAMES:
        print(f"usage: python -m lifecycle.pipeline STAGE|code, with STAGE one of {', '.join(STAGE_NAMES)}",
              file=sys.stderr)
        return 2
    try:
        report = run_stage(argv[0], Path.cwd(), read_params(Path.cwd()), run_name="dvc-pipeline")
    except LifecycleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{argv[0]}: {json.dumps(report, sort_keys=True)}")
    return 0
