"""The evidence of one rollout step, counted per user, in the form every gate reads.

The router keeps its raw record of a step: an :class:`Answer` per call to each model server, in the
:class:`StepWindow` of the weight in force. A step's evidence, summarised from it, is a
:class:`StepEvidence`: for each arm (canary, stable), the users it served and, of them, those with a
failed request and those with a flagged transaction; the flagged users whose labels have come back,
and how many of those were confirmed fraud; a histogram of each user's mean fraud score; a histogram
of every request's latency.

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

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lifecycle.canary.stats import LATENCY_BINS, SCORE_BINS, histogram, pair_differences

STABLE, CANARY = "stable", "canary"
CANARY_ARM, STABLE_ARM = 0, 1
SHADOW = "shadow"


@dataclass
class Answer:
    """One call from the router to one model server."""

    transaction_id: str | None
    user_id: str | None
    status: int  # the HTTP status; 0 when the server gave no answer (refused, reset, timed out)
    latency_ms: float
    fraud_probability: float | None = None
    is_fraud: bool | None = None
    model_version: str | None = None
    fallback: bool = False  # a stable answer to a request the canary failed
    error: str | None = None
    mirror: bool = False  # a shadow call: the canary's answer, recorded and not returned
    retry_after: str | None = None  # an overloaded server's Retry-After, passed on to the client


@dataclass
class StepWindow:
    """What the router did while one weight was in force: every call to each arm."""

    weight: int
    shadow: bool = False
    started: float = field(default_factory=time.monotonic)
    requests: int = 0  # client requests routed in this window
    in_flight: int = 0  # requests being answered, and shadow calls not finished
    answers: dict[str, list[Answer]] = field(default_factory=lambda: {STABLE: [], CANARY: []})

    def routed(self, arm: str) -> int:
        """Client requests first routed to ``arm`` (each canary-routed request has one canary answer)."""
        return len(self.answers[arm]) - (sum(a.fallback for a in self.answers[arm]) if arm == STABLE else 0)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no request routed in this window is still being answered (shadow calls included)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)



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
        pairs: :meth:`pair_counts` already computed, by histogram field (the simulator keeps a finished
            step's, which its later looks do not change); None: computed from the histograms when asked.
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
    pairs: Mapping[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """``"shadow"`` or the weight, e.g. ``"25%"``."""
        return SHADOW if self.shadow else f"{self.weight}%"

    @property
    def equal_load(self) -> bool:
        """Both arms served users on equal terms (a 50% split): latencies are comparable.

        Not shadow: both servers get every request there, but only stable's answer is awaited by the
        client, so the canary's copy runs off the client's path, behind the next requests' work. Two
        servers of one model on one 2-core machine measured ×1.1–1.5 apart in shadow (as the router
        and as the servers time it), ×0.9–1.06 at 50%."""
        return self.weight == 50 and not self.shadow

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

    def pair_counts(self, field: str, rows: Any = slice(None)) -> np.ndarray:
        """How many (canary, stable) pairs of histogram ``field`` differ by each number of bins, for these
        rollouts (:func:`~lifecycle.canary.stats.pair_differences`; read from ``pairs`` if it has them)."""
        if self.pairs is not None and field in self.pairs:
            return self.pairs[field][rows]
        hist = getattr(self, field)[rows]
        return pair_differences(hist[:, CANARY_ARM], hist[:, STABLE_ARM])


def summarise_answers(canary: Iterable[Any], stable: Iterable[Any], weight: int, shadow: bool,
                      labels: Mapping[str, int] | None = None, timeout_ms: float | None = None) -> StepEvidence:
    """Count one real step's evidence per user from the router's records of each arm.

    Args:
        canary: the canary's :class:`Answer` records (in shadow, the mirrored calls).
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
