"""The training pipeline as stages: plain functions with explicit file inputs and outputs.

    ingest → validate → features → train → evaluate → register

Each stage reads the files the one before wrote and writes its own, so any engine can run them:
``dvc repro`` (each stage is ``python -m lifecycle.pipeline STAGE``, run in the folder holding
``params.yaml``), a Prefect flow (each stage a task), or a plain loop (:func:`run_stage`).
:data:`STAGES` declares what every stage reads, writes and depends on; ``dvc.yaml`` and Prefect's
cache keys are both derived from it (:mod:`lifecycle.pipeline.flow`).

The stages reuse the library: :func:`~lifecycle.data.read_transactions` validates,
:func:`~lifecycle.features.build_features` builds the features, :mod:`lifecycle.training` fits and
scores on the same rows, in the same order and with the same threshold rule as
:func:`~lifecycle.training.train_fraud_model` (hence the same metrics), and
:func:`~lifecycle.tracking.log_fraud_model` registers the result.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError, LifecycleError, SchemaError

if TYPE_CHECKING:
    from lifecycle._lineage import DataLineage

SOURCE = "data/transactions.csv"  # the raw data, tracked by DVC in the lesson 01 sandbox
INGESTED = "pipeline/ingested.csv"
VALIDATED = "pipeline/validated.parquet"
VALIDATION_REPORT = "pipeline/validation.json"
FEATURES = "pipeline/features.parquet"
MODEL = "pipeline/model.pkl"
TRAIN_REPORT = "pipeline/train.json"
METRICS = "metrics.json"
REGISTERED = "pipeline/registered.json"
PARAMS_FILE = "params.yaml"
# The kit's code and packages the stages run, by md5 and version (lifecycle.pipeline.provenance).
CODE_PARAMS_FILE = "lifecycle_code.yaml"
# Threads for a stage's model code. Stages run beside other processes (and, under an orchestrator, beside
# each other): on a busy 2-core machine OpenMP's spinning threads made a 0.8 s fit take 10 s (measured).
# The thread count is also stored in the fitted model, so every engine must use the same one.
STAGE_THREADS = 1

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
    Stage("ingest", (SOURCE,), outs=(INGESTED,)),
    Stage("validate", (INGESTED,), outs=(VALIDATED,), params=("validate",), metrics=(VALIDATION_REPORT,),
          code=("data/schema",), packages=("pandas",)),
    Stage("features", (VALIDATED,), outs=(FEATURES,), params=("features",), code=("features",),
          packages=("pandas", "numpy")),
    Stage("train", (FEATURES,), outs=(MODEL, TRAIN_REPORT), params=("seed", "train"), code=("training", "features"),
          packages=("scikit-learn", "numpy")),
    Stage("evaluate", (FEATURES, MODEL), metrics=(METRICS,), code=("training",), packages=("scikit-learn",)),
    Stage("register", (MODEL, TRAIN_REPORT, METRICS, VALIDATED, FEATURES), params=("register",),
          records=(REGISTERED,), code=("tracking/runs", "tracking/registry", "_lineage"), packages=("mlflow",)),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def get_stage(name: str) -> Stage:
    """The stage called ``name``; raises ConfigError if there is none."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ConfigError(f"unknown pipeline stage {name!r}; the stages are {', '.join(STAGE_NAMES)}")


def ingest_data(source: str | Path, ingested: str | Path) -> dict[str, Any]:
    """Bring the raw transactions into the pipeline's folder, byte for byte.

    The source here is the sandbox's DVC-tracked file; in production it is wherever data lands
    (a bucket, a warehouse export), which is where network errors happen.

    Returns:
        ``rows`` and the ``md5`` of what was ingested.

    Raises:
        SchemaError: there is no file at ``source``.
    """
    source, ingested = Path(source), Path(ingested)
    if not source.is_file():
        raise SchemaError(f"no raw data at {source}; restore it with 'dvc pull' in its repository, or build the "
                          "sandbox with lifecycle.versioning.ensure_sandbox()")
    ingested.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, ingested)
    with open(ingested, "rb") as handle:
        md5 = hashlib.file_digest(handle, "md5").hexdigest()
        handle.seek(0)
        rows = sum(1 for _ in handle) - 1
    return {"rows": rows, "md5": md5}


