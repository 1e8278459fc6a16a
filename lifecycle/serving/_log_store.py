"""How the prediction log is stored: its tables, its rows, what opening it checks, what its errors mean.

Private to :mod:`lifecycle.serving.prediction_log` (the file) and :mod:`lifecycle.serving.log_writer`
(the server's writer). Rows are built to be cheap to write, since every answered request writes
them before it is answered: the transaction's fields as plain columns (no JSON to encode), the
features as one float64 blob (17 numbers without 17 float-to-text conversions), and many rows per
``INSERT`` statement (the SQLite work then runs in C, outside Python's GIL).

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import sqlite3
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from lifecycle.errors import ConfigError, SchemaError

DEFAULT_FILE_NAME = "predictions.sqlite"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S"  # how timestamps are logged: what the server receives; sorts in time order
LAYOUT = 2  # PRAGMA user_version of this layout (the JSON-inputs layout before it left user_version at 0)
INPUT_COLUMNS = ("transaction_id", "user_id", "timestamp", "amount", "merchant_category", "channel", "device",
                 "country")
COLUMNS = ("request_id", "logged_at", "model_name", "model_version", *INPUT_COLUMNS, "features", "score",
           "decision", "source")
SYNCHRONOUS_LEVELS = ("normal", "full")
WAL_CHECKPOINT_PAGES = 10_000
CHUNK_ROWS = 256  # rows per INSERT statement (16 parameters each, far below SQLite's 32,766)
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED: another connection holds the lock; worth waiting for

# One B-tree per row: the table is clustered by (timestamp, request_id), so a window of time is one
# range scan and a retried request (same id, same time) is one key. A separate time index would
# nearly double the cost of every insert, and every answer waits for its insert.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS predictions (request_id TEXT NOT NULL, logged_at REAL NOT NULL, model_name TEXT, "
    "model_version TEXT, transaction_id TEXT, user_id TEXT, timestamp TEXT NOT NULL, amount REAL, "
    "merchant_category TEXT, channel TEXT, device TEXT, country TEXT, features BLOB, score REAL NOT NULL, "
    "decision INTEGER NOT NULL, source TEXT NOT NULL, PRIMARY KEY (timestamp, request_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS labels (transaction_id TEXT PRIMARY KEY, is_fraud INTEGER NOT NULL, "
    "labelled_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_FIXES = {
    13: "the disk is full: free space on the log's disk",
    8: "the file is read-only: make it and its folder writable",
    10: "the disk reported an I/O error: check the disk",
    14: "the file cannot be opened: was its folder removed or unmounted?",
    11: "the file is damaged: move it aside and start a new log",
    26: "it is not a SQLite file: give the path of a prediction log, or a new file",
    5: "another process holds its write lock: end that process's transaction",
    6: "another connection holds its write lock: end that transaction",
}
_OFF = "or serve without a log (--prediction-log off)"


def check_synchronous(level: str) -> str:
    """``normal`` or ``full``, as given; anything else is refused with the choices."""
    if level not in SYNCHRONOUS_LEVELS:
        raise ConfigError(f"prediction log synchronous level must be one of {', '.join(SYNCHRONOUS_LEVELS)}, "
                          f"got {level!r}")
    return level


def connect(path: Path, busy_timeout: float, synchronous: str, max_bytes: int | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, the given sync level,
    and the file capped at ``max_bytes`` when given."""
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False,
                                 cached_statements=CHUNK_ROWS + 32)
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        connection.close()
        raise ConfigError(f"the prediction log {path} cannot use SQLite's WAL journal (it stayed {mode!r}); put it "
                          f"on a local disk")
    connection.execute(f"PRAGMA synchronous={synchronous.upper()}")
    # Checkpoint (copy the WAL into the file) every ~40 MB of WAL rather than SQLite's 4 MB: the pages
    # every commit touches (the table's right edge) are copied once per checkpoint, not ten times,
    # which takes about a third off the writer's cost per row here.
    connection.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    if max_bytes is not None:
        page = connection.execute("PRAGMA page_size").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count={max(1, int(max_bytes) // page)}")
    return connection


def open_log(path: Path, synchronous: str) -> tuple[str, ...]:
    """Create or check the log at ``path`` with one real write; returns the feature columns it stores.

    Raises:
        ConfigError: the path or its folder is unusable, the file has another layout, or the write
            failed; the message names the path and the fix.
    """
    from lifecycle.features import FEATURE_COLUMNS

    if path.is_dir():
        raise ConfigError(f"prediction log path {path} is a folder; give a file, e.g. {path / DEFAULT_FILE_NAME}")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"the prediction log's folder {folder} does not exist; create it (mkdir -p {folder}), "
                          f"give a file in an existing folder, {_OFF}")
    try:
        connection = connect(path, 10.0, synchronous)
    except sqlite3.Error as err:
        raise unwritable(path, err) from None
    try:
        with transaction(connection):
            _check_layout(connection, path)
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version={LAYOUT}")
            stored = connection.execute("SELECT value FROM meta WHERE key = 'feature_columns'").fetchone()
            columns = tuple(stored[0].split(",")) if stored else tuple(FEATURE_COLUMNS)
            if columns != tuple(FEATURE_COLUMNS):
                raise ConfigError(f"the prediction log {path} stores the features {list(columns)}, and this kit "
                                  f"computes {FEATURE_COLUMNS}; give a new file for the new features")
            connection.execute("INSERT OR REPLACE INTO meta VALUES ('feature_columns', ?)", (",".join(columns),))
            connection.execute("INSERT OR REPLACE INTO meta VALUES ('opened_at', ?)", (str(time.time()),))
    except sqlite3.Error as err:
        raise unwritable(path, err) from None
    finally:
        connection.close()
    return columns


def _check_layout(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "predictions" in tables and version != LAYOUT:
        raise ConfigError(f"{path} is a prediction log of another layout (version {version}, this kit writes "
                          f"{LAYOUT}); move it aside (mv {path} {path}.old) and start a new one")


def unwritable(path: Path, err: sqlite3.Error) -> ConfigError:
    """The error for a log that cannot be opened or written, naming the path, the reason and the fix."""
    folder = path.parent
    reason = _folder_problem(folder) or explain(err)
    return ConfigError(f"cannot write the prediction log {path}: {reason}; make {folder} writable, give another "
                       f"file with --prediction-log PATH, {_OFF}")


def _folder_problem(folder: Path) -> str | None:
    """What the operating system says when a file is created in ``folder`` (None: it can be)."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".prediction-log-check-")
    except OSError as err:
        return f"its folder is not writable ({err.strerror})"
    os.close(handle)
    os.unlink(probe)
    return None


def explain(err: sqlite3.Error) -> str:
    """A SQLite error as what happened and what to do, e.g. ``database or disk is full (SQLITE_FULL):
    the disk is full: free space on the log's disk``."""
    code = getattr(err, "sqlite_errorcode", None)
    name = getattr(err, "sqlite_errorname", type(err).__name__)
    fix = _FIXES.get(code & 0xFF) if isinstance(code, int) else None
    return f"{err} ({name})" + (f": {fix}" if fix else "")


def is_busy(err: sqlite3.Error) -> bool:
    """Whether the write failed only because another connection holds the lock (worth retrying)."""
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _BUSY


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back when anything fails, the commit included."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


@functools.lru_cache(maxsize=CHUNK_ROWS)
def _insert_sql(rows: int) -> str:
    one = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return f"INSERT OR IGNORE INTO predictions ({', '.join(COLUMNS)}) VALUES " + ", ".join([one] * rows)


def insert_rows(connection: sqlite3.Connection, rows: list[tuple]) -> int:
    """Insert encoded rows, all or none; returns how many were new (a logged request id is ignored).

    Up to :data:`CHUNK_ROWS` rows are one statement, which SQLite commits as its own transaction;
    more are several statements in one transaction.
    """
    if not rows:
        return 0
    before = connection.total_changes
    if len(rows) <= CHUNK_ROWS:
        connection.execute(_insert_sql(len(rows)), list(itertools.chain.from_iterable(rows)))
    else:
        with transaction(connection):
            for start in range(0, len(rows), CHUNK_ROWS):
                chunk = rows[start:start + CHUNK_ROWS]
                connection.execute(_insert_sql(len(chunk)), list(itertools.chain.from_iterable(chunk)))
    return connection.total_changes - before


class RowEncoder:
    """Turns a :class:`~lifecycle.serving.scorer.PredictionRecord` into a row of :data:`COLUMNS`.

    It runs for every answered transaction, on the server's event loop: it does as little as it can
    (about a microsecond and a half here), the features packed by one C call.

    Args:
        feature_columns: the order the log stores features in (its ``meta`` table's).
        source: the rows' ``source`` (``server``).
    """

    def __init__(self, feature_columns: tuple[str, ...], source: str = "server") -> None:
        self.feature_columns = tuple(feature_columns)
        self.source = source
        self._pack = struct.Struct(f"<{len(self.feature_columns)}d").pack
        self._fields = operator.itemgetter("user_id", "timestamp", "amount", "merchant_category", "channel", "device",
                                           "country")
        self._checked = False

    def __call__(self, record: Any) -> tuple:
        transaction, features = record.transaction, record.features
        if not self._checked:  # every record of a server comes from the same code: check its order once
            if tuple(features) != self.feature_columns:
                raise SchemaError(f"the server computes the features {list(features)}; the prediction log stores "
                                  f"{list(self.feature_columns)}: give the server a new log file")
            self._checked = True
        transaction_id = transaction.get("transaction_id")
        user, stamp, amount, category, channel, device, country = self._fields(transaction)
        text = stamp.isoformat() if type(stamp) is datetime and not stamp.microsecond else iso(stamp)
        return (uuid.uuid4().hex if transaction_id is None else transaction_id, record.served_at, record.model_name,
                record.model_version, transaction_id, user, text, amount, category, channel, device, country,
                self._pack(*features.values()), record.fraud_probability, record.is_fraud, self.source)


def iso(value: Any) -> str | None:
    """A timestamp as ``YYYY-MM-DDTHH:MM:SS`` text (what the server receives; sorts in time order)."""
    if isinstance(value, datetime):  # pd.Timestamp is a datetime too
        return value.strftime(ISO_FORMAT)  # whole seconds: what the log sorts and filters on
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot log a timestamp of type {type(value).__name__}: {value!r}")

