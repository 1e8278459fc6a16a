"""lifecycle.canary: the sticky split, per-user evidence, each gate's verdict on constructed samples (loud
failures rolled back within a few dozen answers, a never-flagging canary within a thousand, thin evidence
held), the plan's checks, the policy simulator's error rates, and (slow) rollouts through a real router over
real model servers: shadow mirroring, a good canary promoted, a bad one rolled back in shadow, weights
flipped under load without a dropped request, a canary server killed mid-rollout, and a bounded hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

from lifecycle.canary.evidence import StepEvidence, summarise_answers
from lifecycle.canary.gates import (
    ADVANCE,
    HOLD,
    ROLLBACK,
    ErrorRateGate,
    FlagRateGate,
    LatencyGate,
    PrecisionGate,
    ScoreDistributionGate,
    combine_verdicts,
    default_gates,
)
from lifecycle.canary.rollout import RolloutPlan
from lifecycle.canary.router import CANARY, STABLE, Answer, CanaryRouter, routes_to_canary, user_bucket
from lifecycle.canary.simulate import KINDS, peeking_false_alarms, simulate_kinds, simulate_policy
from lifecycle.errors import ConfigError

USERS = [f"u{i:05d}" for i in range(20_000)]
LOOKS = RolloutPlan().max_looks


# --- the split -------------------------------------------------------------------------------------


def test_user_bucket_is_the_same_in_every_process():
    """Python's hash() of a string changes per process; the router's bucket must not."""
    script = ("import json; from lifecycle.canary.router import user_bucket; "
              "print(json.dumps([user_bucket(u) for u in ['u00001', 'u00042', 'alice']]))")
    seen = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(salt)}).stdout for salt in (1, 2)}
    assert len(seen) == 1
    assert json.loads(seen.pop()) == [user_bucket(u) for u in ["u00001", "u00042", "alice"]]


def test_split_is_sticky_and_raising_the_weight_keeps_canary_users_on_the_canary():
    steps = (0, 5, 25, 50, 100)
    on_canary = {w: {u for u in USERS[:5_000] if routes_to_canary(u, w)} for w in steps}
    again = {w: {u for u in USERS[:5_000] if routes_to_canary(u, w)} for w in steps}
    assert on_canary == again  # one user, one answer, every time
    assert on_canary[0] == set() and len(on_canary[100]) == 5_000
    for lower, higher in zip(steps, steps[1:], strict=False):
        assert on_canary[lower] < on_canary[higher]  # strictly nested: nobody leaves the canary


@pytest.mark.parametrize("weight", [5, 25, 50])
def test_split_gives_the_canary_its_weight_of_users_within_statistical_tolerance(weight):
    share = np.mean([routes_to_canary(u, weight) for u in USERS])
    p = weight / 100
    assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / len(USERS))  # 4 standard errors


def test_buckets_are_uniform():
    counts = np.bincount([user_bucket(u) for u in USERS], minlength=100)
    expected = len(USERS) / 100
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert len(counts) == 100 and chi2 < 160  # 99 degrees of freedom: p < 1e-4 above 160


def test_router_refuses_weights_that_are_not_whole_percents_and_shadow_with_users_on_the_canary():
    router = CanaryRouter("http://127.0.0.1:1", "http://127.0.0.1:2")
    for bad in (-1, 101, 5.5, True, "25"):
        with pytest.raises(ConfigError, match="whole percent from 0 to 100"):
            router.set_weight(bad)
    with pytest.raises(ConfigError, match="use weight 0 with shadow=True, got weight 5"):
        router.set_weight(5, shadow=True)
    window = router.set_weight(0, "shadow", shadow=True)
    assert router.shadow_ and router.weight_ == 0 and window.shadow
    window = router.set_weight(25)
    assert router.weight_ == 25 and not router.shadow_ and router.window_ is window and window.weight == 25
    router.rollback("test")
    assert router.weight_ == 0 and router.rollback_reason_ == "test" and not router.shadow_
    assert [(event["weight"], event["shadow"]) for event in router.events_] == [(0, False), (0, True), (25, False),
                                                                                 (0, False)]


# --- evidence, counted per user --------------------------------------------------------------------


def answers(n: int, flag_every: int = 0, fail_every: int = 0, latency_ms: float = 6.0, score: float | None = None,
            prefix: str = "u", burst: int = 1, slower: float = 1.0) -> list[Answer]:
    """``n`` calls from ``n // burst`` users (``burst`` calls each); every ``flag_every``-th user flagged on
    all its calls, every ``fail_every``-th call failed; latencies spread ±30% around ``latency_ms``."""
    out = []
    for i in range(n):
        user = i // burst
        flagged = bool(flag_every) and user % flag_every == flag_every - 1
        failed = bool(fail_every) and i % fail_every == fail_every - 1
        spread = 0.7 + 0.6 * ((i * 37) % 100) / 100
        probability = score if score is not None else (0.9 if flagged else 0.002 * (1 + (i * 13) % 7))
        out.append(Answer(f"t-{prefix}{i}", f"{prefix}{user}", 500 if failed else 200, latency_ms * spread * slower,
                          probability, flagged, "1"))
    return out


def shadow_step(canary: list[Answer], stable: list[Answer], labels: dict | None = None) -> list[StepEvidence]:
    return [summarise_answers(canary, stable, 0, True, labels)]


def split_step(weight: int, canary: list[Answer], stable: list[Answer],
               labels: dict | None = None) -> list[StepEvidence]:
    return [summarise_answers(canary, stable, weight, False, labels)]


def test_evidence_counts_users_not_requests_and_leaves_out_stables_fallbacks():
    canary = answers(50, flag_every=5, burst=5, fail_every=25)  # 10 users, 2 flagged (5 calls each)
    fallback = Answer("t-x", "u3", 200, 5.0, 0.01, False, "1", fallback=True)
    labels = {"t-u20": 1, "t-u45": 0}  # one call of each flagged user
    step = summarise_answers(canary, [*answers(30, prefix="s"), fallback], 5, False, labels)
    assert step.name == "5%" and not step.equal_load
    assert (step.users[0].tolist(), step.flagged_users[0].tolist(), step.failed_users[0].tolist()) == \
        ([10, 30], [2, 0], [2, 0])
    assert step.requests[0].tolist() == [50, 30]  # the fallback is the canary's user: not stable's evidence
    assert (step.labelled_flagged[0, 0], step.confirmed_flagged[0, 0]) == (2, 1)
    assert step.latency_hist[0, 0].sum() == 48 and step.score_hist[0, 0].sum() == 10  # answered calls; users
    slow_stable = [Answer("t-s", "s1", 200, 2_500.0, 0.01, False, "1"), *answers(5, prefix="s")]
    timed = summarise_answers(canary, slow_stable, 5, False, timeout_ms=2_000)
    assert timed.failed_users[0].tolist() == [2, 1]  # held to the canary's timeout, like the canary


# --- gates -----------------------------------------------------------------------------------------


def verdict_after(gate, make_steps, sizes) -> tuple[str, int]:
    """The gate's verdict look by look as the evidence grows; returns the first decision and its size."""
    for size in sizes:
        result = gate(make_steps(size), looks=RolloutPlan().max_looks)
        if result.verdict != "hold":
            return result.verdict, size
    return "hold", sizes[-1]


