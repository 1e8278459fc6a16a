"""Lesson 02's experiments: what leakage costs, trees and a network on raw and engineered features,
and an ablation of the feature groups.

They are the course's measurements, built on the system's stages (:mod:`lifecycle.features`,
:mod:`lifecycle.training`); a fraud team would run the stages, not these.

Taught in notebooks/02_feature_engineering.ipynb.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError
from lifecycle.features import FEATURE_COLUMNS, build_features
from lifecycle.training import evaluate, fit_model, make_model, predict_scores


def fit_and_score(kind: str, train_features: pd.DataFrame, train_labels: pd.Series, test_features: pd.DataFrame,
                  test_labels: pd.Series, seed: int = 42, **params: Any) -> float:
    """Fit a fresh model of ``kind`` on the training rows; returns its PR-AUC on the test rows.

    Args:
        kind: see :func:`~lifecycle.training.make_model`.
        train_features: the rows to fit on (any feature columns).
        train_labels: their ``is_fraud``.
        test_features: the rows to score, with the same columns.
        test_labels: their ``is_fraud``.
        seed: random seed of the model.
        **params: hyper-parameters for :func:`~lifecycle.training.make_model`.

    Returns:
        PR-AUC (average precision) on the test rows.
    """
    from sklearn.metrics import average_precision_score

    model = make_model(kind, seed, **params)
    fit_model(model, train_features, train_labels)
    return float(average_precision_score(np.asarray(test_labels), predict_scores(model, test_features)))


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

    All three use the same ``columns``: by default the tutorial's feature set
    (:data:`~lifecycle.features.TUTORIAL_FEATURES`), where the user's mean/std/count are the only
    history the model sees, so what leaks through them shows.

    Args:
        train: earlier raw transactions with ``is_fraud``.
        test: later raw transactions with ``is_fraud``.
        kind: see :func:`~lifecycle.training.make_model`.
        seed: random seed.
        validation_fraction: share of ``train`` (the latest rows) left out of fitting, as in
            :func:`~lifecycle.training.train_fraud_model`.
        columns: the features to use (default: the tutorial's).
        **params: hyper-parameters for :func:`~lifecycle.training.make_model`.

    Returns:
        The three PR-AUCs by name.

    Taught in notebooks/02_feature_engineering.ipynb.
    """
    from lifecycle.features import TUTORIAL_FEATURES, naive_user_features, split_by_time

    columns = list(columns or TUTORIAL_FEATURES)
    naive = naive_user_features(pd.concat([train, test], ignore_index=True))[columns]
    naive_train = naive.iloc[:len(train)].set_axis(train.index)
    naive_test = naive.iloc[len(train):].set_axis(test.index)
    point_train, point_test = build_features(train)[columns], build_features(test, history=train)[columns]
    fit_rows = split_by_time(train, validation_fraction)[0].index
    labels, test_labels = train["is_fraud"], test["is_fraud"].to_numpy()

    naive_model = make_model(kind, seed, **params)
    fit_model(naive_model, naive_train.loc[fit_rows], labels.loc[fit_rows])
    return {
        "pr_auc_naive_offline": evaluate(test_labels, predict_scores(naive_model, naive_test), 0.5)["pr_auc"],
        "pr_auc_naive_served": evaluate(test_labels, predict_scores(naive_model, point_test), 0.5)["pr_auc"],
        "pr_auc_point_in_time": fit_and_score(kind, point_train.loc[fit_rows], labels.loc[fit_rows], point_test,
                                              test_labels, seed, **params),
    }


def compare_features_and_models(train: pd.DataFrame, test: pd.DataFrame, kinds: tuple[str, ...] = ("hgb", "mlp"),
                                 seed: int = 42, validation_fraction: float = 0.2) -> pd.DataFrame:
    """PR-AUC of each model kind on the raw columns and on the engineered features, same time split.

    Raw columns are :func:`~lifecycle.features.encode_raw_columns` (the row alone); engineered
    features are :func:`~lifecycle.features.build_features` (point in time, ``test`` seeing
    ``train`` as history). Models are fit on the same rows as :func:`~lifecycle.training.train_fraud_model`.

    Returns:
        A frame with one row per feature set (``raw columns``, ``engineered features``) and one
        column per kind.

    Taught in notebooks/02_feature_engineering.ipynb.
    """
    from lifecycle.features import encode_raw_columns, split_by_time

    fit_rows = split_by_time(train, validation_fraction)[0].index
    feature_sets = {"raw columns": (encode_raw_columns(train), encode_raw_columns(test)),
                    "engineered features": (build_features(train), build_features(test, history=train))}
    table = {kind: {name: fit_and_score(kind, train_x.loc[fit_rows], train.loc[fit_rows, "is_fraud"], test_x,
                                        test["is_fraud"], seed)
                    for name, (train_x, test_x) in feature_sets.items()}
             for kind in kinds}
    return pd.DataFrame(table).rename_axis(index="features", columns="model")


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

    Taught in notebooks/02_feature_engineering.ipynb.
    """
    from lifecycle.features import FEATURE_GROUPS, split_by_time

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
