"""The "Try it" playgrounds (lessons 02, 03, 06, 07): each control's numbers are the library function's for
those settings, Reset restores the lesson's defaults, the expensive part is done once, and a setting kept
with *Log this setting* (or a 03 *Run*) is an MLflow run that ``mlflow.search_runs`` finds. Small data;
real MLflow (sqlite) and real Evidently."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lifecycle.config import load_settings
from lifecycle.course.playgrounds import (
    DriftSetting,
    canary_playground,
    drift_playground,
    drift_worlds,
    evaluate_drift,
    evaluate_policy,
    evaluate_setting,
    feature_playground,
    fit_feature_scores,
    format_value,
    run_experiment,
    tracking_playground,
)
from lifecycle.course.playgrounds._base import values_html
from lifecycle.data import LabelDelay, generate_period, generate_transactions
from lifecycle.errors import ConfigError
from lifecycle.features import split_by_time

SEED = 42


pytestmark = pytest.mark.usefixtures("one_thread_per_fit")


@pytest.fixture(scope="module")
def windows():
    january = generate_transactions(8_000, SEED, "baseline", days=31)
    train, test = split_by_time(january, 0.3)
    return SimpleNamespace(january=january, train=train, test=test)



@pytest.fixture
def settings(isolated_workspace, empty_store):
    settings = load_settings().ensure_dirs()
    assert str(isolated_workspace) in settings.mlflow_tracking_uri, "tests must not touch the real store"
    shutil.copyfile(empty_store, settings.workspace / "mlflow.db")
    return settings


def shown(playground) -> dict[str, str]:
    """The numbers as the browser shows them (the spans' text), by name."""
    import re

    return dict(re.findall(r"data-name='([^']+)'>([^<]*)<", playground.numbers.value))


def expected(values: dict, labels: dict) -> dict[str, str]:
    import html

    return {name: html.escape(format_value(value)) for name, value in values.items() if name in labels}


def playground_runs(settings, lesson: str) -> pd.DataFrame:
    import mlflow

    from lifecycle.tracking.runs import EXPERIMENT, use_experiment

    use_experiment(settings)
    return mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=f"tags.playground = '{lesson}'")


# ---- the shared machinery ----

def test_the_public_names_are_pinned_and_each_resolves():
    from lifecycle.course import playgrounds

    assert playgrounds.__all__ == [
        "DriftSetting", "DriftWorlds", "canary_playground", "drift_playground", "drift_worlds", "evaluate_drift",
        "evaluate_policy", "evaluate_setting", "feature_playground", "fit_feature_scores", "format_value",
        "log_setting", "run_experiment", "tracking_playground"]
    for name in playgrounds.__all__:
        assert getattr(playgrounds, name) is not None


def test_numbers_are_spans_a_test_can_read_back():
    html = values_html({"precision": 0.12345, "alerts": 12_345, "day": "Sun 15 Mar", "hidden": 1.0},
                       {"precision": "precision", "alerts": "alerts", "day": "day"})
    assert "data-name='precision'>0.123<" in html and "data-name='alerts'>12,345<" in html
    assert "Sun 15 Mar" in html and "hidden" not in html
    assert format_value(1234.5) == "1,234" and format_value(float("nan")) == "nan"


# ---- 02: feature groups, the threshold, the cost ----

@pytest.fixture(scope="module")
def feature_scores(windows):
    return fit_feature_scores(windows.train, windows.test, SEED, max_iter=20)


def test_the_02_playground_toggles_all_four_groups_with_one_model_per_combination(feature_scores):
    assert feature_scores.groups == ("temporal", "aggregation", "velocity", "ratio")
    assert len(feature_scores.scores) == 2 ** 4
    with pytest.raises(ConfigError, match="no model for feature groups"):
        feature_scores.of(("temporal", "momentum"))


def test_a_setting_counts_what_a_fraud_team_counts(feature_scores):
    groups, threshold, review = ("aggregation", "velocity"), 0.3, 10.0
    values = evaluate_setting(feature_scores, groups, threshold, review)
    score, labels, amounts = feature_scores.of(groups), feature_scores.labels, feature_scores.amounts
    flagged = score >= threshold
    assert values["recall"] == pytest.approx((flagged & (labels == 1)).sum() / labels.sum())
    assert values["alerts_per_1000"] == pytest.approx(1000 * flagged.mean())
    cost = amounts[~flagged & (labels == 1)].sum() + review * flagged.sum()
    assert values["cost"] == pytest.approx(cost)
    # the lowest-cost threshold: no threshold among the scores costs less
    every = [amounts[(score < t) & (labels == 1)].sum() + review * (score >= t).sum() for t in np.unique(score)]
    assert values["best_cost"] == pytest.approx(min(every))
    budget = evaluate_setting(feature_scores, groups, threshold, review, alert_budget_per_day=2.0)
    assert (score >= budget["best_cost_threshold"]).sum() / feature_scores.days <= 2.0
    assert values["sentence"].startswith("Without temporal, ratio, PR-AUC is")


