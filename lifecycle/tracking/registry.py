"""The MLflow model registry: versions, aliases, and loading a version to serve.

Versions move through aliases, not the stages deprecated in MLflow 2.9: the best new version gets
``challenger``, and ``champion`` moves to it when the promotion rule says so
(:mod:`~lifecycle.tracking.promotion`).

Taught in notebooks/03_experiment_tracking.ipynb; :func:`load_served_model` and
:func:`ensure_champion` serve lessons 05–07.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError
from lifecycle.tracking.runs import HISTORY_ARTIFACT, log_fraud_model, mlflow_client, use_experiment

CHAMPION, CHALLENGER = "champion", "challenger"


def register_run(run_id: str, settings: Settings | None = None) -> str:
    """Register the model logged by run ``run_id`` as a new version of ``settings.registered_model``,
    tagged with the run's ``threshold``, ``model_kind`` and ``test_pr_auc``.

    Returns:
        The new version, as the registry gives it (a string such as ``"3"``).

    Raises:
        ConfigError: the run logged no model.
    """
    settings = settings or load_settings()
    run = mlflow_client(settings).get_run(run_id)
    models = run.outputs.model_outputs if run.outputs else []
    if not models:
        raise ConfigError(f"run {run_id} logged no model, so there is nothing to register; "
                          "register a run made by log_fraud_model")
    return register_model_uri(f"models:/{models[-1].model_id}", run_id, settings)


def register_model_uri(model_uri: str, run_id: str, settings: Settings) -> str:
    """Register a logged model (``models:/m-…``) as a new version, tagged from its run.

    Through the client rather than ``mlflow.register_model``, which prints "Successfully registered
    model …" and "Created version …" to stderr on every call (MLflow 3.17) with no setting to stop it.
    """
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    run = client.get_run(run_id)
    tags = {"threshold": run.data.params["threshold"], "model_kind": run.data.params["kind"],
            "test_pr_auc": f"{run.data.metrics['pr_auc']:.6f}"}
    try:
        client.create_registered_model(settings.registered_model)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    # No waiting: MLflow's own registry (sqlite or server) creates a version READY at once; waiting only logs
    # "Waiting up to 300 seconds for model version to finish creation" on every call to a server.
    version = client.create_model_version(settings.registered_model, model_uri, run_id=run_id, tags=tags,
                                          model_id=model_id, await_creation_for=0)
    return str(version.version)


def set_alias(version: str, alias: str, settings: Settings | None = None) -> None:
    """Point ``alias`` of ``settings.registered_model`` at ``version`` (moving it if it exists)."""
    settings = settings or load_settings()
    mlflow_client(settings).set_registered_model_alias(settings.registered_model, alias, str(version))


def alias_version(alias: str = CHAMPION, settings: Settings | None = None) -> str | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist yet."""
    settings = settings or load_settings()
    name = settings.registered_model
    models = mlflow_client(settings).search_registered_models(filter_string=f"name = '{name}'")
    return str(models[0].aliases[alias]) if models and alias in models[0].aliases else None


def promote(version: str, alias: str = CHAMPION, settings: Settings | None = None) -> str | None:
    """Move ``alias`` (default ``champion``) to ``version``; returns the version it left (None if new).

    The old version keeps its number, tags and artifacts: rolling back is ``promote(old_version)``.
    """
    previous = alias_version(alias, settings)
    set_alias(version, alias, settings)
    return previous


@dataclass
class ServedModel:
    """A registered model version, ready to serve."""

    model: Any  # the fitted estimator (DataFrame input, columns in FEATURE_COLUMNS order)
    threshold: float  # the decision threshold chosen in training
    name: str  # registered model name, e.g. "fraud-detector"
    version: str  # registry version, e.g. "3"
    uri: str  # the URI it was loaded from
    history: pd.DataFrame  # raw transactions of the training window: warms the server's FeatureState


def load_served_model(uri: str | None = None, settings: Settings | None = None) -> ServedModel:
    """Load a registered version with its threshold and training history.

    Args:
        uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``
            (default: ``models:/<settings.registered_model>@champion``).
        settings: which store.

    Raises:
        ConfigError: the URI is not a registry URI, or names no version (no champion yet).
    """
    from lifecycle.data import read_transactions

    settings = settings or load_settings()
    name, version, uri = resolve_version(uri, settings)
    model, threshold, run_id = load_version(version, dataclasses.replace(settings, registered_model=name))
    with tempfile.TemporaryDirectory() as folder:
        history = read_transactions(mlflow_client(settings).download_artifacts(run_id, HISTORY_ARTIFACT, folder))
    return ServedModel(model, threshold, name, str(version), uri, history)


def resolve_version(uri: str | None, settings: Settings) -> tuple[str, str, str]:
    """``(name, version, uri)`` of the version a registry URI names now (default URI: the champion).

    Raises:
        ConfigError: the URI is not a registry URI, or names no version (no champion yet).
    """
    uri = uri or f"models:/{settings.registered_model}@{CHAMPION}"
    reference = uri.removeprefix("models:/")
    name, alias = reference.split("@", 1) if "@" in reference else (reference.rsplit("/", 1)[0], None)
    if not uri.startswith("models:/") or name == reference:
        raise ConfigError(f"cannot load {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>, "
                          f"e.g. models:/{settings.registered_model}@{CHAMPION}")
    settings = dataclasses.replace(settings, registered_model=name)
    version = alias_version(alias, settings) if alias else reference.rsplit("/", 1)[1]
    if version is None:
        raise ConfigError(f"{uri}: model {name!r} has no version with alias {alias!r} in "
                          f"{settings.mlflow_tracking_uri}; run notebooks/03_experiment_tracking.ipynb "
                          "or call lifecycle.tracking.ensure_champion()")
    return name, str(version), uri


def version_details(name: str, version: str, settings: Settings) -> tuple[float, str]:
    """``(threshold, run_id)`` of version ``version`` of registered model ``name``."""
    client = mlflow_client(settings)
    details = client.get_model_version(name, str(version))
    threshold = details.tags.get("threshold") or client.get_run(details.run_id).data.params["threshold"]
    return float(threshold), details.run_id


def load_version(version: str, settings: Settings) -> tuple[Any, float, str]:
    """The estimator, threshold and run id of one registered version (loaded by number, so an
    alias that moves meanwhile cannot mix two versions)."""
    import mlflow

    threshold, run_id = version_details(settings.registered_model, version, settings)
    use_experiment(settings)  # load_model resolves models:/ URIs through the fluent registry URI
    return mlflow.sklearn.load_model(f"models:/{settings.registered_model}/{version}"), threshold, run_id


def ensure_champion(settings: Settings | None = None, seed: int = 42, rows: int = 20_000) -> str:
    """The champion version; if the registry has none, train one (HGB on a time split of data version
    ``data-v1``: lesson 01's, read with its lineage, or generated from ``rows`` and ``seed``), log,
    register and alias it, so lessons 05–07 run alone."""
    from lifecycle.features import split_by_time
    from lifecycle.training import train_fraud_model
    from lifecycle.versioning import read_data_version

    settings = settings or load_settings()
    version = alias_version(CHAMPION, settings)
    if version is not None:
        return version
    transactions, lineage = read_data_version(settings, "data-v1", rows, seed, echo=False)
    train, test = split_by_time(transactions)
    trained = train_fraud_model(train, test, "hgb", seed)
    _, version = log_fraud_model(trained, train, "hgb-bootstrap", settings, alias=CHAMPION,
                                 tags={"session": "ensure_champion"}, lineage=lineage)
    return str(version)