def test_a_canary_that_errors_on_a_tenth_of_requests_is_rolled_back_within_100_canary_answers():
    gate = ErrorRateGate(alpha=0.01)
    verdict, seen = verdict_after(gate, lambda n: split_step(5, answers(n, fail_every=10),
                                                             answers(19 * n, prefix="s")), range(10, 101, 10))
    assert (verdict, seen <= 100) == ("rollback", True)
    in_shadow, seen = verdict_after(gate, lambda n: shadow_step(answers(n, fail_every=10), answers(n)),
                                    range(10, 201, 10))
    assert in_shadow == "rollback" and seen <= 150  # stable's arm is no bigger in shadow: a little more needed
    result = gate(split_step(5, answers(100, fail_every=10), answers(1_900, prefix="s")))
    assert "canary 10 of 100" in result.detail and result.numbers["log_lr"] >= np.log(100)


def test_healthy_servers_advance_the_error_gate_once_their_rate_is_shown_low_and_hold_before():
    gate = ErrorRateGate(alpha=0.01)
    assert gate(shadow_step(answers(100), answers(100))).verdict == "hold"  # no failures in 100: not yet shown
    healthy = gate(shadow_step(answers(400), answers(400)))
    assert healthy.verdict == "advance" and healthy.numbers["canary_upper"] < gate.max_rate
    assert gate(shadow_step(answers(400, fail_every=50), answers(400, fail_every=50))).verdict != "rollback"


