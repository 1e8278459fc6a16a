"""The prediction log: every answered prediction, kept where the late labels can find it.

A model in production is only monitored, and only retrained, on what it was asked and what it
answered. The REST server (lesson 05) hands each answered request's records to a sink
(:data:`lifecycle.serving.scorer.PredictionSink`); :class:`PredictionLogWriter` is that sink: it
queues the records and a background thread appends them to a :class:`PredictionLog`, a SQLite
file in WAL mode (readers never block the writer; the file survives restarts).

Two tables:

* ``predictions``: ``request_id`` (primary key), ``logged_at`` (unix seconds), ``model_name``,
  ``model_version``, ``transaction_id``, ``timestamp`` (the transaction's, ISO), ``inputs`` (the raw
  transaction, JSON), ``features`` (what the server computed, JSON), ``score``, ``decision``.
* ``labels``: ``transaction_id`` (primary key), ``is_fraud``, ``labelled_at``: the chargebacks and
  analyst reviews that arrive weeks later, joined to predictions by transaction id.

The request id is the caller's ``transaction_id`` when it sent one (a random id otherwise), and
rows go in with ``INSERT OR IGNORE``: a client that retries a request, or a canary router that
re-sends a failed canary call to stable, logs it once. Records still queued when the process is
killed with SIGKILL are lost; a normal stop (SIGTERM, Ctrl-C, interpreter exit) flushes them.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import atexit
import json
import queue
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from lifecycle.errors import ConfigError, SchemaError

PREDICTION_LOG_ENV = "LIFECYCLE_PREDICTION_LOG"
DEFAULT_FILE_NAME = "predictions.sqlite"
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S"  # how timestamps are logged: what the server receives; sorts in time order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT PRIMARY KEY, logged_at REAL NOT NULL, model_name TEXT, model_version TEXT,
    transaction_id TEXT, timestamp TEXT, inputs TEXT NOT NULL, features TEXT, score REAL NOT NULL,
    decision INTEGER NOT NULL, source TEXT NOT NULL DEFAULT 'server');
CREATE INDEX IF NOT EXISTS predictions_by_transaction ON predictions (transaction_id);
CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (timestamp);
CREATE TABLE IF NOT EXISTS labels (
    transaction_id TEXT PRIMARY KEY, is_fraud INTEGER NOT NULL, labelled_at REAL NOT NULL);
"""
_INSERT = ("INSERT OR IGNORE INTO predictions (request_id, logged_at, model_name, model_version, transaction_id, "
           "timestamp, inputs, features, score, decision, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class PredictionLog:
    """A SQLite prediction log (WAL mode): append predictions, add late labels, read labelled windows.

    Safe to share between threads and processes: each thread gets its own connection, and writers
    wait up to ``busy_timeout`` seconds for one another.

    Example:
        >>> log = PredictionLog(settings.workspace / "predictions.sqlite")
        >>> log.add_labels(chargebacks)            # transaction_id, is_fraud
        >>> window = log.window("2026-02-01", "2026-04-02", labelled_only=True)

    Args:
        path: the ``.sqlite`` file (created with its folder if missing).
        busy_timeout: seconds a write waits for another process's write to finish.
    """

    def __init__(self, path: str | Path, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError(f"prediction log path {self.path} is a folder; give a file, e.g. "
                              f"{self.path / DEFAULT_FILE_NAME}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        with self._connection() as connection:
            connection.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across process crashes
            self._local.connection = connection
        return connection

    def append(self, records: Iterable[Any], source: str = "server") -> int:
        """Append :class:`~lifecycle.serving.scorer.PredictionRecord` objects in one transaction.

        Returns:
            How many were new (retries of a logged request id are ignored).
        """
        rows = [_record_row(record, source) for record in records]
        return self._insert(rows)

    def append_frame(self, transactions: pd.DataFrame, scores: Sequence[float], threshold: float,
                     model_name: str, model_version: str, features: pd.DataFrame | None = None,
                     source: str = "batch") -> int:
        """Append batch-scored transactions (a backfill), as if the server had answered them.

        Args:
            transactions: raw transactions (with ``transaction_id``); an ``is_fraud`` column is not logged.
            scores: the model's scores, one per row.
            threshold: the model's decision threshold.
            model_name, model_version: what scored them.
            features: the computed features, one row per transaction (optional).
            source: what filled these rows (``"batch"``); server rows say ``"server"``.

        Returns:
            How many rows were new.
        """
        if len(scores) != len(transactions):
            raise SchemaError(f"{len(scores)} scores for {len(transactions)} transactions")
        inputs = transactions.drop(columns=["is_fraud"], errors="ignore")
        if pd.api.types.is_datetime64_any_dtype(inputs["timestamp"]):
            inputs = inputs.assign(timestamp=inputs["timestamp"].dt.strftime(_ISO_FORMAT))  # as _iso, all at once
        now = time.time()
        feature_rows = (features.to_dict("records") if features is not None else [None] * len(inputs))
        rows = [(str(row["transaction_id"]), now, model_name, str(model_version), str(row["transaction_id"]),
                 _iso(row["timestamp"]), json.dumps(row, default=_iso), None if feats is None else json.dumps(feats),
                 float(score), int(score >= threshold), source)
                for row, score, feats in zip(inputs.to_dict("records"), scores, feature_rows, strict=True)]
        return self._insert(rows)

    def _insert(self, rows: list[tuple]) -> int:
        connection = self._connection()
        with connection:
            before = connection.total_changes
            connection.executemany(_INSERT, rows)
            return connection.total_changes - before

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
        connection = self._connection()
        with connection:
            connection.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?)", rows)
        return len(rows)

    def count(self, source: str | None = None) -> int:
        """Logged predictions (of one ``source`` when given)."""
        query, args = "SELECT COUNT(*) FROM predictions", ()
        if source is not None:
            query, args = query + " WHERE source = ?", (source,)
        return int(self._connection().execute(query, args).fetchone()[0])

    def duplicates(self) -> int:
        """Transaction ids logged more than once (0 when retries were idempotent)."""
        return int(self._connection().execute(
            "SELECT COUNT(*) FROM (SELECT transaction_id FROM predictions WHERE transaction_id IS NOT NULL "
            "GROUP BY transaction_id HAVING COUNT(*) > 1)").fetchone()[0])

    def window(self, start: str | None = None, end: str | None = None, labelled_only: bool = False) -> pd.DataFrame:
        """The logged predictions whose transaction happened in ``[start, end)``, with their labels.

        Returns:
            One row per prediction, in transaction time order: the raw inputs (the columns of a
            transactions table, ``timestamp`` as datetime), then ``is_fraud`` (NA until labelled),
            ``score``, ``decision``, ``model_name``, ``model_version``, ``request_id``, ``source``,
            ``logged_at``. ``labelled_only`` keeps the rows whose label has arrived, with
            ``is_fraud`` as int: ready for :func:`lifecycle.monitoring.retraining.retrain_on_window`.
        """
        conditions, args = [], []
        if start is not None:
            conditions.append("p.timestamp >= ?")
            args.append(_iso(pd.Timestamp(start)))
        if end is not None:
            conditions.append("p.timestamp < ?")
            args.append(_iso(pd.Timestamp(end)))
        if labelled_only:
            conditions.append("l.is_fraud IS NOT NULL")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        query = (f"SELECT p.inputs, l.is_fraud, p.score, p.decision, p.model_name, p.model_version, p.request_id, "
                 f"p.source, p.logged_at FROM predictions p LEFT JOIN labels l ON l.transaction_id = "
                 f"p.transaction_id {where} ORDER BY p.timestamp, p.transaction_id")
        logged = pd.read_sql_query(query, self._connection(), params=args)
        inputs = pd.DataFrame([json.loads(text) for text in logged.pop("inputs")], index=logged.index)
        if "timestamp" in inputs:
            inputs["timestamp"] = pd.to_datetime(inputs["timestamp"]).astype("datetime64[s]")  # as generated
        frame = pd.concat([inputs, logged], axis=1)
        frame["is_fraud"] = frame["is_fraud"].astype(int) if labelled_only else frame["is_fraud"].astype("Int64")
        return frame.reset_index(drop=True)

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class PredictionLogWriter:
    """The server's ``on_prediction`` sink: queue records, append them from a background thread.

    The request path only puts records on a queue (microseconds); the writer thread takes whatever
    has queued up and appends it in one transaction. :meth:`close` (also run at interpreter exit)
    writes what is still queued, so a normal stop loses nothing; a server flushes it when it shuts
    down (see :func:`lifecycle.serving.rest.create_app`).

    Args:
        path: the prediction log's file.
        max_batch: most records written in one transaction.
    """

    def __init__(self, path: str | Path, max_batch: int = 5_000) -> None:
        self.log = PredictionLog(path)
        self.max_batch = max_batch
        self.written = 0
        self.failed = 0
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def __call__(self, records: list[Any]) -> None:
        self._queue.put(records)

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            records, stop = list(batch), False
            while len(records) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                records.extend(more)
            self._append(records)
            if stop:
                return

    def _append(self, records: list[Any], attempts: int = 5) -> None:
        """Append one batch; a busy database (another process writing) is retried, and a batch that
        cannot be written is counted in :attr:`failed` and reported, never silently dropped."""
        for attempt in range(1, attempts + 1):
            try:
                self.written += self.log.append(records)
                return
            except sqlite3.OperationalError as err:  # "database is locked" after busy_timeout
                if attempt == attempts:
                    self._report(records, err)
                else:
                    time.sleep(0.5 * attempt)
            except Exception as err:  # a record the log cannot store: say so, keep the thread alive
                self._report(records, err)
                return

    def _report(self, records: list[Any], err: Exception) -> None:
        self.failed += len(records)
        print(f"prediction log {self.log.path}: could not write {len(records)} records "
              f"({type(err).__name__}: {err}); {self.failed} unwritten so far", file=sys.stderr, flush=True)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer thread (idempotent)."""
        atexit.unregister(self.close)
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)


def _record_row(record: Any, source: str) -> tuple:
    transaction = record.transaction
    transaction_id = transaction.get("transaction_id")
    request_id = str(transaction_id) if transaction_id is not None else uuid.uuid4().hex
    return (request_id, float(record.served_at), record.model_name, str(record.model_version),
            None if transaction_id is None else str(transaction_id), _iso(transaction.get("timestamp")),
            json.dumps(transaction, default=_iso), json.dumps(record.features, default=float),
            float(record.fraud_probability), int(bool(record.is_fraud)), source)


def _iso(value: Any) -> Any:
    """Timestamps as ``YYYY-MM-DDTHH:MM:SS`` text (what the server receives; sorts in time order)."""
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime(_ISO_FORMAT)
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot log a value of type {type(value).__name__}: {value!r}")
