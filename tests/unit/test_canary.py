"""lifecycle.canary: the sticky split and its proportions, each gate on numbers that must pass and
numbers that must fail, the plan's checks, and (slow) rollouts through a real router over real model
servers: a good canary promoted, a bad one rolled back, weights flipped under load without a dropped
request, and a canary server killed mid-rollout while stable answers everything."""

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

from lifecycle.canary.gates import (
    ArmSample,
    ErrorRateGate,
    LatencyGate,
    PrecisionGate,
    ScoreDistributionGate,
)
from lifecycle.canary.rollout import RolloutPlan
from lifecycle.canary.router import CANARY, STABLE, Answer, CanaryRouter, routes_to_canary, user_bucket
from lifecycle.errors import ConfigError

USERS = [f"u{i:05d}" for i in range(20_000)]


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


def test_router_refuses_weights_that_are_not_whole_percents():
    router = CanaryRouter("http://127.0.0.1:1", "http://127.0.0.1:2")
    for bad in (-1, 101, 5.5, True, "25"):
        with pytest.raises(ConfigError, match="whole percent from 0 to 100"):
            router.set_weight(bad)
    window = router.set_weight(25)
    assert router.weight_ == 25 and router.window_ is window and window.weight == 25
    router.rollback("test")
    assert router.weight_ == 0 and router.rollback_reason_ == "test"
    assert [event["weight"] for event in router.events_] == [0, 25, 0]


# --- gates ---------------------------------------------------------------------------------------


def sample(n: int, failures: int = 0, latency_ms: float = 10.0, flagged: int = 0, scores: float | None = None,
           ids: list[str] | None = None, slow: dict[int, float] | None = None) -> ArmSample:
    """An arm's evidence: ``n`` calls, the first ``flagged`` answered ones flagged."""
    answers = []
    for i in range(n):
        failed = i < failures
        is_fraud = (i - failures) < flagged and not failed
        probability = scores if scores is not None else (0.9 if is_fraud else 0.01)
        answers.append(Answer(ids[i] if ids else f"t{i}", f"u{i}", 500 if failed else 200,
                              (slow or {}).get(i, latency_ms), probability, is_fraud, "1"))
    return ArmSample.from_answers(answers)


def test_arm_sample_counts_failures_and_pools_steps():
    arm = sample(20, failures=2, flagged=3)
    assert (arm.requests, arm.failures, arm.answered, int(arm.flagged.sum())) == (20, 2, 18, 3)
    assert arm.error_rate == 0.1
    pooled = ArmSample.pooled([arm, sample(30)])
    assert (pooled.requests, pooled.failures, pooled.answered) == (50, 2, 48)


def test_error_rate_gate():
    gate = ErrorRateGate()
    assert gate(sample(20), sample(380)).passed
    failed = gate(sample(20, failures=1), sample(380))
    assert not failed.passed and "canary 1/20 failed (5.0%)" in failed.detail
    assert failed.numbers["canary"] == 0.05 and failed.numbers["limit"] == 0.01
    # A stable arm with its own failures raises the bar by as much.
    assert gate(sample(100, failures=3), sample(100, failures=3)).passed


def test_latency_gate_fails_a_slow_tail_not_one_hiccup():
    gate = LatencyGate()
    stable = sample(380, latency_ms=20.0)
    assert gate(sample(20, latency_ms=30.0), stable).passed  # slower, within the budget
    assert gate(sample(20, slow={3: 900.0}), stable).passed  # one hiccup
    failed = gate(sample(20, slow={3: 900.0, 7: 800.0}), stable)
    assert not failed.passed and failed.numbers["slow_answers"] == 2 and failed.numbers["limit"] == 250.0
    slow_model = gate(sample(200, latency_ms=600.0), sample(200, latency_ms=200.0))
    assert not slow_model.passed and "limit 400.0 ms" in slow_model.detail  # 2 × stable's p99


def test_score_distribution_gate_tolerance_shrinks_with_evidence():
    gate = ScoreDistributionGate()
    stable = sample(380, flagged=4)
    assert gate(sample(20, flagged=4), stable).passed  # a fraud burst in 20 answers: 20% flagged
    everything_flagged = gate(sample(22, flagged=22, scores=0.99), stable)
    assert not everything_flagged.passed
    assert "flagged 22/22 (100.0%)" in everything_flagged.detail
    assert everything_flagged.numbers["limit"] == pytest.approx(1.5 / np.sqrt(22))
    assert not gate(sample(400, flagged=80), sample(400, flagged=4)).passed  # 20% is too much with 400
    never_flags = gate(sample(400, scores=0.0), sample(400, scores=0.2))
    assert not never_flags.passed and never_flags.numbers["canary_mean"] == 0.0


def test_precision_gate_judges_only_with_enough_labelled_flags():
    gate = PrecisionGate()
    canary_ids, stable_ids = [f"c{i}" for i in range(40)], [f"s{i}" for i in range(40)]
    canary, stable = sample(40, flagged=20, ids=canary_ids), sample(40, flagged=20, ids=stable_ids)
    good_labels = {**{t: 1 for t in canary_ids[:15]}, **{t: 1 for t in stable_ids[:16]}}
    bad_labels = {**{t: 0 for t in canary_ids[:20]}, **{t: 1 for t in stable_ids[:16]}}
    assert gate(canary, stable, None).passed
    assert "not enough labelled flags" in gate(canary, stable, None).detail
    assert gate(canary, stable, {**good_labels, **{t: 0 for t in canary_ids[15:20] + stable_ids[16:20]}}).passed
    failed = gate(canary, stable, {**bad_labels, **{t: 0 for t in stable_ids[16:20]}})
    assert not failed.passed and failed.numbers["canary"] == 0.0 and failed.numbers["stable"] == 0.8
    few = {t: 0 for t in canary_ids[:5]} | {t: 1 for t in stable_ids[:20]}
    assert gate(canary, stable, few).passed  # 5 labelled canary flags: no verdict


