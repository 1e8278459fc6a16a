"""The statistics behind the canary gates, vectorised over rollouts.

The gates (:mod:`~lifecycle.canary.gates`) call these on one rollout's evidence; the policy
simulator (:mod:`~lifecycle.canary.simulate`) calls the same functions on hundreds of simulated
rollouts at once, so what the simulator measures is the shipped policy, not a copy of it. Every
function takes arrays whose leading axis is the rollout.

* :func:`rate_log_likelihood_ratio`: Wald's sequential probability ratio test (SPRT) on two
  event rates, conditional on the events seen (each event is in the canary's arm or stable's,
  with odds set by the two arms' exposure and the rate ratio).
* :func:`binomial_upper_bound`: the exact (Clopper–Pearson) upper confidence bound on a rate.
* :func:`histogram`, :func:`pair_differences`, :func:`shift_interval`: values on a fixed grid of
  bins, and the Hodges–Lehmann shift between two samples with its Mann–Whitney confidence
  interval, computed from the two histograms (exact up to one bin), pooled over steps if need be.
* :func:`precision_drop_pvalue`: a one-sided test that one precision is more than a margin below
  another (Agresti–Caffo adjusted, good at small counts).

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import numpy as np
from scipy import special

# The distributions' functions from scipy.special, where scipy.stats' public wrappers (scipy 1.17) call the
# same ones after checking and broadcasting their arguments: the same values, without a wrapper's ~0.3 ms a
# call, paid at every look of every simulated rollout. Our arguments are valid by construction.
_normal_quantile, _normal_cdf, _beta_quantile = special.ndtri, special.ndtr, special.betaincinv

# Fraud scores are probabilities: 100 bins of 0.01. Latencies are compared as ratios, so their bins
# are equal on a log scale: 7% wide (the latency gate's tolerance is 25%), 128 of them from 0.5 ms to
# about 3 s (values outside go to the end bins; the router's canary timeout is 2 s). Powers of two
# keep the FFTs of the shift intervals small.
SCORE_BINS = 100
SCORE_BIN_WIDTH = 1.0 / SCORE_BINS
LATENCY_LOG_WIDTH = float(np.log(1.07))
LATENCY_LOG_LOW = float(np.log(0.5))
LATENCY_BINS = 128


def rate_log_likelihood_ratio(canary_events: np.ndarray, stable_events: np.ndarray, canary_exposure: np.ndarray,
                              stable_exposure: np.ndarray, alternative: float, null: float = 1.0) -> np.ndarray:
    """The SPRT's log-likelihood ratio of "canary rate = ``alternative`` × stable's" against ``null`` ×.

    Given the events both arms saw (users flagged, users with a failed request), each event is the
    canary's with probability ``r·e_c / (r·e_c + e_s)`` for a rate ratio ``r`` and exposures ``e``
    (users): the stable rate cancels, so nothing about it needs estimating. The sum of these log
    ratios over events is a martingale under the null: by Ville's inequality it reaches ``log(1/α)``
    with probability at most α, however often it is looked at.

    Args:
        canary_events, stable_events: events in each arm.
        canary_exposure, stable_exposure: units (users) each arm served; an arm with none adds 0.
        alternative: the rate ratio of the failure the test looks for (e.g. 10, or 0.1).
        null: the rate ratio of a canary as good as stable (1).

    Returns:
        The log-likelihood ratio, broadcast over the inputs.
    """
    canary_exposure = np.asarray(canary_exposure, dtype=float)
    stable_exposure = np.asarray(stable_exposure, dtype=float)
    both = (canary_exposure > 0) & (stable_exposure > 0)
    e_c, e_s = np.where(both, canary_exposure, 1.0), np.where(both, stable_exposure, 1.0)
    share_null = null * e_c / (null * e_c + e_s)
    share_alt = alternative * e_c / (alternative * e_c + e_s)
    ratio = (np.asarray(canary_events) * np.log(share_alt / share_null)
             + np.asarray(stable_events) * np.log((1 - share_alt) / (1 - share_null)))
    return np.where(both, ratio, 0.0)


def binomial_upper_bound(events: np.ndarray, trials: np.ndarray, alpha: float) -> np.ndarray:
    """The exact one-sided ``1 - alpha`` upper bound on a rate from ``events`` in ``trials`` (1 when no trials)."""
    events, trials = np.asarray(events, dtype=float), np.asarray(trials, dtype=float)
    safe = np.maximum(trials, 1.0)
    bound = _beta_quantile(events + 1, np.maximum(safe - events, 1e-9), 1 - alpha)
    return np.where((trials > 0) & (events < trials), bound, 1.0)


def histogram(values: np.ndarray, kind: str) -> np.ndarray:
    """Counts of ``values`` per bin: ``kind`` "score" (probabilities) or "latency" (milliseconds, log bins)."""
    values = np.asarray(values, dtype=float)
    if kind == "score":
        index = np.clip((values / SCORE_BIN_WIDTH).astype(int), 0, SCORE_BINS - 1)
        return np.bincount(index, minlength=SCORE_BINS)
    if kind == "latency":
        logs = np.log(np.maximum(values, 1e-6))
        index = np.clip(((logs - LATENCY_LOG_LOW) / LATENCY_LOG_WIDTH).astype(int), 0, LATENCY_BINS - 1)
        return np.bincount(index, minlength=LATENCY_BINS)
    raise ValueError(f"histogram kind must be 'score' or 'latency', got {kind!r}")


def pair_differences(canary: np.ndarray, stable: np.ndarray) -> np.ndarray:
    """How many (canary, stable) pairs differ by each number of bins, ``-(B-1)`` to ``B-1``.

    Args:
        canary, stable: histograms of shape ``(rollouts, bins)`` on the same grid.

    Returns:
        Counts of shape ``(rollouts, 2 * bins - 1)`` (a cross-correlation, computed by FFT).
    """
    canary, stable = np.atleast_2d(canary).astype(float), np.atleast_2d(stable).astype(float)
    bins = canary.shape[1]
    size = 1 << int(np.ceil(np.log2(2 * bins)))
    circular = np.rint(np.fft.irfft(np.fft.rfft(canary, size) * np.conj(np.fft.rfft(stable, size)), size))
    return np.concatenate([circular[:, size - bins + 1:], circular[:, :bins]], axis=1)


def shift_interval(pairs: np.ndarray, variance: np.ndarray, alpha: float) -> tuple[np.ndarray, ...]:
    """The Hodges–Lehmann shift in bins, with its ``1 - alpha`` two-sided interval, from pair counts.

    The shift is the median of all canary − stable differences; its interval comes from the
    Mann–Whitney statistic's null spread, as in Kayenta (Netflix's canary judge). Pairs may be
    pooled over several steps (each pair within one step, so like with like: van Elteren's
    stratified test), their variances added. On binned values a difference of ``d`` bins stands for
    a true difference within one bin of ``d``, so the interval is widened by a bin on each side.

    Args:
        pairs: :func:`pair_differences` (summed over steps), shape ``(rollouts, 2B - 1)``.
        variance: the Mann–Whitney statistic's null variance, ``Σ n_c n_s (n_c + n_s + 1) / 12``.
        alpha: the chance that the interval misses the true shift.

    Returns:
        ``(shift, low, high)`` in bins (float arrays, NaN where there are no pairs).
    """
    pairs = np.atleast_2d(pairs)
    reach = (pairs.shape[1] - 1) // 2
    lags = np.arange(-reach, reach + 1, dtype=float)
    total = pairs.sum(axis=1)
    spread = _normal_quantile(1 - alpha / 2) * np.sqrt(np.asarray(variance, dtype=float))
    rank_low = np.clip(np.floor(total / 2 - spread), 0, None) + 1
    cumulative = np.cumsum(pairs, axis=1)

    def lag_at(rank: np.ndarray) -> np.ndarray:
        return lags[(cumulative >= rank[:, None]).argmax(axis=1)]

    shift = lag_at(np.maximum(np.ceil(total / 2), 1))
    low, high = lag_at(rank_low) - 1, lag_at(np.maximum(total - rank_low + 1, 1)) + 1
    return tuple(np.where(total == 0, np.nan, value) for value in (shift, low, high))


def mann_whitney_variance(canary_n: np.ndarray, stable_n: np.ndarray) -> np.ndarray:
    """The null variance of the Mann–Whitney statistic for samples of these sizes (ties ignored: wider)."""
    canary_n, stable_n = np.asarray(canary_n, dtype=float), np.asarray(stable_n, dtype=float)
    return canary_n * stable_n * (canary_n + stable_n + 1) / 12.0


def precision_drop_pvalue(canary_confirmed: np.ndarray, canary_flags: np.ndarray, stable_confirmed: np.ndarray,
                          stable_flags: np.ndarray, margin: float) -> np.ndarray:
    """One-sided p-value of "the canary's precision is at most ``margin`` below stable's".

    Small when the canary's precision is clearly more than ``margin`` below. Uses the Agresti–Caffo
    adjustment (one confirmed and one false flag added to each arm), which keeps the error rate close
    to its nominal level down to about ten flags per arm.
    """
    n_c, n_s = np.asarray(canary_flags) + 2.0, np.asarray(stable_flags) + 2.0
    p_c, p_s = (np.asarray(canary_confirmed) + 1.0) / n_c, (np.asarray(stable_confirmed) + 1.0) / n_s
    spread = np.sqrt(p_c * (1 - p_c) / n_c + p_s * (1 - p_s) / n_s)
    return _normal_cdf((p_c - p_s + margin) / spread)
