"""Drift monitoring and retraining (lesson 07), with real Evidently on small seeded windows."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pandas as pd
import pytest

from lifecycle.data import generate_transactions
from lifecycle.errors import ConfigError, SchemaError
from lifecycle.features import build_features, split_by_time
from lifecycle.monitoring import (
    MONITORED_FEATURES,
    DriftMonitor,
    NotFittedError,
    column_drift,
    drift_table,
    run_drift_report,
)
from lifecycle.monitoring.retraining import quality_over_time, retrain_on_window, score_window
from lifecycle.training import evaluate, train_fraud_model

SEED, ROWS = 42, 20_000


@pytest.fixture(scope="module", autouse=True)
def one_thread_per_fit():
    """One OpenMP thread per fit: 2 shared cores, parallel test runs (see test_training.py)."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP first: threadpoolctl limits only what is loaded)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def champion():
    """January's model, its training window, and a monitor fitted on the held-out test rows."""
    january = generate_transactions(ROWS, SEED, "baseline")
    train, test = split_by_time(january, 0.25)
    trained = train_fraud_model(train, test, seed=SEED)
    features, scores = score_window(trained.model, test, history=train)
    monitor = DriftMonitor(decision_threshold=trained.threshold).fit(features, scores, test["is_fraud"])
    return {"january": january, "trained": trained, "monitor": monitor}


@pytest.fixture(scope="module")
def february(champion):
    """February in each scenario (the same customers), scored by the champion."""
    windows = {}
    for scenario in ("baseline", "data_drift", "concept_drift"):
        window = generate_transactions(ROWS, SEED, scenario, start="2026-02-01")
        features, scores = score_window(champion["trained"].model, window, history=champion["january"])
        windows[scenario] = (window, features, scores)
    return windows


@pytest.fixture(scope="module")
def decisions(champion, february):
    """The labelled check of each scenario (late labels have arrived)."""
    monitor = champion["monitor"]
    return {scenario: monitor.check(features, scores, labels=window["is_fraud"])
            for scenario, (window, features, scores) in february.items()}


def reference_frame(rows: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.random((rows, len(MONITORED_FEATURES))), columns=list(MONITORED_FEATURES))


def test_unfitted_monitor_refuses_to_check_or_report():
    monitor = DriftMonitor(decision_threshold=0.5)
    with pytest.raises(NotFittedError, match=r"not fitted yet; call monitor.fit\(reference_features"):
        monitor.check(reference_frame())
    with pytest.raises(NotFittedError, match=r"call monitor.check\(current_features"):
        monitor.save_report("unused.html")


def test_fit_returns_self_and_learns_the_reference():
    scores = np.linspace(0, 1, 50)
    monitor = DriftMonitor(decision_threshold=0.9)
    assert monitor.fit(reference_frame(), scores, (scores > 0.5).astype(int)) is monitor
    assert monitor.reference_alert_rate_ == pytest.approx(0.1)
    assert monitor.reference_quality_["precision"] == 1.0
    assert list(monitor.reference_.columns) == [*MONITORED_FEATURES, "score"]


def test_bad_inputs_name_the_problem():
    with pytest.raises(SchemaError, match=r"lack monitored column\(s\) \['amount'\]"):
        DriftMonitor().fit(reference_frame().drop(columns="amount"))
    with pytest.raises(ConfigError, match="decision_threshold is None"):
        DriftMonitor().fit(reference_frame(), np.zeros(50))
    monitor = DriftMonitor(decision_threshold=0.5).fit(reference_frame(), np.zeros(50))
    with pytest.raises(SchemaError, match="fitted with scores but current_scores is missing"):
        monitor.check(reference_frame())
    with pytest.raises(SchemaError, match="3 scores for 50 rows"):
        monitor.check(reference_frame(), np.zeros(3))


@pytest.mark.slow
def test_baseline_needs_no_action(decisions):
    decision = decisions["baseline"]
    assert (decision.action, decision.kind) == ("none", "none")
    assert decision.drifted_features == []


@pytest.mark.slow
def test_data_drift_is_found_on_the_shifted_features(decisions):
    decision = decisions["data_drift"]
    assert decision.kind == "data_drift"
    assert {"amount", "hour"} <= set(decision.drifted_features)  # the generator inflates amounts, moves hours
    assert decision.drift_share >= 0.3
    assert decision.feature_drift.loc["amount", "drift_score"] > 0.1


@pytest.mark.slow
def test_concept_drift_is_a_quality_drop_without_input_drift(decisions):
    decision = decisions["concept_drift"]
    assert (decision.action, decision.kind) == ("retrain", "concept_drift")
    assert decision.drift_share < 0.3
    assert decision.quality["precision"] < decision.reference_quality["precision"] - 0.1


@pytest.mark.slow
def test_without_labels_concept_drift_is_invisible_and_data_drift_alerts(champion, february):
    monitor = champion["monitor"]
    _, features, scores = february["concept_drift"]
    assert monitor.check(features, scores).action == "none"
    _, features, scores = february["data_drift"]
    assert (monitor.check(features, scores).action, monitor.last_decision_.kind) == ("alert", "data_drift")