@pytest.mark.parametrize("steps", [(5, 25, 50), (25, 5, 100), (0, 50, 100), (5, 25, 150)])
def test_rollout_plan_refuses_steps_that_do_not_climb_to_100(steps):
    with pytest.raises(ConfigError, match="must increase from above 0 and end at 100"):
        RolloutPlan(steps=steps)


def test_rollout_plan_refuses_impossible_counts():
    with pytest.raises(ConfigError, match="max_requests >= min_requests"):
        RolloutPlan(min_requests=400, max_requests=100)
    assert RolloutPlan(steps=[10, 100]).steps == (10, 100)


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
            train, test = split_by_time(generate_transactions(6_000, seed=5, start=start, users=600))
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
        march = generate_transactions(8_000, seed=5, start="2026-03-01", users=600).sort_values("timestamp")
        yield {"settings": settings, "versions": versions, "servers": servers, "bodies": request_bodies(march),
               "labels": dict(zip(march["transaction_id"], march["is_fraud"].astype(int), strict=True))}
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.slow
def test_good_canary_is_promoted_and_bad_canary_rolled_back_at_the_first_step(deployment):
    from lifecycle.canary import CanaryRollout, send_requests, serve_router
    from lifecycle.tracking import alias_version, promote

    settings, versions, servers = deployment["settings"], deployment["versions"], deployment["servers"]
    bodies, labels = deployment["bodies"], deployment["labels"]
    plan = RolloutPlan(steps=(10, 50, 100), min_requests=200, min_canary_requests=15)
    router = CanaryRouter(servers["champion"].url, servers["good"].url)
    with serve_router(router) as served:
        good = CanaryRollout(served, plan, promote=lambda: promote(versions["good"], settings=settings))
        good.run(bodies[:2_000], labels)
    assert good.promoted_ and good.rolled_back_at_ is None, good.report()
    assert [step.weight for step in good.steps_] == [10, 50, 100] and router.weight_ == 100
    assert alias_version("champion", settings) == versions["good"] and good.promotion_ == versions["champion"]
    answers = good.answers_
    assert (answers["status"] == 200).all() and good.dropped_requests == 0
    assert (answers.groupby(["step", "user_id"])["served_by"].nunique() == 1).all()  # sticky
    by_canary = answers[answers["served_by"] == CANARY]
    assert set(by_canary["model_version"]) == {versions["good"]}
    assert all(routes_to_canary(user, 10) for user in by_canary.loc[by_canary["step"] == 1, "user_id"])

    router = CanaryRouter(servers["good"].url, servers["bad"].url)
    with serve_router(router) as served:
        bad = CanaryRollout(served, plan, promote=lambda: promote(versions["bad"], settings=settings))
        bad.run(bodies[2_000:4_000], labels)
        after = send_requests(f"{served.url}/predict", bodies[4_000:4_200])
    assert not bad.promoted_ and bad.rolled_back_at_ == 10, bad.report()
    assert "score_distribution" in [result.gate for result in bad.steps_[0].failed]
    assert router.weight_ == 0 and alias_version("champion", settings) == versions["good"]
    to_canary = int((bad.answers_["served_by"] == CANARY).sum())
    assert 15 <= to_canary < 0.2 * len(bad.answers_)  # only its share of one step
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
                router.set_weight([0, 5, 25, 50, 100][flips % 5])
                flips += 1
            time.sleep(0.001)
        router.rollback("end of the test")
        with urllib.request.urlopen(f"{served.url}/router") as response:
            state = json.load(response)
    assert state["weight"] == 0 and state["rollback_reason"] == "end of the test"
    answers = results["answers"]
    assert (answers["status"] == 200).all(), answers["status"].value_counts()
    assert sum(window.requests >= 25 for window in router.windows_) >= 20  # the weight changed under load, often
    for window in router.windows_:  # each request was routed by the weight of the window that holds it
        assert all(routes_to_canary(a.user_id, window.weight) for a in window.answers[CANARY])
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
    plan = RolloutPlan(steps=(25, 50, 100), min_requests=600, min_canary_requests=15)
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
    assert rollout.steps_[-1].failed[0].gate == "canary_available"
    assert router.weight_ == 0 and "canary" in router.rollback_reason_
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
def test_a_step_that_cannot_gather_enough_canary_evidence_rolls_back(deployment):
    from lifecycle.canary import CanaryRollout, serve_router

    servers, bodies = deployment["servers"], deployment["bodies"]
    plan = RolloutPlan(steps=(5, 100), min_requests=100, min_canary_requests=200, max_requests=200)
    router = CanaryRouter(servers["champion"].url, servers["good"].url)
    with serve_router(router) as served:
        rollout = CanaryRollout(served, plan).run(bodies[5_000:5_400])
    assert rollout.rolled_back_at_ == 5 and len(rollout.answers_) == 200  # 100, then 25 at a time up to 200
    evidence = rollout.steps_[0].failed[0]
    assert evidence.gate == "evidence" and evidence.numbers["canary_requests"] < 200
    with pytest.raises(ConfigError, match="ran out of traffic"):
        with serve_router(CanaryRouter(servers["champion"].url, servers["good"].url)) as served:
            CanaryRollout(served, plan).run(bodies[:150])
