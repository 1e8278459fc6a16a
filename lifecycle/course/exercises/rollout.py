"""Exercise 06: write the verdict of one look at a canary step, by the kit's own rules, and have it checked.

``gate(stable, canary)`` gets one step's evidence of each arm, counted per user (dicts made by
:func:`stats`: ``users``, ``flagged_users``, ``labelled_flags``, ``confirmed``) and returns
``(decision, reason)``, the decision one of :data:`DECISIONS`. The rules are those of the kit's
:class:`~lifecycle.canary.gates.FlagRateGate` and :class:`~lifecycle.canary.gates.PrecisionGate`,
with their thresholds (the constants below are read from :func:`~lifecycle.canary.default_gates`, so
exercise and kit cannot drift apart):

1. the flag-rate SPRT: for each alternative ratio ``r`` in (:data:`FLAG_HIGH`, :data:`FLAG_LOW`), the
   canary's share of the flagged users under "as often as stable" is ``θ0 = n_c / (n_c + n_s)`` and
   under ``r`` it is ``θ1 = r·n_c / (r·n_c + n_s)`` (``n``: each arm's users); the log-likelihood ratio
   is ``x_c·log(θ1/θ0) + x_s·log((1-θ1)/(1-θ0))`` (``x``: each arm's flagged users);
2. ``rollback`` when either ratio reaches ``log(2 / FLAG_ALPHA)``;
3. precision is judged only when both arms have :data:`MIN_LABELLED_FLAGS` labelled flags; then
   ``rollback`` when :func:`~lifecycle.canary.stats.precision_drop_pvalue` (with
   :data:`PRECISION_MAX_DROP`) is below :data:`PRECISION_ALPHA_PER_LOOK`; otherwise it holds;
4. ``advance`` when both ratios are at or below ``log(FLAG_BETA)`` and precision was judged; else ``hold``.

The checker's expected answers come from the kit's gates themselves.

Taught in exercises/06_rollout_gate.ipynb (lesson: notebooks/06_canary_release.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lifecycle.canary.evidence import CANARY_ARM, STABLE_ARM, StepEvidence
from lifecycle.canary.gates import VERDICTS, FlagRateGate, PrecisionGate, combine_verdicts, default_gates
from lifecycle.canary.rollout import RolloutPlan
from lifecycle.course.exercises._checking import Case, CheckResult, Verdict, describe, run_check

DECISIONS = VERDICTS
_FLAGS: FlagRateGate = next(g for g in default_gates() if isinstance(g, FlagRateGate))
_PRECISION: PrecisionGate = next(g for g in default_gates() if isinstance(g, PrecisionGate))
LOOKS = RolloutPlan().max_looks  # the lesson's plan: its gates spend their α over this many looks
FLAG_HIGH, FLAG_LOW, FLAG_ALPHA, FLAG_BETA = _FLAGS.high, _FLAGS.low, _FLAGS.alpha, _FLAGS.beta
MIN_LABELLED_FLAGS, PRECISION_MAX_DROP = _PRECISION.min_flags, _PRECISION.max_drop
PRECISION_ALPHA_PER_LOOK = _PRECISION.alpha / LOOKS


def stats(users: int, flagged_users: int, labelled_flags: int = 0, confirmed: int = 0) -> dict[str, int]:
    """One arm's evidence in one step, counted per user, as the gate receives it."""
    return {"users": users, "flagged_users": flagged_users, "labelled_flags": labelled_flags, "confirmed": confirmed}


def _evidence(stable: dict[str, int], canary: dict[str, int]) -> StepEvidence:
    step = StepEvidence.empty(0, True)
    for arm, values in ((CANARY_ARM, canary), (STABLE_ARM, stable)):
        step.users[0, arm], step.flagged_users[0, arm] = values["users"], values["flagged_users"]
        step.labelled_flagged[0, arm], step.confirmed_flagged[0, arm] = values["labelled_flags"], values["confirmed"]
    return step