def test_the_02_playground_shows_the_functions_numbers_and_resets(windows):
    playground = feature_playground(windows.train, windows.test, SEED)
    first = dict(playground.values)
    playground.controls["groups"].value = ("temporal", "velocity")
    playground.controls["threshold"].value = 0.3
    want = evaluate_setting(playground.scores, ("temporal", "velocity"), 0.3, 20.0, 0.0)
    assert shown(playground) == expected(want, playground.labels)
    assert playground.values["pr_auc"] != first["pr_auc"]
    playground.restore_defaults()
    assert playground.settings == playground.defaults
    assert shown(playground) == expected(first, playground.labels)


# ---- 03: a run of your own, tracked ----

def test_a_03_run_is_an_mlflow_run_beside_the_lessons(windows, settings):
    with pytest.raises(ConfigError, match="the playground runs"):
        run_experiment(windows.train, windows.test, "xgboost", {}, settings=settings)
    with pytest.raises(ConfigError, match="takes"):
        run_experiment(windows.train, windows.test, "logreg", {"max_depth": 3}, settings=settings)
    playground = tracking_playground(windows.train, windows.test, SEED, "s-unit", settings)
    assert playground.runs().empty
    playground.kind.value = "logreg"
    playground.knobs["logreg"]["C"].value = 0.1
    last = playground.run_once()
    runs = playground_runs(settings, "03")
    assert list(runs["run_id"]) == [last["run_id"]] and runs["tags.session"].iloc[0] == "s-unit"
    assert list(playground.runs()["by"]) == ["you"]
    assert "data-name='pr_auc'" in playground.status.value
    playground.restore_defaults()
    assert playground.kind.value == "hgb" and playground.knobs["logreg"]["C"].value == 1.0


# ---- 06: the canary policy ----

def test_the_06_numbers_are_the_simulators_and_deterministic():
    one = evaluate_policy("never_flags", None, 0.05, rollouts=60, seed=3)
    again = evaluate_policy("never_flags", None, 0.05, rollouts=60, seed=3)
    assert {k: v for k, v in one.items() if k != "timeline"} == {k: v for k, v in again.items() if k != "timeline"}
    good = evaluate_policy("good", None, 0.05, rollouts=60, seed=3)
    assert one["false_rollback"] == good["false_rollback"]  # the same policy: the same good challenger's rate
    assert good["sentence"].startswith("A good challenger is rolled back in")
    assert 0 <= one["caught_by_test"] <= one["caught"] <= 1


def test_the_06_playground_follows_the_failure_and_resets(settings):
    playground = canary_playground(rollouts=40, settings=settings)
    playground.controls["failure"].value = "errors_4x"
    size = playground.controls["size"]
    assert (size.min, size.description) == (1.0, "fails this × as often")
    size.value = 6.0
    want = evaluate_policy("errors_4x", 6.0, 0.05, "shadow → 5 → 25 → 50 → 100", 40, 0)
    assert shown(playground) == expected(want, playground.labels)
    assert len(playground.plot.outputs) == 1, "each update replaces the plot; earlier ones must not pile up"
    run_id = playground.log()
    runs = playground_runs(settings, "06")
    assert list(runs["run_id"]) == [run_id] and runs["params.failure"].iloc[0] == "errors_4x"
    assert "playground = '06'" in playground.logged.value
    playground.restore_defaults()
    assert playground.settings == playground.defaults and playground.controls["size"].description.startswith("flags")


# ---- 07: drift by hand ----

