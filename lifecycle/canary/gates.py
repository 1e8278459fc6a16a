"""Canary gates: statistical tests that say advance, hold or roll back, with the numbers behind it.

A gate reads the evidence of every step so far (a list of
:class:`~lifecycle.canary.evidence.StepEvidence`, counted per user) and returns one of three verdicts:

* ``rollback``: the evidence shows the canary worse than stable beyond the gate's tolerance;
* ``advance``: the evidence shows it within the tolerance;
* ``hold``: neither yet. Thin evidence is a hold, never a pass: the step gets more traffic.

Every comparison is within one step, where both arms served at the same time (and, for latency, at
50%, where both serve users on equal terms). Repeated looks are paid for, so a gate's false-rollback rate holds for the
whole rollout, not per look:

* the rate gates (:class:`ErrorRateGate`, :class:`FlagRateGate`) run Wald's SPRT over all the
  steps' events: its likelihood ratio is a martingale under "as good as stable", so it crosses
  ``1/α`` with probability at most α however often it is read (Ville's inequality);
* the other gates test at ``α / looks`` at each look, ``looks`` being the most the plan allows
  (Bonferroni: crude, and valid whatever the looks have in common).

:func:`default_gates` splits the rollout's false-rollback budget (default 5%) equally over its five
gates. Thresholds are each gate's parameters, so ``print(gate)`` shows what it demands.

One module over 300 lines on purpose: the five gates are one policy, sharing one error budget, one
verdict code and one way of describing themselves, and a reader checks the budget's arithmetic in one place.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lifecycle.canary.evidence import CANARY_ARM, STABLE_ARM, StepEvidence
from lifecycle.canary.stats import (
    LATENCY_LOG_WIDTH,
    SCORE_BIN_WIDTH,
    binomial_upper_bound,
    mann_whitney_variance,
    precision_drop_pvalue,
    rate_log_likelihood_ratio,
    shift_interval,
)

VERDICTS = ("advance", "hold", "rollback")
ADVANCE, HOLD, ROLLBACK = 0, 1, 2


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict at one look: ``verdict`` is one of :data:`VERDICTS`."""

    gate: str
    verdict: str
    detail: str
    test: str = ""
    numbers: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.gate}: {self.verdict}: {self.detail}"


