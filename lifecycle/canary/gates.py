"""Canary gates: is the canary, on this step's evidence, no worse than stable?

Each gate compares what the canary answered in one step with what stable answered (the same
step, or earlier steps when stable got no traffic), and returns a :class:`GateResult` that says
whether it passed and why, with the numbers. Gates are small frozen objects: their thresholds
are their parameters, so ``print(gate)`` shows what it demands.

* :class:`ErrorRateGate`: the share of requests not answered 200 (no answer, 5xx, 4xx).
* :class:`LatencyGate`: the p99 latency of the answers.
* :class:`ScoreDistributionGate`: the model's own output, available at once: the share of
  transactions it flags and its mean fraud score.
* :class:`PrecisionGate`: precision on labelled feedback (confirmed fraud arrives late); it only
  judges when enough flagged transactions have labels, and says so otherwise.

The statistics of small steps: a 5% step of 400 requests gives the canary about 20. One fraud
burst (several transactions of one card within minutes) in those 20 moves its flagged share by
20 points, so a gate at 5% can only catch gross failures. Tolerances here shrink like 1/√n, as
the noise of a share does: later, larger steps catch smaller differences.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on one step."""

    gate: str
    passed: bool
    detail: str
    numbers: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.gate}: {'passed' if self.passed else 'FAILED'}: {self.detail}"


@dataclass
class ArmSample:
    """What one arm (stable or canary) did in a step: the evidence gates read.

    Attributes:
        requests: calls made to this arm.
        failures: calls not answered 200 (no answer, 5xx, or 4xx).
        latencies_ms: latency of each answered call.
        scores: fraud probability of each answered call.
        flagged: the model's decision (score >= its threshold) of each answered call.
        transaction_ids: the transaction of each answered call (to join late labels).
    """

    requests: int = 0
    failures: int = 0
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    flagged: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    transaction_ids: list[str | None] = field(default_factory=list)

    @classmethod
    def from_answers(cls, answers: Iterable[Any]) -> ArmSample:
        """Build from the router's :class:`~lifecycle.canary.router.Answer` records of one arm."""
        answers = list(answers)
        ok = [a for a in answers if a.status == 200]
        return cls(requests=len(answers), failures=len(answers) - len(ok),
                   latencies_ms=np.array([a.latency_ms for a in ok], dtype=float),
                   scores=np.array([a.fraud_probability for a in ok], dtype=float),
                   flagged=np.array([bool(a.is_fraud) for a in ok], dtype=bool),
                   transaction_ids=[a.transaction_id for a in ok])

    @classmethod
    def pooled(cls, samples: Iterable[ArmSample]) -> ArmSample:
        """All the evidence of several samples together (stable's earlier steps, for the 100% step)."""
        samples = list(samples)
        return cls(requests=sum(s.requests for s in samples), failures=sum(s.failures for s in samples),
                   latencies_ms=np.concatenate([s.latencies_ms for s in samples] or [np.empty(0)]),
                   scores=np.concatenate([s.scores for s in samples] or [np.empty(0)]),
                   flagged=np.concatenate([s.flagged for s in samples] or [np.empty(0, dtype=bool)]),
                   transaction_ids=[t for s in samples for t in s.transaction_ids])

    @property
    def answered(self) -> int:
        return len(self.scores)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def latency_ms(self, percentile: float) -> float:
        return float(np.percentile(self.latencies_ms, percentile)) if len(self.latencies_ms) else float("nan")

    @property
    def flagged_share(self) -> float:
        return float(self.flagged.mean()) if len(self.flagged) else float("nan")

    @property
    def mean_score(self) -> float:
        return float(self.scores.mean()) if len(self.scores) else float("nan")

    def labelled_flags(self, labels: Mapping[str, int] | None) -> tuple[int, int]:
        """(flagged transactions with a label, of which confirmed fraud)."""
        if not labels:
            return 0, 0
        flagged = [labels[t] for t, f in zip(self.transaction_ids, self.flagged, strict=True) if f and t in labels]
        return len(flagged), int(sum(flagged))


@dataclass(frozen=True)
class ErrorRateGate:
    """Pass when the canary's error rate is at most stable's plus ``max_increase``.

    Healthy servers fail no request, so the default is strict: one failure in 20 canary requests
    (5%) fails the gate.
    """

    max_increase: float = 0.01
    name: str = "error_rate"

    def __call__(self, canary: ArmSample, stable: ArmSample, labels: Mapping[str, int] | None = None) -> GateResult:
        limit = stable.error_rate + self.max_increase
        passed = canary.error_rate <= limit
        detail = (f"canary {canary.failures}/{canary.requests} failed ({canary.error_rate:.1%}), stable "
                  f"{stable.failures}/{stable.requests} ({stable.error_rate:.1%}); limit {limit:.1%}")
        return GateResult(self.name, passed, detail, {"canary": canary.error_rate, "stable": stable.error_rate,
                                                      "limit": limit})