@pytest.fixture(scope="module")
def monitored():
    from lifecycle.monitoring import Reference, score_periods
    from lifecycle.training import train_fraud_model

    january = generate_transactions(12_000, SEED, "baseline", days=31)
    train, test = split_by_time(january, 0.4)
    champion = train_fraud_model(train, test, "hgb", SEED)
    reference = Reference.from_window(champion.model, champion.threshold, test, train)
    start, weeks, drift_day = pd.Timestamp("2026-02-01"), 5, 14
    rows = round(12_000 * 7 / 31) * weeks
    worlds = {"baseline": ("baseline", {}), "concept_drift": ("concept_drift", {})}
    periods = {name: generate_period(rows, SEED, scenario, start, 7 * weeks, drift_day, **strength)
               for name, (scenario, strength) in worlds.items()}
    scored = score_periods(champion.model, reference, periods, january, start, weeks,
                           start + pd.Timedelta(days=drift_day))
    return SimpleNamespace(model=champion.model, reference=reference, january=january, start=start, weeks=weeks,
                           drift_day=drift_day, rows=rows, worlds=worlds, scored=scored)


def state_of(m, seeded: bool = True):
    return drift_worlds(m.model, m.reference, m.january, m.start, m.weeks, m.drift_day, m.rows, SEED,
                        m.scored if seeded else None, m.worlds if seeded else None)


def test_a_drift_setting_keys_only_what_its_scenario_uses():
    assert DriftSetting("baseline", 10, 2, 30, 21).key() == DriftSetting("baseline")
    assert DriftSetting("data_drift", 20, 3, 90, 0).key() == DriftSetting("data_drift", 20, 3, 60, 0)
    assert DriftSetting("concept_drift", 5, 1, 30, 42).key() == DriftSetting("concept_drift", 45, 5, 30, 42)
    assert DriftSetting("concept_drift", new_tactics_pct=30).strength() == {"concept_shift": 0.3, "ramp_days": 0}
    assert DriftSetting.of_world("concept_drift", {"ramp_days": 42}) == DriftSetting("concept_drift", ramp_days=42)
    with pytest.raises(ConfigError, match="not 'drifty'"):
        DriftSetting("drifty")
    with pytest.raises(ConfigError, match="has no"):
        drift_worlds(None, None, None, "2026-02-01", 4, 7, 100, scored={"mystery": object()}, worlds={})


def test_the_lessons_worlds_cost_nothing_and_equal_a_fresh_scoring(monitored):
    seeded, fresh = state_of(monitored), state_of(monitored, seeded=False)
    assert seeded.has(DriftSetting("concept_drift")) and not fresh.has(DriftSetting("concept_drift"))
    one, other = evaluate_drift(seeded), evaluate_drift(fresh)
    assert fresh.has(DriftSetting("concept_drift"))
    for name in monitored_labels():
        assert format_value(one[name]) == format_value(other[name]), name
    pd.testing.assert_frame_equal(one["table"], other["table"])


def test_a_new_drift_scores_only_its_own_days_and_equals_its_period_scored_whole(monitored):
    from lifecycle.monitoring import score_period

    state = state_of(monitored)
    shared = state.shared  # the lesson's quiet days, taken from its scored worlds: nothing re-scored
    assert len(shared.transactions) == int(state.period(DriftSetting("baseline")).rows_before(state.drift_start).sum())
    drift = DriftSetting("data_drift", inflation_pct=70, ramp_days=7)
    got = state.period(drift)
    assert state.shared is shared
    transactions = generate_period(monitored.rows, SEED, "data_drift", monitored.start, 7 * monitored.weeks,
                                   monitored.drift_day, **drift.strength())
    whole = score_period(monitored.model, monitored.reference, transactions, monitored.january, monitored.start,
                         monitored.weeks)
    pd.testing.assert_frame_equal(got.transactions, whole.transactions)
    pd.testing.assert_frame_equal(got.features, whole.features)
    np.testing.assert_array_equal(got.scores, whole.scores)
    np.testing.assert_array_equal(got.week, whole.week)
    pd.testing.assert_frame_equal(got.drift, whole.drift)


def monitored_labels():
    from lifecycle.course.playgrounds.monitoring import LABELS

    return LABELS


def test_a_label_delay_reruns_only_the_cheap_part_and_a_chargeback_never_moves_the_decision(monitored):
    from lifecycle.monitoring import Policy, monitor_period

    state = state_of(monitored)
    scored_before = len(state.periods)
    quick = evaluate_drift(state, "concept_drift", review_days=1.0, reviewed_pct=90)
    slow = evaluate_drift(state, "concept_drift", review_days=10.0, reviewed_pct=20)
    assert len(state.periods) == scored_before
    table, _, _ = monitor_period(state.period(DriftSetting()), state.reference,
                                 LabelDelay(review_probability=0.2, review_median_days=10.0), Policy(looks=state.weeks),
                                 seed=SEED)
    pd.testing.assert_frame_equal(slow["table"], table)
    assert quick["table"]["labelled_flags"].sum() > slow["table"]["labelled_flags"].sum()
    late = evaluate_drift(state, "concept_drift", review_days=1.0, reviewed_pct=90, chargeback_days=80)
    assert late["table"]["action"].tolist() == quick["table"]["action"].tolist()
    assert late["table"]["label_coverage"].iloc[-1] < quick["table"]["label_coverage"].iloc[-1]


