"""The transaction generator: seeded bytes, realistic structure, scenarios, schema errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from lifecycle.data import (
    COLUMNS,
    SCENARIOS,
    generate_transactions,
    read_transactions,
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
