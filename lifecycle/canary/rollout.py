"""A canary rollout: raise the canary's weight step by step, gate each step, roll back or promote.

:class:`RolloutPlan` says how: the weights (default 5 → 25 → 50 → 100) and how much traffic a
step needs before its gates may judge. :class:`CanaryRollout` does it: at each weight it sends
the next transactions through the router, waits for the step's evidence (at least
``min_requests`` requests, and ``min_canary_requests`` of them on the canary), then runs every
gate on the canary against stable. The first failed gate rolls back at once (weight 0); passing
the 100% step promotes (the caller's ``promote``, e.g. moving the registry alias ``champion``).

At 100% stable gets no traffic of its own; its reference is then what it answered in the
earlier steps.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lifecycle.canary.gates import ArmSample, GateResult, default_gates
from lifecycle.canary.router import CANARY, STABLE, RouterServer
from lifecycle.errors import ConfigError


@dataclass(frozen=True)
class RolloutPlan:
    """The steps of a rollout and the evidence each needs.

    Args:
        steps: canary weights in percent, increasing, ending at 100.
        min_requests: requests every step sends before its gates judge.
        min_canary_requests: the canary's requests a step needs; a step that has fewer after
            ``min_requests`` sends more, ``min_requests // 4`` at a time.
        max_requests: the most a step sends; a canary still short of evidence then fails.
        concurrency: requests in flight at once.

    Raises:
        ConfigError: steps that do not increase within 1–100 and end at 100, or counts below 1.
    """

    steps: tuple[int, ...] = (5, 25, 50, 100)
    min_requests: int = 400
    min_canary_requests: int = 20
    max_requests: int = 1_600
    concurrency: int = 16

    def __post_init__(self) -> None:
        steps = tuple(int(s) for s in self.steps)
        object.__setattr__(self, "steps", steps)
        if not steps or steps[-1] != 100 or any(not a < b for a, b in zip((0, *steps), steps, strict=False)):
            raise ConfigError(f"rollout steps must increase from above 0 and end at 100, got {list(steps)}; "
                              "e.g. (5, 25, 50, 100)")
        counts = {"min_requests": self.min_requests, "min_canary_requests": self.min_canary_requests,
                  "concurrency": self.concurrency}
        if min(counts.values()) < 1 or self.max_requests < self.min_requests:
            raise ConfigError(f"rollout plan needs counts of at least 1 and max_requests >= min_requests, got "
                              f"{counts} and max_requests={self.max_requests}")

    @property
    def most_requests(self) -> int:
        """The most traffic the whole rollout can need."""
        return len(self.steps) * self.max_requests


@dataclass
class StepResult:
    """One step: its traffic, the evidence of each arm, and the gates' verdicts."""

    weight: int
    requests: int
    canary: ArmSample
    stable: ArmSample  # the reference the gates compared with
    reference: str  # "this step" or "earlier steps"
    gates: list[GateResult]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return [result for result in self.gates if not result.passed]

    def row(self) -> dict[str, Any]:
        """The step as one row of :meth:`CanaryRollout.timeline`."""
        return {"weight": self.weight, "requests": self.requests, "canary_requests": self.canary.requests,
                "canary_error_rate": self.canary.error_rate, "stable_error_rate": self.stable.error_rate,
                "canary_p99_ms": self.canary.latency_ms(99), "stable_p99_ms": self.stable.latency_ms(99),
                "canary_flagged": self.canary.flagged_share, "stable_flagged": self.stable.flagged_share,
                "stable_reference": self.reference, "passed": self.passed,
                "failed_gates": ", ".join(result.gate for result in self.failed), "seconds": self.seconds}