def test_a_never_flagging_canary_at_a_one_percent_base_rate_is_rolled_back_within_1000_answers():
    gate = FlagRateGate(alpha=0.01)
    verdict, seen = verdict_after(gate, lambda n: shadow_step(answers(n), answers(n, flag_every=100)),
                                  range(100, 1_001, 100))
    assert (verdict, seen <= 1_000) == ("rollback", True)
    thin = gate(split_step(5, answers(20), answers(380, flag_every=100, prefix="s")))
    assert thin.verdict == "hold"  # none flagged of 20: what a good model does most of the time


def test_a_canary_that_flags_everything_is_rolled_back_within_a_few_dozen_answers():
    verdict, seen = verdict_after(FlagRateGate(alpha=0.01), lambda n: shadow_step(answers(n, flag_every=1),
                                                                                   answers(n, flag_every=100)),
                                  range(10, 101, 10))
    assert verdict == "rollback" and seen <= 30


def test_a_burst_of_flags_on_one_card_is_one_piece_of_evidence():
    """Five flagged calls of one user weigh like one flagged user, not five."""
    gate = FlagRateGate(alpha=0.01)
    bursts = gate(shadow_step(answers(1_000, flag_every=10, burst=5), answers(1_000, flag_every=100, burst=5)))
    singles = gate(shadow_step(answers(200, flag_every=10), answers(200, flag_every=100)))
    assert bursts.numbers["canary_flagged"] == singles.numbers["canary_flagged"] == 20
    assert bursts.numbers["log_lr_high"] == pytest.approx(singles.numbers["log_lr_high"])


def test_equal_canaries_hold_or_advance_and_are_never_rolled_back_on_constructed_samples():
    gates = default_gates()
    for n in (20, 200, 2_000):
        steps = shadow_step(answers(n, flag_every=100, fail_every=500), answers(n, flag_every=100, fail_every=500))
        assert all(gate(steps, looks=LOOKS).verdict in ("hold", "advance") for gate in gates)


def test_score_gate_catches_a_shifted_distribution_and_holds_on_few_users():
    gate = ScoreDistributionGate(alpha=0.01)
    assert gate(shadow_step(answers(30), answers(30))).verdict == "hold"  # under 50 users per arm
    same = gate(shadow_step(answers(500, flag_every=100), answers(500, flag_every=100)), looks=LOOKS)
    assert same.verdict == "advance" and abs(same.numbers["shift"]) <= 0.01
    flipped = gate(shadow_step(answers(100, score=0.98), answers(100, flag_every=100)), looks=LOOKS)
    assert flipped.verdict == "rollback" and flipped.numbers["low"] > gate.tolerance
    assert "on the shadow step (100 canary, 100 stable users)" in flipped.detail


def test_latency_gate_compares_at_50_percent_only():
    gate = LatencyGate(alpha=0.01)
    half = lambda canary, stable: split_step(50, canary, stable)  # noqa: E731
    slower = gate(half(answers(400, slower=1.5), answers(400, prefix="s")), looks=LOOKS)
    assert slower.verdict == "rollback" and slower.numbers["low"] > gate.tolerance
    assert gate(half(answers(400, slower=1.05), answers(400, prefix="s")), looks=LOOKS).verdict == "advance"
    assert gate(half(answers(20, slower=1.5), answers(20, prefix="s")), looks=LOOKS).verdict == "hold"  # thin
    # Shadow and 5% are not judged: in shadow the canary's copy is off the client's path, at 5% it idles.
    for steps, name in ((shadow_step(answers(400, slower=3.0), answers(400)), "shadow"),
                        (split_step(5, answers(20, slower=3.0), answers(380, prefix="s")), "5%")):
        unjudged = gate(steps, looks=LOOKS)
        assert unjudged.verdict == "advance" and f"not judged at the {name} step" in unjudged.detail
    after = gate(shadow_step(answers(400, slower=3.0), answers(400)) + half(answers(400), answers(400, prefix="s")),
                 looks=LOOKS)
    assert after.verdict == "advance" and "on the 50% step" in after.detail  # shadow's latencies not pooled