def validate_data(ingested: str | Path, validated: str | Path, report: str | Path, min_rows: int = 1_000,
                  max_fraud_rate: float = 0.1) -> dict[str, Any]:
    """Check the raw data (schema, types, volume, duplicates, label rate); store it typed, as parquet.

    A failed check stops the pipeline here, before anything trains on bad data.

    Returns:
        The report also written to ``report``: rows, fraud rate, users, first and last day.

    Raises:
        SchemaError: bad columns or values (see :func:`~lifecycle.data.read_transactions`), fewer
            than ``min_rows`` rows, duplicate ids, or a fraud rate outside ``(0, max_fraud_rate]``.
    """
    from lifecycle.data import read_transactions

    frame = read_transactions(ingested)
    fraud_rate = float(frame["is_fraud"].mean()) if len(frame) else 0.0
    duplicates = int(frame["transaction_id"].duplicated().sum())
    problems = [f"{len(frame)} rows, fewer than validate.min_rows={min_rows}"] if len(frame) < min_rows else []
    if duplicates:
        problems.append(f"{duplicates} duplicate transaction_id value(s)")
    if not 0 < fraud_rate <= max_fraud_rate:
        problems.append(f"fraud rate {fraud_rate:.4f} outside (0, validate.max_fraud_rate={max_fraud_rate}]")
    if problems:
        raise SchemaError(f"{ingested} failed validation: {'; '.join(problems)}; fix the data, or the validate "
                          f"parameters in {PARAMS_FILE} if the data is right")
    Path(validated).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(validated)
    summary = {"rows": len(frame), "fraud_rate": round(fraud_rate, 6), "users": int(frame["user_id"].nunique()),
               "first_day": str(frame["timestamp"].min().date()), "last_day": str(frame["timestamp"].max().date())}
    return _write_json(report, summary)


