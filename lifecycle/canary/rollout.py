"""A canary rollout: shadow first, then a growing share of users, each step gated by statistics.

:class:`~lifecycle.canary.plan.RolloutPlan` says how: the steps (default shadow → 5 → 25 → 50 → 100)
and the traffic a step may use. :class:`CanaryRollout` does it, step by step:

1. set the router's weight (in shadow, mirror every request to the canary; users get stable's answer);
2. send ``min_requests`` transactions, then **look**: every gate reads the evidence of all steps so
   far and says advance, hold or roll back;
3. on hold, send ``look_every`` more and look again, up to ``max_requests`` (``shadow_max_requests``
   in shadow, which exposes nobody and so may take longer); a step still holding then rolls back
   with "not enough evidence to promote" (the safe default: the canary has not earned more traffic);
4. the first rollback sends everyone to stable at once; when the last judged step advances, the
   canary gets 100% and ``promote`` runs.

The last judgement happens while stable still serves its share (at 50% by default): at 100%
stable has no traffic left to compare with, and comparing with what it did earlier, at another
load, is not like with like.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lifecycle.canary.evidence import CANARY, CANARY_ARM, SHADOW, STABLE, STABLE_ARM, StepEvidence, summarise_answers
from lifecycle.canary.gates import VERDICTS, GateResult, combine_verdicts, default_gates
from lifecycle.canary.plan import RolloutPlan
from lifecycle.canary.serve import RouterServer
from lifecycle.errors import ConfigError


@dataclass
class Look:
    """One look at a step: the traffic so far, every gate's verdict, and the step's."""

    number: int
    requests: int
    canary_requests: int
    gates: list[GateResult]
    verdict: str

    def holding(self) -> list[str]:
        return [g.gate for g in self.gates if g.verdict == "hold"]

    def rolling_back(self) -> list[str]:
        return [g.gate for g in self.gates if g.verdict == "rollback"]


@dataclass
class StepResult:
    """One step: its looks, its evidence, and how it ended (``verdict`` and ``reason``)."""

    name: str  # "shadow" or e.g. "25%"
    weight: int
    shadow: bool
    evidence: StepEvidence
    looks: list[Look] = field(default_factory=list)
    verdict: str = "hold"
    reason: str = ""
    seconds: float = 0.0


class CanaryRollout:
    """Run a :class:`RolloutPlan` through a served :class:`~lifecycle.canary.router.CanaryRouter`.

    Args:
        router_server: the router, served (see :func:`~lifecycle.canary.serve.serve_router`).
        plan: the steps and their traffic (default :class:`RolloutPlan`).
        gates: the gates every look asks (default :func:`~lifecycle.canary.gates.default_gates`).
        promote: called once when the last judged step advances, e.g. to move the ``champion`` alias;
            its return value is kept in ``promotion_``.

    Raises:
        ConfigError: gates the plan cannot serve (see :meth:`RolloutPlan.check_gates`).

    Attributes (after :meth:`run`):
        steps_: a :class:`StepResult` per step taken.
        answers_: every client request's answer (see :func:`~lifecycle.canary.traffic.send_requests`)
            with its ``step`` (name) and ``look``.
        promoted_: whether the canary earned 100% and ``promote`` ran.
        rolled_back_at_: the step that rolled back (``"shadow"`` or a weight), or None.
        verdicts_: the step's verdict at every look, in order.
    """

    def __init__(self, router_server: RouterServer, plan: RolloutPlan | None = None,
                 gates: Sequence[Any] | None = None, promote: Callable[[], Any] | None = None) -> None:
        self.router_server = router_server
        self.plan = plan or RolloutPlan()
        self.gates = list(gates) if gates is not None else default_gates()
        self.plan.check_gates(self.gates)
        self.promote = promote

    def run(self, bodies: Sequence[dict[str, Any]], labels: Mapping[str, int] | None = None) -> CanaryRollout:
        """Take the plan's steps, sending ``bodies`` in order through the router; returns self.

        Args:
            bodies: transactions as JSON-ready dicts, in time order; each is sent once.
            labels: ``transaction_id → is_fraud``, the late feedback the precision gate reads; at each
                look, the labels of the step's answered transactions count as come back.

        Raises:
            ConfigError: the router has already rolled back, or ``bodies`` ran out before the plan finished.
        """
        router = self.router_server.router
        if router.rollback_reason_:
            raise ConfigError(f"this router has already rolled back ({router.rollback_reason_}); "
                              "start a new CanaryRouter for a new rollout")
        self.steps_: list[StepResult] = []
        self.promoted_, self.rolled_back_at_, self.promotion_ = False, None, None
        self._answers: list[pd.DataFrame] = []
        self._position = 0
        for number, step in enumerate(self.plan.judged_steps, start=1):
            result = self._take_step(number, step, bodies, labels)
            self.steps_.append(result)
            if result.verdict == "rollback":
                router.rollback(f"{result.name} step: {result.reason}")
                self.rolled_back_at_ = step
                break
        else:
            router.set_weight(100, "promoted: every judged step advanced")
            self.promotion_ = self.promote() if self.promote is not None else None
            self.promoted_ = True
        self.answers_ = pd.concat(self._answers, ignore_index=True)
        return self

    def _take_step(self, number: int, step: Any, bodies: Sequence[dict[str, Any]],
                   labels: Mapping[str, int] | None) -> StepResult:
        from lifecycle.canary.traffic import send_requests

        router, url = self.router_server.router, f"{self.router_server.url}/predict"
        shadow = step == SHADOW
        weight = 0 if shadow else int(step)
        name = SHADOW if shadow else f"{weight}%"
        window = router.set_weight(weight, f"step {number}: {name}", shadow=shadow)
        started, sent, most = time.monotonic(), 0, self.plan.step_max_requests(step)
        result = StepResult(name, weight, shadow, StepEvidence.empty(weight, shadow))
        while True:
            size = min(self.plan.min_requests if sent == 0 else self.plan.look_every, most - sent)
            if self._position + size > len(bodies):
                raise ConfigError(f"the rollout ran out of traffic at the {name} step: it had {len(bodies)} "
                                  f"transactions; give it up to {self.plan.most_requests}")
            sent_now = send_requests(url, list(bodies[self._position:self._position + size]), self.plan.concurrency)
            self._answers.append(sent_now.assign(step=name, look=len(result.looks) + 1))
            self._position, sent = self._position + size, sent + size
            window.wait_idle()
            result.evidence = summarise_answers(window.answers[CANARY], window.answers[STABLE], weight, shadow, labels,
                                                timeout_ms=1000 * router.canary_timeout)
            look = self._look(len(result.looks) + 1, sent, [s.evidence for s in self.steps_] + [result.evidence])
            result.looks.append(look)
            if look.verdict != "hold" or sent >= most:
                break
        result.reason = self._reason(look, name, sent)  # a step still holding at its maximum rolls back
        result.verdict = look.verdict
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _look(self, number: int, sent: int, evidence: list[StepEvidence]) -> Look:
        results = [gate(evidence, self.plan.max_looks) for gate in self.gates]
        reason = self.router_server.router.rollback_reason_
        if reason:
            results.insert(0, GateResult("canary_available", "rollback", f"the router rolled back by itself: {reason}"))
        canary_requests = int(evidence[-1].requests[0, CANARY_ARM])
        codes = [[VERDICTS.index(r.verdict)] for r in results]
        verdict = VERDICTS[int(combine_verdicts(codes, [canary_requests], self.plan.min_canary_requests)[0])]
        return Look(number, sent, canary_requests, results, verdict)

    def _reason(self, look: Look, name: str, sent: int) -> str:
        if look.verdict == "rollback":
            return "failed " + ", ".join(look.rolling_back())
        if look.verdict == "advance":
            return "every gate advanced"
        waiting = look.holding() or [f"the canary's answers ({look.canary_requests} of "
                                     f"{self.plan.min_canary_requests} needed)"]
        look.verdict = "rollback"
        return f"not enough evidence to promote: after {sent:,} requests at the {name} step, still holding: " + \
            ", ".join(waiting)

    def _check_run(self) -> None:
        if not hasattr(self, "steps_"):
            raise ConfigError("this CanaryRollout has not run yet; call .run(bodies, labels) first")

    @property
    def verdicts_(self) -> list[str]:
        self._check_run()
        return [look.verdict for step in self.steps_ for look in step.looks]

    def timeline(self) -> pd.DataFrame:
        """One row per look: the step, traffic, per-user flag shares of both arms, and the verdicts."""
        self._check_run()
        rows = []
        for step in self.steps_:
            for look in step.looks:
                gates = {g.gate: g.verdict for g in look.gates}
                rows.append({"step": step.name, "look": look.number, "requests": look.requests,
                             "canary_answers": look.canary_requests, **gates, "verdict": look.verdict})
        return pd.DataFrame(rows)

    def evidence_table(self) -> pd.DataFrame:
        """Per step taken, per arm: requests, users, and the shares of users failed and flagged."""
        self._check_run()
        rows = []
        for step in self.steps_:
            e = step.evidence
            for arm, label in ((CANARY_ARM, "canary"), (STABLE_ARM, "stable")):
                users = max(int(e.users[0, arm]), 1)
                rows.append({"step": step.name, "arm": label, "requests": int(e.requests[0, arm]),
                             "users": int(e.users[0, arm]), "failed_users": int(e.failed_users[0, arm]) / users,
                             "flagged_users": int(e.flagged_users[0, arm]) / users})
        return pd.DataFrame(rows).set_index(["step", "arm"])

    @property
    def dropped_requests(self) -> int:
        """Client requests that got no 200 from the router."""
        self._check_run()
        return int((self.answers_["status"] != 200).sum())

    def report(self, every_look: bool = False) -> str:
        """Each step's deciding look in full (every gate's verdict and numbers), earlier looks one line
        each (or in full with ``every_look``), and the outcome."""
        self._check_run()
        lines = []
        for step in self.steps_:
            lines.append(f"{step.name} step: {len(step.looks)} look(s), {step.looks[-1].requests:,} requests, "
                         f"{step.looks[-1].canary_requests:,} to the canary: {step.verdict} ({step.reason})")
            for look in step.looks:
                last = look is step.looks[-1]
                if last or every_look:
                    lines.append(f"  look {look.number} ({look.requests:,} requests): {look.verdict}")
                    lines += [f"    {result}" for result in look.gates]
                else:
                    lines.append(f"  look {look.number} ({look.requests:,} requests): {look.verdict} "
                                 f"(holding: {', '.join(look.holding()) or 'the canary answers'})")
        router = self.router_server.router
        outcome = (f"promoted after {len(self.steps_)} judged steps: weight is now {router.weight_}" if self.promoted_
                   else f"rolled back at the {self.steps_[-1].name} step: weight is now {router.weight_}")
        return "\n".join([*lines, outcome])