@pytest.mark.slow
def test_reasons_give_the_numbers(decisions):
    decision = decisions["concept_drift"]
    text = "\n".join(decision.reasons)
    assert f"{decision.quality['precision']:.3f}" in text
    assert f"{decision.reference_quality['precision']:.3f}" in text
    assert re.search(r"0 of 10 monitored features drifted \(share 0\.00", text)
    assert text.endswith("the same inputs now mean something else.")
    summary = decision.summary()
    assert summary["action"] == "retrain" and isinstance(summary["precision"], float)
    json.dumps(decision.to_dict())  # the command line writes it as JSON


@pytest.mark.slow
def test_check_drift_matches_evidently_reports(champion, february):
    """A check runs Evidently's drift tests without a Report; they must agree with a Report's ValueDrift."""
    monitor = champion["monitor"]
    current = monitor._frame(*february["data_drift"][1:], "current")
    fast = column_drift(monitor.reference_, current)
    report = drift_table(run_drift_report(monitor.reference_, current))
    pd.testing.assert_frame_equal(fast, report[fast.columns])
    assert fast["drifted"].any() and not fast["drifted"].all()
    chosen = column_drift(monitor.reference_, current, method="ks", threshold=0.01)
    reported = drift_table(run_drift_report(monitor.reference_, current, method="ks", threshold=0.01))
    pd.testing.assert_frame_equal(chosen.drop(columns="method"), reported[chosen.columns].drop(columns="method"))
    assert set(chosen["method"]) == {"K-S p_value"}  # a p-value: drift when *below* the threshold


def test_column_drift_names_a_column_without_finite_values():
    current = reference_frame().assign(amount=np.inf)
    with pytest.raises(SchemaError, match="column 'amount' has no finite values in the current window"):
        column_drift(reference_frame(), current)


@pytest.mark.slow
def test_report_is_saved_as_html_in_the_folder_given(champion, decisions, tmp_path):
    path = champion["monitor"].save_report(tmp_path / "reports")
    assert path == tmp_path / "reports" / "drift_report.html"
    assert path.stat().st_size > 100_000 and "amount_vs_user_avg" in path.read_text()
    named = champion["monitor"].save_report(tmp_path / "elsewhere" / "february.html")
    assert named.is_file()


@pytest.mark.slow
def test_retraining_on_fresh_labels_recovers_precision(champion, february):
    window = february["concept_drift"][0]
    march = generate_transactions(ROWS, SEED, "concept_drift", start="2026-03-01")
    challenger = retrain_on_window(window, history=champion["january"], seed=SEED, evaluation=march)
    past = pd.concat([champion["january"], window], ignore_index=True)
    _, old_scores = score_window(champion["trained"].model, march, history=past)
    old = evaluate(march["is_fraud"], old_scores, champion["trained"].threshold)
    assert challenger.metrics["precision"] > old["precision"] + 0.1
    assert challenger.metrics["pr_auc"] > old["pr_auc"]


def test_retraining_needs_labels_and_enough_frauds():
    window = generate_transactions(1_000, SEED, "concept_drift")
    with pytest.raises(SchemaError, match="no 'is_fraud' column"):
        retrain_on_window(window.drop(columns="is_fraud"))
    with pytest.raises(ConfigError, match=r"too few labelled frauds to retrain: \d+ to fit"):
        retrain_on_window(window)


def test_quality_over_time_splits_by_period():
    stamps = pd.date_range("2026-01-01", periods=14, freq="D")
    labels = np.array([1, 0] * 7)
    scores = np.where(np.arange(14) < 7, labels, 1 - labels).astype(float)  # right in week 1, wrong in week 2
    table = quality_over_time(stamps, labels, scores, threshold=0.5)
    assert table["rows"].tolist() == [7, 7]
    assert table["precision"].tolist() == [1.0, 0.0]


def test_monitored_features_are_model_inputs():
    features = build_features(generate_transactions(200, SEED))
    assert set(MONITORED_FEATURES) <= set(features.columns)


@pytest.mark.slow
def test_monitor_command_runs_one_cycle_on_a_csv(tmp_path):
    from lifecycle.data import write_transactions
    from lifecycle.monitoring.retraining import EXIT_CODES, monitor_command
    from lifecycle.tracking import ensure_champion

    ensure_champion(seed=SEED, rows=ROWS)
    current = write_transactions(generate_transactions(ROWS, SEED, "concept_drift", start="2026-02-01"),
                                 tmp_path / "february.csv")
    args = argparse.Namespace(current=str(current), model_uri=None, report=None, json=str(tmp_path / "d.json"),
                              drift_share=0.3, max_precision_drop=0.15, max_pr_auc_drop=0.1, exit_code=True)
    assert monitor_command(args) == EXIT_CODES["retrain"]
    written = json.loads((tmp_path / "d.json").read_text())
    assert written["kind"] == "concept_drift" and written["quality"]["frauds"] > 200  # the labels were read
    assert written["version"] == "1" and written["drifted_features"] == []
    assert (tmp_path / "workspace" / "reports" / "monitor-february.html").is_file()
