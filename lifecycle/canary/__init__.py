"""Canary releases over real model servers: shadow first, a sticky split, statistical gates, rollback.

Never send all traffic to a new model at once. A router in front of the stable model (the
``champion``) and the canary (the ``challenger``) first mirrors every request to the canary
(shadow: users get stable's answers), then gives it a growing share of users, 5% → 25% → 50%, and
finally 100%. At every look, gates test the canary against stable on the same time's traffic and
say advance, hold (not enough evidence yet) or roll back; a rollback sends everyone to stable at once.

Modules: :mod:`~lifecycle.canary.router` (the ASGI router: sticky split by user, shadow mirroring,
fallback to stable, automatic rollback when the canary dies), :mod:`~lifecycle.canary.serve` (the
router served in a thread on 127.0.0.1), :mod:`~lifecycle.canary.evidence` (the router's record of
each call, and each step's evidence counted per user), :mod:`~lifecycle.canary.stats` and
:mod:`~lifecycle.canary.gates` (the tests and their verdicts), :mod:`~lifecycle.canary.plan` (the
steps and their traffic) and :mod:`~lifecycle.canary.rollout` (looks, bounded holds, promotion),
:mod:`~lifecycle.canary.simulate` (the policy's error rates, measured on simulated rollouts of the traffic and
failures of :mod:`~lifecycle.canary._world`),
:mod:`~lifecycle.canary.plots`,
:mod:`~lifecycle.canary.traffic` (client traffic that keeps every answer).

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it; imported on first use so `import lifecycle.canary` stays light.
_EXPORTS = {
    "CanaryRouter": "lifecycle.canary.router",
    "RouterServer": "lifecycle.canary.serve",
    "serve_router": "lifecycle.canary.serve",
    "user_bucket": "lifecycle.canary.router",
    "routes_to_canary": "lifecycle.canary.router",
    "StepEvidence": "lifecycle.canary.evidence",
    "summarise_answers": "lifecycle.canary.evidence",
    "VERDICTS": "lifecycle.canary.gates",
    "GateResult": "lifecycle.canary.gates",
    "ErrorRateGate": "lifecycle.canary.gates",
    "FlagRateGate": "lifecycle.canary.gates",
    "LatencyGate": "lifecycle.canary.gates",
    "ScoreDistributionGate": "lifecycle.canary.gates",
    "PrecisionGate": "lifecycle.canary.gates",
    "default_gates": "lifecycle.canary.gates",
    "combine_verdicts": "lifecycle.canary.gates",
    "RolloutPlan": "lifecycle.canary.plan",
    "CanaryRollout": "lifecycle.canary.rollout",
    "StepResult": "lifecycle.canary.rollout",
    "Look": "lifecycle.canary.rollout",
    "KINDS": "lifecycle.canary._world",
    "Traffic": "lifecycle.canary._world",
    "simulate_policy": "lifecycle.canary.simulate",
    "simulate_kinds": "lifecycle.canary.simulate",
    "summarise_policy": "lifecycle.canary.simulate",
    "peeking_false_alarms": "lifecycle.canary.simulate",
    "plot_timeline": "lifecycle.canary.plots",
    "plot_policy": "lifecycle.canary.plots",
    "send_requests": "lifecycle.canary.traffic",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.canary", _EXPORTS, globals())
