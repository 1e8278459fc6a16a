"""The policy simulator: many seeded rollouts of the kit's gates against sampled answers, no servers.

A gate's error rates are properties of the whole policy (the plan, its looks, the gates), not of
one test, so they are measured here the only honest way: by running the policy many times on
traffic whose truth is known. Each simulated rollout takes the plan's steps look by look, exactly as
:class:`~lifecycle.canary.rollout.CanaryRollout` does, and asks the very gates the kit ships
(:mod:`~lifecycle.canary.gates`) about evidence sampled per look (by :mod:`~lifecycle.canary._world`):

* traffic arrives as user visits (a legitimate visit is a request or two; a fraud burst is several
  transactions of one card), split between the arms by user, or mirrored in shadow;
* stable flags a share of bursts (and a few legitimate visits); a good canary flags mostly the same
  bursts (in shadow the two see the same visits, and agree as two good models do);
* failures, per-user mean scores and latencies are drawn per arm.

Every rollout is one row of the arrays: a few hundred rollouts of one kind take a fraction of a
second, so the policy can be explored interactively.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from lifecycle.canary._world import KINDS, Traffic, canary_model, latency_bins, sample_arm, score_bins
from lifecycle.canary.evidence import CANARY_ARM, SHADOW, STABLE_ARM, StepEvidence
from lifecycle.canary.gates import ADVANCE, HOLD, ROLLBACK, combine_verdicts, default_gates
from lifecycle.canary.rollout import RolloutPlan
from lifecycle.canary.stats import SCORE_BINS, pair_differences

_VERDICT_NAMES = {ADVANCE: "advance", HOLD: "hold", ROLLBACK: "rollback"}
_FIELDS = ("requests", "users", "failed_users", "flagged_users", "labelled_flagged", "confirmed_flagged",
           "score_hist", "latency_hist")


def simulate_policy(kind: str = "good", size: float | None = None, rollouts: int = 200, seed: int = 0,
                    alpha: float = 0.05, steps: tuple = (SHADOW, 5, 25, 50, 100), min_requests: int = 400,
                    max_requests: int = 4_000, look_every: int | None = None, min_canary_requests: int = 20,
                    shadow_max_requests: int | None = None, traffic: Traffic | None = None) -> pd.DataFrame:
    """Run ``rollouts`` seeded rollouts of the kit's policy against a canary of one failure kind.

    Args:
        kind: a key of :data:`KINDS`.
        size: the size of the failure (a flag, error or latency ratio, or a precision drop); default per kind.
        rollouts: how many rollouts.
        seed: the random seed (the same arguments give the same table).
        alpha: the rollout's false-rollback budget, shared by the gates (see :func:`default_gates`).
        steps, min_requests, max_requests, look_every, min_canary_requests, shadow_max_requests: the plan
            (see :class:`RolloutPlan`).
        traffic: the simulated traffic (default :class:`Traffic`).

    Returns:
        One row per rollout: ``outcome`` ("promoted" or "rolled back"), ``by_test`` (rolled back by a
        gate's test, not by the bounded hold), ``step`` where it was decided, ``looks``, ``canary_answers``
        (mirrored and served, to the decision), ``exposure`` (answers users got from the canary) and
        ``requests`` (the rollout's traffic), ``gates`` (those that rolled back, or that still held when the
        step's traffic ran out). ``.attrs["timeline"]`` holds the first rollout look by look (``look``,
        ``step``, ``requests`` and ``exposure`` so far, the ``verdict``): one rollout's story.

    Raises:
        ConfigError: an unknown kind or a plan the kit would refuse.
    """
    plan = RolloutPlan(steps=steps, min_requests=min_requests, max_requests=max_requests, look_every=look_every,
                       min_canary_requests=min_canary_requests, shadow_max_requests=shadow_max_requests)
    traffic = traffic or Traffic()
    canary, stable = canary_model(kind, size, traffic), canary_model("good", None, traffic)
    gates, rng = default_gates(alpha), np.random.default_rng(seed)
    plan.check_gates(gates)
    low, high = score_bins()
    bins = {"low": low, "high": high, 1.0: latency_bins(traffic, 1.0),
            canary.latency_ratio: latency_bins(traffic, canary.latency_ratio)}
    judged = plan.judged_steps
    shadow_step = np.array([s == SHADOW for s in judged])
    weights = np.array([0 if s == SHADOW else int(s) for s in judged])
    step_most = np.array([plan.step_max_requests(s) for s in judged])
    # Every step's evidence in one array per field, (step, rollout, arm, ...): a look adds to each rollout's
    # current step in one indexed sum, and the gates read views of it.
    store = {name: np.zeros((len(judged), *getattr(StepEvidence.empty(0, False, rollouts), name).shape), np.int64)
             for name in _FIELDS}
    # The score histograms' pair counts per (step, rollout), updated where a look added evidence: a finished
    # step's do not change, so each look computes the current step's only (the latency gate reads one step).
    score_pairs = np.zeros((len(judged), rollouts, 2 * SCORE_BINS - 1))
    current, looks_in_step = np.zeros(rollouts, dtype=int), np.zeros(rollouts, dtype=int)
    decided = np.zeros(rollouts, dtype=bool)
    outcome, by_test, looks = np.zeros(rollouts, dtype=int), np.zeros(rollouts, dtype=bool), np.zeros(rollouts, int)
    sent_in_step, canary_answers, exposure, requests = (np.zeros(rollouts, dtype=np.int64) for _ in range(4))
    rows = np.arange(rollouts)
    last_codes = np.full((len(gates), rollouts), HOLD)
    names = np.array([SHADOW if s == SHADOW else f"{s}%" for s in judged])
    timeline: list[dict[str, object]] = []
    for _ in range(plan.max_looks):
        active = ~decided
        size_now = np.where(looks_in_step == 0, plan.min_requests, plan.look_every)
        size_now = np.where(active, np.minimum(size_now, step_most[current] - sent_in_step), 0)
        visits = np.rint(size_now / traffic.requests_per_visit).astype(np.int64)
        shadow_now = shadow_step[current] & active
        canary_users = np.where(shadow_now, visits, rng.binomial(visits, weights[current] / 100))
        stable_users = np.where(shadow_now, visits, visits - canary_users)
        canary_requests = np.where(shadow_now, size_now,
                                   np.rint(size_now * canary_users / np.maximum(visits, 1))).astype(np.int64)
        stable_requests = np.where(shadow_now, size_now, size_now - canary_requests)
        running, in_shadow = np.flatnonzero(active), np.flatnonzero(shadow_now)
        in_split = np.flatnonzero(active & ~shadow_now)
        stable_part = sample_arm(rng, stable_users[running], stable_requests[running], stable, traffic, None, None,
                                  bins)
        shadow_rows = np.searchsorted(running, in_shadow)  # where the shadow rows are among the running ones
        # The shadow canary sees stable's very visits; in a split step it has its own users.
        paired = sample_arm(rng, stable_users[in_shadow], stable_requests[in_shadow], canary, traffic,
                             stable_part["_detected"][shadow_rows], stable_part["_fraud"][shadow_rows], bins)
        split = sample_arm(rng, canary_users[in_split], canary_requests[in_split], canary, traffic, None, None, bins)
        for rows_here, sample, arm in ((in_shadow, paired, CANARY_ARM), (in_split, split, CANARY_ARM),
                                       (running, stable_part, STABLE_ARM)):
            if len(rows_here):
                for name in _FIELDS:  # each (step, rollout) once per arm: no repeated index in the sum
                    store[name][current[rows_here], rows_here, arm] += sample[name]
        hist = store["score_hist"][current[running], running]
        score_pairs[current[running], running] = pair_differences(hist[:, CANARY_ARM], hist[:, STABLE_ARM])
        sent_in_step += size_now
        canary_answers += canary_requests.astype(np.int64)
        exposure += np.where(shadow_now, 0, canary_requests).astype(np.int64)
        requests += size_now
        looks += active
        # Only the rollouts still running are judged (the others keep their decision), on the steps they have
        # reached: a later step holds no evidence of theirs yet, and an empty step adds nothing to any gate.
        reached = int(current[active].max()) + 1
        pick = slice(None) if active.all() else active  # views while every rollout runs, copies after
        now = {name: store[name][:reached, pick] for name in _FIELDS}
        pairs_now = score_pairs[:reached, pick]
        judged_now = [StepEvidence(int(weights[i]), bool(shadow_step[i]), *(now[name][i] for name in _FIELDS),
                                   pairs={"score_hist": pairs_now[i]}) for i in range(reached)]
        codes = [gate.evaluate(judged_now, plan.max_looks)[0] for gate in gates]
        step_canary = store["requests"][current, rows, CANARY_ARM]
        verdict = np.full(rollouts, HOLD)
        verdict[active] = combine_verdicts(codes, step_canary[active], plan.min_canary_requests)
        last_codes[:, active] = np.stack(codes)
        if active[0]:
            timeline.append({"look": int(looks[0]), "step": str(names[current[0]]), "requests": int(requests[0]),
                             "exposure": int(exposure[0]), "verdict": _VERDICT_NAMES[int(verdict[0])]})
        tested_out = active & (verdict == ROLLBACK)
        exhausted = active & (verdict != ROLLBACK) & (verdict != ADVANCE) & (sent_in_step >= step_most[current])
        advanced = active & (verdict == ADVANCE)
        promoted = advanced & (current == len(judged) - 1)
        outcome = np.where(promoted, 1, outcome)
        by_test |= tested_out
        decided |= tested_out | exhausted | promoted
        moving = advanced & ~promoted
        current, looks_in_step = np.where(moving, current + 1, current), np.where(moving, 0, looks_in_step + active)
        sent_in_step = np.where(moving, 0, sent_in_step)
        if decided.all():
            break
    deciding = np.where(by_test, ROLLBACK, HOLD)  # the gates that rolled back, or that still held at the end
    why = [", ".join(g.name for g, code in zip(gates, last_codes[:, r], strict=True) if code == deciding[r])
           if outcome[r] != 1 else "" for r in range(rollouts)]
    runs = pd.DataFrame({"outcome": np.where(outcome == 1, "promoted", "rolled back"), "by_test": by_test,
                         "step": names[current], "looks": looks, "canary_answers": canary_answers,
                         "exposure": exposure, "requests": requests, "gates": why})
    runs.attrs["timeline"] = timeline
    return runs


def summarise_policy(runs: pd.DataFrame, steps: tuple = (SHADOW, 5, 25, 50, 100)) -> dict[str, float]:
    """Per kind's runs: the share rolled back, where, the median answers to a decision and exposure."""
    rolled = runs["outcome"] == "rolled back"
    order = [SHADOW if s == SHADOW else f"{s}%" for s in steps[:-1]]
    position = runs["step"].map({name: i for i, name in enumerate(order)})
    before_25 = position <= (order.index("25%") if "25%" in order else len(order))
    return {"rolled_back": float(rolled.mean()), "by_test": float(runs["by_test"].mean()),
            "by_end_of_shadow": float((rolled & (runs["step"] == SHADOW)).mean()),
            "before_25_ends": float((rolled & before_25).mean()),
            "median_canary_answers": float(runs["canary_answers"].median()),
            "median_exposure": float(runs["exposure"].median()),
            "median_exposure_share": float((runs["exposure"] / runs["requests"]).median())}


def simulate_kinds(rollouts: int = 200, seed: int = 0, **plan: object) -> pd.DataFrame:
    """:func:`simulate_policy` for every kind in :data:`KINDS`: one row per kind (see :func:`summarise_policy`)."""
    rows = {}
    for number, kind in enumerate(KINDS):
        runs = simulate_policy(kind, rollouts=rollouts, seed=seed + number, **plan)
        rows[kind] = {"failure": KINDS[kind][0], **summarise_policy(runs, plan.get("steps", (SHADOW, 5, 25, 50, 100)))}
    return pd.DataFrame(rows).T


def peeking_false_alarms(looks: int = 20, per_look: int = 200, flag_rate: float = 0.01, alpha: float = 0.05,
                         rollouts: int = 4_000, seed: int = 0) -> dict[str, float]:
    """How often two *equal* arms are called different when a test is read at every look.

    Each look adds ``per_look`` users to each arm, each flagged with probability ``flag_rate``. A
    fixed-sample test (two-sided z-test of the two flag rates at ``alpha``) read at every look
    raises a false alarm far more often than ``alpha``; the kit's flag-rate SPRT
    (:class:`~lifecycle.canary.gates.FlagRateGate` at the same ``alpha``) does not.

    Returns:
        ``{"z_test_last_look", "z_test_any_look", "sprt_any_look"}``: shares of ``rollouts``.
    """
    from lifecycle.canary.gates import FlagRateGate
    from lifecycle.canary.stats import rate_log_likelihood_ratio

    rng, gate = np.random.default_rng(seed), FlagRateGate(alpha=alpha)
    flags = rng.binomial(per_look, flag_rate, size=(2, rollouts, looks)).cumsum(axis=2)
    users = per_look * np.arange(1, looks + 1)
    pooled = flags.sum(axis=0) / (2 * users)
    spread = np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / users, 1e-12))
    z_alarm = np.abs((flags[0] - flags[1]) / users) / spread > stats.norm.ppf(1 - alpha / 2)
    sprt = np.maximum(*(rate_log_likelihood_ratio(flags[0], flags[1], users, users, ratio)
                        for ratio in (gate.high, gate.low)))
    return {"z_test_last_look": float(z_alarm[:, -1].mean()), "z_test_any_look": float(z_alarm.any(axis=1).mean()),
            "sprt_any_look": float((sprt >= np.log(2 / alpha)).any(axis=1).mean())}
