"""What each stage of the training pipeline does: plain functions, files in, files out.

    ingest → validate → features → train → evaluate → register

:mod:`lifecycle.pipeline.stages` declares the stages (what each reads, writes and depends on) and runs
one by name; these functions do the work. They reuse the library: :func:`~lifecycle.data.read_transactions`
validates, :func:`~lifecycle.features.build_features` builds the features,
:func:`~lifecycle.training.fit_with_threshold` fits and chooses the threshold exactly as
:func:`~lifecycle.training.train_fraud_model` does (hence the same metrics), and
:func:`~lifecycle.tracking.log_fraud_model` registers the result.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError, SchemaError

if TYPE_CHECKING:
    from lifecycle._lineage import DataLineage

# Threads for a stage's model code. Stages run beside other processes (and, under an orchestrator, beside
# each other): on a busy 2-core machine OpenMP's spinning threads made a 0.8 s fit take 10 s (measured).
# The thread count is also stored in the fitted model, so every engine must use the same one.
STAGE_THREADS = 1
PARAMS_FILE = "params.yaml"  # the pipeline's parameters, in the folder it runs in


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
    ``validation_fraction``: :func:`~lifecycle.training.fit_with_threshold`, the recipe of
    :func:`~lifecycle.training.train_fraud_model`.

    ``model`` gets the estimator with its threshold, kind and parameters (the same inputs give the
    same bytes); the fit time goes to ``report``.

    Returns:
        ``kind``, ``threshold``, ``train_rows`` and ``fit_seconds``.
    """
    import pandas as pd

    from lifecycle.features import FEATURE_COLUMNS
    from lifecycle.training import fit_with_threshold

    table = pd.read_parquet(features)
    train = table[table["window"] == "train"]
    trained = fit_with_threshold(train[FEATURE_COLUMNS], train, kind, seed, validation_fraction,
                                 threads=STAGE_THREADS, **hyperparameters)
    bundle = {"model": trained.model, "kind": kind, "threshold": trained.threshold, "params": hyperparameters,
              "train_rows": trained.train_rows, "feature_columns": list(FEATURE_COLUMNS)}
    Path(model).parent.mkdir(parents=True, exist_ok=True)
    Path(model).write_bytes(pickle.dumps(bundle, protocol=5))
    return _write_json(report, {"kind": kind, "threshold": trained.threshold, "train_rows": trained.train_rows,
                                "fit_seconds": round(trained.fit_seconds, 3)})


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


def _write_json(path: str | Path, data: dict[str, Any]) -> dict[str, Any]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data