class CanaryRollout:
    """Run a :class:`RolloutPlan` through a served :class:`~lifecycle.canary.router.CanaryRouter`.

    Args:
        router_server: the router, served (see :func:`~lifecycle.canary.router.serve_router`).
        plan: the steps and the evidence per step (default :class:`RolloutPlan`).
        gates: callables ``(canary, stable, labels) -> GateResult`` (default
            :func:`~lifecycle.canary.gates.default_gates`).
        promote: called once after the 100% step passes, e.g. to move the ``champion`` alias;
            its return value is kept in ``promotion_``.

    Attributes (after :meth:`run`):
        steps_: a :class:`StepResult` per step taken.
        answers_: every client request's answer (see :func:`~lifecycle.canary.traffic.send_requests`)
            with its ``step`` and ``weight``.
        promoted_: whether every step passed and ``promote`` ran.
        rolled_back_at_: the weight whose gates failed (None when promoted).
    """

    def __init__(self, router_server: RouterServer, plan: RolloutPlan | None = None,
                 gates: Sequence[Callable[..., GateResult]] | None = None,
                 promote: Callable[[], Any] | None = None) -> None:
        self.router_server = router_server
        self.plan = plan or RolloutPlan()
        self.gates = list(gates) if gates is not None else default_gates()
        self.promote = promote

    def run(self, bodies: Sequence[dict[str, Any]], labels: Mapping[str, int] | None = None) -> CanaryRollout:
        """Take the plan's steps, sending ``bodies`` in order through the router; returns self.

        Args:
            bodies: transactions as JSON-ready dicts, in time order; each is sent once.
            labels: ``transaction_id → is_fraud`` for the precision gate; read after each step
                (late labels), and only for that step's transactions.

        Raises:
            ConfigError: the router has already rolled back, or ``bodies`` ran out before the plan finished.
        """
        from lifecycle.canary.traffic import send_requests

        router, url = self.router_server.router, f"{self.router_server.url}/predict"
        if router.rollback_reason_:
            raise ConfigError(f"this router has already rolled back ({router.rollback_reason_}); "
                              "start a new CanaryRouter for a new rollout")
        self.steps_: list[StepResult] = []
        self.promoted_, self.rolled_back_at_, self.promotion_ = False, None, None
        answers, position, stable_before = [], 0, []
        for number, weight in enumerate(self.plan.steps, start=1):
            window = router.set_weight(weight, f"step {number}: {weight}%")
            started, sent = time.monotonic(), 0
            while sent < self.plan.max_requests:
                size = min(self.plan.min_requests if sent == 0 else max(self.plan.min_requests // 4, 1),
                           self.plan.max_requests - sent)
                if position + size > len(bodies):
                    raise ConfigError(f"the rollout ran out of traffic at step {number} ({weight}%): it had "
                                      f"{len(bodies)} transactions; give it up to {self.plan.most_requests}")
                answers.append(send_requests(url, list(bodies[position:position + size]), self.plan.concurrency)
                               .assign(step=number, weight=weight))
                position, sent = position + size, sent + size
                if router.rollback_reason_ or window.routed(CANARY) >= self.plan.min_canary_requests:
                    break
            window.wait_idle()
            step = self._judge(window, weight, sent, stable_before, labels, time.monotonic() - started)
            self.steps_.append(step)
            if not step.passed:
                router.rollback(f"step {number} ({weight}%) failed {', '.join(g.gate for g in step.failed)}")
                self.rolled_back_at_ = weight
                break
            stable_before.append(ArmSample.from_answers(window.answers[STABLE]))
        else:
            self.promotion_ = self.promote() if self.promote is not None else None
            self.promoted_ = True
        self.answers_ = pd.concat(answers, ignore_index=True)
        return self

    def _judge(self, window: Any, weight: int, sent: int, stable_before: list[ArmSample],
               labels: Mapping[str, int] | None, seconds: float) -> StepResult:
        canary = ArmSample.from_answers(window.answers[CANARY])
        stable = ArmSample.from_answers(window.answers[STABLE])
        reference = "this step"
        if stable.answered < self.plan.min_canary_requests and stable_before:
            stable, reference = ArmSample.pooled(stable_before), "earlier steps"
        results = []
        reason = self.router_server.router.rollback_reason_
        if reason:
            results.append(GateResult("canary_available", False, f"the router rolled back by itself: {reason}"))
        elif canary.requests < self.plan.min_canary_requests:
            results.append(GateResult("evidence", False, f"the canary got {canary.requests} of {sent} requests; "
                                                         f"the plan needs {self.plan.min_canary_requests}",
                                      {"canary_requests": canary.requests}))
        results += [gate(canary, stable, labels) for gate in self.gates]
        return StepResult(weight, sent, canary, stable, reference, results, round(seconds, 3))

    def _check_run(self) -> None:
        if not hasattr(self, "steps_"):
            raise ConfigError("this CanaryRollout has not run yet; call .run(bodies, labels) first")

    def timeline(self) -> pd.DataFrame:
        """One row per step taken: weight, traffic, error rates, p99 latencies, flagged shares, verdict."""
        self._check_run()
        rows = [step.row() for step in self.steps_]
        return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="step"))

    @property
    def dropped_requests(self) -> int:
        """Client requests that got no 200 from the router."""
        self._check_run()
        return int((self.answers_["status"] != 200).sum())

    def report(self) -> str:
        """Every step's gates, one line each, and the outcome."""
        self._check_run()
        lines = []
        for step in self.steps_:
            lines.append(f"step {step.weight}%: {step.requests} requests, {step.canary.requests} to the canary "
                         f"(stable reference: {step.reference})")
            lines += [f"  {result}" for result in step.gates]
        outcome = (f"promoted after {len(self.steps_)} steps" if self.promoted_
                   else f"rolled back at {self.rolled_back_at_}%: weight is now {self.router_server.router.weight_}")
        return "\n".join([*lines, outcome])


