"""MLflow: where runs go, logging a fraud model, comparing runs, the registry and its aliases.

The store is a sqlite file in the workspace unless ``MLFLOW_TRACKING_URI`` (or the settings) name
another, e.g. a tracking server's ``http://…`` URL; every function reads the URI from the settings
when called, never at import. Versions move through aliases, not the stages deprecated in MLflow
2.9: the best new version gets ``challenger``, and :func:`apply_promotion` moves ``champion`` to it
when the promotion rule (:func:`should_promote`) says so on a holdout.

Taught in notebooks/03_experiment_tracking.ipynb; :func:`load_served_model` and
:func:`ensure_champion` serve lessons 05–07.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError
from lifecycle.training import TrainedModel

EXPERIMENT = "fraud-detection"
CHAMPION, CHALLENGER = "champion", "challenger"
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
                    register: bool = True, alias: str | None = None,
                    tags: dict[str, str] | None = None) -> tuple[str, str | None]:
    """Log a trained fraud model as one MLflow run; optionally register it and give it an alias.

    The run holds the parameters (the estimator's own, ``kind``, ``threshold``, ``train_rows``),
    the test metrics (``pr_auc``; ``precision``, ``recall``, ``f1`` at the threshold; ``fit_seconds``),
    the model with its signature and an input example, and the raw training window ``history`` as
    ``history/transactions.csv`` with its md5 as parameter ``history_md5`` (the data version; a
    server warms its per-user feature state from the file).

    Args:
        trained: the model from :func:`lifecycle.training.train_fraud_model`.
        history: the raw transactions it was trained on.
        run_name: a readable name for the run, e.g. ``"hgb"``.
        settings: where to log (default: :func:`~lifecycle.config.load_settings`).
        register: also register it as a new version of ``settings.registered_model``.
        alias: give the new version this alias (e.g. ``"champion"``); needs ``register``.
        tags: extra run tags (the notebook tags its runs with a session id to find them again).

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
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                          tags={"model_kind": trained.kind, **(tags or {})}) as run:
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
    version = _register(logged.model_uri, run.info.run_id, settings) if register else None
    if alias and version:
        set_alias(version, alias, settings)
    return run.info.run_id, version


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
    return _register(f"models:/{models[-1].model_id}", run_id, settings)


def _register(model_uri: str, run_id: str, settings: Settings) -> str:
    import mlflow

    run = mlflow_client(settings).get_run(run_id)
    tags = {"threshold": run.data.params["threshold"], "model_kind": run.data.params["kind"],
            "test_pr_auc": f"{run.data.metrics['pr_auc']:.6f}"}
    use_experiment(settings)  # register_model is fluent: it needs the registry URI set
    return str(mlflow.register_model(model_uri, settings.registered_model, tags=tags).version)


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


def should_promote(challenger_pr_auc: float, champion_pr_auc: float | None, min_gain: float = 0.0) -> bool:
    """The promotion rule: the challenger replaces the champion when there is no champion, or when
    its PR-AUC on the same holdout is not lower than the champion's plus ``min_gain``.

    With ``min_gain = 0`` a tie promotes: a model as good as the champion, trained on fresher data,
    is the better bet. A positive ``min_gain`` asks for a margin before anything changes.
    """
    return champion_pr_auc is None or challenger_pr_auc >= champion_pr_auc + min_gain


@dataclass
class PromotionCheck:
    """A challenger and the champion scored on the same holdout, and what the rule decided."""

    name: str
    challenger_version: str
    champion_version: str | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    promote: bool
    reason: str

    def table(self) -> pd.DataFrame:
        """One row per model: holdout PR-AUC, precision, recall, F1, and its own threshold."""
        rows = {f"challenger (v{self.challenger_version})": self.challenger_metrics}
        if self.champion_metrics is not None:
            rows[f"champion (v{self.champion_version})"] = self.champion_metrics
        return pd.DataFrame(rows).T


