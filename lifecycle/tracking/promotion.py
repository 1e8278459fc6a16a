"""The promotion rule: does a registered challenger take the ``champion`` alias?

:func:`compare_with_champion` scores the challenger and the champion on the same holdout;
:func:`should_promote`, a paired bootstrap test of the PR-AUC gain with a stated error rate, decides;
when the evidence is thin it says *hold*. :func:`apply_promotion` records the check on the version and
moves ``champion`` (:mod:`~lifecycle.tracking.registry`) if it passed.

Taught in notebooks/03_experiment_tracking.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from lifecycle.config import Settings, load_settings
from lifecycle.tracking.registry import CHAMPION, alias_version, load_version, promote
from lifecycle.tracking.runs import mlflow_client
from lifecycle.training import PrAucGain

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
        model, threshold, _ = load_version(version, settings)
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