def reference_gate(stable: dict[str, int], canary: dict[str, int]) -> str:
    """The kit's decision for one look: its flag-rate and precision gates, combined as a rollout does."""
    steps = [_evidence(stable, canary)]
    codes = [gate.evaluate(steps, LOOKS)[0] for gate in (_FLAGS, _PRECISION)]
    return VERDICTS[int(combine_verdicts(codes, [canary["users"]], 0)[0])]


def example_step(seed: int = 42) -> tuple[dict[str, int], dict[str, int]]:
    """One shadow step's (stable, canary) evidence to try ``gate`` on (not one of the hidden cases)."""
    rng = np.random.default_rng(seed)
    users = int(rng.integers(800, 2_000))
    flagged = [int(rng.binomial(users, 0.009)) for _ in range(2)]
    labelled = [int(rng.binomial(f, 0.8)) for f in flagged]
    confirmed = [int(rng.binomial(n, 0.75)) for n in labelled]
    return (stats(users, flagged[0], labelled[0], confirmed[0]), stats(users, flagged[1], labelled[1], confirmed[1]))


def _cases() -> list[Case]:
    specs = [
        ("a healthy canary in shadow", stats(1_200, 11, 11, 9), stats(1_200, 12, 12, 9), "advance",
         "both ratios are far below log(FLAG_BETA) and precision is judged and close to stable's: advance."),
        ("a 5% step's first look: 18 users, none flagged", stats(380, 4), stats(18, 0), "hold",
         "a good model flags none of 18 users most of the time: neither ratio reaches a boundary, and without "
         "labelled flags precision cannot be judged. Thin evidence is a hold, never a rollback or a pass."),
        ("never flags, over a whole shadow step", stats(1_500, 14, 14, 11), stats(1_500, 0), "rollback",
         f"with 14 users flagged by stable and none by the canary, the ratio for 'flags {FLAG_LOW:g}× as often' "
         f"passes log(2 / FLAG_ALPHA): roll back (before judging precision)."),
        ("flags almost everyone", stats(400, 3, 3, 3), stats(400, 390, 390, 2), "rollback",
         f"the ratio for 'flags {FLAG_HIGH:g}× as often' is far above log(2 / FLAG_ALPHA): roll back."),
        ("nobody flagged on either arm yet", stats(300, 0), stats(300, 0), "hold",
         "with no flagged user anywhere, both ratios are 0: no evidence either way, hold (and never divide by "
         "stable's flag count)."),
        ("flag rates alike, but only a few labelled flags", stats(1_300, 12, 4, 3), stats(1_300, 11, 5, 4), "hold",
         f"the flag test would advance, but precision needs {MIN_LABELLED_FLAGS} labelled flags on each arm: until "
         "then it holds, and a hold is not a pass."),
        ("labels are in: precision collapsed", stats(4_000, 40, 40, 34), stats(4_000, 42, 40, 4), "rollback",
         f"precision 4/40 against stable's 34/40 is far more than {PRECISION_MAX_DROP:g} lower: precision_drop_pvalue "
         f"is below PRECISION_ALPHA_PER_LOOK, roll back."),
        ("labels are in: precision a little lower", stats(2_000, 20, 20, 17), stats(2_000, 21, 20, 13), "advance",
         f"13/20 against 17/20 is lower, but not shown to be more than {PRECISION_MAX_DROP:g} lower: precision "
         "advances, and so does the step."),
        ("flags three times as often", stats(1_200, 10, 10, 8), stats(1_200, 30, 30, 22), "hold",
         f"3× lies between 'as often' and '{FLAG_HIGH:g}× as often': the 'high' ratio is between its two boundaries, "
         "so the test cannot tell yet: hold."),
        ("a 5% step: the canary flags 6 of its 60 users", stats(1_140, 11, 11, 9), stats(60, 6, 6, 5), "rollback",
         "weigh each arm by its users: with 60 canary users against 1,140, a canary like stable would have about "
         "one flagged user in twenty; six of seventeen is evidence of a much higher rate: roll back."),
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
