"""Point-in-time features: no row sees itself or its future; batch and streaming give the same bits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifecycle.data import CATEGORIES, CHANNELS, COUNTRIES, DEVICES, generate_transactions
from lifecycle.errors import SchemaError
from lifecycle.features import (
    BURST_WINDOW_SECONDS,
    FEATURE_COLUMNS,
    FEATURE_GROUPS,
    NO_HISTORY_GAP_SECONDS,
    FeatureState,
    build_features,
    encode_raw_columns,
    naive_user_features,
    split_by_time,
)

HISTORY_COLUMNS = (FEATURE_GROUPS["aggregation"] + FEATURE_GROUPS["velocity"]
                   + ["category_share_for_user", "country_share_for_user"])


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Few users, so each has many earlier transactions (and fraud bursts, which share seconds)."""
    return generate_transactions(rows=1_500, seed=3, users=40, days=10)


def expected_from_earlier_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The specification, row by row: each row's history is its user's rows that came strictly
    earlier (an earlier second, or the same second and earlier in the table)."""
    seconds = table["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    expected = {}
    for position, (index, row) in enumerate(table.iterrows()):
        same_user = (table["user_id"] == row["user_id"]).to_numpy()
        earlier = same_user & ((seconds < seconds[position])
                               | ((seconds == seconds[position]) & (np.arange(len(table)) < position)))
        past = table[earlier]
        amounts = past["amount"].to_numpy(dtype=float)
        n = len(past)
        expected[index] = {
            "user_txn_count": n,
            "user_amount_mean": amounts.mean() if n else 0.0,
            "user_amount_std": amounts.std() if n else 0.0,
            "user_txn_count_1h": int((seconds[earlier] >= seconds[position] - BURST_WINDOW_SECONDS).sum()),
            "seconds_since_last_txn": seconds[position] - seconds[earlier].max() if n else NO_HISTORY_GAP_SECONDS,
            "category_share_for_user": (past["merchant_category"] == row["merchant_category"]).mean() if n else 0.0,
            "country_share_for_user": (past["country"] == row["country"]).mean() if n else 0.0,
        }
    return pd.DataFrame.from_dict(expected, orient="index")[HISTORY_COLUMNS]


def test_each_row_sees_exactly_its_users_earlier_transactions(table):
    features = build_features(table)
    expected = expected_from_earlier_rows(table)
    assert list(features.columns) == FEATURE_COLUMNS and features.index.equals(table.index)
    pd.testing.assert_frame_equal(features[HISTORY_COLUMNS], expected, check_dtype=False, rtol=1e-9)
    assert (features["user_txn_count"] == 0).sum() == table["user_id"].nunique()  # each user's first row


def test_a_small_table_by_hand_including_two_payments_in_the_same_second():
    stamp = pd.Timestamp("2026-01-01 12:00:00")
    rows = pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u1", "u1"],
        "timestamp": [stamp, stamp, stamp, stamp + pd.Timedelta(minutes=10), stamp + pd.Timedelta(hours=2)],
        "amount": [10.0, 20.0, 99.0, 30.0, 60.0],
        "merchant_category": ["grocery", "grocery", "fuel", "travel", "grocery"],
        "channel": "chip", "device": "terminal", "country": ["US", "US", "GB", "FR", "US"],
    })
    features = build_features(rows)
    assert features["user_txn_count"].tolist() == [0, 1, 0, 2, 3]
    assert features["user_amount_mean"].tolist() == [0, 10, 0, 15, 20]
    assert features["user_txn_count_1h"].tolist() == [0, 1, 0, 2, 0]
    assert features["seconds_since_last_txn"].tolist() == [NO_HISTORY_GAP_SECONDS, 0, NO_HISTORY_GAP_SECONDS,
                                                           600, 6_600]
    assert features["amount_vs_user_avg"].tolist() == [1.0, 2.0, 1.0, 2.0, 3.0]  # no history: neutral 1
    assert features["category_share_for_user"].tolist() == [0, 1, 0, 0, 2 / 3]
    assert features["country_share_for_user"].tolist() == [0, 1, 0, 0, 2 / 3]
    state = FeatureState()
    assert [state.score_and_update(txn)["user_txn_count"] for txn in rows.to_dict("records")] == [0, 1, 0, 2, 3]


def test_no_row_sees_its_own_amount(table):
    changed = table.copy()
    row = changed.index[len(changed) // 2]
    changed.loc[row, "amount"] *= 1_000
    before, after = build_features(table), build_features(changed)
    pd.testing.assert_series_equal(before.loc[row, HISTORY_COLUMNS], after.loc[row, HISTORY_COLUMNS])
    assert after.loc[row, "amount_vs_user_avg"] == pytest.approx(1_000 * before.loc[row, "amount_vs_user_avg"])


def test_no_row_sees_a_later_transaction(table):
    cut = table["timestamp"].iloc[len(table) // 2]
    later = table["timestamp"] > cut
    rewritten = table.copy()
    rewritten.loc[later, "amount"] *= 50
    rewritten.loc[later, "merchant_category"] = "gift_cards"
    rewritten.loc[later, "country"] = "JP"
    rewritten.loc[later, "timestamp"] -= pd.Timedelta(seconds=1)  # still after the cut
    before, after = build_features(table), build_features(rewritten)
    pd.testing.assert_frame_equal(before[~later], after[~later])
    assert not before[later].equals(after[later])  # the rewrite did reach the later rows


def test_the_tutorials_whole_table_features_do_see_the_future(table):
    # The opposite of the two tests above, for the leaky version: the test would catch the leak.
    cut = table["timestamp"].iloc[len(table) // 2]
    later = table["timestamp"] > cut
    inflated = table.copy()
    inflated.loc[later, "amount"] *= 50
    before, after = naive_user_features(table), naive_user_features(inflated)
    earlier_rows_of_users_seen_later = ~later & table["user_id"].isin(table.loc[later, "user_id"])
    assert earlier_rows_of_users_seen_later.sum() > 100
    leaked = after["user_amount_mean"] > before["user_amount_mean"]
    assert leaked[earlier_rows_of_users_seen_later].all()
    assert (naive_user_features(table)["user_txn_count"] > build_features(table)["user_txn_count"]).all()


def test_history_makes_later_rows_see_the_earlier_window(table):
    train, test = split_by_time(table, 0.3)
    with_history = build_features(test, history=train)
    pd.testing.assert_frame_equal(with_history, build_features(table).loc[test.index])
    assert (with_history["user_txn_count"] > build_features(test)["user_txn_count"]).any()


# Columns derived from running sums of amounts. pandas' groupby cumsum (the batch path) adds with
# Kahan compensation, FeatureState adds plainly, so these agree to ~1e-13, not to the last bit;
# every other column is the same bits.
SUM_DERIVED = ["user_amount_mean", "user_amount_std", "amount_vs_user_avg", "amount_zscore"]
EXACT = [c for c in FEATURE_COLUMNS if c not in SUM_DERIVED]


def assert_same_features(streamed: pd.DataFrame, batch: pd.DataFrame) -> None:
    assert list(streamed.columns) == list(batch.columns) == FEATURE_COLUMNS
    assert streamed.index.equals(batch.index)
    np.testing.assert_array_equal(streamed[EXACT].to_numpy(), batch[EXACT].to_numpy())
    np.testing.assert_allclose(streamed[SUM_DERIVED].to_numpy(), batch[SUM_DERIVED].to_numpy(), rtol=1e-11, atol=1e-9)


def test_feature_state_one_transaction_at_a_time_equals_build_features(table):
    train, test = split_by_time(table, 0.3)
    state = FeatureState().fit(train)
    streamed = pd.DataFrame([state.score_and_update(txn) for txn in test.to_dict("records")], index=test.index)
    assert_same_features(streamed, build_features(test, history=train))


def test_feature_state_from_nothing_equals_build_features_without_history(table):
    state = FeatureState()
    streamed = pd.DataFrame([state.score_and_update(txn) for txn in table.to_dict("records")], index=table.index)
    assert_same_features(streamed, build_features(table))
    assert len(state.users_) == table["user_id"].nunique()


def test_feature_state_features_does_not_change_the_state(table):
    state = FeatureState().fit(table.iloc[:-1])
    last = table.iloc[-1].to_dict()
    assert state.features(last) == state.features(last)
    count = state.users_[last["user_id"]].count
    state.update(last)
    assert state.users_[last["user_id"]].count == count + 1


def test_feature_state_keeps_late_and_replayed_transactions_in_a_bounded_last_hour(table):
    """A server sees retries and late arrivals: the last hour stays the last hour (bounded, in order)
    and the user's clock does not go back."""
    user = table["user_id"].value_counts().index[0]
    rows = table[table["user_id"] == user].to_dict("records")
    state = FeatureState()
    for txn in rows * 20:  # the user's whole history replayed 20 times
        state.update(txn)
    history = state.users_[user]
    latest = int(pd.Timestamp(rows[-1]["timestamp"]).timestamp())
    assert history.count == 20 * len(rows) and history.last_seconds == latest
    assert list(history.recent) == sorted(history.recent) and min(history.recent) >= latest - 3600
    in_last_hour = sum(int(pd.Timestamp(r["timestamp"]).timestamp()) >= latest - 3600 for r in rows)
    assert len(history.recent) == 20 * in_last_hour
    late = {**rows[-1], "timestamp": pd.Timestamp(rows[-1]["timestamp"]) - pd.Timedelta(minutes=10)}
    state.update(late)
    assert list(history.recent) == sorted(history.recent) and history.last_seconds == latest