def plot_timeline(rollouts: Mapping[str, CanaryRollout]) -> Any:
    """Per step: the canary's weight, and the error rate, p99 latency and flagged share of canary and
    stable; one column per rollout. A rollback shows as a last point at weight 0, named by its gates.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, len(rollouts), figsize=(4.8 * len(rollouts), 8.5), sharex="col", squeeze=False)
    for column, (title, rollout) in enumerate(rollouts.items()):
        table = rollout.timeline()
        steps, ticks = list(range(1, len(table) + 1)), [f"{weight}%" for weight in table["weight"]]
        weight_axis, error_axis, latency_axis, flagged_axis = axes[:, column]
        weight_axis.plot(steps, table["weight"], marker="o", color="#3b6ea5")
        if rollout.rolled_back_at_ is not None:
            after = len(steps) + 1
            weight_axis.plot([len(steps), after], [rollout.rolled_back_at_, 0], marker="o", color="#c0392b")
            weight_axis.annotate(table["failed_gates"].iloc[-1], (after, 0), color="#c0392b", ha="right",
                                 xytext=(0, 12), textcoords="offset points")
            ticks.append("rolled back")
        weight_axis.set(title=title, ylabel="canary weight (%)", ylim=(-5, 110))
        for arm, color in (("canary", "#e67e22"), ("stable", "#2c3e50")):
            error_axis.plot(steps, 100 * table[f"{arm}_error_rate"], marker="o", color=color, label=arm)
            latency_axis.plot(steps, table[f"{arm}_p99_ms"], marker="o", color=color, label=arm)
            flagged_axis.plot(steps, 100 * table[f"{arm}_flagged"], marker="o", color=color, label=arm)
        error_axis.set(ylabel="error rate (%)", ylim=(-1, max(10, 100 * table["canary_error_rate"].max() + 5)))
        latency_axis.set(ylabel="p99 latency (ms)", ylim=(0, None))
        flagged_axis.set(ylabel="flagged as fraud (%)", ylim=(-2, 105), xlabel="step (canary weight)")
        flagged_axis.set_xticks(range(1, len(ticks) + 1), ticks)
        flagged_axis.set_xlim(0.5, len(ticks) + 0.5)
        error_axis.legend(loc="upper left")
    fig.tight_layout()
    return fig