def compare_with_champion(challenger_version: str, holdout: pd.DataFrame, history: pd.DataFrame,
                          settings: Settings | None = None, min_gain: float = 0.0) -> PromotionCheck:
    """Score the challenger and the current champion on ``holdout`` and apply :func:`should_promote`.

    Args:
        challenger_version: the registered version that wants the champion alias.
        holdout: labelled transactions, later than ``history``, that chose nothing (no model, no threshold).
        history: the raw transactions before ``holdout`` (its users' past, for the features).
        settings: which store and registered model.
        min_gain: see :func:`should_promote`.

    Returns:
        The :class:`PromotionCheck`; the registry is unchanged (see :func:`apply_promotion`).
    """
    from lifecycle.features import build_features
    from lifecycle.training import evaluate, predict_scores

    settings = settings or load_settings()
    challenger_version = str(challenger_version)
    features, labels = build_features(holdout, history=history), holdout["is_fraud"].to_numpy()

    def holdout_metrics(version: str) -> dict[str, float]:
        model, threshold, _ = _load_version(version, settings)
        return evaluate(labels, predict_scores(model, features), threshold)

    challenger, champion_version = holdout_metrics(challenger_version), alias_version(CHAMPION, settings)
    if champion_version in (None, challenger_version):
        reason = "no champion yet" if champion_version is None else "it already is the champion"
        return PromotionCheck(settings.registered_model, challenger_version, champion_version, challenger, None,
                              champion_version is None, reason)
    champion = holdout_metrics(champion_version)
    promote_it = should_promote(challenger["pr_auc"], champion["pr_auc"], min_gain)
    reason = (f"challenger PR-AUC {challenger['pr_auc']:.4f} is {'not ' if promote_it else ''}lower than the "
              f"champion's {champion['pr_auc']:.4f}" + (f" + min_gain {min_gain}" if min_gain else ""))
    return PromotionCheck(settings.registered_model, challenger_version, champion_version, challenger, champion,
                          promote_it, reason)


def apply_promotion(check: PromotionCheck, settings: Settings | None = None) -> str:
    """Record the check on the challenger version (tags ``validation_status``, ``holdout_pr_auc``,
    ``compared_with``) and, if it passed, move ``champion`` to it. Returns the champion afterwards."""
    settings = settings or load_settings()
    client = mlflow_client(settings)
    for key, value in {"validation_status": "approved" if check.promote else "rejected",
                       "holdout_pr_auc": f"{check.challenger_metrics['pr_auc']:.6f}",
                       "compared_with": check.champion_version or "none"}.items():
        client.set_model_version_tag(check.name, check.challenger_version, key, value)
    if check.promote:
        promote(check.challenger_version, CHAMPION, settings)
    return alias_version(CHAMPION, settings) or ""


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
    model, threshold, run_id = _load_version(version, settings)
    with tempfile.TemporaryDirectory() as folder:
        history = read_transactions(mlflow_client(settings).download_artifacts(run_id, HISTORY_ARTIFACT, folder))
    return ServedModel(model, threshold, name, str(version), uri, history)


def _load_version(version: str, settings: Settings) -> tuple[Any, float, str]:
    """The estimator, threshold and run id of one registered version (loaded by number, so an
    alias that moves meanwhile cannot mix two versions)."""
    import mlflow

    client = mlflow_client(settings)
    details = client.get_model_version(settings.registered_model, str(version))
    threshold = details.tags.get("threshold") or client.get_run(details.run_id).data.params["threshold"]
    use_experiment(settings)  # load_model resolves models:/ URIs through the fluent registry URI
    return mlflow.sklearn.load_model(f"models:/{settings.registered_model}/{version}"), float(threshold), \
        details.run_id


def ensure_champion(settings: Settings | None = None, seed: int = 42, rows: int = 20_000) -> str:
    """The champion version; if the registry has none, train one (HGB on a time split of
    ``generate_transactions(rows, seed)``), log, register and alias it, so lessons 05–07 run alone."""
    from lifecycle.data import generate_transactions
    from lifecycle.features import split_by_time
    from lifecycle.training import train_fraud_model

    settings = settings or load_settings()
    version = alias_version(CHAMPION, settings)
    if version is not None:
        return version
    train, test = split_by_time(generate_transactions(rows, seed))
    trained = train_fraud_model(train, test, "hgb", seed)
    _, version = log_fraud_model(trained, train, "hgb-bootstrap", settings, alias=CHAMPION,
                                 tags={"session": "ensure_champion"})
    return str(version)


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
