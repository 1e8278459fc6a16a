"""Exercise 06: write the gate a canary rollout applies at every traffic step, and have it checked.

``gate(stable, canary)`` gets one traffic step's statistics of each model version (dicts with
``requests``, ``errors``, ``p99_ms``, ``mean_score``, and ``precision`` or None when no labels have
come back yet) and returns ``(decision, reason)``, the decision one of :data:`DECISIONS`. In order:

1. ``hold`` when either side has fewer than :data:`MIN_REQUESTS` requests: not enough evidence to
   pass or to fail (its p99 and mean score may be None then). A hold is not a pass.
2. ``rollback`` when the canary's error rate exceeds stable's by more than :data:`ERROR_RATE_MARGIN`
   (a difference of rates: a ratio breaks when stable has no errors).
3. ``rollback`` when the canary's p99 latency is more than :data:`P99_RATIO` times stable's.
4. ``rollback`` when the mean scores differ by more than :data:`SCORE_SHIFT` (same traffic, so a
   different score distribution means the model behaves differently).
5. ``rollback`` when both sides have precision and the canary's is lower by more than
   :data:`PRECISION_DROP`.
6. ``advance`` otherwise.

Taught in exercises/06_rollout_gate.ipynb (lesson: notebooks/06_canary_release.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lifecycle.course.exercises._checking import Case, CheckResult, Verdict, describe, run_check

DECISIONS = ("advance", "hold", "rollback")
MIN_REQUESTS = 200
ERROR_RATE_MARGIN = 0.005
P99_RATIO = 1.5
SCORE_SHIFT = 0.05
PRECISION_DROP = 0.05


def stats(requests: int, errors: int, p99_ms: float | None, mean_score: float | None,
          precision: float | None = None) -> dict[str, Any]:
    """One model version's statistics over one traffic step, as the gate receives them."""
    return {"requests": requests, "errors": errors, "p99_ms": p99_ms, "mean_score": mean_score,
            "precision": precision}


def reference_gate(stable: dict[str, Any], canary: dict[str, Any]) -> str:
    """The right decision for one step (the reason is the learner's own words)."""
    if min(stable["requests"], canary["requests"]) < MIN_REQUESTS:
        return "hold"
    if canary["errors"] / canary["requests"] > stable["errors"] / stable["requests"] + ERROR_RATE_MARGIN:
        return "rollback"
    if canary["p99_ms"] > P99_RATIO * stable["p99_ms"]:
        return "rollback"
    if abs(canary["mean_score"] - stable["mean_score"]) > SCORE_SHIFT:
        return "rollback"
    if None not in (stable["precision"], canary["precision"]) and \
            canary["precision"] < stable["precision"] - PRECISION_DROP:
        return "rollback"
    return "advance"


def example_step(seed: int = 42) -> tuple[dict[str, Any], dict[str, Any]]:
    """One step's (stable, canary) statistics to try ``gate`` on (not one of the hidden cases)."""
    rng = np.random.default_rng(seed)
    canary_requests = int(rng.integers(250, 600))
    stable = stats(int(canary_requests * 19), int(rng.integers(5, 30)), round(rng.uniform(15, 25), 1),
                   round(rng.uniform(0.02, 0.04), 4), round(rng.uniform(0.85, 0.92), 3))
    canary = stats(canary_requests, int(rng.integers(0, 4)), round(stable["p99_ms"] * rng.uniform(0.8, 1.3), 1),
                   round(stable["mean_score"] + rng.uniform(-0.01, 0.01), 4), None)
    return stable, canary


