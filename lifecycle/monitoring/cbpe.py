"""Performance without labels: confidence-based performance estimation (CBPE).

A fraud model's labels arrive weeks late, but its scores are there at once. If the scores are
*calibrated* (a score of 0.8 means "fraud 8 times in 10"), each flagged row adds its probability
to the expected true positives and the rest to the expected false positives, and the expected
confusion matrix of a week follows from the scores alone:

    expected TP = Σ p over flagged rows,    expected FP = Σ (1 − p) over flagged rows,
    expected FN = Σ p over the others,      expected TN = Σ (1 − p) over the others,

so estimated precision = expected TP / flags. The scores of a boosted model are not calibrated,
so :class:`CBPE` first learns the map from score to probability on the reference window, where
the labels are known, with isotonic regression (monotone, no shape assumed).

**What it can and cannot see.** The estimate moves when the *scores* move: under data drift (the
inputs shift, the link between inputs and fraud holds) it tracks precision weeks before labels
arrive. It assumes that the link holds: under concept drift the scores look as they did, so the
estimate stays where it was while the real precision falls. Only labels reveal concept drift.

**Why it is implemented here.** This is NannyML's method (CBPE: `nannyml.performance_estimation.
confidence_based`, see NannyML's documentation "Estimating Performance for Binary Classification"
and its own caveat that without ground truth concept drift cannot be identified). Checked in
December 2026, installing nannyml 0.13 would add about 685 MB (FLAML brings xgboost and NVIDIA's
NCCL; kaleido, gcsfs, a Segment telemetry client) for one estimator, and it caps ``lightgbm<4.6``
and ``plotly<6``. The method is the few lines below, checked against a constructed case whose
answer is known (tests/unit/test_monitoring.py).

The estimate's own uncertainty: given calibrated probabilities, the number of true positives
among ``n`` flags is a sum of independent Bernoulli draws, with variance ``Σ p (1 − p)``; the
standard error of the estimated precision is its square root over ``n``.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lifecycle.errors import ConfigError, LifecycleError, SchemaError


class NotFittedError(LifecycleError, RuntimeError):
    """A monitor or estimator was used before ``fit`` (or a report saved before a check)."""


class CBPE:
    """Estimate a model's precision and recall at its threshold from scores alone (see the module doc).

    Example:
        >>> estimator = CBPE(decision_threshold=champion.threshold).fit(reference_scores, reference_labels)
        >>> estimator.estimate(week_scores)["precision"]

    Args:
        decision_threshold: the model's threshold: a row is flagged when its score is at or above it.
    """

    def __init__(self, decision_threshold: float) -> None:
        self.decision_threshold = decision_threshold

    def fit(self, reference_scores: Sequence[float], reference_labels: Sequence[int]) -> CBPE:
        """Learn the map from score to probability of fraud on the reference (rows with known labels).

        Returns:
            self, with ``calibrator_`` and the reference's realised ``reference_precision_`` and
            ``reference_flags_`` (flags) and ``reference_true_flags_`` (frauds among them).

        Raises:
            SchemaError: lengths disagree, or the labels hold no fraud or only fraud.
        """
        from sklearn.isotonic import IsotonicRegression

        scores = np.asarray(reference_scores, dtype=float)
        labels = np.asarray(reference_labels, dtype=float)
        if len(scores) != len(labels):
            raise SchemaError(f"reference: {len(scores)} scores for {len(labels)} labels")
        if not 0 < labels.sum() < len(labels):
            raise SchemaError("the reference needs both frauds and genuine rows to calibrate scores; "
                              f"got {int(labels.sum())} frauds in {len(labels):,} rows")
        self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
        flagged = scores >= self.decision_threshold
        self.reference_flags_ = int(flagged.sum())
        self.reference_true_flags_ = int(labels[flagged].sum())
        self.reference_precision_ = self.reference_true_flags_ / max(self.reference_flags_, 1)
        return self

    def probabilities(self, scores: Sequence[float]) -> np.ndarray:
        """Calibrated probability of fraud for each score.

        Raises:
            NotFittedError: :meth:`fit` was not called.
        """
        if not hasattr(self, "calibrator_"):
            raise NotFittedError("this CBPE is not fitted yet; call estimator.fit(reference_scores, "
                                 "reference_labels) on rows whose labels are known")
        return self.calibrator_.predict(np.asarray(scores, dtype=float))

    def estimate(self, scores: Sequence[float]) -> dict[str, float]:
        """The expected confusion matrix of one window and what follows from it.

        Returns:
            ``flags``, ``expected_tp``, ``expected_fp``, ``expected_fn``, ``expected_tn``,
            ``precision``, ``precision_se``, ``recall`` (NaN where undefined).
        """
        scores = np.asarray(scores, dtype=float)
        flagged = scores >= self.decision_threshold
        return expected_confusion(self.probabilities(scores), flagged)


def expected_confusion(probabilities: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """The expected confusion matrix of rows with calibrated ``probabilities`` of which ``flagged`` are flags.

    Returns:
        As :meth:`CBPE.estimate`.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    flagged = np.asarray(flagged, dtype=bool)
    weekly = weekly_expected_confusion(probabilities, flagged, np.zeros(len(flagged), dtype=np.int64), 1)
    return {key: float(values[0]) for key, values in weekly.items()}


def weekly_expected_confusion(probabilities: np.ndarray, flagged: np.ndarray, week: np.ndarray,
                              weeks: int) -> dict[str, np.ndarray]:
    """:func:`expected_confusion` for every week at once (``week``: each row's week, 0 … weeks − 1).

    Cheap (a few sums per week), so a schedule can re-run it for every setting it tries.
    """
    if not len(probabilities) == len(flagged) == len(week):
        raise SchemaError(f"{len(probabilities)} probabilities, {len(flagged)} flags and {len(week)} weeks: "
                          "give one of each per row")
    if weeks < 1:
        raise ConfigError(f"weeks must be at least 1, got {weeks!r}")
    p = np.asarray(probabilities, dtype=float)
    flags = np.bincount(week, weights=flagged.astype(float), minlength=weeks)
    tp = np.bincount(week, weights=np.where(flagged, p, 0.0), minlength=weeks)
    fn = np.bincount(week, weights=np.where(flagged, 0.0, p), minlength=weeks)
    variance = np.bincount(week, weights=np.where(flagged, p * (1 - p), 0.0), minlength=weeks)
    rows = np.bincount(week, minlength=weeks).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"flags": flags, "expected_tp": tp, "expected_fp": flags - tp, "expected_fn": fn,
                "expected_tn": rows - flags - fn,
                "precision": np.where(flags > 0, tp / flags, np.nan),
                "precision_se": np.where(flags > 0, np.sqrt(variance) / flags, np.nan),
                "recall": np.where(tp + fn > 0, tp / (tp + fn), np.nan)}