class _Gate:
    """What every gate shares: a vectorised verdict (``evaluate``) and a worded one (``__call__``)."""

    name = "gate"

    def evaluate(self, steps: Sequence[StepEvidence], looks: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Verdict codes (``ADVANCE``, ``HOLD``, ``ROLLBACK``) per rollout, and the numbers behind them."""
        raise NotImplementedError

    def describe(self, numbers: dict[str, float], steps: Sequence[StepEvidence]) -> str:
        raise NotImplementedError

    @property
    def test(self) -> str:
        raise NotImplementedError

    def __call__(self, steps: Sequence[StepEvidence], looks: int = 1) -> GateResult:
        """The verdict on one rollout's evidence (the steps so far, the current one last)."""
        codes, numbers = self.evaluate(steps, looks)
        scalars = {key: float(np.asarray(value).ravel()[0]) for key, value in numbers.items()}
        return GateResult(self.name, VERDICTS[int(codes[0])], self.describe(scalars, steps), self.test, scalars)


def _sum(steps: Sequence[StepEvidence], name: str, arm: int) -> np.ndarray:
    return sum(step.arm(name, arm) for step in steps)


@dataclass(frozen=True)
class ErrorRateGate(_Gate):
    """Failed requests, per user: does the canary fail ``ratio`` × as many users as stable?

    An SPRT of "``ratio`` × stable's failure rate" against "the same rate". Healthy servers fail no
    request, and with no failures the ratio has no evidence either way, so the gate also advances
    when the canary's own rate is shown below ``max_rate`` (its exact upper bound at ``1 - beta``).
    """

    ratio: float = 4.0
    max_rate: float = 0.02
    alpha: float = 0.01
    beta: float = 0.01
    name: str = "error_rate"

    def evaluate(self, steps: Sequence[StepEvidence], looks: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        llr = sum(rate_log_likelihood_ratio(s.arm("failed_users", CANARY_ARM), s.arm("failed_users", STABLE_ARM),
                                            s.arm("users", CANARY_ARM), s.arm("users", STABLE_ARM), self.ratio)
                  for s in steps)
        failed, users = _sum(steps, "failed_users", CANARY_ARM), _sum(steps, "users", CANARY_ARM)
        upper = binomial_upper_bound(failed, users, self.beta)
        codes = np.where(llr >= np.log(1 / self.alpha), ROLLBACK,
                         np.where((llr <= np.log(self.beta)) | (upper < self.max_rate), ADVANCE, HOLD))
        return codes, {"log_lr": llr, "canary_failed": failed, "canary_users": users, "canary_upper": upper,
                       "stable_failed": _sum(steps, "failed_users", STABLE_ARM),
                       "stable_users": _sum(steps, "users", STABLE_ARM)}

    @property
    def test(self) -> str:
        return (f"SPRT per user, {self.ratio:g}× stable's failure rate against the same rate (α={self.alpha:g}, "
                f"β={self.beta:g}), or the canary's rate shown below {self.max_rate:.1%}")

    def describe(self, n: dict[str, float], steps: Sequence[StepEvidence]) -> str:
        return (f"users with a failed request: canary {n['canary_failed']:.0f} of {n['canary_users']:,.0f}, stable "
                f"{n['stable_failed']:.0f} of {n['stable_users']:,.0f}; log LR {n['log_lr']:+.2f} (rollback at "
                f"{np.log(1 / self.alpha):.2f}, advance at {np.log(self.beta):.2f}, or when the canary's rate is "
                f"shown below {self.max_rate:.1%}: its upper bound is {n['canary_upper']:.2%})")


@dataclass(frozen=True)
class FlagRateGate(_Gate):
    """Flagged users: does the canary flag ``high`` × as often as stable, or ``low`` × as often?

    Two SPRTs against "as often as stable", each at ``alpha / 2``. The sides differ on purpose: good
    models often flag fewer users than each other (a stricter threshold; the lesson's challengers flag
    about half to one and a half times as many as the champion), so the low side names only a near-silent
    model, while flagging several times as many users blocks that many more genuine customers at once:
    a canary flagging three times as often is held, then rolled back for lack of evidence, and is
    promoted in very few simulated rollouts (``high`` at 10 would promote about a third of them).

    The model's own decisions are there at once, long before any label. Loud failures (flagging
    everything) are clear within a few dozen answers; a model that never flags is only told apart from
    a good one once stable has flagged about ten users, which at a flag rate near one user in a hundred
    takes a thousand or more: a 5% step cannot see it soon, a shadow step over all the traffic can.
    """

    high: float = 5.0
    low: float = 0.1
    alpha: float = 0.01
    beta: float = 0.01
    name: str = "flag_rate"

    def evaluate(self, steps: Sequence[StepEvidence], looks: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        def llr(ratio: float) -> np.ndarray:
            return sum(rate_log_likelihood_ratio(s.arm("flagged_users", CANARY_ARM), s.arm("flagged_users", STABLE_ARM),
                                                 s.arm("users", CANARY_ARM), s.arm("users", STABLE_ARM), ratio)
                       for s in steps)

        high, low = llr(self.high), llr(self.low)
        codes = np.where(np.maximum(high, low) >= np.log(2 / self.alpha), ROLLBACK,
                         np.where(np.maximum(high, low) <= np.log(self.beta), ADVANCE, HOLD))
        return codes, {"log_lr_high": high, "log_lr_low": low,
                       "canary_flagged": _sum(steps, "flagged_users", CANARY_ARM),
                       "canary_users": _sum(steps, "users", CANARY_ARM),
                       "stable_flagged": _sum(steps, "flagged_users", STABLE_ARM),
                       "stable_users": _sum(steps, "users", STABLE_ARM)}

    @property
    def test(self) -> str:
        return (f"two SPRTs per user, {self.high:g}× and {self.low:g}× stable's flag rate against the same rate "
                f"(α={self.alpha:g} for both, β={self.beta:g})")

    def describe(self, n: dict[str, float], steps: Sequence[StepEvidence]) -> str:
        return (f"flagged users: canary {n['canary_flagged']:.0f} of {n['canary_users']:,.0f}, stable "
                f"{n['stable_flagged']:.0f} of {n['stable_users']:,.0f}; log LR '{self.high:g}× as often' "
                f"{n['log_lr_high']:+.2f}, '{self.low:g}× as often' {n['log_lr_low']:+.2f} (rollback at "
                f"{np.log(2 / self.alpha):.2f}, advance when both are at or below {np.log(self.beta):.2f})")


def _shifts(steps: Sequence[StepEvidence], looks: int, field_name: str, minimum: int, alpha: float,
            equal_load_only: bool) -> dict[str, np.ndarray]:
    """The Hodges–Lehmann shift of ``field_name`` and its interval, from the pairs within each step
    (equal-load steps only, if asked), once both arms have ``minimum`` values; NaN before that."""
    rollouts = steps[0].requests.shape[0] if steps else 1
    bins = getattr(steps[0], field_name).shape[2] if steps else 1
    pairs, variance = np.zeros((rollouts, 2 * bins - 1)), np.zeros(rollouts)
    canary_n, stable_n, used = np.zeros(rollouts), np.zeros(rollouts), np.zeros(rollouts)
    for index, step in enumerate(steps):
        if equal_load_only and not step.equal_load:
            continue
        hist = getattr(step, field_name)
        n = hist.sum(axis=2)
        rows = (n[:, CANARY_ARM] > 0) & (n[:, STABLE_ARM] > 0)
        if rows.any():
            pairs[rows] += step.pair_counts(field_name, rows)
        variance += mann_whitney_variance(n[:, CANARY_ARM], n[:, STABLE_ARM])
        canary_n, stable_n = canary_n + n[:, CANARY_ARM], stable_n + n[:, STABLE_ARM]
        used += rows * 2.0 ** index  # which steps the pairs came from, as bits
    picked = {key: np.full(rollouts, np.nan) for key in ("shift", "low", "high")}
    enough = (canary_n >= minimum) & (stable_n >= minimum)
    if enough.any():
        for key, value in zip(("shift", "low", "high"), shift_interval(pairs[enough], variance[enough], alpha / looks),
                              strict=True):
            picked[key][enough] = value
    return {**picked, "canary_n": canary_n, "stable_n": stable_n, "steps_used": used,
            "looks": np.full(rollouts, float(looks))}


def _step_names(steps: Sequence[StepEvidence], used: float) -> str:
    names = [step.name for index, step in enumerate(steps) if int(used) >> index & 1]
    return (" and ".join(names) + (" steps" if len(names) > 1 else " step")) if names else "no step"


@dataclass(frozen=True)
class ScoreDistributionGate(_Gate):
    """Each user's mean fraud score: has the canary's whole distribution moved by more than ``tolerance``?

    Pairs are formed within each step (the same time's traffic) and pooled over the steps so far.

    Two good models rank transactions alike but differ in calibration, so their raw score
    distributions always differ a little (a Kolmogorov–Smirnov test with hundreds of answers rejects
    any two); the tolerance on the shift (in probability) lets those through and catches a model whose
    outputs moved as a whole: flipped labels, a broken feature, a different scale.
    """

    tolerance: float = 0.05
    alpha: float = 0.01
    min_users: int = 50
    name: str = "score_distribution"

    def evaluate(self, steps: Sequence[StepEvidence], looks: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = _shifts(steps, looks, "score_hist", self.min_users, self.alpha, equal_load_only=False)
        low, high = n["low"] * SCORE_BIN_WIDTH, n["high"] * SCORE_BIN_WIDTH
        outside = (low > self.tolerance) | (high < -self.tolerance)
        inside = (low >= -self.tolerance) & (high <= self.tolerance)
        codes = np.where(np.isnan(low), HOLD, np.where(outside, ROLLBACK, np.where(inside, ADVANCE, HOLD)))
        return codes, {**n, "shift": n["shift"] * SCORE_BIN_WIDTH, "low": low, "high": high}

    @property
    def test(self) -> str:
        return (f"Mann–Whitney per user on the mean score, Hodges–Lehmann shift within ±{self.tolerance:g} "
                f"(α={self.alpha:g} over the rollout's looks, at least {self.min_users} users per arm)")

    def describe(self, n: dict[str, float], steps: Sequence[StepEvidence]) -> str:
        if np.isnan(n["low"]):
            return f"not enough evidence: fewer than {self.min_users} users on each arm so far"
        return (f"on the {_step_names(steps, n['steps_used'])} ({n['canary_n']:,.0f} canary, {n['stable_n']:,.0f} "
                f"stable users): mean score per user shifted by {n['shift']:+.3f} (interval {n['low']:+.3f} to "
                f"{n['high']:+.3f} at level {1 - self.alpha / n['looks']:.4f}); tolerance ±{self.tolerance:g}")


@dataclass(frozen=True)
class LatencyGate(_Gate):
    """Request latency: is the canary typically more than ``tolerance`` × as slow as stable?

    Compared as a ratio (the shift of log latencies), at the 50% split, the one step where both arms
    serve users on equal terms. At 5% the canary idles while stable queues, and at 100% the opposite;
    in shadow both get every request, but the client waits for stable's answer only, so the canary's
    copy runs behind the next requests' work (two servers of one model measured ×1.1–1.5 apart there
    on one machine). So before the 50% step the gate does not judge (and does not block); a plan must
    have one (see :class:`~lifecycle.canary.plan.RolloutPlan`). A median-type shift is robust to
    the odd scheduler hiccup that makes a p99 of a few dozen answers meaningless.
    """

    tolerance: float = 1.25
    alpha: float = 0.01
    # Answers per arm before judging: a scheduler pause slows one server's next requests together, and
    # the test takes requests as independent; 400 at 50% spread a judgement over several looks' time (a
    # good canary was rolled back at ×10 on 195 answers while another process held the cores).
    min_requests: int = 400
    name: str = "latency"

    def evaluate(self, steps: Sequence[StepEvidence], looks: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = _shifts(steps, looks, "latency_hist", self.min_requests, self.alpha, equal_load_only=True)
        ratio, low, high = (np.exp(n[key] * LATENCY_LOG_WIDTH) for key in ("shift", "low", "high"))
        # Before the plan's first equal-load step, this step's load is not comparable: not judged here.
        reached = sum((s.requests.sum(axis=1) > 0) & s.equal_load for s in steps) > 0
        waiting = np.isnan(low) & ~reached
        codes = np.where(waiting, ADVANCE, np.where(np.isnan(low), HOLD, np.where(
            low > self.tolerance, ROLLBACK, np.where(high < self.tolerance, ADVANCE, HOLD))))
        return codes, {**n, "ratio": ratio, "low": low, "high": high, "waiting": waiting.astype(float)}

    @property
    def test(self) -> str:
        return (f"Mann–Whitney per request on log latency, Hodges–Lehmann ratio under ×{self.tolerance:g} "
                f"(α={self.alpha:g} over the rollout's looks; at 50% only)")

    def describe(self, n: dict[str, float], steps: Sequence[StepEvidence]) -> str:
        if n["waiting"]:
            return (f"not judged at the {steps[-1].name} step: the arms do not serve on equal terms; judged at "
                    "the plan's 50% step, before any promotion")
        if np.isnan(n["low"]):
            return f"not enough evidence: fewer than {self.min_requests} answers on each arm at 50% so far"
        return (f"on the {_step_names(steps, n['steps_used'])} ({n['canary_n']:,.0f} canary, {n['stable_n']:,.0f} "
                f"stable answers): canary latency ×{n['ratio']:.2f} stable's (interval ×{n['low']:.2f} to "
                f"×{n['high']:.2f}); tolerance ×{self.tolerance:g}")


@dataclass(frozen=True)
class PrecisionGate(_Gate):
    """Labelled flags: is the canary's precision more than ``max_drop`` below stable's?

    Judged only when both arms have ``min_flags`` flagged users with labels; until then ``hold``,
    never a pass. With tens of labelled flags it catches a collapse (a model that flags the wrong
    transactions), not a drop of a few points, which takes thousands of labels: that is what
    monitoring after the rollout is for (lesson 07).
    """

    max_drop: float = 0.3
    min_flags: int = 10
    alpha: float = 0.01
    name: str = "precision"

    def evaluate(self, steps: Sequence[StepEvidence], looks: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        flags_c, flags_s = _sum(steps, "labelled_flagged", CANARY_ARM), _sum(steps, "labelled_flagged", STABLE_ARM)
        fraud_c, fraud_s = _sum(steps, "confirmed_flagged", CANARY_ARM), _sum(steps, "confirmed_flagged", STABLE_ARM)
        pvalue = precision_drop_pvalue(fraud_c, flags_c, fraud_s, flags_s, self.max_drop)
        enough = np.minimum(flags_c, flags_s) >= self.min_flags
        codes = np.where(~enough, HOLD, np.where(pvalue < self.alpha / looks, ROLLBACK, ADVANCE))
        return codes, {"canary_flags": flags_c, "canary_fraud": fraud_c, "stable_flags": flags_s,
                       "stable_fraud": fraud_s, "p_value": pvalue,
                       "looks": np.full(pvalue.shape, float(looks))}

    @property
    def test(self) -> str:
        return (f"one-sided test of a precision drop over {self.max_drop:g} (Agresti–Caffo; α={self.alpha:g} over the "
                f"rollout's looks), judged with at least {self.min_flags} labelled flagged users per arm")

    def describe(self, n: dict[str, float], steps: Sequence[StepEvidence]) -> str:
        counts = f"labelled flagged users: canary {n['canary_flags']:.0f}, stable {n['stable_flags']:.0f}"
        if min(n["canary_flags"], n["stable_flags"]) < self.min_flags:
            return f"not enough labelled flags to judge ({counts}; needs {self.min_flags} each)"
        ours, theirs = n["canary_fraud"] / n["canary_flags"], n["stable_fraud"] / n["stable_flags"]
        return (f"precision canary {n['canary_fraud']:.0f}/{n['canary_flags']:.0f} ({ours:.2f}), stable "
                f"{n['stable_fraud']:.0f}/{n['stable_flags']:.0f} ({theirs:.2f}); a drop over {self.max_drop:g} has "
                f"p = {n['p_value']:.3g} (rollback below {self.alpha / n['looks']:.2g})")


def default_gates(alpha: float = 0.05, beta: float = 0.01) -> list[Any]:
    """The kit's gates, splitting the rollout's false-rollback budget ``alpha`` equally over them.

    Args:
        alpha: the most a rollout of a canary as good as stable may be rolled back by a test (the sum
            of the gates' error rates: a union bound over gates, and over looks within each).
        beta: the chance a rate gate advances a canary that has the failure it tests for.
    """
    share = alpha / 5
    return [ErrorRateGate(alpha=share, beta=beta), FlagRateGate(alpha=share, beta=beta),
            ScoreDistributionGate(alpha=share), LatencyGate(alpha=share), PrecisionGate(alpha=share)]


def combine_verdicts(codes: Sequence[np.ndarray], canary_requests: np.ndarray, min_canary_requests: int) -> np.ndarray:
    """The step's verdict per rollout: roll back if any gate does; advance when every gate does and
    the canary has answered ``min_canary_requests`` in this step; hold otherwise."""
    stacked = np.stack([np.asarray(c) for c in codes])
    enough = np.asarray(canary_requests) >= min_canary_requests
    return np.where((stacked == ROLLBACK).any(axis=0), ROLLBACK,
                    np.where((stacked == ADVANCE).all(axis=0) & enough, ADVANCE, HOLD))
