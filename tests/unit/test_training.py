"""Model factories, metrics, and the lesson 02 measurements (leakage, raw vs engineered, ablation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifecycle.course.experiments import (
    ablate_feature_groups,
    compare_features_and_models,
    fit_and_score,
    measure_leakage,
)
from lifecycle.data import generate_transactions
from lifecycle.errors import ConfigError
from lifecycle.features import FEATURE_COLUMNS, FEATURE_GROUPS, split_by_time
from lifecycle.training import choose_threshold, evaluate, make_model, train_fraud_model


@pytest.fixture(scope="module", autouse=True)
def one_thread_per_fit():
    """HistGradientBoosting uses every core through OpenMP; with 2 cores shared by parallel test
    runs that oversubscribes the CPU and a 0.3 s fit takes 5 s. One thread each keeps it steady."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP first: threadpoolctl limits only what is loaded)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def windows() -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_by_time(generate_transactions(rows=8_000, seed=5, users=800), 0.25)


@pytest.fixture(scope="module")
def leakage(windows) -> dict[str, float]:
    """Measured on all the course's features, so the point-in-time model is the course's model."""
    return measure_leakage(*windows, seed=5, columns=FEATURE_COLUMNS)


def test_make_model_names_unknown_kinds_and_parameters():
    with pytest.raises(ConfigError, match=r"unknown model kind 'xgboost'; choose one of gbc, hgb"):
        make_model("xgboost")
    with pytest.raises(ConfigError, match=r"hgb takes no parameter\(s\) \['n_estimators'\]"):
        make_model("hgb", n_estimators=10)
    assert make_model("hgb", max_iter=7).max_iter == 7
    assert make_model("mlp", seed=3, alpha=0.01).steps[-1][1].get_params()["alpha"] == 0.01


def test_evaluate_and_choose_threshold_on_rows_worked_by_hand():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    metrics = evaluate(labels, scores, threshold=0.5)
    assert metrics["precision"] == 1.0 and metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(0.8)
    assert metrics["pr_auc"] == pytest.approx((1 + 1 + 3 / 4) / 3)  # hits at ranks 1, 2 and 4
    assert choose_threshold(labels, scores) == 0.35  # all three frauds, one false alarm: the best F1
    assert choose_threshold(np.array([0, 1]), np.array([0.2, 0.7])) == 0.7


def test_train_fraud_model_fits_the_earlier_rows_and_scores_the_later_window(windows):
    train, test = windows
    trained = train_fraud_model(train, test, "hgb", seed=5)
    assert trained.train_rows == len(split_by_time(train, 0.2)[0])
    assert 0 < trained.threshold < 1 and trained.feature_columns == FEATURE_COLUMNS
    assert set(trained.metrics) == {"pr_auc", "precision", "recall", "f1", "threshold"}
    assert trained.metrics["pr_auc"] > 5 * test["is_fraud"].mean()  # far better than chance


def test_leakage_measures_three_models_on_the_same_rows(windows, leakage):
    train, test = windows
    assert set(leakage) == {"pr_auc_naive_offline", "pr_auc_naive_served", "pr_auc_point_in_time"}
    assert all(0 < value <= 1 for value in leakage.values())
    # The point-in-time model is the course's model: the same number train_fraud_model reports.
    assert leakage["pr_auc_point_in_time"] == train_fraud_model(train, test, "hgb", seed=5).metrics["pr_auc"]
    # Offline and served score one model on different features of the same rows.
    assert leakage["pr_auc_naive_offline"] != leakage["pr_auc_naive_served"]
    assert measure_leakage(train, test, seed=5, columns=FEATURE_COLUMNS) == leakage  # seeded: the same again
    tutorial = measure_leakage(train, test, seed=5)  # the default: the tutorial's feature set
    assert tutorial["pr_auc_point_in_time"] != leakage["pr_auc_point_in_time"]


def test_leakage_works_on_windows_with_overlapping_index_labels(windows):
    train, test = windows
    result = measure_leakage(train.reset_index(drop=True), test.reset_index(drop=True), kind="logreg")
    assert all(0 < value <= 1 for value in result.values())


def test_raw_columns_and_engineered_features_for_each_model(windows, leakage):
    table = compare_features_and_models(*windows, kinds=("hgb", "logreg"), seed=5)
    assert list(table.index) == ["raw columns", "engineered features"] and list(table.columns) == ["hgb", "logreg"]
    assert table.loc["engineered features", "hgb"] == leakage["pr_auc_point_in_time"]
    assert table.loc["engineered features", "hgb"] > table.loc["raw columns", "hgb"]


def test_ablation_drops_one_group_at_a_time(windows, leakage):
    table = ablate_feature_groups(*windows, seed=5)
    assert list(table.index) == ["none", "temporal", "aggregation", "ratio"]
    expected_counts = [len(FEATURE_COLUMNS)] + [len(FEATURE_COLUMNS) - len(FEATURE_GROUPS[g])
                                                for g in ("temporal", "aggregation", "ratio")]
    assert table["features"].tolist() == expected_counts
    assert table.loc["none", "pr_auc"] == leakage["pr_auc_point_in_time"]
    np.testing.assert_allclose(table["pr_auc_drop"], table.loc["none", "pr_auc"] - table["pr_auc"])
    with pytest.raises(ConfigError, match=r"unknown feature group\(s\) \['velocity'\]; the groups are"):
        ablate_feature_groups(*windows, groups=("velocity",))


def test_fit_and_score_is_seeded(windows):
    train, test = windows
    features = train[["amount"]], train["is_fraud"], test[["amount"]], test["is_fraud"]
    assert fit_and_score("hgb", *features, seed=1) == fit_and_score("hgb", *features, seed=1)
