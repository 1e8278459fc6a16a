"""The model side of a server: features from per-user state, a fast predictor, the decision.

:class:`FraudScorer` is shared by the REST app and the gRPC service, so both answer the same
transaction with the same numbers. It computes features with :class:`lifecycle.features.FeatureState`
(the code training used, warmed with the training window), builds each row in the column order
the model was fitted with, and decides at the threshold stored with the model.

Concurrency: reading and updating a user's state (``score_and_update``) happens under a lock, so
two requests can never interleave inside it, whether they come from the REST server's event loop
(``score``, which never awaits inside that step) or from the gRPC server's worker threads
(``score_now``). The predict call runs outside the lock: on the event loop it is shared through
:class:`MicroBatcher`; in a worker thread it runs at once (the compiled predictor releases the GIL).

A sink (``on_prediction``; the prediction log of lesson 07) is given each answered request as a
:class:`ScoredBatch`: the feature matrix the model was given and the scores it returned, computed
once per request, which the log stores whole; a sink that wants :class:`PredictionRecord` objects
reads it as a sequence of them.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lifecycle.features import FEATURE_COLUMNS, FeatureState
from lifecycle.serving.predictor import MicroBatcher, compile_predictor, model_feature_order


@dataclass
class PredictionRecord:
    """One answered transaction, as handed to an ``on_prediction`` sink (lesson 07 logs these)."""

    transaction: dict[str, Any]
    features: dict[str, float]
    fraud_probability: float
    is_fraud: bool
    threshold: float
    model_name: str
    model_version: str
    served_at: float


class ScoredBatch(Sequence[PredictionRecord]):
    """One request's predictions, as the arrays the scorer computed them in.

    A sink reads it as a sequence of :class:`PredictionRecord` (each built when it is read), or
    takes the arrays whole: the prediction log encodes a batch of 1,000 rows in a few calls, where a
    record per row cost it more Python than the rest of its work.

    Attributes:
        transactions: the transactions as scored (validated, as plain dicts), in order.
        features: float64, one row per transaction, one column per name in ``feature_columns``.
        scores: float64 probabilities; ``decisions`` is ``scores >= threshold``.
    """

    __slots__ = ("transactions", "features", "feature_columns", "scores", "threshold", "model_name",
                 "model_version", "served_at")

    def __init__(self, transactions: list[dict[str, Any]], features: np.ndarray, feature_columns: tuple[str, ...],
                 scores: np.ndarray, threshold: float, model_name: str, model_version: str, served_at: float) -> None:
        self.transactions, self.features, self.feature_columns = transactions, features, feature_columns
        self.scores, self.threshold = scores, threshold
        self.model_name, self.model_version, self.served_at = model_name, model_version, served_at

    @property
    def decisions(self) -> np.ndarray:
        """The decisions (booleans), one per transaction."""
        return self.scores >= self.threshold

    def __len__(self) -> int:
        return len(self.transactions)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        score = float(self.scores[index])
        return PredictionRecord(self.transactions[index], dict(zip(self.feature_columns, self.features[index].tolist(),
                                                                   strict=True)),
                                score, score >= self.threshold, self.threshold, self.model_name, self.model_version,
                                self.served_at)


# Called with every request's records (a ScoredBatch: one for /predict, many for a batch), on the REST
# server's event loop or a gRPC worker thread: keep it fast and thread-safe, or hand them to a queue.
PredictionSink = Callable[[Sequence[PredictionRecord]], None]


class FraudScorer:
    """Score raw transactions with a served model.

    Args:
        served: a ``lifecycle.tracking.ServedModel`` (model, threshold, name, version, uri, history).
        predictor: ``auto``, ``compiled`` or ``sklearn`` (see :func:`compile_predictor`).
        micro_batching: gather concurrent single requests into one predict call.
        on_prediction: optional sink called with every answered request's :class:`ScoredBatch`.

    Raises:
        ConfigError: the model needs features the server cannot compute, or an unknown predictor.
    """

    def __init__(self, served: Any, predictor: str = "auto", micro_batching: bool = True,
                 on_prediction: PredictionSink | None = None) -> None:
        self.served = served
        self.threshold = float(served.threshold)
        self.columns = model_feature_order(served.model, FEATURE_COLUMNS)
        self.feature_columns = tuple(FEATURE_COLUMNS)  # what the state computes, in this order
        # The model's columns as places in a row of all features: one indexing call per batch.
        self._model_places = (None if tuple(self.columns) == self.feature_columns
                              else np.asarray([self.feature_columns.index(name) for name in self.columns]))
        history = getattr(served, "history", None)
        self.history_rows = 0 if history is None else len(history)
        self.state = FeatureState().fit(history) if self.history_rows else FeatureState()
        self.predictor = compile_predictor(served.model, predictor)
        self.batcher = MicroBatcher(self.predictor.predict_proba) if micro_batching else None
        self.on_prediction = on_prediction
        self._state_lock = threading.Lock()

    def features_row(self, transaction: dict[str, Any]) -> tuple[dict[str, float], list[float]]:
        """The transaction's features (then added to its user's state), and the model's input row."""
        with self._state_lock:
            features = self.state.score_and_update(transaction)
        return features, [features[name] for name in self.columns]

    async def score(self, transaction: dict[str, Any]) -> dict[str, Any]:
        """Score one transaction (a validated :class:`~lifecycle.serving.schema.Transaction` as a dict).

        Returns:
            The fields of :class:`~lifecycle.serving.schema.Prediction`.
        """
        features, row = self.features_row(transaction)
        if self.batcher is not None:
            probability = await self.batcher.submit(row)
        else:
            probability = float(self.predictor.predict_proba(np.asarray([row], dtype=np.float64))[0])
        return self._answer([transaction], [features], [probability])[0]

    def score_now(self, transaction: dict[str, Any]) -> dict[str, Any]:
        """Score one transaction with its own predict call: safe from any thread (the gRPC server's)."""
        features, row = self.features_row(transaction)
        probability = float(self.predictor.predict_proba(np.asarray([row], dtype=np.float64))[0])
        return self._answer([transaction], [features], [probability])[0]

    def score_many(self, transactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Score transactions in order, each seeing the earlier ones as its user's past; one predict call."""
        with self._state_lock:  # one batch is one uninterrupted stretch of each user's history
            features = [self.state.score_and_update(transaction) for transaction in transactions]
        matrix = self._matrix(features)
        rows = matrix if self._model_places is None else matrix[:, self._model_places]
        scores = np.asarray(self.predictor.predict_proba(rows), dtype=np.float64)
        return self._answer(transactions, matrix, scores)

    def _matrix(self, features: list[dict[str, float]]) -> np.ndarray:
        """The feature rows as one float64 matrix, columns in :attr:`feature_columns` order."""
        width = len(self.feature_columns)
        if tuple(features[0]) == self.feature_columns:  # the state's own order: read the values in C
            flat = itertools.chain.from_iterable(map(dict.values, features))
        else:
            flat = (row[name] for row in features for name in self.feature_columns)
        return np.fromiter(flat, dtype=np.float64, count=len(features) * width).reshape(len(features), width)

    def _answer(self, transactions: list[dict[str, Any]], features: np.ndarray | list[dict[str, float]],
                scores: np.ndarray | list[float]) -> list[dict[str, Any]]:
        name, version, threshold = self.served.name, str(self.served.version), self.threshold
        probabilities = scores.tolist() if isinstance(scores, np.ndarray) else scores
        answers = [{"transaction_id": transaction.get("transaction_id"), "fraud_probability": probability,
                    "is_fraud": probability >= threshold, "threshold": threshold, "model_name": name,
                    "model_version": version}
                   for transaction, probability in zip(transactions, probabilities, strict=True)]
        if self.on_prediction is not None:
            matrix = features if isinstance(features, np.ndarray) else self._matrix(features)
            self.on_prediction(ScoredBatch(transactions, matrix, self.feature_columns,
                                           np.asarray(probabilities, dtype=np.float64), threshold, name, version,
                                           time.time()))
        return answers

    def metadata(self) -> dict[str, Any]:
        """What is served and how (the fields of :class:`~lifecycle.serving.schema.ModelMetadata`)."""
        return {"model_name": self.served.name, "model_version": str(self.served.version),
                "model_uri": str(self.served.uri), "model_class": type(self.served.model).__name__,
                "threshold": self.threshold, "feature_columns": list(self.columns),
                "predictor": self.predictor.name, "micro_batching": self.batcher is not None,
                "history_rows": self.history_rows, "users_known": len(self.state.users_)}