def test_precision_gate_holds_without_enough_labelled_flags_and_never_passes_unjudged():
    gate = PrecisionGate(alpha=0.01)
    canary, stable = answers(2_000, flag_every=50), answers(2_000, flag_every=50, prefix="s")
    no_labels = gate(shadow_step(canary, stable))
    assert no_labels.verdict == "hold" and "not enough labelled flags to judge" in no_labels.detail
    flagged = [a.transaction_id for a in canary if a.is_fraud]
    flagged_s = [a.transaction_id for a in stable if a.is_fraud]
    few = gate(shadow_step(canary, stable, {t: 1 for t in flagged[:5] + flagged_s}))
    assert few.verdict == "hold"  # 5 labelled canary flags: still not judged
    good = {t: int(i % 5 != 0) for ids in (flagged, flagged_s) for i, t in enumerate(ids)}
    assert gate(shadow_step(canary, stable, good)).verdict == "advance"
    collapsed = {**{t: int(i % 10 == 0) for i, t in enumerate(flagged)}, **{t: 1 for t in flagged_s}}
    result = gate(shadow_step(canary, stable, collapsed))
    assert result.verdict == "rollback" and result.numbers["p_value"] < gate.alpha


def test_a_step_rolls_back_if_any_gate_does_and_advances_only_when_all_do():
    codes = [np.array([ADVANCE, ADVANCE, HOLD, ADVANCE]), np.array([ADVANCE, ROLLBACK, ADVANCE, ADVANCE])]
    assert combine_verdicts(codes, np.array([30, 30, 30, 5]), 20).tolist() == [ADVANCE, ROLLBACK, HOLD, HOLD]


def test_default_gates_split_the_rollouts_false_rollback_budget():
    gates = default_gates(alpha=0.05)
    assert [g.name for g in gates] == ["error_rate", "flag_rate", "score_distribution", "latency", "precision"]
    assert sum(g.alpha for g in gates) == pytest.approx(0.05)


# --- the plan ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [(5, 25, 50), (25, 5, 100), (0, 50, 100), (5, 25, 150),
                                   (100,), (5, "shadow", 100), ("shadow", "shadow", 100), ()])
def test_rollout_plan_refuses_steps_that_are_not_an_optional_shadow_then_a_climb_to_100(steps):
    with pytest.raises(ConfigError, match="optional 'shadow' then weights increasing"):
        RolloutPlan(steps=steps)


def test_rollout_plan_counts_and_checks():
    plan = RolloutPlan()
    assert plan.steps == ("shadow", 5, 25, 50, 100) and plan.judged_steps == ("shadow", 5, 25, 50)
    assert plan.look_every == 200 and plan.shadow_max_requests == 8_000
    assert (plan.step_looks("shadow"), plan.step_looks(5), plan.max_looks) == (39, 19, 39 + 3 * 19)
    assert plan.most_requests == 8_000 + 3 * 4_000
    assert RolloutPlan(steps=["Shadow", 100]).steps == ("shadow", 100)
    with pytest.raises(ConfigError, match="max_requests >= min_requests"):
        RolloutPlan(min_requests=400, max_requests=100)
    with pytest.raises(ConfigError, match=r"has none before 100; add one, e.g. \[25, 50, 100\]"):
        RolloutPlan(steps=(25, 100)).check_gates(default_gates())
    with pytest.raises(ConfigError, match=r"e.g. \['shadow', 25, 50, 100\]"):
        RolloutPlan(steps=("shadow", 25, 100)).check_gates(default_gates())  # shadow is not equal terms
    RolloutPlan(steps=("shadow", 50, 100)).check_gates(default_gates())
    RolloutPlan(steps=(25, 100)).check_gates([g for g in default_gates() if not isinstance(g, LatencyGate)])


# --- the policy, simulated -------------------------------------------------------------------------------