def build_feature_table(validated: str | Path, features: str | Path, test_fraction: float = 0.25) -> dict[str, Any]:
    """Split the validated data at a point in time; build point-in-time features for both windows.

    The test window's features see the whole training window as history, as the server would. The
    table keeps ``is_fraud``, ``timestamp`` and ``window`` (``train``/``test``) beside the features.

    Returns:
        ``train_rows``, ``test_rows`` and how many ``feature_columns``.

    Raises:
        ConfigError: ``test_fraction`` not strictly between 0 and 1.
    """
    import pandas as pd

    from lifecycle.features import FEATURE_COLUMNS, build_features, split_by_time

    if not 0 < test_fraction < 1:
        raise ConfigError(f"features.test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
    train, test = split_by_time(pd.read_parquet(validated), test_fraction)
    table = pd.concat([build_features(train), build_features(test, history=train)])
    both = pd.concat([train, test])
    table["is_fraud"], table["timestamp"] = both["is_fraud"], both["timestamp"]
    table["window"] = ["train"] * len(train) + ["test"] * len(test)
    Path(features).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(features)
    return {"train_rows": len(train), "test_rows": len(test), "feature_columns": len(FEATURE_COLUMNS)}


def train_model(features: str | Path, model: str | Path, report: str | Path, kind: str = "hgb", seed: int = 42,
                validation_fraction: float = 0.2, **hyperparameters: Any) -> dict[str, Any]:
    """Fit on the earlier part of the training window; choose the best-F1 threshold on its latest
    ``validation_fraction``, exactly as :func:`~lifecycle.training.train_fraud_model` does.

    ``model`` gets the estimator with its threshold, kind and parameters (the same inputs give the
    same bytes); the fit time goes to ``report``.

    Returns:
        ``kind``, ``threshold``, ``train_rows`` and ``fit_seconds``.
    """
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from lifecycle.features import FEATURE_COLUMNS, split_by_time
    from lifecycle.training import choose_threshold, fit_model, make_model, predict_scores

    table = pd.read_parquet(features)
    fit_rows, valid_rows = split_by_time(table[table["window"] == "train"], validation_fraction)
    estimator = make_model(kind, seed, **hyperparameters)  # loads scikit-learn's OpenMP before it is limited
    with threadpool_limits(STAGE_THREADS):
        seconds = fit_model(estimator, fit_rows[FEATURE_COLUMNS], fit_rows["is_fraud"])
        threshold = choose_threshold(valid_rows["is_fraud"].to_numpy(),
                                     predict_scores(estimator, valid_rows[FEATURE_COLUMNS]))
    bundle = {"model": estimator, "kind": kind, "threshold": threshold, "params": hyperparameters,
              "train_rows": len(fit_rows), "feature_columns": list(FEATURE_COLUMNS)}
    Path(model).parent.mkdir(parents=True, exist_ok=True)
    Path(model).write_bytes(pickle.dumps(bundle, protocol=5))
    return _write_json(report, {"kind": kind, "threshold": threshold, "train_rows": len(fit_rows),
                                "fit_seconds": round(seconds, 3)})


def load_model_bundle(model: str | Path) -> dict[str, Any]:
    """What :func:`train_model` wrote. Pickle runs code as it loads: load only files this pipeline wrote."""
    return pickle.loads(Path(model).read_bytes())


def evaluate_model(features: str | Path, model: str | Path, metrics: str | Path) -> dict[str, Any]:
    """Score the test window: PR-AUC, and precision/recall/F1 at the model's own threshold.

    Returns:
        The metrics, with ``test_rows`` and ``test_frauds`` (also written to ``metrics`` as JSON).
    """
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from lifecycle.training import evaluate, predict_scores

    table = pd.read_parquet(features)
    test = table[table["window"] == "test"]
    bundle = load_model_bundle(model)
    with threadpool_limits(STAGE_THREADS):
        scores = predict_scores(bundle["model"], test[bundle["feature_columns"]])
    result = evaluate(test["is_fraud"].to_numpy(), scores, bundle["threshold"])
    return _write_json(metrics, {**result, "test_rows": len(test), "test_frauds": int(test["is_fraud"].sum())})


def register_model(model: str | Path, train_report: str | Path, metrics: str | Path, validated: str | Path,
                   features: str | Path, registered: str | Path, alias: str = "challenger", run_name: str = "pipeline",
                   settings: Settings | None = None, lineage: DataLineage | None = None) -> dict[str, Any]:
    """Log the model with its metrics and training window to MLflow, register it, and give it ``alias``;
    ``lineage``, the data version the pipeline ingested, goes on the run as ``data.*`` tags.

    Returns:
        ``run_id``, ``version``, ``alias`` and the registered ``model`` name (also written to ``registered``).

    Raises:
        ConfigError: ``alias`` is ``champion``: a pipeline registers candidates; the champion moves only
            after a holdout comparison (lessons 03 and 05).
    """
    import pandas as pd

    from lifecycle.tracking import CHAMPION, log_fraud_model
    from lifecycle.training import TrainedModel

    if alias == CHAMPION:
        raise ConfigError(f"register.alias={alias!r}: the pipeline registers candidates, and the champion moves only "
                          "after a holdout comparison (lifecycle.tracking.compare_with_champion); use challenger")
    settings = settings or load_settings()
    bundle, report = load_model_bundle(model), json.loads(Path(train_report).read_text())
    scores = json.loads(Path(metrics).read_text())
    trained = TrainedModel(model=bundle["model"], kind=bundle["kind"], threshold=bundle["threshold"],
                           metrics={k: scores[k] for k in ("pr_auc", "precision", "recall", "f1", "threshold")},
                           fit_seconds=report["fit_seconds"], train_rows=bundle["train_rows"], params=bundle["params"])
    windows = pd.read_parquet(features, columns=["window"])
    history = pd.read_parquet(validated).loc[windows.index[windows["window"] == "train"]]
    run_id, version = log_fraud_model(trained, history, run_name, settings, register=True, alias=alias,
                                      tags={"pipeline": run_name}, lineage=lineage)
    return _write_json(registered, {"run_id": run_id, "version": version, "alias": alias,
                                    "model": settings.registered_model})


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


def _write_json(path: str | Path, data: dict[str, Any]) -> dict[str, Any]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


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
