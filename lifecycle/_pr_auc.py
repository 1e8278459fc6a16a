"""Is one model's PR-AUC higher than another's on the same rows? A paired bootstrap of the difference.

Shared by training (lesson 02's and 03's comparisons) and the registry's promotion rule
(:func:`lifecycle.tracking.should_promote`); lessons import it as ``lifecycle.training.pr_auc_gain``.
With a few dozen frauds, one of them ranked differently moves PR-AUC by a point, so a gain is
reported with the spread of its resamples, not as one number. The resampling is vectorised: PR-AUC
only changes at thresholds that hold a fraud, so counting each resample's rows per threshold gives
all its average precisions at once (:func:`_threshold_cuts`, :func:`_pr_auc_of_draws`).

Taught in notebooks/02_feature_engineering.ipynb and notebooks/03_experiment_tracking.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lifecycle.errors import ConfigError


@dataclass(frozen=True)
class PrAucGain:
    """PR-AUC of model ``a`` minus model ``b`` on the same rows, and that gain on bootstrap resamples.

    Attributes:
        gain: ``pr_auc_a - pr_auc_b`` on all rows.
        pr_auc_a: model a's PR-AUC.
        pr_auc_b: model b's PR-AUC.
        resampled: the gain on each resample of the rows (both models scored on the same resample).
        rows: rows compared.
        positives: frauds among them.
    """

    gain: float
    pr_auc_a: float
    pr_auc_b: float
    resampled: np.ndarray = field(repr=False)
    rows: int
    positives: int

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` percentile interval of the resampled gain."""
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(self.resampled, [tail, 100 - tail])
        return float(low), float(high)

    def p_value(self, margin: float = 0.0) -> float:
        """One-sided: how often a resample's gain is ``margin`` or less (+1 smoothing). Small means the
        evidence that model a beats model b by more than ``margin`` is strong."""
        return float((1 + np.count_nonzero(self.resampled <= margin)) / (len(self.resampled) + 1))


def pr_auc_gain(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, rounds: int = 1_000,
                seed: int = 0) -> PrAucGain:
    """Compare two models' PR-AUC on the same rows by a paired bootstrap.

    Each resample draws the rows with replacement, once, and scores both models on it: what the two
    have in common (the same hard and easy frauds) cancels, and the spread of the gain is the noise
    of *this* comparison. With a few dozen frauds it is about a point of PR-AUC or more.

    Args:
        labels: 0/1 per row.
        scores_a: model a's fraud scores of the rows.
        scores_b: model b's, of the same rows in the same order.
        rounds: bootstrap resamples.
        seed: seed of the resampling (the same inputs and seed give the same answer).

    Returns:
        The :class:`PrAucGain` (``a`` minus ``b``).

    Raises:
        ConfigError: lengths differ, or the rows hold no fraud.

    Taught in notebooks/02_feature_engineering.ipynb and notebooks/03_experiment_tracking.ipynb.
    """
    labels = np.asarray(labels).astype(bool)
    scores_a, scores_b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if not len(labels) == len(scores_a) == len(scores_b):
        raise ConfigError(f"pr_auc_gain needs one score per row from each model; got {len(labels)} labels, "
                          f"{len(scores_a)} and {len(scores_b)} scores")
    if not labels.any():
        raise ConfigError(f"pr_auc_gain: the {len(labels)} rows hold no fraud, so PR-AUC is undefined; "
                          "compare on a window with labelled frauds")
    rng, n = np.random.default_rng(seed), len(labels)
    cuts = [_threshold_cuts(labels, scores) for scores in (scores_a, scores_b)]
    pr_auc_a, pr_auc_b = (float(_pr_auc_of_draws(codes, cut_count, codes[None, :])[0]) for codes, cut_count in cuts)
    gains = []
    for start in range(0, rounds, 100):  # in chunks of 100 resamples x rows
        size = min(100, rounds - start)
        drawn = rng.integers(0, n, size=(size, n))
        a, b = (_pr_auc_of_draws(codes, cut_count, codes[drawn]) for codes, cut_count in cuts)
        gains.append(a - b)
    resampled = np.concatenate(gains)
    return PrAucGain(pr_auc_a - pr_auc_b, pr_auc_a, pr_auc_b, resampled[~np.isnan(resampled)], n,
                     int(labels.sum()))


def _threshold_cuts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row's code for :func:`_pr_auc_of_draws`, and how many thresholds hold a fraud.

    PR-AUC (scikit-learn's average precision) only changes at thresholds that hold a fraud (tied
    scores form one threshold). A row's code is ``2 * k + label``, where ``k`` is the first such
    threshold at or below its score (rows below the last one get ``k`` = the count: never counted).
    """
    order = np.argsort(-scores, kind="stable")
    group = np.r_[0, np.cumsum(np.diff(scores[order]) != 0)]  # distinct-score group of each sorted row
    fraud_groups = np.unique(group[labels[order]])
    codes = np.empty(len(scores), dtype=np.int64)
    codes[order] = 2 * np.searchsorted(fraud_groups, group, side="left") + labels[order]
    return codes, len(fraud_groups)


def _pr_auc_of_draws(codes: np.ndarray, cut_count: int, drawn_codes: np.ndarray) -> np.ndarray:
    """Average precision of each resample (a row of ``drawn_codes``: the codes of the rows drawn), NaN
    for a resample without fraud. Counting codes gives, per threshold, the frauds and rows drawn."""
    size, width = len(drawn_codes), 2 * (cut_count + 1)
    offsets = (np.arange(size, dtype=np.int64) * width)[:, None]
    counts = np.bincount((drawn_codes + offsets).ravel(), minlength=size * width).reshape(size, cut_count + 1, 2)
    frauds, rows = counts[:, :cut_count, 1], counts[:, :cut_count, :].sum(axis=2)
    hits, seen = np.cumsum(frauds, axis=1), np.cumsum(rows, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(seen > 0, hits / np.maximum(seen, 1), 0.0)
        return np.sum(frauds * precision, axis=1) / hits[:, -1]
