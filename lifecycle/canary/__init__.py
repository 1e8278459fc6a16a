"""Canary releases over real model servers: a sticky traffic split, gated steps, rollback, promotion.

Never send all traffic to a new model at once. A router in front of the stable model (the
``champion``) and the canary (the ``challenger``) gives the canary a growing share of users,
5% → 25% → 50% → 100%; at each step gates compare the canary with stable on live traffic, and
the first failure sends everyone back to stable at once. Passing the last step promotes.

Modules: :mod:`~lifecycle.canary.router` (the ASGI router: sticky split by user, fallback to
stable, automatic rollback when the canary dies), :mod:`~lifecycle.canary.gates` (error rate,
p99 latency, score distribution, precision on late labels), :mod:`~lifecycle.canary.rollout`
(the plan, the rollout, its timeline), :mod:`~lifecycle.canary.traffic` (client traffic that keeps
every answer).

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it; imported on first use so `import lifecycle.canary` stays light.
_EXPORTS = {
    "CanaryRouter": "lifecycle.canary.router",
    "RouterServer": "lifecycle.canary.router",
    "serve_router": "lifecycle.canary.router",
    "user_bucket": "lifecycle.canary.router",
    "routes_to_canary": "lifecycle.canary.router",
    "ArmSample": "lifecycle.canary.gates",
    "GateResult": "lifecycle.canary.gates",
    "ErrorRateGate": "lifecycle.canary.gates",
    "LatencyGate": "lifecycle.canary.gates",
    "ScoreDistributionGate": "lifecycle.canary.gates",
    "PrecisionGate": "lifecycle.canary.gates",
    "default_gates": "lifecycle.canary.gates",
    "RolloutPlan": "lifecycle.canary.rollout",
    "CanaryRollout": "lifecycle.canary.rollout",
    "StepResult": "lifecycle.canary.rollout",
    "plot_timeline": "lifecycle.canary.rollout",
    "send_requests": "lifecycle.canary.traffic",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.canary", _EXPORTS, globals())
