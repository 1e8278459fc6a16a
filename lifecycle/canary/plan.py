"""A rollout's plan: its steps (an optional shadow step, then growing canary weights ending at 100) and
the traffic each step may use, which also fixes how many looks the gates share their error rate over.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifecycle.canary.evidence import SHADOW
from lifecycle.canary.gates import LatencyGate
from lifecycle.errors import ConfigError


@dataclass(frozen=True)
class RolloutPlan:
    """The steps of a rollout and the traffic each may use.

    Args:
        steps: ``"shadow"`` (optional, first), then canary weights in percent, increasing, ending at
            100. Every step but the last is judged; reaching the last promotes.
        min_requests: requests a step sends before its first look.
        max_requests: the most a step sends; a step still holding then rolls back.
        shadow_max_requests: the most the shadow step sends (default ``2 * max_requests``: shadow
            exposes no user, so a longer hold costs only time).
        look_every: requests between looks while a step holds (default ``min_requests // 2``).
        min_canary_requests: canary answers a step needs before it may advance (a 5% step of few
            requests must still expose the canary to real traffic).
        concurrency: requests in flight at once.

    Raises:
        ConfigError: steps that are not an optional shadow followed by increasing weights ending at
            100, or counts below 1.
    """

    steps: tuple[Any, ...] = (SHADOW, 5, 25, 50, 100)
    min_requests: int = 400
    max_requests: int = 4_000
    shadow_max_requests: int | None = None
    look_every: int | None = None
    min_canary_requests: int = 20
    concurrency: int = 16

    def __post_init__(self) -> None:
        raw = list(self.steps)
        shadow = bool(raw) and isinstance(raw[0], str) and raw[0].lower() == SHADOW
        try:
            weights = [int(s) for s in raw[shadow:] if not isinstance(s, bool)]
        except (TypeError, ValueError):
            weights = []
        ok = (len(weights) == len(raw) - shadow and weights and weights[-1] == 100 and len(raw) >= 2
              and all(a < b for a, b in zip((0, *weights), weights, strict=False)))
        if not ok:
            raise ConfigError(f"rollout steps must be an optional 'shadow' then weights increasing from above 0 to "
                              f"100, with at least one step before 100; got {raw}; e.g. ('shadow', 5, 25, 50, 100)")
        object.__setattr__(self, "steps", tuple([SHADOW] * shadow + weights))
        object.__setattr__(self, "look_every", self.look_every or max(self.min_requests // 2, 1))
        object.__setattr__(self, "shadow_max_requests", self.shadow_max_requests or 2 * self.max_requests)
        counts = {"min_requests": self.min_requests, "min_canary_requests": self.min_canary_requests,
                  "concurrency": self.concurrency, "look_every": self.look_every}
        if min(counts.values()) < 1 or min(self.max_requests, self.shadow_max_requests) < self.min_requests:
            raise ConfigError(f"rollout plan needs counts of at least 1 and max_requests >= min_requests, got "
                              f"{counts}, max_requests={self.max_requests} and "
                              f"shadow_max_requests={self.shadow_max_requests}")

    @property
    def judged_steps(self) -> tuple[Any, ...]:
        """The steps whose gates decide (all but the last, which is where promotion puts the canary)."""
        return self.steps[:-1]

    def step_max_requests(self, step: Any) -> int:
        """The most requests ``step`` (``"shadow"`` or a weight) may send."""
        return self.shadow_max_requests if step == SHADOW else self.max_requests

    def step_looks(self, step: Any) -> int:
        """The most looks ``step`` may take."""
        return 1 + math.ceil((self.step_max_requests(step) - self.min_requests) / self.look_every)

    @property
    def max_looks(self) -> int:
        """The most looks a rollout can take: the gates that test at each look share their α over these."""
        return sum(self.step_looks(step) for step in self.judged_steps)

    @property
    def most_requests(self) -> int:
        """The most traffic the whole rollout can need."""
        return sum(self.step_max_requests(step) for step in self.judged_steps)

    def check_gates(self, gates: Sequence[Any]) -> None:
        """Refuse gates this plan cannot serve: latency is compared on equal terms only, at a 50% step
        (see :attr:`~lifecycle.canary.evidence.StepEvidence.equal_load`).

        Raises:
            ConfigError: a latency gate with no judged 50% step.
        """
        if any(isinstance(gate, LatencyGate) for gate in gates) and 50 not in self.judged_steps:
            weights = sorted({*(s for s in self.steps if s != SHADOW), 50})
            raise ConfigError(f"the latency gate compares the arms on equal terms, at a 50% step, and the plan "
                              f"{list(self.steps)} has none before 100; add one, e.g. "
                              f"{[SHADOW] * (SHADOW in self.steps) + weights}, or leave the latency gate out")
