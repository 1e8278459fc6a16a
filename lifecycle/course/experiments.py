"""Lesson 02's experiments: what leakage costs (over many seeds, with an interval), trees and a
network on raw and engineered features (the 2×2), and an ablation of the feature groups.

They are the course's measurements, built on the system's stages (:mod:`lifecycle.features`,
:mod:`lifecycle.training`); a fraud team would run the stages, not these. Every verdict the lesson
prints is computed here from the numbers, so it says what *this* run found.

Taught in notebooks/02_feature_engineering.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError
from lifecycle.features import FEATURE_COLUMNS, build_features, split_by_time
from lifecycle.training import PrAucGain, evaluate, fit_model, make_model, pr_auc_gain, predict_scores

FEATURE_SETS = ("raw columns", "engineered features")
MODEL_NAMES = {"hgb": "tree", "mlp": "mlp"}  # how the 2×2 names a kind in its recorded keys
GAPS = {"offline - served": ("pr_auc_naive_offline", "pr_auc_naive_served"),
        "point in time - served": ("pr_auc_point_in_time", "pr_auc_naive_served")}


def fit_and_score(kind: str, train_features: pd.DataFrame, train_labels: pd.Series, test_features: pd.DataFrame,
                  test_labels: pd.Series, seed: int = 42, **params: Any) -> float:
    """Fit a fresh model of ``kind`` on the training rows; returns its PR-AUC on the test rows."""
    return float(evaluate(np.asarray(test_labels), _fit_and_predict(kind, train_features, train_labels,
                                                                    test_features, seed, **params), 0.5)["pr_auc"])


def _fit_and_predict(kind: str, train_x: pd.DataFrame, train_y: pd.Series, test_x: pd.DataFrame, seed: int,
                     **params: Any) -> np.ndarray:
    model = make_model(kind, seed, **params)
    fit_model(model, train_x, train_y)
    return predict_scores(model, test_x)


def raw_columns(transactions: pd.DataFrame) -> pd.DataFrame:
    """A transaction's own columns as a model can use them across a time split: the "poor features".

    :func:`~lifecycle.features.encode_raw_columns` (amount, a 0/1 column per category, channel,
    device and country) without its absolute timestamp, and the time as ``hour`` and ``day_of_week``.
    Under a time split every test timestamp lies after every training one, so the absolute time is
    a number outside anything a model was fitted on; hour and weekday repeat. No user history.
    """
    from lifecycle.features import encode_raw_columns

    stamp = pd.to_datetime(transactions["timestamp"])
    columns = encode_raw_columns(transactions).drop(columns="timestamp_seconds")
    return columns.assign(hour=stamp.dt.hour.to_numpy(dtype=float),
                          day_of_week=stamp.dt.dayofweek.to_numpy(dtype=float))


def measure_leakage(train: pd.DataFrame, test: pd.DataFrame, kind: str = "hgb", seed: int = 42,
                    validation_fraction: float = 0.2, columns: list[str] | None = None,
                    **params: Any) -> dict[str, float]:
    """What the tutorial's whole-table features promise offline, and what they deliver when served.

    Three PR-AUCs on the later window ``test``, every model fit on the same rows as
    :func:`~lifecycle.training.train_fraud_model` (``train`` without its latest ``validation_fraction``):

    * ``pr_auc_naive_offline``: a model fit on :func:`~lifecycle.features.naive_user_features`
      of the whole table (train and test together, as the tutorial does), scored on the test
      rows' naive features: the number an offline evaluation reports.
    * ``pr_auc_naive_served``: the same model scored on the test rows' point-in-time features,
      the only ones a server can compute (it never sees a transaction's future).
    * ``pr_auc_point_in_time``: a model fit on point-in-time features, scored on them.

    All three use the same ``columns`` (default: the tutorial's feature set,
    :data:`~lifecycle.features.TUTORIAL_FEATURES`, where the user's mean/std/count are the only history
    the model sees). One point-in-time pass over train and test together serves both windows (a row's
    features only see earlier rows, so train's are what ``build_features(train)`` gives).

    Returns:
        The three PR-AUCs by name.
    """
    from lifecycle.features import TUTORIAL_FEATURES, naive_user_features

    columns = list(columns or TUTORIAL_FEATURES)
    both = pd.concat([train, test], ignore_index=True)
    naive, point = naive_user_features(both)[columns], build_features(both)[columns]
    n_train = len(train)
    fit_rows = np.flatnonzero(train.index.isin(split_by_time(train, validation_fraction)[0].index))
    labels, test_labels = train["is_fraud"].to_numpy(), test["is_fraud"].to_numpy()

    naive_model = make_model(kind, seed, **params)
    fit_model(naive_model, naive.iloc[fit_rows], labels[fit_rows])
    return {
        "pr_auc_naive_offline": evaluate(test_labels, predict_scores(naive_model, naive.iloc[n_train:]), 0.5)["pr_auc"],
        "pr_auc_naive_served": evaluate(test_labels, predict_scores(naive_model, point.iloc[n_train:]), 0.5)["pr_auc"],
        "pr_auc_point_in_time": fit_and_score(kind, point.iloc[fit_rows], labels[fit_rows], point.iloc[n_train:],
                                              test_labels, seed, **params),
    }


def leakage_over_seeds(seeds: list[int], rows: int, kind: str = "hgb", test_fraction: float = 0.25,
                       known: dict[int, dict[str, float]] | None = None) -> pd.DataFrame:
    """:func:`measure_leakage` on one generated month per seed (data and model seeded alike).

    Args:
        seeds: the seeds (each a different month of ``rows`` transactions).
        rows: transactions per month.
        kind: the model kind.
        test_fraction: the later share of each month that is scored.
        known: results already measured on these settings, by seed (reused, not refit).

    Returns:
        One row per seed: the three PR-AUCs and the gaps of :data:`GAPS`.
    """
    from lifecycle.data import generate_transactions

    results = {}
    for seed in seeds:
        if known and seed in known:
            results[seed] = known[seed]
            continue
        train, test = split_by_time(generate_transactions(rows=rows, seed=seed), test_fraction=test_fraction)
        results[seed] = measure_leakage(train, test, kind=kind, seed=seed)
    table = pd.DataFrame(results).T.rename_axis("seed")
    for name, (top, bottom) in GAPS.items():
        table[name] = table[top] - table[bottom]
    return table


def mean_interval(values: pd.Series | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its ``level`` t-interval over independent draws (e.g. seeds): ``(mean, low, high)``.

    Raises:
        ConfigError: fewer than two values (one draw has no spread).
    """
    from scipy import stats  # scikit-learn's own dependency

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        raise ConfigError(f"an interval needs at least 2 values (seeds), got {len(values)}; raise spread_seeds")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    mean = values.mean()
    return float(mean), float(mean - half), float(mean + half)


def leakage_verdict(spread: pd.DataFrame) -> list[str]:
    """What the seeds' 95% intervals support about the leak and the remedy, one sentence each."""
    n, above = len(spread), (spread[list(GAPS)] > 0).sum()
    mean, low, high = mean_interval(spread["offline - served"])
    promise = (f"Over {n} seeds the naive model's offline PR-AUC was {mean:+.3f} above what it delivered when "
               f"served (95% interval {low:+.3f} to {high:+.3f}; higher on {above['offline - served']} of {n} seeds).")
    if low > 0:
        promise += " The interval lies above zero: the offline evaluation over-promises, on average."
    elif high < 0:
        promise += (" The interval lies below zero: here the leak blurred the features more than it carried the "
                    "label, and the offline number under-promised.")
    else:
        promise += (" The interval includes zero: these seeds cannot tell whether the leak inflates the offline "
                    f"number on this data; it supports an inflation of at most {high:.3f}.")
    mean, low, high = mean_interval(spread["point in time - served"])
    remedy = (f"Training on point-in-time features instead: {mean:+.3f} against the naive model as served "
              f"(95% interval {low:+.3f} to {high:+.3f}; better on {above['point in time - served']} of {n} seeds).")
    if low > 0:
        remedy += " The remedy also scores better: the model learns the features it will be served."
    elif high < 0:
        remedy += (" The remedy costs PR-AUC here: cold start. Point-in-time rows early in the training window see "
                   "short histories (a user's first payments have no average yet), while the served test rows see "
                   "all of training as their past; the naive model learned on full-month statistics, closer to "
                   "those. A warm-up period of history before the first training row removes most of the cost.")
    else:
        remedy += (" The interval includes zero: no cost or gain that these seeds can show; a cost, if any, of at "
                   f"most {-low:.3f}.")
    return [promise, remedy]


@dataclass(frozen=True)
class TwoByTwo:
    """PR-AUC of each model on each feature set (same split, same rows), and the effects between them.

    Attributes:
        pr_auc: rows :data:`FEATURE_SETS`, one column per model kind.
        effects: one row per comparison that changes one thing (the features for one model, or the
            model for one feature set), with the PR-AUC gain and its 95% paired-bootstrap interval
            over the test rows.
        fraud_rate: the test window's fraud rate (what a model that guesses scores).
    """

    pr_auc: pd.DataFrame
    effects: pd.DataFrame
    fraud_rate: float

    def record(self) -> dict[str, float]:
        """``tree_raw``, ``tree_engineered``, ``mlp_raw``, ``mlp_engineered`` → PR-AUC (4 decimals)."""
        short = {"raw columns": "raw", "engineered features": "engineered"}
        return {f"{MODEL_NAMES.get(kind, kind)}_{short[features]}": round(float(self.pr_auc.loc[features, kind]), 4)
                for kind in self.pr_auc.columns for features in FEATURE_SETS}

    def verdict(self) -> list[str]:
        """What the 2×2 found, in sentences: which change made the gap, then each effect with its interval."""
        features = self.effects[self.effects["changed"] == "features"]["gain"]
        models = self.effects[self.effects["changed"] == "model"]["gain"]
        first, second = self.pr_auc.columns
        diagonal = self.pr_auc.loc["engineered features", first] - self.pr_auc.loc["raw columns", second]
        shares = ("the features made the gap" if features.abs().min() > models.abs().max() else
                  "the model mattered as much as the features here")
        sentences = [f"The tutorial's comparison, {_label(first)} on engineered features against {_label(second)} on "
                     f"raw columns, changes two things at once: {diagonal:+.3f} PR-AUC (a model that guesses scores "
                     f"the fraud rate, {self.fraud_rate:.3f}). One change at a time, {shares}: the features moved "
                     f"PR-AUC by {' and '.join(f'{g:+.3f}' for g in features)} for the same model, the model by "
                     f"{' and '.join(f'{g:+.3f}' for g in models)} on the same features."]
        for name, row in self.effects.iterrows():
            measured = f"{name}: {row['gain']:+.3f} (95% interval {row['low']:+.3f} to {row['high']:+.3f})"
            if row["low"] > 0 or row["high"] < 0:
                sentences.append(f"{measured}: {'better' if row['gain'] > 0 else 'worse'}, beyond the noise of this "
                                 "test window.")
            else:
                sentences.append(f"{measured}: the interval includes zero, no difference this test window can show.")
        return sentences


def _label(kind: str) -> str:
    return {"hgb": "the tree", "mlp": "the MLP"}.get(kind, f"the {kind} model")


def compare_features_and_models(train: pd.DataFrame, test: pd.DataFrame, kinds: tuple[str, str] = ("hgb", "mlp"),
                                 seed: int = 42, validation_fraction: float = 0.2, rounds: int = 1_000) -> TwoByTwo:
    """The 2×2: each model kind on the raw columns and on the engineered features, same time split.

    Raw columns are :func:`raw_columns` (the row alone, no absolute time); engineered features are
    :func:`~lifecycle.features.build_features` (point in time, ``test`` seeing ``train`` as history).
    Every model is fit on the same rows as :func:`~lifecycle.training.train_fraud_model`; effects are
    paired bootstraps (:func:`~lifecycle.training.pr_auc_gain`) over the same test rows.

    Returns:
        The :class:`TwoByTwo`.
    """
    fit_rows = split_by_time(train, validation_fraction)[0].index
    feature_sets = {"raw columns": (raw_columns(train), raw_columns(test)),
                    "engineered features": (build_features(train), build_features(test, history=train))}
    labels, test_labels = train.loc[fit_rows, "is_fraud"], test["is_fraud"].to_numpy()
    scores = {(features, kind): _fit_and_predict(kind, train_x.loc[fit_rows], labels, test_x, seed)
              for features, (train_x, test_x) in feature_sets.items() for kind in kinds}
    gains: dict[str, tuple[PrAucGain, str]] = {}
    first, second = kinds
    for kind in kinds:
        gains[f"Engineered features instead of raw columns, for {_label(kind)}"] = (pr_auc_gain(
            test_labels, scores["engineered features", kind], scores["raw columns", kind], rounds, seed), "features")
    for features in FEATURE_SETS:
        gains[f"{_label(first).capitalize()} instead of {_label(second)}, on {features}"] = (pr_auc_gain(
            test_labels, scores[features, first], scores[features, second], rounds, seed), "model")
    effects = pd.DataFrame({name: {"changed": changed, "gain": gain.gain, "low": gain.interval()[0],
                                   "high": gain.interval()[1]}
                            for name, (gain, changed) in gains.items()}).T.rename_axis("effect")
    effects = effects.astype({"gain": float, "low": float, "high": float})
    table = pd.DataFrame({kind: {features: evaluate(test_labels, scores[features, kind], 0.5)["pr_auc"]
                                 for features in FEATURE_SETS} for kind in kinds})
    return TwoByTwo(table.rename_axis(index="features", columns="model"), effects, float(test_labels.mean()))


def ablate_feature_groups(train: pd.DataFrame, test: pd.DataFrame,
                          groups: tuple[str, ...] = ("temporal", "aggregation", "ratio"), kind: str = "hgb",
                          seed: int = 42, validation_fraction: float = 0.2) -> pd.DataFrame:
    """Refit without each feature group in turn; how much PR-AUC on ``test`` does each group carry?

    Args:
        train: earlier raw transactions with ``is_fraud``.
        test: later raw transactions with ``is_fraud``.
        groups: names from :data:`~lifecycle.features.FEATURE_GROUPS` to drop, one at a time.
        kind: see :func:`~lifecycle.training.make_model`.
        seed: random seed.
        validation_fraction: as in :func:`~lifecycle.training.train_fraud_model` (the same rows are fit).

    Returns:
        One row for all features (``none`` dropped) and one per group, with the number of
        ``features`` used, ``pr_auc`` and ``pr_auc_drop`` (all features' PR-AUC minus this row's;
        negative when the model did better without the group).

    Raises:
        ConfigError: a group that :data:`~lifecycle.features.FEATURE_GROUPS` does not define.
    """
    from lifecycle.features import FEATURE_GROUPS

    unknown = [g for g in groups if g not in FEATURE_GROUPS]
    if unknown:
        raise ConfigError(f"unknown feature group(s) {unknown}; the groups are {list(FEATURE_GROUPS)}")
    fit_rows = split_by_time(train, validation_fraction)[0].index
    train_x, test_x = build_features(train).loc[fit_rows], build_features(test, history=train)
    rows = []
    for dropped in ("none", *groups):
        columns = [c for c in FEATURE_COLUMNS if c not in FEATURE_GROUPS.get(dropped, [])]
        score = fit_and_score(kind, train_x[columns], train.loc[fit_rows, "is_fraud"], test_x[columns],
                              test["is_fraud"], seed)
        rows.append({"dropped": dropped, "features": len(columns), "pr_auc": score})
    table = pd.DataFrame(rows).set_index("dropped")
    table["pr_auc_drop"] = table.loc["none", "pr_auc"] - table["pr_auc"]
    return table
