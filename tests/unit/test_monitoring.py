"""Monitoring (lesson 07): drift statistics with real Evidently, CBPE on a case whose answer is known, the
policy's tests, the weekly schedule, retraining on arrived labels, and one seeded period end to end."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from lifecycle.data import generate_period, generate_transactions
from lifecycle.errors import ConfigError, SchemaError
from lifecycle.features import build_features, split_by_time
from lifecycle.monitoring import (
    CATEGORICAL_FEATURES,
    CBPE,
    MONITORED_FEATURES,
    DriftMonitor,
    NotFittedError,
    Policy,
    _evidently,
    column_drift,
    days_to_detect,
    decide,
    drift_statistics,
    drift_table,
    expected_confusion,
    first_week,
    run_drift_report,
    week_of,
)
from lifecycle.monitoring.cbpe import weekly_expected_confusion
from lifecycle.monitoring.policy import labels_test, wilson_interval
from lifecycle.monitoring.retraining import retrain_on_labels
from lifecycle.training import train_fraud_model

SEED = 42


pytestmark = pytest.mark.usefixtures("one_thread_per_fit")


def features_frame(rows: int = 2_000, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(shift, 1, rows) for name in MONITORED_FEATURES})
    for name in CATEGORICAL_FEATURES:
        frame[name] = rng.integers(0, 4, rows).astype(float)
    return frame


# ---- Evidently behind the kit's interface ----

def test_evidently_is_the_version_its_internals_were_checked_against():
    assert _evidently.installed_version() == _evidently.CHECKED_VERSIONS["evidently"], (
        "Evidently moved: re-check lifecycle/monitoring/_evidently.py (legacy stattests, the snapshot dict's layout) "
        "and update CHECKED_VERSIONS")


def test_categorical_features_are_tested_as_categories():
    table = column_drift(features_frame(), features_frame(seed=1))
    categorical = table.loc[list(CATEGORICAL_FEATURES), "method"]
    assert set(categorical) == {"Jensen-Shannon distance"}, categorical
    assert set(table.drop(index=list(CATEGORICAL_FEATURES))["method"]) == {"Wasserstein distance (normed)"}
    statistics = drift_statistics(features_frame(), features_frame(shift=0.5, seed=1))
    assert statistics.loc["amount", "p_value"] < 1e-6 and statistics.loc["amount", "distance"] > 0.3
    assert statistics.loc["category_code", "p_value"] > 1e-3  # same categories, same shares
    assert (statistics["distance_threshold"] == 0.1).all()


@pytest.mark.slow
def test_the_fast_drift_tests_give_what_an_evidently_report_gives():
    reference, current = features_frame(3_000), features_frame(3_000, shift=0.2, seed=1)
    fast = column_drift(reference, current)
    report = drift_table(run_drift_report(reference, current))
    pd.testing.assert_frame_equal(fast, report[fast.columns])
    assert fast["drifted"].any() and not fast["drifted"].all()
    chosen = column_drift(reference, current, method="ks", threshold=0.01, categorical=())
    reported = drift_table(run_drift_report(reference, current, method="ks", threshold=0.01, categorical=()))
    pd.testing.assert_frame_equal(chosen.drop(columns="method"), reported[chosen.columns].drop(columns="method"))


def test_a_column_without_finite_values_is_named():
    with pytest.raises(SchemaError, match="column 'amount' has no finite values in the current window"):
        column_drift(features_frame(), features_frame().assign(amount=np.inf))


# ---- CBPE ----

def test_cbpe_on_a_case_whose_answer_is_known():
    # Reference: scores 0.1 and 0.9, fraud exactly 10% and 90% of the time: calibration maps each to itself.
    scores = np.r_[np.full(1_000, 0.1), np.full(1_000, 0.9)]
    labels = np.r_[np.arange(1_000) < 100, np.arange(1_000) < 900].astype(int)
    estimator = CBPE(decision_threshold=0.5).fit(scores, labels)
    estimate = estimator.estimate(np.r_[np.full(100, 0.9), np.full(300, 0.1)])
    assert estimate["expected_tp"] == pytest.approx(90) and estimate["expected_fp"] == pytest.approx(10)
    assert estimate["expected_fn"] == pytest.approx(30) and estimate["expected_tn"] == pytest.approx(270)
    assert estimate["precision"] == pytest.approx(0.9) and estimate["recall"] == pytest.approx(0.75)
    assert estimate["precision_se"] == pytest.approx(np.sqrt(100 * 0.9 * 0.1) / 100)
    assert estimator.reference_precision_ == pytest.approx(0.9) and estimator.reference_flags_ == 1_000


def test_cbpe_tracks_precision_when_scores_move_but_the_link_holds():
    rng = np.random.default_rng(SEED)
    probability = rng.beta(0.3, 6, 100_000)
    labels = (rng.random(len(probability)) < probability).astype(int)
    estimator = CBPE(0.3).fit(probability ** 0.5, labels)  # an uncalibrated but monotone score
    shifted = rng.beta(0.6, 6, 50_000)  # more risky traffic: scores move, P(fraud | score) does not
    realised = rng.random(len(shifted)) < shifted
    estimate = estimator.estimate(shifted ** 0.5)
    flags = shifted ** 0.5 >= 0.3
    assert abs(estimate["precision"] - realised[flags].mean()) < 3 * estimate["precision_se"] + 0.01
    # concept drift: the same scores, half as often fraud. The estimate cannot know.
    halved = rng.random(len(shifted)) < shifted / 2
    assert estimator.estimate(shifted ** 0.5)["precision"] > halved[flags].mean() + 0.1


def test_weekly_estimates_equal_one_window_at_a_time_and_cbpe_refuses_to_be_used_unfitted():
    rng = np.random.default_rng(1)
    p, flagged, week = rng.random(300), rng.random(300) < 0.3, rng.integers(0, 3, 300)
    weekly = weekly_expected_confusion(p, flagged, week, 3)
    for w in range(3):
        one = expected_confusion(p[week == w], flagged[week == w])
        assert weekly["precision"][w] == pytest.approx(one["precision"])
    with pytest.raises(NotFittedError, match="not fitted yet; call estimator.fit"):
        CBPE(0.5).estimate([0.2])
    with pytest.raises(SchemaError, match="needs both frauds and genuine rows"):
        CBPE(0.5).fit([0.1, 0.2], [0, 0])


# ---- the policy ----

def drift_rows(p_value: float = 0.5, distance: float = 0.01, drifted: tuple[str, ...] = ()) -> pd.DataFrame:
    table = pd.DataFrame({"p_value": p_value, "distance": distance, "distance_threshold": 0.1},
                         index=pd.Index([*MONITORED_FEATURES, "score"], name="feature"))
    table.loc[list(drifted), ["p_value", "distance"]] = (1e-12, 0.4)
    return table


REFERENCE = {"flags": 200, "true_flags": 180}  # precision 0.9
STEADY = {"precision": 0.9, "precision_se": 0.02}


def test_too_few_labelled_flags_cannot_be_judged_never_concept_drift():
    decision = decide(Policy(), drift_rows(), STEADY, {"labelled_flags": 12, "true_flags": 2}, REFERENCE)
    assert (decision.action, decision.kind, decision.precision) == ("none", "none", "cannot judge yet")
    assert "cannot judge yet, 12 labelled flags of the last 3 weeks (need 30)" in "\n".join(decision.reasons)


def test_the_interval_accounts_for_how_many_labelled_flags_there_are():
    level = Policy().retrain_level
    assert not labels_test(24, 30, 180, 200, level)[0]  # 0.8 against 0.9, on 30 flags: could be chance
    assert labels_test(240, 300, 180, 200, level)[0]  # 0.8 on 300 flags: a fall
    low, high = wilson_interval(24, 30, 1.96)
    assert low < 0.8 < high and high - low > 0.25


def test_a_fall_in_labelled_precision_is_concept_drift_when_the_inputs_held_and_data_drift_when_not():
    fell = {"labelled_flags": 300, "true_flags": 180}  # 0.6
    concept = decide(Policy(), drift_rows(), STEADY, fell, REFERENCE)
    assert (concept.action, concept.kind, concept.precision) == ("retrain", "concept_drift", "fell")
    data = decide(Policy(), drift_rows(drifted=("amount", "hour")), STEADY, fell, REFERENCE)
    assert (data.action, data.kind, data.drifted_features) == ("retrain", "data_drift", ["amount", "hour"])


def test_input_drift_alone_alerts_and_with_a_falling_estimate_retrains_before_the_labels():
    held = {"labelled_flags": 300, "true_flags": 270}
    alert = decide(Policy(), drift_rows(drifted=("amount",)), STEADY, held, REFERENCE)
    assert (alert.action, alert.kind) == ("alert", "data_drift")
    early = decide(Policy(), drift_rows(drifted=("amount",)), {"precision": 0.6, "precision_se": 0.02},
                   {"labelled_flags": 0, "true_flags": 0}, REFERENCE)
    assert (early.action, early.kind, early.precision) == ("retrain", "data_drift", "cannot judge yet")
    significant_but_small = decide(Policy(), drift_rows(p_value=1e-12, distance=0.05), STEADY, held, REFERENCE)
    assert significant_but_small.action == "none"  # every test is significant on big samples; size decides
    assert decide(Policy(), drift_rows(), STEADY, held, REFERENCE).action == "none"


def test_policy_levels_pay_for_every_look_and_feature():
    policy = Policy(alpha=0.05, looks=10)
    assert policy.retrain_level == pytest.approx(0.0025)
    assert policy.feature_level(5) == pytest.approx(0.001) and policy.prediction_level == pytest.approx(0.005)
    with pytest.raises(ConfigError, match="alpha must be in"):
        Policy(alpha=0)


# ---- the drift monitor, one window ----

def test_monitor_refuses_to_be_used_unfitted_and_names_bad_inputs():
    with pytest.raises(NotFittedError, match=r"not fitted yet; call monitor.fit\(reference_features"):
        DriftMonitor(decision_threshold=0.5).check(features_frame())
    with pytest.raises(NotFittedError, match=r"call monitor.check\(current_features"):
        DriftMonitor().save_report("unused.html")
    with pytest.raises(SchemaError, match=r"lack monitored column\(s\) \['amount'\]"):
        DriftMonitor().fit(features_frame().drop(columns="amount"))
    with pytest.raises(ConfigError, match="decision_threshold is None"):
        DriftMonitor().fit(features_frame(), np.zeros(2_000))
    monitor = DriftMonitor(decision_threshold=0.5).fit(features_frame(), np.zeros(2_000))
    with pytest.raises(SchemaError, match="fitted with scores but current_scores is missing"):
        monitor.check(features_frame())


def test_monitor_finds_input_drift_and_gives_its_numbers():
    rng = np.random.default_rng(2)
    scores = rng.beta(0.5, 8, 4_000)
    labels = (rng.random(4_000) < scores).astype(int)
    monitor = DriftMonitor(decision_threshold=0.2).fit(features_frame(4_000), scores, labels)
    assert monitor.fit(features_frame(4_000), scores, labels) is monitor
    decision = monitor.check(features_frame(4_000, shift=0.6, seed=3), scores, labels=labels.astype(float))
    assert decision.action == "alert" and decision.kind == "data_drift"
    assert set(decision.drifted_features) == set(MONITORED_FEATURES) - set(CATEGORICAL_FEATURES)
    assert decision.precision == "held" and decision.quality["labelled_flags"] == int((scores >= 0.2).sum())
    json.dumps(decision.to_dict())  # the command line writes it as JSON
    assert decision.summary()["action"] == "alert" and "Input drift in 5 of 9 features" in str(decision)


# ---- the schedule ----

def test_weeks_are_counted_from_the_start_and_outside_rows_get_minus_one():
    stamps = pd.to_datetime(["2026-01-31", "2026-02-01", "2026-02-07T23:59", "2026-02-08", "2026-04-30"],
                            format="ISO8601")
    assert week_of(stamps, "2026-02-01", 12).tolist() == [-1, 0, 0, 1, -1]


def test_retraining_on_labels_keeps_the_alert_rate_and_needs_frauds():
    rng = np.random.default_rng(5)
    features = features_frame(3_000).drop(columns=list(CATEGORICAL_FEATURES)).assign(is_night=0.0)
    labels = (features["amount"] + rng.normal(0, 1, 3_000) > 2.5).astype(int).to_numpy()
    stamps = pd.date_range("2026-01-01", periods=3_000, freq="15min")
    trained = retrain_on_labels(features, labels, np.ones(3_000, dtype=bool), stamps, alert_rate=0.05, seed=SEED)
    recent = stamps >= stamps.max() - pd.Timedelta(days=14)
    flagged = trained.model.predict_proba(features[recent])[:, 1] >= trained.threshold
    assert flagged.mean() == pytest.approx(0.05, abs=0.01)
    with pytest.raises(ConfigError, match=r"too few labelled frauds to retrain: \d+ \(need 20\)"):
        retrain_on_labels(features, labels, labels == 0, stamps, alert_rate=0.05)
    with pytest.raises(SchemaError, match="give one of each per logged prediction"):
        retrain_on_labels(features, labels[:10], labels == 0, stamps, alert_rate=0.05)


@pytest.fixture(scope="module")
def quarter():
    """January's champion and its reference, and twelve weeks of three worlds (drift from day 28)."""
    from lifecycle.monitoring.period import Reference, score_periods

    january = generate_transactions(50_000, SEED, "baseline", days=31)
    train, test = split_by_time(january, 0.4)
    champion = train_fraud_model(train, test, seed=SEED)
    reference = Reference.from_window(champion.model, champion.threshold, test, train)
    start, drift_start = pd.Timestamp("2026-02-01"), pd.Timestamp("2026-03-01")
    periods = {name: generate_period(135_000, SEED, scenario, start, 84, 28, ramp_days=ramp)
               for name, scenario, ramp in (("baseline", "baseline", 0), ("concept_drift", "concept_drift", 0),
                                            ("gradual", "concept_drift", 42))}
    scored = score_periods(champion.model, reference, periods, january, start, 12, drift_start)
    return {"january": january, "champion": champion, "reference": reference, "scored": scored,
            "drift_start": drift_start}


