"""The transaction generator: seeded bytes, realistic structure, scenarios, schema errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from lifecycle.data import (
    COLUMNS,
    SCENARIOS,
    LabelDelay,
    drift_strength,
    generate_period,
    generate_transactions,
    label_arrivals,
    labels_as_of,
    read_transactions,
    training_labels_as_of,
    validate_transactions,
    write_transactions,
)
from lifecycle.errors import ConfigError, SchemaError


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return generate_transactions(rows=20_000, seed=42)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    first = write_transactions(generate_transactions(3_000, seed=7), tmp_path / "a.csv")
    again = write_transactions(generate_transactions(3_000, seed=7), tmp_path / "b.csv")
    other = write_transactions(generate_transactions(3_000, seed=8), tmp_path / "c.csv")
    assert md5(first) == md5(again)
    assert md5(first) != md5(other)


def test_columns_rows_and_order(baseline):
    assert list(baseline.columns) == list(COLUMNS)
    assert len(baseline) == 20_000
    assert baseline["transaction_id"].is_unique
    assert baseline["timestamp"].is_monotonic_increasing


def test_fraud_is_rare_and_shows_in_relative_amount_hour_and_merchant(baseline):
    fraud, genuine = baseline[baseline["is_fraud"] == 1], baseline[baseline["is_fraud"] == 0]
    assert 0.01 <= baseline["is_fraud"].mean() <= 0.03
    typical = genuine.groupby("user_id")["amount"].median()
    ratio = lambda rows: (rows["amount"] / rows["user_id"].map(typical)).median()  # noqa: E731
    assert ratio(fraud) > 2 * ratio(genuine)
    night = lambda rows: (rows["timestamp"].dt.hour < 6).mean()  # noqa: E731
    assert night(fraud) > 3 * night(genuine)
    risky = ["electronics", "gift_cards", "online_shopping"]
    assert fraud["merchant_category"].isin(risky).mean() > 2 * genuine["merchant_category"].isin(risky).mean()


def test_fraud_comes_in_bursts(baseline):
    fraud = baseline[baseline["is_fraud"] == 1].sort_values(["user_id", "timestamp"])
    gap = fraud.groupby("user_id")["timestamp"].diff().dropna()
    assert (gap < pd.Timedelta(minutes=30)).mean() > 0.5


def test_users_have_daily_and_weekly_rhythms(baseline):
    genuine = baseline[baseline["is_fraud"] == 0]
    by_hour = genuine["timestamp"].dt.hour.value_counts(normalize=True)
    assert by_hour.loc[12] > 5 * by_hour.loc[3]
    per_user = genuine.groupby("user_id")["amount"].median()
    assert per_user.quantile(0.9) > 2 * per_user.quantile(0.1)  # users differ in habit


def test_later_window_has_the_same_customers():
    january = generate_transactions(5_000, seed=3, start="2026-01-01")
    february = generate_transactions(5_000, seed=3, start="2026-02-01")
    assert february["timestamp"].min() >= pd.Timestamp("2026-02-01")
    shared = set(january["user_id"]) & set(february["user_id"])
    assert len(shared) > 0.7 * january["user_id"].nunique()
    habit = pd.concat([january.groupby("user_id")["amount"].median(),
                       february.groupby("user_id")["amount"].median()], axis=1, join="inner")
    assert habit.corr(method="spearman").iloc[0, 1] > 0.5


def test_data_drift_shifts_inputs(baseline):
    drifted = generate_transactions(20_000, seed=42, scenario="data_drift")
    assert drifted["amount"].median() > 1.3 * baseline["amount"].median()
    assert (drifted["timestamp"].dt.hour < 6).mean() > 1.5 * (baseline["timestamp"].dt.hour < 6).mean()


def test_concept_drift_keeps_inputs_close_but_changes_the_label(baseline):
    concept = generate_transactions(20_000, seed=42, scenario="concept_drift")
    assert abs(concept["amount"].median() / baseline["amount"].median() - 1) < 0.05
    for column in ("merchant_category", "channel", "country"):
        shares = pd.concat([baseline[column].value_counts(normalize=True),
                            concept[column].value_counts(normalize=True)], axis=1).fillna(0)
        assert (shares.iloc[:, 0] - shares.iloc[:, 1]).abs().max() < 0.03, column
    # the old pattern (big, at night) is now mostly genuine
    night_big = lambda rows: rows[(rows["timestamp"].dt.hour < 6) & (rows["amount"] > 150)]  # noqa: E731
    assert night_big(concept)["is_fraud"].mean() < 0.7 * night_big(baseline)["is_fraud"].mean()


@pytest.mark.parametrize("kwargs, message", [
    ({"scenario": "drifty"}, "unknown scenario 'drifty'; choose one of baseline, data_drift, concept_drift"),
    ({"rows": 0}, "rows must be a positive integer"),
    ({"fraud_rate": 0.9}, "fraud_rate must be in"),
    ({"ramp_days": -1}, r"ramp_days must be 0 \(sudden\) or more \(gradual\), got -1"),
    ({"inflation": -1.5}, "inflation must be above -1"),
])
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        generate_transactions(**{"rows": 100, **kwargs})


def test_every_scenario_generates(tmp_path):
    for scenario in SCENARIOS:
        frame = generate_transactions(2_000, seed=1, scenario=scenario)
        assert len(frame) == 2_000
        assert frame["is_fraud"].sum() > 0


def test_read_round_trips(tmp_path):
    frame = generate_transactions(500, seed=2)
    back = read_transactions(write_transactions(frame, tmp_path / "t.csv"))
    pd.testing.assert_frame_equal(back.reset_index(drop=True), frame, check_dtype=False)


def test_missing_columns_are_named_with_what_was_expected(tmp_path):
    path = tmp_path / "bad.csv"
    generate_transactions(50, seed=1).drop(columns=["amount", "is_fraud"]).to_csv(path, index=False)
    with pytest.raises(SchemaError) as caught:
        read_transactions(path)
    message = str(caught.value)
    assert "missing column(s) ['amount', 'is_fraud']" in message
    assert "expected columns ['transaction_id'" in message
    assert str(path) in message


def test_mistyped_columns_name_the_column_rows_and_values(tmp_path):
    frame = generate_transactions(50, seed=1).astype({"amount": object, "timestamp": object})
    frame.loc[3, "amount"] = "twelve"
    frame.loc[5, "timestamp"] = "yesterday"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SchemaError) as caught:
        read_transactions(path)
    message = str(caught.value)
    assert "column 'amount' must hold a non-negative number; 1 row(s) do not, e.g. rows [3] hold ['twelve']" in message
    assert "column 'timestamp' must hold an ISO timestamp" in message and "'yesterday'" in message


def test_unknown_category_and_label_are_refused():
    frame = generate_transactions(20, seed=1).astype({"is_fraud": object})
    frame.loc[0, "channel"] = "fax"
    frame.loc[1, "is_fraud"] = 2
    with pytest.raises(SchemaError, match=r"column 'channel' must hold one of \['chip'.*'fax'"):
        validate_transactions(frame)
    with pytest.raises(SchemaError, match="column 'is_fraud' must hold 0 or 1"):
        validate_transactions(frame)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(SchemaError, match="lifecycle data generate"):
        read_transactions(tmp_path / "nope.csv")


def test_unlabelled_traffic_is_allowed_when_asked():
    frame = generate_transactions(20, seed=1).drop(columns=["is_fraud"])
    assert "is_fraud" not in validate_transactions(frame, require_label=False)
    assert np.issubdtype(validate_transactions(frame, require_label=False)["amount"].dtype, np.floating)


# ---- the package split changed no byte; time in the data ----

# md5 of write_transactions(generate_transactions(3_000, seed=7, scenario=...)) before data.py became a package.
BYTES_BEFORE_THE_SPLIT = {"baseline": "ca7cc52de038a4bf1a570ea9d6c29ace",
                          "data_drift": "c03144373fd1f4b39a1f5b40ff8c1a3b",
                          "concept_drift": "3095d1d2bb81ff6be4a850fa0ae03f1b"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_existing_calls_give_the_same_bytes_as_before(scenario, tmp_path):
    path = write_transactions(generate_transactions(3_000, seed=7, scenario=scenario), tmp_path / "t.csv")
    assert md5(path) == BYTES_BEFORE_THE_SPLIT[scenario]


def test_the_strength_profile_is_a_step_or_a_ramp():
    seconds = np.array([0, 86_400 * 5, 86_400 * 10, 86_400 * 30])
    assert drift_strength(seconds, 0).tolist() == [1, 1, 1, 1]
    assert drift_strength(seconds, 10).tolist() == [0, 0.5, 1, 1]


def test_a_period_shares_its_quiet_days_across_scenarios_and_repeats(tmp_path):
    worlds = {s: generate_period(6_000, 5, s, "2026-02-01", days=28, drift_day=14) for s in SCENARIOS}
    cut = pd.Timestamp("2026-02-15")
    quiet = [w[w["timestamp"] < cut].reset_index(drop=True) for w in worlds.values()]
    assert all(q.equals(quiet[0]) for q in quiet) and len(quiet[0]) == 3_000
    later = worlds["baseline"][worlds["baseline"]["timestamp"] >= cut]
    assert not later["transaction_id"].isin(quiet[0]["transaction_id"]).any()
    assert worlds["concept_drift"]["transaction_id"].is_unique
    assert worlds["data_drift"]["timestamp"].is_monotonic_increasing
    again = generate_period(6_000, 5, "concept_drift", "2026-02-01", days=28, drift_day=14)
    assert md5(write_transactions(again, tmp_path / "a.csv")) == md5(write_transactions(worlds["concept_drift"],
                                                                                        tmp_path / "b.csv"))
    with pytest.raises(ConfigError, match="drift_day must be in"):
        generate_period(100, drift_day=28, days=28)


def test_gradual_concept_drift_ramps_up_while_sudden_is_full_from_the_first_day():
    worlds = {name: generate_transactions(40_000, 42, scenario, days=40, ramp_days=ramp)
              for name, scenario, ramp in (("baseline", "baseline", 0), ("sudden", "concept_drift", 0),
                                           ("gradual", "concept_drift", 40))}
    typical = worlds["baseline"].groupby("user_id")["amount"].median()

    def lookalikes(frame):
        """Genuine buying in the old fraud pattern (big, online, at a risky merchant): instant credit."""
        risky = frame["merchant_category"].isin(["electronics", "gift_cards", "online_shopping"])
        big = frame["amount"] > 3 * frame["user_id"].map(typical)
        return (risky & big & (frame["channel"] == "online") & (frame["is_fraud"] == 0)).mean()

    def card_testing(frame):
        """Fraud in small online payments: the new tactic."""
        small = frame["amount"] < 0.5 * frame["user_id"].map(typical)
        return ((frame["is_fraud"] == 1) & small & (frame["channel"] == "online")).sum()

    first, last = (lambda f: f[f["timestamp"] < "2026-01-11"]), (lambda f: f[f["timestamp"] >= "2026-01-31"])
    excess = {name: (lookalikes(first(f)) - lookalikes(first(worlds["baseline"])),
                     lookalikes(last(f)) - lookalikes(last(worlds["baseline"]))) for name, f in worlds.items()}
    assert excess["gradual"][1] > 4 * excess["gradual"][0] > 0  # the ramp: little at first, full at the end
    assert excess["sudden"][0] > 0.8 * excess["sudden"][1] > 0  # the step: full from the first day
    assert card_testing(last(worlds["gradual"])) > 2 * card_testing(first(worlds["gradual"]))
    assert card_testing(first(worlds["sudden"])) > 5 * card_testing(first(worlds["baseline"]))


def test_data_drift_strength_and_ramp():
    plain = generate_transactions(20_000, seed=42, days=30)
    strong = generate_transactions(20_000, seed=42, scenario="data_drift", days=30, inflation=1.0, hour_shift=0)
    assert 1.8 < strong["amount"].median() / plain["amount"].median() < 2.2
    ramped = generate_transactions(20_000, seed=42, scenario="data_drift", days=30, ramp_days=30)
    early, late = ramped[ramped["timestamp"] < "2026-01-06"], ramped[ramped["timestamp"] >= "2026-01-26"]
    assert late["amount"].median() > 1.25 * early["amount"].median()
    night = lambda f: (f["timestamp"].dt.hour < 6).mean()  # noqa: E731
    assert night(late) > 1.3 * night(early)


# ---- when labels arrive ----

@pytest.fixture(scope="module")
def arrivals(baseline):
    row = np.arange(len(baseline))
    blocked = (row % 50 == 0) | (baseline["is_fraud"].to_numpy() == 1) & (row % 2 == 0)
    return label_arrivals(baseline, blocked, seed=3)


def test_blocked_rows_are_labelled_only_by_review_and_approved_frauds_by_chargeback(arrivals):
    blocked, fraud = arrivals["blocked"], arrivals["is_fraud"] == 1
    assert arrivals.loc[blocked, "chargeback_at"].isna().all() and arrivals.loc[blocked, "matures_at"].isna().all()
    assert arrivals.loc[~blocked, "reviewed_at"].isna().all()
    assert 0.45 < arrivals.loc[blocked, "reviewed_at"].notna().mean() < 0.55  # review probability 0.5
    delays = (arrivals.loc[~blocked & fraud, "chargeback_at"] - arrivals.loc[~blocked & fraud, "timestamp"]).dt.days
    assert arrivals.loc[~blocked & ~fraud, "chargeback_at"].isna().all()
    assert 25 <= delays.median() <= 35 and delays.quantile(0.9) > 50  # median 30 days, a long tail


def test_labels_as_of_a_day(arrivals):
    day = pd.Timestamp("2026-03-15")
    labelled, label = labels_as_of(arrivals, day)
    reviewed = arrivals["reviewed_at"] <= day
    assert (label[reviewed.to_numpy()] == arrivals.loc[reviewed, "is_fraud"]).all()
    charged = (arrivals["chargeback_at"] <= day).to_numpy()
    assert label[charged].all() and labelled[charged].all()
    matured_not_charged = (arrivals["matures_at"] <= day).to_numpy() & ~charged
    assert (label[matured_not_charged] == 0).all()  # taken as genuine, even the frauds disputed later
    late = matured_not_charged & (arrivals["is_fraud"].to_numpy() == 1)
    assert late.any()
    assert not labels_as_of(arrivals, "2025-12-31")[0].any()
    usable, _ = training_labels_as_of(arrivals, day)
    recent_chargebacks = charged & ~(arrivals["matures_at"] <= day).to_numpy()
    assert recent_chargebacks.any() and not usable[recent_chargebacks].any()


def test_arrivals_are_seeded_and_keep_their_delays_when_the_model_changes(baseline, arrivals):
    none_blocked = label_arrivals(baseline, np.zeros(len(baseline), dtype=bool), seed=3)
    approved = ~arrivals["blocked"].to_numpy()
    pd.testing.assert_series_equal(none_blocked["chargeback_at"][approved], arrivals["chargeback_at"][approved])
    assert label_arrivals(baseline, arrivals["blocked"], seed=3).equals(arrivals)
    with pytest.raises(SchemaError, match="blocked has 3 values for 20000 transactions"):
        label_arrivals(baseline, [True, False, True])
    with pytest.raises(ConfigError, match="review_probability must be in"):
        LabelDelay(review_probability=1.5)
