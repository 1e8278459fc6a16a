"""How predictions become a segment of the prediction log, and back (private to the log's modules).

The log stores one SQLite row per *segment*: the predictions one group commit wrote (the requests
in flight together, or one backfill), column by column. Every answered request encodes its rows
before it is answered, on the server's event loop, so encoding does no per-row Python work: the
scorer hands over a request as arrays (a :class:`~lifecycle.serving.scorer.ScoredBatch`: the
scores and the feature matrix it computed, no object per row), the transactions are serialised
by pydantic-core's JSON encoder in one call (as the server parsed them: timestamps as ISO text,
in UTC), and the arrays are stored as their float64 bytes. Writing a segment then binds 8
parameters, whatever its number of rows, where a row per prediction bound 16 per prediction and
kept a B-tree key for each.

Reading decodes the segments a window overlaps into one frame; a retried request (the same
transaction id at the same time, logged twice) counts once, the first copy logged.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic_core import from_json, to_json

from lifecycle.errors import SchemaError

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S"  # the segment's time range: whole seconds, sorts in time order
INPUT_COLUMNS = ("transaction_id", "user_id", "timestamp", "amount", "merchant_category", "channel", "device",
                 "country")
NUMBERS = ("logged_at", "score", "decision")  # float64 each, one row per prediction
KEY = ["timestamp", "request_id"]  # what makes two logged rows the same prediction

_transaction = operator.attrgetter("transaction")
_features = operator.attrgetter("features")
_numbers = operator.attrgetter("served_at", "fraud_probability", "is_fraud")
_model = operator.attrgetter("model_name", "model_version")
_stamp = operator.itemgetter("timestamp")


@dataclass
class Segment:
    """Predictions encoded for one INSERT: ``inputs`` and ``models`` JSON arrays, ``numbers`` and
    ``features`` float64 bytes (``features`` None: logged without them)."""

    rows: int
    first: str
    last: str
    source: str
    inputs: bytes
    models: bytes
    numbers: bytes
    features: bytes | None

    def values(self) -> tuple:
        """The segment as the parameters of :data:`lifecycle.serving._log_store.INSERT`."""
        return (self.rows, self.first, self.last, self.source, self.inputs, self.models, self.numbers,
                self.features)


class RecordEncoder:
    """Turns a request's predictions into a :class:`Segment`.

    The server hands it a :class:`~lifecycle.serving.scorer.ScoredBatch` (its arrays are encoded
    whole: a few calls per request, whatever its rows); any other sequence of
    :class:`~lifecycle.serving.scorer.PredictionRecord` objects is read record by record.

    Args:
        feature_columns: the order the log stores features in (its ``meta`` table's).
        source: the rows' ``source`` (``server``).
    """

    def __init__(self, feature_columns: tuple[str, ...], source: str = "server") -> None:
        self.feature_columns = tuple(feature_columns)
        self.source = source
        self._checked = False

    def __call__(self, records: Sequence[Any]) -> Segment:
        if isinstance(getattr(records, "scores", None), np.ndarray):
            return self._batch(records)
        records = list(records)
        count, width = len(records), len(self.feature_columns)
        self._check(tuple(records[0].features))
        features = np.fromiter(itertools.chain.from_iterable(map(dict.values, map(_features, records))),
                               dtype="<f8", count=count * width)
        numbers = np.fromiter(itertools.chain.from_iterable(map(_numbers, records)), dtype="<f8", count=count * 3)
        return self._segment(list(map(_transaction, records)), to_json(list(map(_model, records))), numbers,
                             features)

    def _batch(self, batch: Any) -> Segment:
        """A :class:`~lifecycle.serving.scorer.ScoredBatch`: its arrays as they are."""
        self._check(tuple(batch.feature_columns))
        count = len(batch.transactions)
        numbers = np.empty((count, len(NUMBERS)), dtype="<f8")
        numbers[:, 0] = batch.served_at
        numbers[:, 1] = batch.scores
        numbers[:, 2] = batch.decisions
        model = to_json([batch.model_name, batch.model_version])
        models = b"[" + b",".join(itertools.repeat(model, count)) + b"]"
        return self._segment(batch.transactions, models, numbers, np.ascontiguousarray(batch.features, dtype="<f8"))

    def _check(self, columns: tuple[str, ...]) -> None:
        if not self._checked:  # every record of a server comes from the same code: check its order once
            if columns != self.feature_columns:
                raise SchemaError(f"the server computes the features {list(columns)}; the prediction "
                                  f"log stores {list(self.feature_columns)}: give the server a new log file")
            self._checked = True

    def _segment(self, transactions: list[dict], models: bytes, numbers: np.ndarray, features: np.ndarray) -> Segment:
        stamps = list(map(_stamp, transactions))
        try:
            first, last = min(stamps), max(stamps)
        except TypeError:  # text and datetime objects mixed: compare them as the log's text
            first, last = min(map(iso, stamps)), max(map(iso, stamps))
        return Segment(len(transactions), iso(first), iso(last), self.source, to_json(transactions, fallback=_text),
                       models, numbers.tobytes(), features.tobytes())


def merge(segments: list[Segment]) -> Segment:
    """One segment holding several (the requests of one group commit), rows in the order given."""
    if len(segments) == 1:
        return segments[0]
    features = [segment.features for segment in segments]
    if any(blob is None for blob in features):
        raise ValueError("segments with and without features cannot be merged")  # the server always has them
    return Segment(sum(segment.rows for segment in segments), min(segment.first for segment in segments),
                   max(segment.last for segment in segments), segments[0].source,
                   _join_arrays([segment.inputs for segment in segments]),
                   _join_arrays([segment.models for segment in segments]),
                   b"".join(segment.numbers for segment in segments), b"".join(features))


def encode_frame(inputs: pd.DataFrame, scores: np.ndarray, decisions: np.ndarray, logged_at: float,
                 model_name: str, model_version: str, features: np.ndarray | None, source: str) -> Segment:
    """A segment of batch-scored rows (a backfill): the frame's columns are :data:`INPUT_COLUMNS`."""
    stamps = pd.to_datetime(inputs["timestamp"]).dt.strftime(ISO_FORMAT)
    frame = inputs.assign(timestamp=stamps, transaction_id=inputs["transaction_id"].astype(str),
                          user_id=inputs["user_id"].astype(str), amount=inputs["amount"].astype(float))
    numbers = np.column_stack([np.full(len(frame), logged_at), scores, decisions]).astype("<f8")
    blob = None if features is None else np.ascontiguousarray(features, dtype="<f8").tobytes()
    return Segment(len(frame), stamps.min(), stamps.max(), source, to_json(frame.to_dict("records")),
                   to_json([(model_name, model_version)] * len(frame)), numbers.tobytes(), blob)


def decode(segments: list[tuple], feature_columns: tuple[str, ...], features: bool) -> pd.DataFrame:
    """The rows of ``(segment, rows, source, inputs, models, numbers, features)`` tuples, in log order.

    Returns:
        :data:`INPUT_COLUMNS` (``timestamp`` as ``datetime64[s]``), ``score``, ``decision``,
        ``model_name``, ``model_version``, ``request_id`` (the transaction id, or the segment and the
        row's place in it), ``source``, ``logged_at``, then ``feature_<name>`` columns when asked.
    """
    width = len(feature_columns)
    transactions: list[dict] = []
    models: list[list] = []
    for segment in segments:
        transactions.extend(from_json(segment[3]))
        models.extend(from_json(segment[4]))
    frame = pd.DataFrame.from_records(transactions, columns=list(INPUT_COLUMNS), nrows=len(transactions))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601").astype("datetime64[s]")
    numbers = np.frombuffer(b"".join(segment[5] for segment in segments), dtype="<f8").reshape(-1, len(NUMBERS))
    frame["score"] = numbers[:, 1]
    frame["decision"] = numbers[:, 2].astype(np.int64)
    model = np.array(models, dtype=object).reshape(-1, 2)
    frame["model_name"], frame["model_version"] = model[:, 0], model[:, 1]
    places = [f"{segment[0]}-{i}" for segment in segments for i in range(segment[1])]
    frame["request_id"] = frame["transaction_id"].where(frame["transaction_id"].notna(), pd.Series(places))
    frame["source"] = np.repeat([segment[2] for segment in segments], [segment[1] for segment in segments])
    frame["logged_at"] = numbers[:, 0]
    if features:
        empty = np.full(width * max((segment[1] for segment in segments), default=0), np.nan, dtype="<f8").tobytes()
        blob = b"".join(segment[6] if segment[6] is not None else empty[:8 * width * segment[1]]
                        for segment in segments)
        matrix = np.frombuffer(blob, dtype="<f8").reshape(-1, width)
        frame = pd.concat([frame, pd.DataFrame(matrix, columns=[f"feature_{n}" for n in feature_columns])], axis=1)
    return frame


def iso(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DDTHH:MM:SS`` text (whole seconds: what the log sorts and filters on)."""
    if type(value) is datetime and value.tzinfo is None:  # what the server parsed: isoformat is 5x strftime
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, datetime):  # pd.Timestamp is a datetime too
        return value.strftime(ISO_FORMAT)
    if isinstance(value, str):
        return pd.Timestamp(value).strftime(ISO_FORMAT)
    raise TypeError(f"cannot log a timestamp of type {type(value).__name__}: {value!r}")


def _text(value: Any) -> Any:
    """What JSON cannot hold as given (a NumPy number, a pandas timestamp) as a plain value."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot log a value of type {type(value).__name__}: {value!r}")


def _join_arrays(arrays: list[bytes]) -> bytes:
    """JSON arrays as one: ``[a,b]`` and ``[c]`` become ``[a,b,c]``."""
    return b"[" + b",".join(array[1:-1] for array in arrays if len(array) > 2) + b"]"