def test_peeking_at_a_fixed_test_inflates_false_alarms_and_the_sprt_does_not():
    peeking = peeking_false_alarms(looks=20, rollouts=2_000, seed=1)
    assert peeking["z_test_last_look"] < 0.08 and peeking["z_test_any_look"] > 0.15
    assert peeking["sprt_any_look"] <= 0.05


def test_equal_models_are_rolled_back_in_at_most_5_percent_of_200_simulated_rollouts():
    runs = simulate_policy("good", rollouts=200, seed=3)
    assert (runs["outcome"] == "rolled back").mean() <= 0.05
    assert runs["by_test"].mean() <= 0.05


def test_the_simulated_policy_meets_the_issues_figures():
    table = simulate_kinds(200, seed=0)
    assert list(table.index) == list(KINDS)
    assert table.loc["good", "rolled_back"] <= 0.05
    assert table.loc["never_flags", "by_end_of_shadow"] >= 0.99
    for kind in ("flags_10x", "errors_4x"):
        assert table.loc[kind, "before_25_ends"] >= 0.99, kind
    for kind in ("never_flags", "flags_10x", "errors_4x"):
        assert table.loc[kind, "median_exposure_share"] <= 0.01, kind


def test_a_canary_that_flags_three_times_as_often_is_held_or_rolled_back_not_promoted():
    """Lesson 07's retrained model once flagged 3.0% against stable's 0.9% and was promoted."""
    runs = simulate_policy("flags_10x", size=3.0, rollouts=200, seed=5)
    assert (runs["outcome"] == "promoted").mean() <= 0.05
    steps = shadow_step(answers(1_200, flag_every=33), answers(1_200, flag_every=100))
    assert FlagRateGate()(steps).verdict == "hold"


def test_the_simulator_is_seeded_and_refuses_unknown_kinds():
    first, again = simulate_policy("flags_10x", rollouts=50, seed=7), simulate_policy("flags_10x", rollouts=50, seed=7)
    assert first.equals(again) and not first.equals(simulate_policy("flags_10x", rollouts=50, seed=8))
    with pytest.raises(ConfigError, match="unknown failure kind 'typo'"):
        simulate_policy("typo")
    with pytest.raises(ConfigError, match=r"has none before 100; add one, e.g. \[5, 25, 50, 100\]"):
        simulate_policy("good", steps=(5, 25, 100))


def test_without_shadow_the_same_traffic_cannot_promote_and_a_bad_model_reaches_users():
    runs = simulate_policy("never_flags", rollouts=100, seed=2, steps=(5, 25, 50, 100), max_requests=40_000,
                       look_every=2_000)
    assert (runs["outcome"] == "rolled back").all() and (runs["exposure"] > 0).all()
    assert simulate_policy("good", rollouts=50, seed=2, steps=(5, 25, 50, 100))["outcome"].eq("rolled back").all()