def _cases() -> list[Case]:
    stable = stats(4_000, 8, 20.0, 0.031, 0.90)
    specs = [
        ("a healthy canary", stable, stats(400, 1, 22.0, 0.033, 0.91), "advance",
         "every rule passes: more than enough requests, error rate, p99, scores and precision all close to stable."),
        ("too few canary requests", stable, stats(60, 0, 19.0, 0.030, None), "hold",
         f"under {MIN_REQUESTS} requests there is not enough evidence to pass or to fail: hold. A hold is not a pass."),
        ("no canary traffic yet (0 requests, no p99, no scores)", stable, stats(0, 0, None, None, None), "hold",
         "check the number of requests first: with 0 requests the error rate, p99 and mean score do not exist."),
        ("the canary's error rate is too high", stable, stats(500, 12, 21.0, 0.032, None), "rollback",
         f"2.4% errors against stable's 0.2%: more than {ERROR_RATE_MARGIN:.1%} above, roll back."),
        ("stable has no errors, the canary one in 400", stats(5_000, 0, 20.0, 0.031, None),
         stats(400, 1, 21.0, 0.032, None), "advance",
         f"compare error rates by difference, with the margin ({ERROR_RATE_MARGIN:.1%}): 0.25% is within 0% + "
         f"{ERROR_RATE_MARGIN:.1%}. A ratio of rates divides by stable's 0."),
        ("the canary has no errors, stable some", stats(5_000, 15, 20.0, 0.031, None),
         stats(400, 0, 21.0, 0.031, None), "advance",
         "fewer errors than stable is good news: advance (and never divide by the canary's error count)."),
        ("a latency regression", stable, stats(400, 1, 45.0, 0.032, None), "rollback",
         f"p99 45 ms against stable's 20 ms is over {P99_RATIO:g} times: users feel it, roll back."),
        ("slightly slower, within the ratio", stable, stats(400, 1, 26.0, 0.032, None), "advance",
         f"26 ms is 1.3 times stable's 20 ms, within the ratio of {P99_RATIO:g}: compare the ratio, not the "
         "difference, and advance."),
        ("the canary's scores shifted", stable, stats(400, 1, 21.0, 0.094, None), "rollback",
         f"mean score 0.094 against 0.031 on the same traffic: the model behaves differently (shift over "
         f"{SCORE_SHIFT:g}), roll back before labels prove it wrong."),
        ("labels are in: the canary's precision dropped", stable, stats(400, 1, 21.0, 0.035, 0.78), "rollback",
         f"precision 0.78 against stable's 0.90 is more than {PRECISION_DROP:g} lower: roll back."),
        ("no labels yet (precision None)", stable, stats(400, 1, 21.0, 0.032, None), "advance",
         "without labels, precision is None: skip that rule (comparing None with a number raises) and decide "
         "on the others."),
    ]
    return [Case(name, (s, c), expected, hint, f"({expected!r}, a reason)") for name, s, c, expected, hint in specs]


def _judge(case: Case, answer: Any) -> Verdict:
    expected = case.expected
    shape = "a tuple (decision, reason), decision one of " + ", ".join(repr(d) for d in DECISIONS)
    if not isinstance(answer, tuple | list) or len(answer) != 2:
        return Verdict(False, f"({expected!r}, a reason)", describe(answer), f"return {shape}.")
    decision, reason = answer
    if isinstance(decision, bool | np.bool_):
        return Verdict(False, f"({expected!r}, a reason)", f"{describe(tuple(answer))}",
                       f"a True/False cannot say 'hold' (not enough evidence is neither a pass nor a failure): "
                       f"return {shape}.")
    if not isinstance(decision, str) or decision not in DECISIONS:
        return Verdict(False, f"({expected!r}, a reason)", describe(tuple(answer)), f"return {shape}.")
    if not isinstance(reason, str) or not reason.strip():
        return Verdict(False, f"({expected!r}, a reason)", describe(tuple(answer)),
                       "say why in the reason (a non-empty text): the rollout log shows it to whoever is on call.")
    if decision == expected:
        return Verdict(True)
    return Verdict(False, repr(expected), f"{decision!r} (reason: {reason.strip()!r})", case.hint)


def check_rollout_gate(function: Callable[[dict, dict], tuple[str, str]], show: bool = True) -> CheckResult:
    """Check the learner's ``gate(stable, canary) -> (decision, reason)`` on hidden cases.

    Args:
        function: the learner's gate; it gets two dicts made by :func:`stats` (stable first).
        show: print the result's message.

    Returns:
        The :class:`~lifecycle.course.exercises.CheckResult`; never raises because an answer is wrong.

    Taught in exercises/06_rollout_gate.ipynb.
    """
    return run_check("06 rollout gate", "check_rollout_gate", function, "gate", _cases(), _judge, show)