@pytest.mark.slow
def test_a_quarter_quiet_then_concept_drift_sudden_or_gradual(quarter):
    from lifecycle.monitoring import monitor_period, resampled_false_alarms

    reference, scored = quarter["reference"], quarter["scored"]
    checks = {name: monitor_period(period, reference, seed=SEED)[0] for name, period in scored.items()}
    assert set(checks["baseline"]["action"]) == {"none"}
    sudden = days_to_detect(checks["concept_drift"], quarter["drift_start"])
    gradual = days_to_detect(checks["gradual"], quarter["drift_start"])
    assert sudden is not None and gradual is not None and gradual > sudden
    drifted = checks["concept_drift"][checks["concept_drift"]["check_day"] > quarter["drift_start"]]
    assert (drifted["precision"] - drifted["estimated_precision"]).mean() < -0.1  # CBPE stayed high
    assert first_week(checks["concept_drift"], "input_drift", True) is None or \
        first_week(checks["concept_drift"], "labels", True) <= first_week(checks["concept_drift"], "input_drift", True)
    false_alarms = resampled_false_alarms(scored["baseline"], reference, 20, seed=SEED)
    assert len(false_alarms) == 20 and false_alarms["retrain"].mean() <= 0.1
    assert resampled_false_alarms(scored["baseline"], reference, 3, seed=SEED).equals(
        resampled_false_alarms(scored["baseline"], reference, 3, seed=SEED))