@dataclass(frozen=True)
class LatencyGate:
    """Fail when the canary's p99 latency is over ``max(max_ratio × stable's, budget_ms)`` in at
    least ``min_slow`` answers.

    Slower than stable but within the latency budget of the caller (a card payment waits for the
    fraud check) is acceptable; so is one slow answer. With 20 canary answers the p99 is the
    slowest one, and on a shared laptop one scheduler hiccup makes it hundreds of milliseconds:
    one slow answer is a hiccup, ``min_slow`` of them over the limit is the canary's own tail.
    (With 200 or more answers, a p99 over the limit means at least two answers over it anyway.)
    """

    percentile: float = 99.0
    max_ratio: float = 2.0
    budget_ms: float = 250.0
    min_slow: int = 2
    name: str = "latency_p99"

    def __call__(self, canary: ArmSample, stable: ArmSample, labels: Mapping[str, int] | None = None) -> GateResult:
        ours, theirs = canary.latency_ms(self.percentile), stable.latency_ms(self.percentile)
        if np.isnan(ours) or np.isnan(theirs):
            return GateResult(self.name, False, f"no answered requests to measure (canary {canary.answered}, "
                                                f"stable {stable.answered})", {"canary": ours, "stable": theirs})
        limit = max(self.max_ratio * theirs, self.budget_ms)
        slow = int((canary.latencies_ms > limit).sum())
        passed = ours <= limit or slow < self.min_slow
        detail = (f"p{self.percentile:g} canary {ours:.1f} ms, stable {theirs:.1f} ms; limit {limit:.1f} ms; "
                  f"{slow} canary answer(s) over it (fails from {self.min_slow})")
        return GateResult(self.name, passed, detail, {"canary": ours, "stable": theirs, "limit": limit,
                                                      "slow_answers": slow})


@dataclass(frozen=True)
class ScoreDistributionGate:
    """Pass when the canary's flagged share and mean score are within ``tolerance / √n`` of stable's.

    ``n`` is the canary's answered requests: 20 answers allow 0.34 (one fraud burst can flag a
    quarter of them), 200 allow 0.11. Both models' outputs are probabilities of the same event,
    so their means and flag rates are comparable, though their exact scores are not: two good
    models differ in calibration, and a test on the raw score distributions (Kolmogorov–Smirnov)
    rejects them both.
    """

    tolerance: float = 1.5
    name: str = "score_distribution"

    def __call__(self, canary: ArmSample, stable: ArmSample, labels: Mapping[str, int] | None = None) -> GateResult:
        if not canary.answered or not stable.answered:
            return GateResult(self.name, False, f"no scores to compare (canary {canary.answered}, stable "
                                                f"{stable.answered} answers)")
        limit = self.tolerance / np.sqrt(canary.answered)
        flag_gap = canary.flagged_share - stable.flagged_share
        mean_gap = canary.mean_score - stable.mean_score
        passed = abs(flag_gap) <= limit and abs(mean_gap) <= limit
        detail = (f"flagged {int(canary.flagged.sum())}/{canary.answered} ({canary.flagged_share:.1%}) vs stable "
                  f"{stable.flagged_share:.1%}; mean score {canary.mean_score:.3f} vs {stable.mean_score:.3f}; "
                  f"allowed gap {limit:.3f} with {canary.answered} canary answers")
        return GateResult(self.name, passed, detail, {"canary_flagged": canary.flagged_share,
                                                      "stable_flagged": stable.flagged_share,
                                                      "canary_mean": canary.mean_score,
                                                      "stable_mean": stable.mean_score, "limit": float(limit)})


@dataclass(frozen=True)
class PrecisionGate:
    """Pass when the canary's precision on labelled flags is at most ``max_drop`` below stable's.

    Judges only when both arms have at least ``min_flagged`` flagged transactions with labels;
    otherwise it passes and says there was not enough evidence (at 5%, there rarely is).
    """

    min_flagged: int = 10
    max_drop: float = 0.3
    name: str = "precision"

    def __call__(self, canary: ArmSample, stable: ArmSample, labels: Mapping[str, int] | None = None) -> GateResult:
        (c_flagged, c_fraud), (s_flagged, s_fraud) = canary.labelled_flags(labels), stable.labelled_flags(labels)
        if min(c_flagged, s_flagged) < self.min_flagged:
            return GateResult(self.name, True, f"not enough labelled flags to judge (canary {c_flagged}, stable "
                                               f"{s_flagged}; needs {self.min_flagged} each)",
                              {"canary_flagged": c_flagged, "stable_flagged": s_flagged})
        ours, theirs = c_fraud / c_flagged, s_fraud / s_flagged
        detail = (f"precision canary {c_fraud}/{c_flagged} ({ours:.2f}), stable {s_fraud}/{s_flagged} "
                  f"({theirs:.2f}); lowest allowed {theirs - self.max_drop:.2f}")
        return GateResult(self.name, ours >= theirs - self.max_drop, detail,
                          {"canary": ours, "stable": theirs, "canary_flagged": c_flagged, "stable_flagged": s_flagged})


def default_gates() -> list[Any]:
    """The gates every step must pass: error rate, p99 latency, score distribution, precision."""
    return [ErrorRateGate(), LatencyGate(), ScoreDistributionGate(), PrecisionGate()]