def test_the_07_playground_computes_a_new_drift_once_saying_so_and_resets(monitored, settings):
    playground = drift_playground(monitored.model, monitored.reference, monitored.january, monitored.start,
                                  monitored.weeks, monitored.drift_day, monitored.rows, SEED, scored=monitored.scored,
                                  worlds=monitored.worlds, settings=settings)
    controls, first = playground.controls, dict(playground.values)
    assert controls["inflation_pct"].disabled and not controls["new_tactics_pct"].disabled
    lines = []
    playground.sentence.observe(lambda change: lines.append(change["new"]), names="value")
    controls["review_days"].value = 7.0
    assert not any("computing" in line for line in lines)  # a label setting: the cached period
    controls["scenario"].value = "data_drift"
    assert not controls["inflation_pct"].disabled and controls["new_tactics_pct"].disabled
    assert any("computing" in line for line in lines), "a drift not scored yet says it is computing"
    lines.clear()
    controls["inflation_pct"].value = 20
    assert any("computing" in line for line in lines)
    state_settings = dict(playground.settings)
    want = evaluate_drift(state_of(monitored, seeded=False), **state_settings)
    assert shown(playground) == expected(want, playground.labels)
    controls["inflation_pct"].value = 45
    lines.clear()
    controls["inflation_pct"].value = 20  # back to a drift it has scored: instant
    assert lines and not any("computing" in line for line in lines)
    run_id = playground.log()
    runs = playground_runs(settings, "07")
    assert list(runs["run_id"]) == [run_id]
    assert runs["params.scenario"].iloc[0] == "data_drift" and runs["params.inflation_pct"].iloc[0] == "20"
    playground.restore_defaults()
    assert playground.settings == playground.defaults
    assert shown(playground) == expected(first, playground.labels)
    assert controls["inflation_pct"].disabled


def shown_pixels(playground) -> np.ndarray:
    """The plot the widget shows, as an RGBA array."""
    import base64
    import io

    from PIL import Image

    png = base64.b64decode(playground.plot.outputs[0]["data"]["image/png"])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def full_draw_pixels(plot) -> np.ndarray:
    """The same figure drawn whole (text too), as a new figure would be."""
    plot.show_text(True)
    plot.figure.canvas.draw()
    pixels = np.array(plot.figure.canvas.buffer_rgba())
    plot.show_text(False)
    return pixels


def test_the_07_plot_updated_in_place_is_the_image_a_full_draw_gives(monitored):
    from lifecycle.course.playgrounds.monitoring import WeeklyChecksPlot

    playground = drift_playground(monitored.model, monitored.reference, monitored.january, monitored.start,
                                  monitored.weeks, monitored.drift_day, monitored.rows, SEED, scored=monitored.scored,
                                  worlds=monitored.worlds)
    plot = playground._draw
    assert isinstance(plot, WeeklyChecksPlot)
    first = shown_pixels(playground)
    for name, value in (("scenario", "baseline"), ("review_days", 14.0), ("scenario", "concept_drift"),
                        ("new_tactics_pct", 100), ("reviewed_pct", 100), ("chargeback_days", 80)):
        playground.controls[name].value = value
        assert np.array_equal(shown_pixels(playground), full_draw_pixels(plot)), f"after {name} = {value}"
    playground.restore_defaults()
    assert np.array_equal(shown_pixels(playground), first), "Reset shows the first image again"


def test_the_06_plot_updated_in_place_returns_to_its_first_image_on_reset():
    playground = canary_playground(rollouts=40)
    first = shown_pixels(playground)
    for name, value in (("failure", "errors_4x"), ("plan", "5 → 25 → 50 → 100"), ("failure", "good")):
        playground.controls[name].value = value
        assert not np.array_equal(shown_pixels(playground), first), f"{name} = {value} shows another rollout"
    playground.restore_defaults()
    assert np.array_equal(shown_pixels(playground), first), "Reset shows the first image again"