def test_split_by_time_puts_every_test_row_after_every_training_row(table):
    train, test = split_by_time(table, 0.25)
    assert len(train) + len(test) == len(table)
    assert train["timestamp"].max() < test["timestamp"].min()
    assert abs(len(test) - 0.25 * len(table)) <= table["timestamp"].duplicated().sum() + 1


def test_raw_columns_are_the_row_alone_with_fixed_columns(table):
    raw = encode_raw_columns(table)
    other = encode_raw_columns(table.head(3))
    assert list(raw.columns) == list(other.columns)
    assert len(raw.columns) == 2 + len(CATEGORIES) + len(CHANNELS) + len(DEVICES) + len(COUNTRIES)
    for column in ("merchant_category", "channel", "device", "country"):
        one_hot = raw[[c for c in raw.columns if c.startswith(f"{column}=")]]
        assert (one_hot.sum(axis=1) == 1).all()
    assert raw["timestamp_seconds"].is_monotonic_increasing and (raw["amount"] == table["amount"]).all()
    unknown = table.head(1).assign(country="ZZ")
    assert encode_raw_columns(unknown).filter(like="country=").to_numpy().sum() == 0


@pytest.mark.parametrize("build", [build_features, naive_user_features, encode_raw_columns,
                                   lambda frame: FeatureState().fit(frame)])
def test_missing_input_column_is_named(table, build):
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['amount'\].*expected at least"):
        build(table.drop(columns=["amount"]))