@pytest.mark.slow
def test_retraining_on_the_labels_that_arrived_recovers_precision_on_the_weeks_after(quarter):
    from lifecycle.monitoring.period import monitor_period, retraining_rows
    from lifecycle.training import evaluate, predict_scores

    period, reference = quarter["scored"]["concept_drift"], quarter["reference"]
    table, _, arrivals = monitor_period(period, reference, seed=SEED)
    day = table.loc[table["week"] == first_week(table), "check_day"].iloc[0]
    rows = retraining_rows(period, arrivals, day, build_features(quarter["january"]), quarter["january"])
    assert rows["label_coverage"] < 0.1  # most of production is not labelled yet
    assert not (rows["timestamps"][rows["usable"]] >= day).any()  # nothing from the future
    challenger = retrain_on_labels(rows["features"], rows["labels"], rows["usable"], rows["timestamps"],
                                   reference.alert_rate, seed=SEED)
    after = ~period.rows_before(day)
    truth = period.transactions["is_fraud"].to_numpy()[after]
    new = evaluate(truth, predict_scores(challenger.model, period.features[after]), challenger.threshold)
    old = evaluate(truth, period.scores[after], quarter["champion"].threshold)
    assert new["precision"] > old["precision"] + 0.05


@pytest.mark.slow
def test_monitor_command_runs_one_check_on_a_csv(tmp_path):
    from lifecycle.data import write_transactions
    from lifecycle.monitoring.retraining import EXIT_CODES, monitor_command
    from lifecycle.tracking import ensure_champion

    ensure_champion(seed=SEED, rows=20_000)
    current = write_transactions(generate_transactions(20_000, SEED, "data_drift", start="2026-02-01"),
                                 tmp_path / "february.csv")
    args = argparse.Namespace(current=str(current), model_uri=None, report=None, json=str(tmp_path / "d.json"),
                              alpha=0.05, exit_code=True)
    assert monitor_command(args) in (EXIT_CODES["alert"], EXIT_CODES["retrain"])
    written = json.loads((tmp_path / "d.json").read_text())
    assert {"amount", "hour"} <= set(written["drifted_features"]) and written["quality"]["labelled_flags"] > 30
    assert written["version"] == "1"
    assert (tmp_path / "workspace" / "reports" / "monitor-february.html").is_file()
    with pytest.raises(ConfigError, match="lifecycle monitor needs --current"):
        monitor_command(argparse.Namespace(current=None))
