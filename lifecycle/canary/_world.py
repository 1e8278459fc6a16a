"""The policy simulator's world: the simulated traffic, the failure kinds, and one look's evidence per arm.

:mod:`~lifecycle.canary.simulate` runs the kit's plan and gates over what this samples; the numbers
(:class:`Traffic`'s defaults) are close to lessons 05–06's data and models.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from lifecycle.canary.stats import LATENCY_BINS, LATENCY_LOG_LOW, LATENCY_LOG_WIDTH, SCORE_BINS
from lifecycle.errors import ConfigError

# Failure kinds: what the canary does differently, and the default size of the difference.
KINDS = {
    "good": ("a good challenger", None),
    "never_flags": ("never flags", 0.0),  # flag ratio
    "flags_10x": ("flags 10× as often", 10.0),  # flag ratio
    "errors_4x": ("4× the error rate", 4.0),  # error ratio
    "latency_plus_50pct": ("+50% latency (p99 too)", 1.5),  # latency ratio
    "precision_minus_5pts": ("precision 5 points lower", 0.05),  # precision drop at the same flag rate
}


@dataclass(frozen=True)
class Traffic:
    """The simulated traffic and stable's behaviour (defaults close to lessons 05–06's data and models)."""

    legit_requests: float = 1.25  # requests per legitimate visit
    burst_requests: float = 2.5  # requests per fraud burst
    fraud_visits: float = 0.0076  # share of visits that are fraud bursts (1.5% of requests)
    detect: float = 0.65  # share of bursts stable flags
    false_alarm: float = 0.0019  # share of legitimate visits stable flags
    agreement: float = 0.9  # in shadow: how often a good canary flags a burst stable flagged
    error_rate: float = 0.005  # failed requests, both servers (timeouts of a busy service)
    latency_ms: float = 6.0  # median latency
    latency_sigma: float = 0.3
    labelled: float = 1.0  # share of flagged users whose labels come back by the next look

    @property
    def requests_per_visit(self) -> float:
        return (1 - self.fraud_visits) * self.legit_requests + self.fraud_visits * self.burst_requests

    def flagged(self) -> float:
        return self.fraud_visits * self.detect + (1 - self.fraud_visits) * self.false_alarm


@dataclass(frozen=True)
class _Model:
    detect: float
    false_alarm: float
    error_rate: float
    latency_ratio: float


def canary_model(kind: str, size: float | None, traffic: Traffic) -> _Model:
    if kind not in KINDS:
        raise ConfigError(f"unknown failure kind {kind!r}; choose one of {sorted(KINDS)}")
    size = KINDS[kind][1] if size is None else float(size)
    model = _Model(traffic.detect, traffic.false_alarm, traffic.error_rate, 1.0)
    f = traffic.fraud_visits
    if kind in ("never_flags", "flags_10x"):
        target = size * traffic.flagged()  # the canary's flagged share of visits
        detect = min(traffic.detect, target / f) if size < 1 else traffic.detect
        model = _Model(detect, max(target - f * detect, 0.0) / (1 - f), traffic.error_rate, 1.0)
    elif kind == "errors_4x":
        model = _Model(traffic.detect, traffic.false_alarm, size * traffic.error_rate, 1.0)
    elif kind == "latency_plus_50pct":
        model = _Model(traffic.detect, traffic.false_alarm, traffic.error_rate, size)
    elif kind == "precision_minus_5pts":
        flagged = traffic.flagged()
        detect = (f * traffic.detect / flagged - size) * flagged / f
        model = _Model(detect, (flagged - f * detect) / (1 - f), traffic.error_rate, 1.0)
    return model


def score_bins() -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(0, 1, SCORE_BINS + 1)
    low = np.diff(stats.beta.cdf(edges, 0.6, 120))  # an unflagged user's mean score
    high = np.diff(stats.beta.cdf(edges, 6, 3))  # a flagged user's (flagged transactions score high)
    return low / low.sum(), high / high.sum()


def latency_bins(traffic: Traffic, ratio: float) -> np.ndarray:
    edges = LATENCY_LOG_LOW + LATENCY_LOG_WIDTH * np.arange(LATENCY_BINS + 1)
    p = np.diff(stats.norm.cdf(edges, np.log(traffic.latency_ms * ratio), traffic.latency_sigma))
    p[0] += 1 - p.sum()
    return np.clip(p, 0, None) / np.clip(p, 0, None).sum()


def sample_arm(rng: np.random.Generator, users: np.ndarray, requests: np.ndarray, model: _Model, traffic: Traffic,
                detections: np.ndarray | None, fraud: np.ndarray | None, bins: dict) -> dict[str, np.ndarray]:
    """One arm's evidence from ``users`` visits; in shadow, ``fraud`` and stable's ``detections`` pair them."""
    if fraud is None:
        fraud = rng.binomial(users, traffic.fraud_visits)
    if detections is None:
        detected = rng.binomial(fraud, model.detect)
    else:  # the same bursts as stable: agree on most of what it caught
        agree = min(1.0, traffic.agreement * model.detect / traffic.detect)
        otherwise = np.clip((model.detect - traffic.detect * agree) / (1 - traffic.detect), 0, 1)
        detected = rng.binomial(detections, agree) + rng.binomial(fraud - detections, otherwise)
    alarms = rng.binomial(users - fraud, model.false_alarm)
    flagged = detected + alarms
    labelled_true, labelled_false = rng.binomial(detected, traffic.labelled), rng.binomial(alarms, traffic.labelled)
    per_user_failure = 1 - (1 - model.error_rate) ** traffic.requests_per_visit
    return {"requests": requests, "users": users, "failed_users": rng.binomial(users, per_user_failure),
            "flagged_users": flagged, "labelled_flagged": labelled_true + labelled_false,
            "confirmed_flagged": labelled_true,
            # Histograms as independent Poisson counts per bin (a multinomial's counts, up to their total):
            # vectorised over rollouts, where a multinomial draw loops over its bins.
            "score_hist": rng.poisson(flagged[:, None] * bins["high"] + (users - flagged)[:, None] * bins["low"]),
            "latency_hist": rng.poisson(requests[:, None] * bins[model.latency_ratio]),
            "_fraud": fraud, "_detected": detected}