# --- real servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """Three registered versions (champion, a good challenger, a flipped-label challenger), their
    servers, one more server of the good challenger (to kill), and March traffic."""
    from threadpoolctl import threadpool_limits

    from lifecycle.config import load_settings
    from lifecycle.data import generate_transactions
    from lifecycle.features import split_by_time
    from lifecycle.serving.process import start_server, wait_until_ready
    from lifecycle.serving.schema import request_bodies
    from lifecycle.tracking import log_fraud_model
    from lifecycle.training import train_fraud_model

    workspace = tmp_path_factory.mktemp("canary") / "workspace"
    settings = load_settings(workspace=str(workspace), build=str(workspace.parent / "build"),
                             mlflow_tracking_uri=f"sqlite:///{workspace / 'mlflow.db'}").ensure_dirs()
    versions = {}
    with threadpool_limits(1):
        for name, start, flip in (("champion", "2026-01-01", False), ("good", "2026-02-01", False),
                                  ("bad", "2026-02-01", True)):
            train, test = split_by_time(generate_transactions(10_000, seed=5, start=start, users=1_500))
            if flip:
                train, test = (frame.assign(is_fraud=1 - frame["is_fraud"]) for frame in (train, test))
            trained = train_fraud_model(train, test, "hgb", seed=5)
            versions[name] = log_fraud_model(trained, train, name, settings,
                                             alias="champion" if name == "champion" else "challenger")[1]
    kinds = {"champion": "champion", "good": "good", "bad": "bad", "doomed": "good"}
    servers = {name: start_server("rest", model_uri=f"models:/{settings.registered_model}/{versions[kind]}",
                                  settings=settings, wait=False) for name, kind in kinds.items()}
    try:
        for server in servers.values():
            wait_until_ready(server)
        march = generate_transactions(14_000, seed=5, start="2026-03-01", users=1_500).sort_values("timestamp")
        yield {"settings": settings, "versions": versions, "servers": servers, "bodies": request_bodies(march),
               "labels": dict(zip(march["transaction_id"], march["is_fraud"].astype(int), strict=True))}
    finally:
        for server in servers.values():
            server.stop()


PLAN = RolloutPlan(steps=("shadow", 10, 50, 100), min_requests=400, look_every=200, max_requests=3_000)


@pytest.mark.slow
def test_good_canary_is_promoted_and_bad_canary_rolled_back_in_shadow_before_any_user_sees_it(deployment):
    from lifecycle.canary import CanaryRollout, send_requests, serve_router
    from lifecycle.tracking import alias_version, promote

    settings, versions, servers = deployment["settings"], deployment["versions"], deployment["servers"]
    bodies, labels = deployment["bodies"], deployment["labels"]
    # The kit's gates, latency within ×1.5: the good model is another month's, with trees of its own (×1.14
    # the champion's latency at 50% in one CI run, near the default ×1.25), on two cores the whole suite
    # shares. This test is about the rollout; the latency gate's verdicts are tested above.
    gates = [LatencyGate(alpha=gate.alpha, tolerance=1.5) if isinstance(gate, LatencyGate) else gate
             for gate in default_gates()]
    router = CanaryRouter(servers["champion"].url, servers["good"].url)
    with serve_router(router) as served:
        good = CanaryRollout(served, PLAN, gates, promote=lambda: promote(versions["good"], settings=settings))
        good.run(bodies[:7_000], labels)
    assert good.promoted_ and good.rolled_back_at_ is None, good.report()
    assert [step.name for step in good.steps_] == ["shadow", "10%", "50%"] and router.weight_ == 100
    assert good.verdicts_[-1] == "advance" and all(step.verdict == "advance" for step in good.steps_)
    assert alias_version("champion", settings) == versions["good"] and good.promotion_ == versions["champion"]
    answers = good.answers_
    assert (answers["status"] == 200).all() and good.dropped_requests == 0
    in_shadow = answers[answers["step"] == "shadow"]
    assert (in_shadow["served_by"] == STABLE).all()  # users got stable's answers only
    shadow_window = router.windows_[1]
    assert shadow_window.shadow and len(shadow_window.answers[CANARY]) == len(in_shadow)  # every request mirrored
    assert all(a.mirror for a in shadow_window.answers[CANARY])
    split = answers[answers["step"] != "shadow"]
    assert (split.groupby(["step", "user_id"])["served_by"].nunique() == 1).all()  # sticky
    by_canary = split[split["served_by"] == CANARY]
    assert set(by_canary["model_version"]) == {versions["good"]}
    assert all(routes_to_canary(user, 10) for user in by_canary.loc[by_canary["step"] == "10%", "user_id"])
    assert len(good.timeline()) == len(good.verdicts_) and "flag_rate" in good.timeline()

    router = CanaryRouter(servers["good"].url, servers["bad"].url)
    with serve_router(router) as served:
        bad = CanaryRollout(served, PLAN, promote=lambda: promote(versions["bad"], settings=settings))
        bad.run(bodies[7_000:13_000], labels)
        after = send_requests(f"{served.url}/predict", bodies[13_000:13_200])
    assert not bad.promoted_ and bad.rolled_back_at_ == "shadow", bad.report()
    assert bad.verdicts_ == ["rollback"] and "flag_rate" in bad.steps_[0].looks[0].rolling_back()
    assert router.weight_ == 0 and alias_version("champion", settings) == versions["good"]
    assert (bad.answers_["served_by"] == STABLE).all()  # the bad model's answers reached nobody
    assert (after["served_by"] == STABLE).all() and (after["status"] == 200).all()


@pytest.mark.slow
def test_weight_changes_under_load_are_atomic_and_drop_nothing(deployment):
    from lifecycle.canary import send_requests, serve_router

    servers, bodies = deployment["servers"], deployment["bodies"]
    # Slow answers on a busy machine must not roll back by themselves: this test is about weight changes.
    router = CanaryRouter(servers["champion"].url, servers["good"].url, canary_timeout=30.0)
    with serve_router(router) as served:
        results = {}
        sender = threading.Thread(target=lambda: results.update(
            answers=send_requests(f"{served.url}/predict", bodies[:1_500], concurrency=32)))
        sender.start()
        flips = 0
        while sender.is_alive():  # a new weight each time the current one has routed 25 requests
            if router.window_.requests >= 25:
                router.set_weight([0, 5, 25, 50, 100, 0][flips % 6], shadow=flips % 6 == 5)
                flips += 1
            time.sleep(0.001)
        router.rollback("end of the test")
        with urllib.request.urlopen(f"{served.url}/router") as response:
            state = json.load(response)
    assert state["weight"] == 0 and state["rollback_reason"] == "end of the test" and not state["shadow"]
    answers = results["answers"]
    assert (answers["status"] == 200).all(), answers["status"].value_counts()
    assert sum(window.requests >= 25 for window in router.windows_) >= 20  # the weight changed under load, often
    for window in router.windows_:  # each request was routed by the weight of the window that holds it
        mirrored = [a for a in window.answers[CANARY] if a.mirror]
        assert (len(mirrored) > 0) <= window.shadow  # only shadow windows mirror
        assert all(routes_to_canary(a.user_id, window.weight) for a in window.answers[CANARY] if not a.mirror)
        assert all(not routes_to_canary(a.user_id, window.weight) for a in window.answers[STABLE])
        assert window.in_flight == 0
    assert sum(window.requests for window in router.windows_) == 1_500


@pytest.mark.slow
def test_killing_the_canary_mid_rollout_every_request_is_answered_by_stable(deployment):
    from lifecycle.canary import CanaryRollout, serve_router
    from lifecycle.tracking import alias_version

    settings, servers, bodies = deployment["settings"], deployment["servers"], deployment["bodies"]
    champion_before = alias_version("champion", settings)
    doomed = servers["doomed"]
    router = CanaryRouter(servers["champion"].url, doomed.url)
    plan = RolloutPlan(steps=(25, 50, 100), min_requests=600, max_requests=600)
    with serve_router(router) as served:
        rollout = CanaryRollout(served, plan)
        runner = threading.Thread(target=rollout.run, args=(bodies[:4_000],))
        runner.start()
        deadline = time.monotonic() + 60
        while router.window_.routed(CANARY) < 30:  # the crash comes mid-step, once the canary has answered 30
            assert runner.is_alive() and time.monotonic() < deadline, "the canary never got 30 requests"
            time.sleep(0.002)
        doomed.kill()
        runner.join(120)
    assert not doomed.running
    assert rollout.rolled_back_at_ == 25 and not rollout.promoted_, rollout.report()
    first = rollout.steps_[-1].looks[-1].gates[0]
    assert (first.gate, first.verdict) == ("canary_available", "rollback")
    assert first.detail.startswith("the router rolled back by itself: the canary ")
    assert router.weight_ == 0 and "canary" in router.rollback_reason_ and "127.0.0.1" not in router.rollback_reason_
    with pytest.raises(ConfigError, match="already rolled back"):
        CanaryRollout(served, plan).run(bodies[4_000:])
    answers = rollout.answers_
    assert len(answers) == 600 and (answers["status"] == 200).all() and rollout.dropped_requests == 0
    window = router.windows_[1]  # the 25% step
    failed = [a for a in window.answers[CANARY] if a.status != 200]
    fallbacks = [a for a in window.answers[STABLE] if a.fallback]
    assert failed and len(fallbacks) == len(failed)  # every request the dead canary dropped, stable answered
    assert sum(len(w.answers[CANARY]) for w in router.windows_[2:]) == 0  # after the rollback: stable only
    assert alias_version("champion", settings) == champion_before


@pytest.mark.slow
def test_a_step_that_keeps_holding_rolls_back_for_not_enough_evidence(deployment):
    from lifecycle.canary import CanaryRollout, serve_router

    servers, bodies = deployment["servers"], deployment["bodies"]
    plan = RolloutPlan(steps=(5, 50, 100), min_requests=200, look_every=100, max_requests=400)
    router = CanaryRouter(servers["champion"].url, servers["good"].url)
    with serve_router(router) as served:
        rollout = CanaryRollout(served, plan).run(bodies[5_000:5_600])
    assert rollout.rolled_back_at_ == 5 and len(rollout.answers_) == 400  # 200, then 100 at a time up to 400
    assert rollout.verdicts_ == ["hold", "hold", "rollback"]
    assert rollout.steps_[0].reason.startswith("not enough evidence to promote: after 400 requests at the 5% step")
    assert "precision" in rollout.steps_[0].reason and router.weight_ == 0
    with pytest.raises(ConfigError, match="ran out of traffic"):
        with serve_router(CanaryRouter(servers["champion"].url, servers["good"].url)) as served:
            CanaryRollout(served, plan).run(bodies[:150])


def test_quiz_06_says_what_the_shipped_gates_do():
    """The quiz's thin-evidence scenario (18 canary users, none flagged; stable about 1 in 100 of 380; no
    labels) is a hold by the kit's gates, as its key says; and reading a fixed test at every look is wrong
    far more often than its error rate, as the peeking question's key says."""
    from lifecycle.course.quiz import load_bank

    questions = {q.id: q for q in load_bank("06_canary_release")}
    thin = questions["thin-evidence-verdict"]
    assert [thin.options[i].text.split(":")[0] for i in thin.correct] == ["Hold"]
    steps = split_step(5, answers(18), answers(380, flag_every=95, prefix="s"))
    verdicts = [gate(steps, looks=RolloutPlan().max_looks).verdict for gate in default_gates()]
    codes = [[{"advance": ADVANCE, "hold": HOLD, "rollback": ROLLBACK}[v]] for v in verdicts]
    assert combine_verdicts(codes, [18], 0)[0] == HOLD and "rollback" not in verdicts
    assert round(0.99 ** 18, 2) == 0.83 and "about 0.83" in thin.options[thin.correct[0]].explanation
    peeking = questions["peeking"]
    assert peeking.options[peeking.correct[0]].text == "Far more often than 5% of rollouts."
    assert peeking_false_alarms(looks=20, rollouts=1_000, seed=2)["z_test_any_look"] > 0.15


