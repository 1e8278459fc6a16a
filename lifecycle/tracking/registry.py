"""The MLflow model registry: versions, aliases, the promotion rule, and loading a version to serve.

Versions move through aliases, not the stages deprecated in MLflow 2.9: the best new version gets
``challenger``, and :func:`apply_promotion` moves ``champion`` to it when the promotion rule
(:func:`should_promote`, a paired bootstrap test of the PR-AUC gain with a stated error rate) says so
on a holdout; when the evidence is thin it says *hold*.

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
from lifecycle.training import PrAucGain

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


# The promotion rule's error rate: a challenger no better than the champion (by min_gain) is promoted
# in about this share of comparisons, at most. Decisions on a few dozen frauds need it stated.
PROMOTION_ALPHA = 0.05
BOOTSTRAP_ROUNDS = 1_000


def should_promote(gain: PrAucGain | None, min_gain: float = 0.0, alpha: float = PROMOTION_ALPHA) -> bool:
    """The promotion rule, a one-sided test on the holdout: promote when there is no champion yet
    (``gain`` is None), or when the paired bootstrap of the challenger's PR-AUC gain over the champion
    (:func:`lifecycle.training.pr_auc_gain`, both scored on the same holdout rows) puts less than
    ``alpha`` of its resamples at ``min_gain`` or below. Otherwise *hold*: the champion stays.

    Its error rate: when the challenger is truly no better than the champion plus ``min_gain``, the
    rule promotes it in about ``alpha`` of such comparisons (5% by default), at most. A tie, or a gain
    smaller than the noise of a few fraud cases, holds: changing the model in production has a cost,
    and a change on noise buys nothing.
    """
    return gain is None or gain.p_value(min_gain) < alpha


@dataclass
class PromotionCheck:
    """A challenger and the champion scored on the same holdout, and what the rule decided.

    ``gain`` is the challenger minus the champion (None when there is no champion to compare with).
    """

    name: str
    challenger_version: str
    champion_version: str | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    promote: bool
    reason: str
    gain: PrAucGain | None = None
    min_gain: float = 0.0
    alpha: float = PROMOTION_ALPHA

    def table(self) -> pd.DataFrame:
        """One row per model: holdout PR-AUC, precision, recall, F1, and its own threshold."""
        rows = {f"challenger (v{self.challenger_version})": self.challenger_metrics}
        if self.champion_metrics is not None:
            rows[f"champion (v{self.champion_version})"] = self.champion_metrics
        return pd.DataFrame(rows).T


def compare_with_champion(challenger_version: str, holdout: pd.DataFrame, history: pd.DataFrame,
                          settings: Settings | None = None, min_gain: float = 0.0, alpha: float = PROMOTION_ALPHA,
                          rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> PromotionCheck:
    """Score the challenger and the current champion on ``holdout`` and apply :func:`should_promote`.

    Args:
        challenger_version: the registered version that wants the champion alias.
        holdout: labelled transactions, later than ``history``, that chose nothing (no model, no threshold).
        history: the raw transactions before ``holdout`` (its users' past, for the features).
        settings: which store and registered model.
        min_gain: the PR-AUC gain the challenger must show beyond the noise (0: any real gain).
        alpha: the rule's error rate (see :func:`should_promote`).
        rounds: bootstrap resamples of the holdout.
        seed: seed of the resampling.

    Returns:
        The :class:`PromotionCheck`; the registry is unchanged (see :func:`apply_promotion`).
    """
    from lifecycle.features import build_features
    from lifecycle.training import evaluate, pr_auc_gain, predict_scores

    settings = settings or load_settings()
    challenger_version = str(challenger_version)
    features, labels = build_features(holdout, history=history), holdout["is_fraud"].to_numpy()

    def holdout_scores(version: str) -> tuple[dict[str, float], Any]:
        model, threshold, _ = _load_version(version, settings)
        scores = predict_scores(model, features)
        return evaluate(labels, scores, threshold), scores

    (challenger, challenger_scores), champion_version = holdout_scores(challenger_version), \
        alias_version(CHAMPION, settings)
    if champion_version in (None, challenger_version):
        reason = "no champion yet" if champion_version is None else "it already is the champion"
        return PromotionCheck(settings.registered_model, challenger_version, champion_version, challenger, None,
                              champion_version is None, reason, None, min_gain, alpha)
    champion, champion_scores = holdout_scores(champion_version)
    gain = pr_auc_gain(labels, challenger_scores, champion_scores, rounds=rounds, seed=seed)
    promote_it = should_promote(gain, min_gain, alpha)
    return PromotionCheck(settings.registered_model, challenger_version, champion_version, challenger, champion,
                          promote_it, describe_gain(gain, min_gain, alpha), gain, min_gain, alpha)


def describe_gain(gain: PrAucGain, min_gain: float = 0.0, alpha: float = PROMOTION_ALPHA) -> str:
    """The rule's verdict on a challenger's gain, in words: promote or hold, and why."""
    low, high = gain.interval()
    p_value = gain.p_value(min_gain)
    margin = f"{min_gain:+.3f}" if min_gain else "0"
    no_gain = int((gain.resampled <= min_gain).sum())
    evidence = (f"challenger PR-AUC {gain.pr_auc_a:.4f} vs champion {gain.pr_auc_b:.4f} on the same "
                f"{gain.rows:,} holdout rows ({gain.positives} frauds): gain {gain.gain:+.4f}, 95% interval "
                f"{low:+.4f} to {high:+.4f}; {no_gain:,} of {len(gain.resampled):,} resamples show a gain of "
                f"{margin} or less (p = {p_value:.3f})")
    if p_value < alpha:
        return f"promote: {evidence}, under the rule's {alpha:.0%} error rate"
    return f"hold: {evidence}, not under the rule's {alpha:.0%}: the evidence is too thin, the champion stays"


def apply_promotion(check: PromotionCheck, settings: Settings | None = None) -> str:
    """Record the check on the challenger version (tags ``validation_status`` (``approved`` or ``held``),
    ``holdout_pr_auc``, ``compared_with``, and with a champion ``holdout_gain``, ``gain_p_value`` and
    ``promotion_rule``) and, if it passed, move ``champion`` to it. Returns the champion afterwards."""
    settings = settings or load_settings()
    client = mlflow_client(settings)
    tags = {"validation_status": "approved" if check.promote else "held",
            "holdout_pr_auc": f"{check.challenger_metrics['pr_auc']:.6f}",
            "compared_with": check.champion_version or "none"}
    if check.gain is not None:
        tags.update(holdout_gain=f"{check.gain.gain:.6f}", gain_p_value=f"{check.gain.p_value(check.min_gain):.4f}",
                    promotion_rule=f"paired bootstrap, alpha {check.alpha}, min_gain {check.min_gain}")
    for key, value in tags.items():
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
    name, version, uri = resolve_version(uri, settings)
    model, threshold, run_id = _load_version(version, dataclasses.replace(settings, registered_model=name))
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


def _load_version(version: str, settings: Settings) -> tuple[Any, float, str]:
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
