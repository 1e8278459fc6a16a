"""Model factories, metrics, the paired bootstrap of a PR-AUC gain, and the lesson 02 measurements
(leakage over seeds, the 2×2 of models and feature sets, ablation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from lifecycle._pr_auc import _pr_auc_of_draws, _threshold_cuts
from lifecycle.course.experiments import (
    ablate_feature_groups,
    compare_features_and_models,
    fit_and_score,
    leakage_over_seeds,
    leakage_verdict,
    mean_interval,
    measure_leakage,
    raw_columns,
)
from lifecycle.data import generate_transactions
from lifecycle.errors import ConfigError
from lifecycle.features import FEATURE_COLUMNS, FEATURE_GROUPS, build_features, split_by_time
from lifecycle.training import (
    TUTORIAL_GBC,
    choose_threshold,
    evaluate,
    make_model,
    pr_auc_gain,
    same_budget_hgb,
    train_fraud_model,
)

pytestmark = pytest.mark.usefixtures("one_thread_per_fit")


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


def test_the_mlp_stops_on_validation_loss_and_keeps_its_best_epoch(windows):
    train, test = windows
    fit_rows = split_by_time(train, 0.2)[0].index
    model = make_model("mlp", seed=5)
    model.fit(build_features(train).loc[fit_rows], train.loc[fit_rows, "is_fraud"])
    network = model.steps[-1][1]
    losses = network.validation_loss_
    assert len(losses) == network.epochs_ and network.best_epoch_ == int(np.argmin(losses)) + 1
    assert network.epochs_ - network.best_epoch_ == network.patience or network.epochs_ == network.max_epochs
    scores = model.predict_proba(build_features(test, history=train))[:, 1]
    assert average_precision_score(test["is_fraud"], scores) > 5 * test["is_fraud"].mean(), "it learned to rank"
    again = make_model("mlp", seed=5).fit(build_features(train).loc[fit_rows], train.loc[fit_rows, "is_fraud"])
    np.testing.assert_array_equal(again.predict_proba(build_features(test, history=train))[:, 1], scores)


def test_the_mlp_refuses_rows_without_both_classes_to_stop_on():
    rows = pd.DataFrame({"x": np.arange(40.0)})
    with pytest.raises(ConfigError, match="needs both classes in its fitted and its validation rows"):
        make_model("mlp").fit(rows, np.r_[np.ones(4), np.zeros(36)])  # no fraud among the latest rows


def test_weighted_pr_auc_is_scikit_learns_average_precision_ties_and_weights_included():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(5, 200))
        labels = rng.random(n) < 0.2
        labels[0] = True
        scores = np.round(rng.random(n) * 5) / 5  # many ties
        codes, cuts = _threshold_cuts(labels, scores)
        drawn = rng.integers(0, n, size=(3, n))
        resampled = _pr_auc_of_draws(codes, cuts, codes[drawn])
        for row, value in zip(drawn, resampled, strict=True):
            weights = np.bincount(row, minlength=n)
            expected = average_precision_score(labels, scores, sample_weight=weights) if (weights * labels).any() \
                else np.nan
            np.testing.assert_allclose(value, expected, rtol=1e-12)
        full = _pr_auc_of_draws(codes, cuts, codes[None, :])[0]
        assert full == pytest.approx(average_precision_score(labels, scores))


def test_pr_auc_gain_is_paired_seeded_and_names_bad_input():
    rng = np.random.default_rng(1)
    labels = rng.random(3_000) < 0.02
    better, worse = labels * 2.0 + rng.normal(size=3_000), labels * 0.5 + rng.normal(size=3_000)
    gain = pr_auc_gain(labels, better, worse, rounds=500, seed=3)
    assert gain.gain == pytest.approx(average_precision_score(labels, better) - average_precision_score(labels, worse))
    assert (gain.rows, gain.positives, len(gain.resampled)) == (3_000, int(labels.sum()), 500)
    low, high = gain.interval()
    assert 0 < low < gain.gain < high and gain.p_value() == 1 / 501
    assert np.array_equal(pr_auc_gain(labels, better, worse, rounds=500, seed=3).resampled, gain.resampled)
    assert pr_auc_gain(labels, better, better).interval() == (0.0, 0.0), "the same model: no noise at all"
    with pytest.raises(ConfigError, match="one score per row"):
        pr_auc_gain(labels, better, worse[:10])
    with pytest.raises(ConfigError, match="hold no fraud"):
        pr_auc_gain(np.zeros(5), np.ones(5), np.ones(5))


def test_same_budget_hgb_changes_only_the_algorithm(windows):
    train, test = windows
    params = same_budget_hgb({"n_estimators": 40})
    assert params == {"max_iter": 40, "learning_rate": TUTORIAL_GBC["learning_rate"],
                      "max_depth": TUTORIAL_GBC["max_depth"], "max_leaf_nodes": None, "min_samples_leaf": 1,
                      "early_stopping": False}
    assert train_fraud_model(train, test, "hgb", seed=5, **params).model.n_iter_ == 40, "every tree is fitted"
    stopped = train_fraud_model(train, test, "hgb", seed=5, **same_budget_hgb(early_stopping=True))
    assert stopped.model.n_iter_ < TUTORIAL_GBC["n_estimators"] and stopped.fit_cpu_seconds > 0


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


def test_raw_columns_hold_the_row_and_its_time_of_day_but_no_absolute_time(windows):
    train, _ = windows
    columns = raw_columns(train)
    assert "timestamp_seconds" not in columns and {"hour", "day_of_week", "amount"} <= set(columns)
    assert not any(name.startswith(("user_", "transaction_id")) for name in columns)
    assert columns["hour"].between(0, 23).all() and columns.index.equals(train.index)


def test_the_two_by_two_records_four_numbers_and_one_change_per_effect(windows, leakage):
    table = compare_features_and_models(*windows, kinds=("hgb", "logreg"), seed=5, rounds=300)
    assert list(table.pr_auc.index) == ["raw columns", "engineered features"]
    assert list(table.pr_auc.columns) == ["hgb", "logreg"]
    assert table.pr_auc.loc["engineered features", "hgb"] == leakage["pr_auc_point_in_time"]
    assert set(table.record()) == {"tree_raw", "tree_engineered", "logreg_raw", "logreg_engineered"}
    assert list(table.effects["changed"]) == ["features", "features", "model", "model"]
    engineered = table.effects.iloc[0]
    assert engineered["gain"] == pytest.approx(table.pr_auc.loc["engineered features", "hgb"]
                                               - table.pr_auc.loc["raw columns", "hgb"])
    assert engineered["low"] < engineered["gain"] < engineered["high"]
    verdict = table.verdict()
    assert len(verdict) == 5 and "changes two things at once" in verdict[0]
    for sentence, (_, row) in zip(verdict[1:], table.effects.iterrows(), strict=True):
        assert f"{row['gain']:+.3f}" in sentence
        assert ("beyond the noise" in sentence) == (row["low"] > 0 or row["high"] < 0)


def test_ablation_drops_one_group_at_a_time(windows, leakage):
    table = ablate_feature_groups(*windows, seed=5)
    assert list(table.index) == ["none", "temporal", "aggregation", "ratio"]
    expected_counts = [len(FEATURE_COLUMNS)] + [len(FEATURE_COLUMNS) - len(FEATURE_GROUPS[g])
                                                for g in ("temporal", "aggregation", "ratio")]
    assert table["features"].tolist() == expected_counts
    assert table.loc["none", "pr_auc"] == leakage["pr_auc_point_in_time"]
    np.testing.assert_allclose(table["pr_auc_drop"], table.loc["none", "pr_auc"] - table["pr_auc"])
    with pytest.raises(ConfigError, match=r"unknown feature group\(s\) \['momentum'\]; the groups are"):
        ablate_feature_groups(*windows, groups=("momentum",))


def test_leakage_over_seeds_reuses_known_results_and_the_interval_is_the_t_interval():
    known = {1: {"pr_auc_naive_offline": 0.5, "pr_auc_naive_served": 0.4, "pr_auc_point_in_time": 0.45}}
    table = leakage_over_seeds([1, 2], rows=3_000, known=known)
    assert list(table.index) == [1, 2] and table.loc[1, "offline - served"] == pytest.approx(0.1)
    assert table.loc[2, "offline - served"] == pytest.approx(table.loc[2, "pr_auc_naive_offline"]
                                                            - table.loc[2, "pr_auc_naive_served"])
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.302653 / np.sqrt(3))  # t(0.975, 2 df) · s / √n
    with pytest.raises(ConfigError, match="at least 2 values"):
        mean_interval([1.0])


@pytest.mark.parametrize(("gaps", "gains", "said"), [
    ([0.05, 0.06, 0.04, 0.05], [0.02, -0.01, 0.03, 0.0], ("over-promises", "no cost or gain")),
    ([0.05, -0.04, 0.03, -0.02], [-0.05, -0.06, -0.04, -0.05], ("includes zero", "cold start")),
    ([-0.05, -0.06, -0.04, -0.05], [0.05, 0.06, 0.04, 0.05], ("under-promised", "also scores better")),
])
def test_the_leakage_verdict_says_what_the_interval_supports(gaps, gains, said):
    spread = pd.DataFrame({"offline - served": gaps, "point in time - served": gains})
    promise, remedy = leakage_verdict(spread)
    assert said[0] in promise and said[1] in remedy
    assert f"Over {len(gaps)} seeds" in promise and f"{np.mean(gaps):+.3f}" in promise


def test_fit_and_score_is_seeded(windows):
    train, test = windows
    features = train[["amount"]], train["is_fraud"], test[["amount"]], test["is_fraud"]
    assert fit_and_score("hgb", *features, seed=1) == fit_and_score("hgb", *features, seed=1)
