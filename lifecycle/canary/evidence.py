"""The evidence of one rollout step, counted per user, in the form every gate reads.

A step's evidence is a :class:`StepEvidence`: for each arm (canary, stable), the users it served
and, of them, those with a failed request and those with a flagged transaction; the flagged users
whose labels have come back, and how many of those were confirmed fraud; a histogram of each user's
mean fraud score; a histogram of every request's latency.

**Why per user.** The router's split is sticky per user, and fraud comes in bursts on one card:
five flagged transactions of one compromised card are one piece of evidence about the model, not
five. Counting users keeps the tests' error rates honest under that clustering (counted per
request, a burst would look like five independent agreements). Latency stays per request: it
depends on the server and the moment, not on who sent the request.

Every field has a leading axis of rollouts, so the policy simulator fills the same structure for
hundreds of simulated rollouts at once; :func:`summarise_answers` fills it (one rollout) from the
router's records of a real step.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lifecycle.canary.stats import LATENCY_BINS, SCORE_BINS, histogram

CANARY_ARM, STABLE_ARM = 0, 1
SHADOW = "shadow"


@dataclass
class StepEvidence:
    """What the two arms did in one step, so far. Arrays have shape ``(rollouts, 2, ...)``: arm 0 is
    the canary, arm 1 stable.

    Attributes:
        weight: the canary's share of users in percent (0 in shadow).
        shadow: whether the canary only shadowed (every request mirrored, users answered by stable).
        requests: requests each arm was sent (in shadow, both arms get every request).
        users: distinct users each arm served.
        failed_users: users with at least one request not answered 200.
        flagged_users: users with at least one transaction flagged as fraud.
        labelled_flagged: flagged users with a label for one of their flagged transactions.
        confirmed_flagged: labelled flagged users with a flagged transaction confirmed as fraud.
        score_hist: each answered user's mean fraud score, binned (``SCORE_BINS``).
        latency_hist: each answered request's latency, binned (``LATENCY_BINS``).
    """

    weight: int
    shadow: bool
    requests: np.ndarray
    users: np.ndarray
    failed_users: np.ndarray
    flagged_users: np.ndarray
    labelled_flagged: np.ndarray
    confirmed_flagged: np.ndarray
    score_hist: np.ndarray
    latency_hist: np.ndarray

    @property
    def name(self) -> str:
        """``"shadow"`` or the weight, e.g. ``"25%"``."""
        return SHADOW if self.shadow else f"{self.weight}%"

    @property
    def equal_load(self) -> bool:
        """Both arms carried the same traffic (shadow, or a 50% split): latencies are comparable."""
        return self.shadow or self.weight == 50

    @classmethod
    def empty(cls, weight: int, shadow: bool, rollouts: int = 1) -> StepEvidence:
        """A step with no evidence yet (the simulator adds to it look by look)."""
        counts = {name: np.zeros((rollouts, 2), dtype=np.int64) for name in
                  ("requests", "users", "failed_users", "flagged_users", "labelled_flagged", "confirmed_flagged")}
        return cls(weight, shadow, **counts, score_hist=np.zeros((rollouts, 2, SCORE_BINS), dtype=np.int64),
                   latency_hist=np.zeros((rollouts, 2, LATENCY_BINS), dtype=np.int64))

    def arm(self, field: str, arm: int) -> np.ndarray:
        """One arm's values of ``field`` (shape ``(rollouts, ...)``)."""
        return getattr(self, field)[:, arm]


def summarise_answers(canary: Iterable[Any], stable: Iterable[Any], weight: int, shadow: bool,
                      labels: Mapping[str, int] | None = None, timeout_ms: float | None = None) -> StepEvidence:
    """Count one real step's evidence per user from the router's records of each arm.

    Args:
        canary: the canary's :class:`~lifecycle.canary.router.Answer` records (in shadow, the mirrored calls).
        stable: stable's records; its fallback answers (to requests the canary failed) are the canary
            arm's users and are left out.
        weight: the step's canary weight in percent.
        shadow: whether the step was a shadow step.
        labels: ``transaction_id → is_fraud`` of the labels that have come back (late feedback).
        timeout_ms: the canary's timeout at the router. A stable answer slower than that counts as a
            failure too: the router gives stable longer (it has no fallback), and both arms must be
            held to the same contract to be compared.

    Returns:
        The :class:`StepEvidence` of one rollout.
    """
    evidence = StepEvidence.empty(weight, shadow)
    labels = labels or {}
    for arm, answers in ((CANARY_ARM, list(canary)), (STABLE_ARM, [a for a in stable if not a.fallback])):
        users: dict[str, dict[str, Any]] = {}
        latencies = []
        for answer in answers:
            user = users.setdefault(str(answer.user_id), {"failed": False, "scores": [], "flagged": [],
                                                          "labels": []})
            if answer.status != 200 or (timeout_ms is not None and answer.latency_ms > timeout_ms):
                user["failed"] = True
                continue
            latencies.append(answer.latency_ms)
            user["scores"].append(float(answer.fraud_probability))
            if answer.is_fraud:
                user["flagged"].append(answer.transaction_id)
                if answer.transaction_id in labels:
                    user["labels"].append(int(labels[answer.transaction_id]))
        scored = [np.mean(user["scores"]) for user in users.values() if user["scores"]]
        evidence.requests[0, arm] = len(answers)
        evidence.users[0, arm] = len(users)
        evidence.failed_users[0, arm] = sum(user["failed"] for user in users.values())
        evidence.flagged_users[0, arm] = sum(bool(user["flagged"]) for user in users.values())
        evidence.labelled_flagged[0, arm] = sum(bool(user["labels"]) for user in users.values())
        evidence.confirmed_flagged[0, arm] = sum(any(user["labels"]) for user in users.values())
        evidence.score_hist[0, arm] = histogram(np.array(scored), "score")
        evidence.latency_hist[0, arm] = histogram(np.array(latencies), "latency")
    return evidence
