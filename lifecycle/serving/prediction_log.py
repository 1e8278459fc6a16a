"""The prediction log: every answered prediction, kept where the late labels can find it.

A model in production is only monitored, and only retrained, on what it was asked and what it
answered. The REST server (lesson 05) hands each answered request's records to a sink;
:class:`~lifecycle.serving.log_writer.PredictionLogWriter` is the sink that writes them here, and
the server answers only once they are committed (see that module for the promise it keeps).
:class:`PredictionLog` is the file itself: SQLite in WAL mode (readers never block the writer,
several server processes append to one file, the file survives restarts).

Two tables:

* ``predictions``: a segment to a row, the predictions one commit wrote (the requests a server had
  in flight together, or one backfill), column by column: the transactions as the server parsed
  them (JSON), each prediction's ``logged_at`` (unix seconds), ``score`` and ``decision``, the
  features the server computed (float64, in the order the ``meta`` table's ``feature_columns``
  names), ``model_name`` and ``model_version``; the segment's ``source`` (``server`` or ``batch``)
  and the range of its transactions' times, which a window's read uses to pick segments. Writing a
  segment costs SQLite one row whatever it holds: what keeps the log at nearly the server's speed
  (``lifecycle.serving._log_codec`` says how it is encoded). Read them with :meth:`PredictionLog.window`.
* ``labels``: ``transaction_id`` (primary key), ``is_fraud``, ``labelled_at``: the chargebacks and
  analyst reviews that arrive weeks later, joined to predictions by transaction id.

The request id is the caller's ``transaction_id`` when it sent one (the segment and the row's place
in it otherwise). A prediction is its transaction time and request id: a client that retries a
request, or a canary router that re-sends a failed canary call to stable (the same transaction: the
same id at the same time), is read once, as first logged. The server writes a retry's copy (looking
it up before the answer would cost every request); :meth:`PredictionLog.append` and
:meth:`PredictionLog.append_frame` write only the rows the log does not hold.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import SchemaError
from lifecycle.serving import _log_codec as codec
from lifecycle.serving import _log_store as store

PREDICTION_LOG_ENV = "LIFECYCLE_PREDICTION_LOG"
DEFAULT_FILE_NAME = store.DEFAULT_FILE_NAME
INPUT_COLUMNS = codec.INPUT_COLUMNS


class PredictionLog:
    """A SQLite prediction log (WAL mode): append predictions, add late labels, read labelled windows.

    Safe to share between threads and processes: each thread gets its own connection, and writers
    wait up to ``busy_timeout`` seconds for one another. Opening it checks that the file can be
    written (a write to its ``meta`` table), so a log that cannot take rows fails here, at once.

    Example:
        >>> log = PredictionLog(settings.workspace / "predictions.sqlite")
        >>> log.add_labels(chargebacks)            # transaction_id, is_fraud
        >>> window = log.window("2026-02-01", "2026-04-02", labelled_only=True)

    Args:
        path: the ``.sqlite`` file (created if missing; its folder must exist).
        busy_timeout: seconds a write waits for another process's write to finish.
        synchronous: ``normal`` or ``full`` (see :mod:`lifecycle.serving.log_writer` for what each promises).
        max_bytes: the largest the file may grow (None: as large as the disk allows); a log at its
            limit refuses writes as a full disk does (``SQLITE_FULL``), so a server answers 503.

    Raises:
        ConfigError: the path is a folder, its folder is missing or not writable, the file is not a
            prediction log of this layout, or it cannot be written (the message names the fix).
    """

    def __init__(self, path: str | Path, busy_timeout: float = 30.0, synchronous: str = "normal",
                 max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.synchronous = store.check_synchronous(synchronous)
        self.max_bytes = max_bytes
        self.feature_columns = store.open_log(self.path, self.synchronous)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = store.connect(self.path, self.busy_timeout, self.synchronous, self.max_bytes)
            self._local.connection = connection
        return connection

    def append(self, records: Sequence[Any], source: str = "server") -> int:
        """Append :class:`~lifecycle.serving.scorer.PredictionRecord` objects in one transaction.

        Returns:
            How many were new (retries of a logged request are not written again).
        """
        if not records:
            return 0
        return self._append_new(codec.RecordEncoder(self.feature_columns, source)(list(records)))

    def insert_segments(self, segments: list[codec.Segment]) -> int:
        """Insert encoded segments (see :mod:`lifecycle.serving._log_codec`) in one transaction, as
        they are: a retried request in them is logged twice and read once.

        Returns:
            How many rows they hold.

        Raises:
            sqlite3.Error: the write failed (the transaction is rolled back).
        """
        return store.insert_segments(self._connection(), segments)

    def touch(self, key: str = "probed_at") -> None:
        """Write one row to the ``meta`` table: the smallest write that shows the file takes writes."""
        with store.transaction(self._connection()) as connection:
            connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(time.time())))

    def append_frame(self, transactions: pd.DataFrame, scores: Sequence[float], threshold: float,
                     model_name: str, model_version: str, features: pd.DataFrame | None = None,
                     source: str = "batch") -> int:
        """Append batch-scored transactions (a backfill), as if the server had answered them.

        Args:
            transactions: raw transactions (the columns of :data:`INPUT_COLUMNS`); an ``is_fraud``
                column is not logged.
            scores: the model's scores, one per row.
            threshold: the model's decision threshold.
            model_name, model_version: what scored them.
            features: the computed features, one row per transaction (optional).
            source: what filled these rows (``"batch"``); server rows say ``"server"``.

        Returns:
            How many rows were new.

        Raises:
            SchemaError: a column is missing, or the scores do not match the rows.
        """
        if len(scores) != len(transactions):
            raise SchemaError(f"{len(scores)} scores for {len(transactions)} transactions")
        missing = [column for column in INPUT_COLUMNS if column not in transactions.columns]
        if missing:
            raise SchemaError(f"a backfill needs the columns {list(INPUT_COLUMNS)}; missing {missing}")
        if transactions.empty:
            return 0
        scores = np.asarray(scores, dtype=float)
        matrix = None if features is None else features[list(self.feature_columns)].to_numpy(dtype="<f8")
        return self._append_new(codec.encode_frame(
            transactions[list(INPUT_COLUMNS)].reset_index(drop=True), scores, (scores >= threshold).astype(float),
            time.time(), model_name, str(model_version), matrix, source))

    def _append_new(self, segment: codec.Segment) -> int:
        """Write the segment's rows that the log does not hold yet (and each once); how many."""
        rows = codec.decode([(0, segment.rows, segment.source, segment.inputs, segment.models, segment.numbers,
                              segment.features)], self.feature_columns, features=True)
        with store.transaction(self._connection()):
            held = self._frame(segment.first, pd.Timestamp(segment.last) + pd.Timedelta(seconds=1))
            known = pd.MultiIndex.from_frame(held[codec.KEY]) if len(held) else None
            keys = pd.MultiIndex.from_frame(rows[codec.KEY])
            new = ~keys.duplicated() & (~keys.isin(known) if known is not None else True)
            if not new.all():
                rows = rows[new].reset_index(drop=True)
                if rows.empty:
                    return 0
                served = rows[[f"feature_{name}" for name in self.feature_columns]].to_numpy()
                segment = codec.encode_frame(rows[list(INPUT_COLUMNS)], rows["score"].to_numpy(),
                                             rows["decision"].to_numpy(float), float(rows["logged_at"].iloc[0]),
                                             rows["model_name"].iloc[0], rows["model_version"].iloc[0],
                                             None if segment.features is None else served, segment.source)
            return self.insert_segments([segment])

    def add_labels(self, labels: pd.DataFrame) -> int:
        """Add late labels (chargebacks): a frame with ``transaction_id`` and ``is_fraud``; a label
        that arrives again replaces the earlier one.

        Returns:
            How many labels were written.

        Raises:
            SchemaError: a column is missing.
        """
        missing = {"transaction_id", "is_fraud"} - set(labels.columns)
        if missing:
            raise SchemaError(f"labels need columns transaction_id and is_fraud; missing {sorted(missing)} "
                              f"(got {list(labels.columns)})")
        now = time.time()
        rows = [(str(t), int(f), now) for t, f in zip(labels["transaction_id"], labels["is_fraud"], strict=True)]
        with store.transaction(self._connection()) as connection:
            connection.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?)", rows)
        return len(rows)

    def count(self, source: str | None = None) -> int:
        """Logged predictions (of one ``source`` when given); a retried request counts once."""
        frame = self._frame()
        return int(len(frame) if source is None else (frame["source"] == source).sum())

    def transaction_ids(self) -> set[str]:
        """The transaction ids the log holds (what a crash test counts answers against)."""
        return set(self._frame()["transaction_id"].dropna())

    def duplicates(self) -> int:
        """Transaction ids logged for more than one prediction (0 when retries were idempotent)."""
        ids = self._frame()["transaction_id"].dropna()
        return int(ids[ids.duplicated()].nunique())

    def window(self, start: str | None = None, end: str | None = None, labelled_only: bool = False,
               features: bool = False) -> pd.DataFrame:
        """The logged predictions whose transaction happened in ``[start, end)``, with their labels.

        Args:
            start, end: transaction times (anything ``pd.Timestamp`` reads); None: unbounded.
            labelled_only: keep the rows whose label has arrived, with ``is_fraud`` as int: ready for
                :func:`lifecycle.monitoring.retraining.retrain_on_window`.
            features: also return the features the server computed, one column each, named
                ``feature_<name>`` (``feature_amount`` is the server's copy of ``amount``); NaN for rows
                logged without them.

        Returns:
            One row per prediction, in transaction time order: the raw inputs (the columns of a
            transactions table, ``timestamp`` as datetime), then ``is_fraud`` (NA until labelled),
            ``score``, ``decision``, ``model_name``, ``model_version``, ``request_id``, ``source``,
            ``logged_at``.
        """
        frame = self._frame(start, end, features=features)
        labels = pd.read_sql_query("SELECT transaction_id, is_fraud FROM labels", self._connection())
        frame = frame.merge(labels, on="transaction_id", how="left", validate="many_to_one")
        if labelled_only:
            frame = frame[frame["is_fraud"].notna()]
        frame = frame.sort_values(["timestamp", "transaction_id"], kind="stable", na_position="first")
        frame["is_fraud"] = frame["is_fraud"].astype(int) if labelled_only else frame["is_fraud"].astype("Int64")
        served = [f"feature_{name}" for name in self.feature_columns] if features else []
        order = [*INPUT_COLUMNS, "is_fraud", "score", "decision", "model_name", "model_version", "request_id",
                 "source", "logged_at", *served]
        return frame[order].reset_index(drop=True)

    def _frame(self, start: Any = None, end: Any = None, features: bool = False) -> pd.DataFrame:
        """The predictions in ``[start, end)`` (transaction time), each once, in the order logged."""
        conditions, args = [], []
        low = None if start is None else pd.Timestamp(start).floor("s")
        high = None if end is None else pd.Timestamp(end).floor("s")
        if low is not None:
            conditions.append("last_timestamp >= ?")
            args.append(low.strftime(codec.ISO_FORMAT))
        if high is not None:
            conditions.append("first_timestamp < ?")
            args.append(high.strftime(codec.ISO_FORMAT))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        blobs = "features" if features else "NULL"
        segments = self._connection().execute(
            f"SELECT segment, rows, source, inputs, models, numbers, {blobs} FROM predictions {where} "
            f"ORDER BY segment", args).fetchall()
        frame = codec.decode(segments, self.feature_columns, features)
        if low is not None:
            frame = frame[frame["timestamp"] >= low]
        if high is not None:
            frame = frame[frame["timestamp"] < high]
        return frame[~frame.duplicated(codec.KEY)].reset_index(drop=True)

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def check_log_path(path: str | Path) -> Path:
    """Open (creating if needed) the prediction log at ``path`` once, to fail before a server starts.

    Returns:
        The path.

    Raises:
        ConfigError: the log cannot be written; the message names the path and the fix.
    """
    PredictionLog(path, busy_timeout=10.0).close()
    return Path(path)