def test_the_router_rolls_back_by_itself_on_failures_in_a_row_but_leaves_timeouts_to_the_gates():
    router = CanaryRouter("http://127.0.0.1:1", "http://127.0.0.1:2", weight=25)
    for _ in range(5):
        router._watch_canary(Answer(None, "u1", 0, 2_000.0, error="TimeoutError"))
    assert router.weight_ == 25 and router.rollback_reason_ is None
    for _ in range(3):
        router._watch_canary(Answer(None, "u1", 503, 5.0, error="overloaded"))
    assert router.weight_ == 0 and router.rollback_reason_ == "the canary failed 3 requests in a row (HTTP 503)"


def test_a_503_from_stable_reaches_the_client_with_its_retry_after():
    import urllib.error

    import uvicorn

    from lifecycle._proc import ReservedPort
    from lifecycle.canary import serve_router

    async def overloaded(scope, receive, send):  # a model server whose prediction log cannot keep up
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"2")]})
        await send({"type": "http.response.body", "body": b'{"detail": "the prediction log is behind"}'})

    reserved = ReservedPort()
    server = uvicorn.Server(uvicorn.Config(overloaded, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [reserved.socket()]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the overloaded test server did not start"
            time.sleep(0.01)
        url = f"http://127.0.0.1:{reserved.port}"
        with serve_router(CanaryRouter(url, url, weight=0)) as served:
            request = urllib.request.Request(f"{served.url}/predict", data=b'{"user_id": "u1"}',
                                             headers={"content-type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(request, timeout=10)
    finally:
        server.should_exit = True
        thread.join()
    assert answer.value.code == 503 and answer.value.headers["Retry-After"] == "2"
    assert answer.value.headers["x-served-by"] == STABLE
