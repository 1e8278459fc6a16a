"""The prediction log: every answered prediction, kept where the late labels can find it.

A model in production is only monitored, and only retrained, on what it was asked and what it
answered. The REST server (lesson 05) hands each answered request's records to a sink;
:class:`~lifecycle.serving.log_writer.PredictionLogWriter` is the sink that writes them here, and
the server answers only once they are committed (see that module for the promise it keeps).
:class:`PredictionLog` is the file itself: SQLite in WAL mode (readers never block the writer,
several server processes append to one file, the file survives restarts).

Two tables:

* ``predictions``: ``request_id``, ``logged_at`` (unix seconds), ``model_name``,
  ``model_version``, the transaction's fields as columns (``transaction_id``, ``user_id``,
  ``timestamp`` as ISO text, ``amount``, ``merchant_category``, ``channel``, ``device``,
  ``country``), ``features`` (what the server computed: float64 values, in the order the ``meta``
  table's ``feature_columns`` names), ``score``, ``decision``, ``source`` (``server`` or ``batch``);
  its key is ``(timestamp, request_id)``: the rows are kept in transaction-time order.
* ``labels``: ``transaction_id`` (primary key), ``is_fraud``, ``labelled_at``: the chargebacks and
  analyst reviews that arrive weeks later, joined to predictions by transaction id.

The request id is the caller's ``transaction_id`` when it sent one (a random id otherwise), and
rows go in with ``INSERT OR IGNORE``: a client that retries a request, or a canary router that
re-sends a failed canary call to stable (the same transaction: the same id at the same time),
logs it once.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import SchemaError
from lifecycle.serving import _log_store as store

PREDICTION_LOG_ENV = "LIFECYCLE_PREDICTION_LOG"
DEFAULT_FILE_NAME = store.DEFAULT_FILE_NAME
INPUT_COLUMNS = store.INPUT_COLUMNS


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

    def append(self, records: Iterable[Any], source: str = "server") -> int:
        """Append :class:`~lifecycle.serving.scorer.PredictionRecord` objects in one transaction.

        Returns:
            How many were new (retries of a logged request id are ignored).
        """
        encode = store.RowEncoder(self.feature_columns, source)
        return self.insert_rows([encode(record) for record in records])

    def insert_rows(self, rows: list[tuple]) -> int:
        """Insert encoded rows (see :class:`~lifecycle.serving._log_store.RowEncoder`) in one transaction.

        Returns:
            How many were new.

        Raises:
            sqlite3.Error: the write failed (the transaction is rolled back).
        """
        return store.insert_rows(self._connection(), rows)

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
        inputs = transactions[list(INPUT_COLUMNS)]
        stamps = pd.to_datetime(inputs["timestamp"]).dt.strftime(store.ISO_FORMAT)
        blobs: list[bytes | None] = [None] * len(inputs)
        if features is not None:
            matrix = features[list(self.feature_columns)].to_numpy(dtype="<f8")  # as RowEncoder packs them
            blobs = [row.tobytes() for row in matrix]
        now, version = time.time(), str(model_version)
        rows = [(str(tid), now, model_name, version, str(tid), str(user), stamp, float(amount), category, channel,
                 device, country, blob, float(score), int(score >= threshold), source)
                for tid, user, stamp, amount, category, channel, device, country, score, blob
                in zip(inputs["transaction_id"], inputs["user_id"], stamps, inputs["amount"],
                       inputs["merchant_category"], inputs["channel"], inputs["device"], inputs["country"],
                       scores, blobs, strict=True)]
        return self.insert_rows(rows)

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
        """Logged predictions (of one ``source`` when given)."""
        query, args = "SELECT COUNT(*) FROM predictions", ()
        if source is not None:
            query, args = query + " WHERE source = ?", (source,)
        return int(self._connection().execute(query, args).fetchone()[0])

    def transaction_ids(self) -> set[str]:
        """The transaction ids the log holds (what a crash test counts answers against)."""
        rows = self._connection().execute("SELECT transaction_id FROM predictions WHERE transaction_id IS NOT NULL")
        return {row[0] for row in rows}

    def duplicates(self) -> int:
        """Transaction ids logged more than once (0 when retries were idempotent)."""
        return int(self._connection().execute(
            "SELECT COUNT(*) FROM (SELECT transaction_id FROM predictions WHERE transaction_id IS NOT NULL "
            "GROUP BY transaction_id HAVING COUNT(*) > 1)").fetchone()[0])

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
        conditions, args = [], []
        if start is not None:
            conditions.append("p.timestamp >= ?")
            args.append(pd.Timestamp(start).strftime(store.ISO_FORMAT))
        if end is not None:
            conditions.append("p.timestamp < ?")
            args.append(pd.Timestamp(end).strftime(store.ISO_FORMAT))
        if labelled_only:
            conditions.append("l.is_fraud IS NOT NULL")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        inputs = ", ".join(f"p.{column}" for column in INPUT_COLUMNS)
        query = (f"SELECT {inputs}, l.is_fraud, p.score, p.decision, p.model_name, p.model_version, p.request_id, "
                 f"p.source, p.logged_at, p.features FROM predictions p LEFT JOIN labels l ON l.transaction_id = "
                 f"p.transaction_id {where} ORDER BY p.timestamp, p.transaction_id")
        frame = pd.read_sql_query(query, self._connection(), params=args)
        blobs = frame.pop("features")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[s]")  # as generated
        frame["is_fraud"] = frame["is_fraud"].astype(int) if labelled_only else frame["is_fraud"].astype("Int64")
        if features:
            frame = pd.concat([frame, self._decode_features(blobs)], axis=1)
        return frame.reset_index(drop=True)

    def _decode_features(self, blobs: pd.Series) -> pd.DataFrame:
        width = len(self.feature_columns)
        empty = np.full(width, np.nan, dtype="<f8").tobytes()
        matrix = np.frombuffer(b"".join(empty if blob is None else blob for blob in blobs), dtype="<f8")
        columns = [f"feature_{name}" for name in self.feature_columns]
        return pd.DataFrame(matrix.reshape(-1, width), columns=columns, index=blobs.index)

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

