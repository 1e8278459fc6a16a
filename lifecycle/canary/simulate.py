"""The policy simulator: many seeded rollouts of the kit's gates against sampled answers, no servers.

A gate's error rates are properties of the whole policy (the plan, its looks, the gates), not of
one test, so they are measured here the only honest way: by running the policy many times on
traffic whose truth is known. Each simulated rollout takes the plan's steps look by look, exactly as
:class:`~lifecycle.canary.rollout.CanaryRollout` does, and asks the very gates the kit ships
(:mod:`~lifecycle.canary.gates`) about evidence sampled per look:

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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lifecycle.canary.evidence import CANARY_ARM, SHADOW, STABLE_ARM, StepEvidence
from lifecycle.canary.gates import ADVANCE, HOLD, ROLLBACK, combine_verdicts, default_gates
from lifecycle.canary.rollout import RolloutPlan
from lifecycle.canary.stats import LATENCY_BINS, LATENCY_LOG_LOW, LATENCY_LOG_WIDTH, SCORE_BINS
from lifecycle.errors import ConfigError

_VERDICT_NAMES = {ADVANCE: "advance", HOLD: "hold", ROLLBACK: "rollback"}
_FIELDS = ("requests", "users", "failed_users", "flagged_users", "labelled_flagged", "confirmed_flagged",
           "score_hist", "latency_hist")
# Failure kinds: what the canary does differently, and the default size of the difference.
KINDS = {
    "good": ("a good challenger", None),
    "never_flags": ("never flags", 0.0),  # flag ratio
    "flags_10x": ("flags 10× as often", 10.0),  # flag ratio
    "errors_4x": ("4× the error rate", 4.0),  # error ratio
    "latency_plus_50pct": ("+50% latency (p99 too)", 1.5),  # latency ratio
    "precision_minus_5pts": ("precision 5 points lower", 0.05),  # precision drop at the same flag rate
}


@dataclass(frozen=True)
class Traffic:
    """The simulated traffic and stable's behaviour (defaults close to lessons 05–06's data and models)."""

    legit_requests: float = 1.25  # requests per legitimate visit
    burst_requests: float = 2.5  # requests per fraud burst
    fraud_visits: float = 0.0076  # share of visits that are fraud bursts (1.5% of requests)
    detect: float = 0.65  # share of bursts stable flags
    false_alarm: float = 0.0019  # share of legitimate visits stable flags
    agreement: float = 0.9  # in shadow: how often a good canary flags a burst stable flagged
    error_rate: float = 0.005  # failed requests, both servers (timeouts of a busy service)
    latency_ms: float = 6.0  # median latency
    latency_sigma: float = 0.3
    labelled: float = 1.0  # share of flagged users whose labels come back by the next look

    @property
    def requests_per_visit(self) -> float:
        return (1 - self.fraud_visits) * self.legit_requests + self.fraud_visits * self.burst_requests

    def flagged(self) -> float:
        return self.fraud_visits * self.detect + (1 - self.fraud_visits) * self.false_alarm


@dataclass(frozen=True)
class _Model:
    detect: float
    false_alarm: float
    error_rate: float
    latency_ratio: float


def _canary(kind: str, size: float | None, traffic: Traffic) -> _Model:
    if kind not in KINDS:
        raise ConfigError(f"unknown failure kind {kind!r}; choose one of {sorted(KINDS)}")
    size = KINDS[kind][1] if size is None else float(size)
    model = _Model(traffic.detect, traffic.false_alarm, traffic.error_rate, 1.0)
    f = traffic.fraud_visits
    if kind in ("never_flags", "flags_10x"):
        target = size * traffic.flagged()  # the canary's flagged share of visits
        detect = min(traffic.detect, target / f) if size < 1 else traffic.detect
        model = _Model(detect, max(target - f * detect, 0.0) / (1 - f), traffic.error_rate, 1.0)
    elif kind == "errors_4x":
        model = _Model(traffic.detect, traffic.false_alarm, size * traffic.error_rate, 1.0)
    elif kind == "latency_plus_50pct":
        model = _Model(traffic.detect, traffic.false_alarm, traffic.error_rate, size)
    elif kind == "precision_minus_5pts":
        flagged = traffic.flagged()
        detect = (f * traffic.detect / flagged - size) * flagged / f
        model = _Model(detect, (flagged - f * detect) / (1 - f), traffic.error_rate, 1.0)
    return model


def _score_bins() -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(0, 1, SCORE_BINS + 1)
    low = np.diff(stats.beta.cdf(edges, 0.6, 120))  # an unflagged user's mean score
    high = np.diff(stats.beta.cdf(edges, 6, 3))  # a flagged user's (flagged transactions score high)
    return low / low.sum(), high / high.sum()


def _latency_bins(traffic: Traffic, ratio: float) -> np.ndarray:
    edges = LATENCY_LOG_LOW + LATENCY_LOG_WIDTH * np.arange(LATENCY_BINS + 1)
    p = np.diff(stats.norm.cdf(edges, np.log(traffic.latency_ms * ratio), traffic.latency_sigma))
    p[0] += 1 - p.sum()
    return np.clip(p, 0, None) / np.clip(p, 0, None).sum()


def _sample_arm(rng: np.random.Generator, users: np.ndarray, requests: np.ndarray, model: _Model, traffic: Traffic,
                detections: np.ndarray | None, fraud: np.ndarray | None, bins: dict) -> dict[str, np.ndarray]:
    """One arm's evidence from ``users`` visits; in shadow, ``fraud`` and stable's ``detections`` pair them."""
    if fraud is None:
        fraud = rng.binomial(users, traffic.fraud_visits)
    if detections is None:
        detected = rng.binomial(fraud, model.detect)
    else:  # the same bursts as stable: agree on most of what it caught
        agree = min(1.0, traffic.agreement * model.detect / traffic.detect)
        otherwise = np.clip((model.detect - traffic.detect * agree) / (1 - traffic.detect), 0, 1)
        detected = rng.binomial(detections, agree) + rng.binomial(fraud - detections, otherwise)
    alarms = rng.binomial(users - fraud, model.false_alarm)
    flagged = detected + alarms
    labelled_true, labelled_false = rng.binomial(detected, traffic.labelled), rng.binomial(alarms, traffic.labelled)
    per_user_failure = 1 - (1 - model.error_rate) ** traffic.requests_per_visit
    return {"requests": requests, "users": users, "failed_users": rng.binomial(users, per_user_failure),
            "flagged_users": flagged, "labelled_flagged": labelled_true + labelled_false,
            "confirmed_flagged": labelled_true,
            # Histograms as independent Poisson counts per bin (a multinomial's counts, up to their total):
            # vectorised over rollouts, where a multinomial draw loops over its bins.
            "score_hist": rng.poisson(flagged[:, None] * bins["high"] + (users - flagged)[:, None] * bins["low"]),
            "latency_hist": rng.poisson(requests[:, None] * bins[model.latency_ratio]),
            "_fraud": fraud, "_detected": detected}


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
    canary, stable = _canary(kind, size, traffic), _canary("good", None, traffic)
    gates, rng = default_gates(alpha), np.random.default_rng(seed)
    plan.check_gates(gates)
    low, high = _score_bins()
    bins = {"low": low, "high": high, 1.0: _latency_bins(traffic, 1.0),
            canary.latency_ratio: _latency_bins(traffic, canary.latency_ratio)}
    judged = plan.judged_steps
    shadow_step = np.array([s == SHADOW for s in judged])
    weights = np.array([0 if s == SHADOW else int(s) for s in judged])
    step_most = np.array([plan.step_max_requests(s) for s in judged])
    # Every step's evidence in one array per field, (step, rollout, arm, ...): a look adds to each rollout's
    # current step in one indexed sum, and the gates read views of it.
    store = {name: np.zeros((len(judged), *getattr(StepEvidence.empty(0, False, rollouts), name).shape), np.int64)
             for name in _FIELDS}
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
        stable_part = _sample_arm(rng, stable_users[running], stable_requests[running], stable, traffic, None, None,
                                  bins)
        shadow_rows = np.searchsorted(running, in_shadow)  # where the shadow rows are among the running ones
        # The shadow canary sees stable's very visits; in a split step it has its own users.
        paired = _sample_arm(rng, stable_users[in_shadow], stable_requests[in_shadow], canary, traffic,
                             stable_part["_detected"][shadow_rows], stable_part["_fraud"][shadow_rows], bins)
        split = _sample_arm(rng, canary_users[in_split], canary_requests[in_split], canary, traffic, None, None, bins)
        for rows_here, sample, arm in ((in_shadow, paired, CANARY_ARM), (in_split, split, CANARY_ARM),
                                       (running, stable_part, STABLE_ARM)):
            if len(rows_here):
                for name in _FIELDS:  # each (step, rollout) once per arm: no repeated index in the sum
                    store[name][current[rows_here], rows_here, arm] += sample[name]
        sent_in_step += size_now
        canary_answers += canary_requests.astype(np.int64)
        exposure += np.where(shadow_now, 0, canary_requests).astype(np.int64)
        requests += size_now
        looks += active
        # Only the rollouts still running are judged (the others keep their decision), on the steps they have
        # reached: a later step holds no evidence of theirs yet, and an empty step adds nothing to any gate.
        reached = int(current[active].max()) + 1
        now = {name: store[name][:reached, active] for name in _FIELDS}
        judged_now = [StepEvidence(int(weights[i]), bool(shadow_step[i]), *(now[name][i] for name in _FIELDS))
                      for i in range(reached)]
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
