"""MLflow runs: where they go, logging a fraud model as one run, comparing runs.

The store is a sqlite file in the workspace unless ``MLFLOW_TRACKING_URI`` (or the settings) name
another, e.g. a tracking server's ``http://…`` URL; every function reads the URI from the settings
when called, never at import.

Taught in notebooks/03_experiment_tracking.ipynb.
"""

from __future__ import annotations

import hashlib
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from lifecycle._quiet import quiet_mlflow
from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError
from lifecycle.tracking._mlflow import pins_of_installed_packages
from lifecycle.training import TrainedModel

if TYPE_CHECKING:
    from lifecycle._lineage import DataLineage

EXPERIMENT = "fraud-detection"
HISTORY_ARTIFACT = "history/transactions.csv"
# Pinned to what trained the model, so a server installs the same versions (and MLflow does not
# spend 15–25 s guessing them in a subprocess).
MODEL_REQUIREMENTS = ("scikit-learn", "cloudpickle", "numpy", "pandas")


def use_experiment(settings: Settings | None = None, name: str = EXPERIMENT) -> str:
    """Point MLflow's fluent API (``mlflow.start_run``, ``search_runs``, ``register_model``) at the
    settings' store and return the id of experiment ``name``, creating it if needed.

    A sqlite store keeps artifacts in ``mlartifacts/`` beside its database file (MLflow would
    otherwise write ``./mlruns`` wherever the notebook runs); a tracking server decides for itself.
    """
    import mlflow

    quiet_mlflow()
    settings = settings or load_settings()
    uri = _store_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=_artifact_location(uri, settings))
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def mlflow_client(settings: Settings | None = None):
    """An ``MlflowClient`` for the settings' tracking and registry store."""
    import mlflow

    quiet_mlflow()
    uri = _store_uri(settings or load_settings())
    return mlflow.MlflowClient(uri, uri)


def _store_uri(settings: Settings) -> str:
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)  # sqlite makes no folders
    return uri


def _artifact_location(uri: str, settings: Settings) -> str | None:
    if uri.startswith(("http://", "https://")):
        return None
    folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else settings.workspace
    return (folder / "mlartifacts").resolve().as_uri()


def log_fraud_model(trained: TrainedModel, history: pd.DataFrame, run_name: str, settings: Settings | None = None,
                    register: bool = True, alias: str | None = None, tags: dict[str, str] | None = None,
                    lineage: DataLineage | None = None) -> tuple[str, str | None]:
    """Log a trained fraud model as one MLflow run; optionally register it and give it an alias.

    The run holds the parameters (the estimator's own, ``kind``, ``threshold``, ``train_rows``),
    the test metrics (``pr_auc``; ``precision``, ``recall``, ``f1`` at the threshold; ``fit_seconds``),
    the model with its signature and an input example, and the raw training window ``history`` as
    ``history/transactions.csv`` with its md5 as parameter ``history_md5`` (a server warms its per-user
    feature state from the file), and, when ``history`` is a window of a DVC-tracked data version, that
    version's lineage as ``data.*`` tags: ``data.tag`` (the git tag), ``data.rev`` (its commit),
    ``data.dvc_file_md5`` (the ``.dvc`` pointer's md5), ``data.md5`` (the data's), ``data.source``.

    Args:
        trained: the model from :func:`lifecycle.training.train_fraud_model`.
        history: the raw transactions it was trained on.
        run_name: a readable name for the run, e.g. ``"hgb"``.
        settings: where to log (default: :func:`~lifecycle.config.load_settings`).
        register: also register it as a new version of ``settings.registered_model``.
        alias: give the new version this alias (e.g. ``"champion"``); needs ``register``.
        tags: extra run tags (the notebook tags its runs with a session id to find them again).
        lineage: the data version ``history`` was taken from, unchanged (from
            :func:`lifecycle.versioning.read_data_version`); leave it out for data that was altered.

    Returns:
        ``(run_id, version)``; version is None when not registered.

    Raises:
        ConfigError: an alias without ``register``.
    """
    import mlflow
    from mlflow.models import infer_signature

    from lifecycle.data import write_transactions
    from lifecycle.features import build_features

    if alias and not register:
        raise ConfigError(f"alias={alias!r} needs register=True: only registered versions carry aliases")
    settings = settings or load_settings()
    experiment_id = use_experiment(settings)
    example = build_features(history)[trained.feature_columns].tail(5)
    estimator = trained.model.steps[-1][1] if hasattr(trained.model, "steps") else trained.model
    params = {**estimator.get_params(deep=False), **trained.params, "kind": trained.kind,
              "threshold": trained.threshold, "train_rows": trained.train_rows}
    metrics = {k: v for k, v in trained.metrics.items() if k != "threshold"}
    run_tags = {"model_kind": trained.kind, **(lineage.mlflow_tags() if lineage else {}), **(tags or {})}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags) as run, \
            pins_of_installed_packages():
        mlflow.log_params(params)
        mlflow.log_metrics({**metrics, "fit_seconds": trained.fit_seconds})
        logged = mlflow.sklearn.log_model(
            trained.model, name="model", input_example=example,
            signature=infer_signature(example, trained.model.predict_proba(example)),
            pip_requirements=[f"{package}=={metadata.version(package)}" for package in MODEL_REQUIREMENTS],
            # cloudpickle, deliberately: skops (the default) rejects tree internals (sklearn's Tree,
            # HGB's TreePredictor) unless each is listed as trusted, and MLflow reads that list back
            # from the model's own MLmodel file, so it guards nothing here; the registry is ours.
            # cloudpickle also stores functions defined in a notebook, which plain pickle cannot.
            serialization_format="cloudpickle",
            # A generic MLflow consumer (`mlflow models serve`) then gets fraud scores to compare with
            # the version's threshold tag; predict() would apply 0.5, which is not our decision.
            pyfunc_predict_fn="predict_proba")
        with tempfile.TemporaryDirectory() as folder:
            path = write_transactions(history, Path(folder) / Path(HISTORY_ARTIFACT).name)
            mlflow.log_artifact(str(path), artifact_path=str(Path(HISTORY_ARTIFACT).parent))
            # The data version: the same training window gives the same bytes, hence the same hash.
            mlflow.log_params({"history_rows": len(history), "history_md5": hashlib.md5(path.read_bytes()).hexdigest()})
    from lifecycle.tracking.registry import register_model_uri, set_alias

    version = register_model_uri(logged.model_uri, run.info.run_id, settings) if register else None
    if alias and version:
        set_alias(version, alias, settings)
    return run.info.run_id, version




def compare_runs(settings: Settings | None = None, filter_string: str = "") -> pd.DataFrame:
    """The experiment's runs (those ``filter_string`` selects) as a table, best test PR-AUC first."""
    import mlflow

    use_experiment(settings)
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=filter_string,
                              order_by=["metrics.pr_auc DESC"])
    columns = {"tags.mlflow.runName": "run", "params.kind": "kind", "params.train_rows": "train_rows",
               "metrics.pr_auc": "pr_auc", "metrics.f1": "f1", "metrics.precision": "precision",
               "metrics.recall": "recall", "params.threshold": "threshold", "metrics.fit_seconds": "fit_seconds",
               "run_id": "run_id"}
    return runs.reindex(columns=list(columns)).rename(columns=columns).astype({"train_rows": "Int64",
                                                                               "threshold": float})
