"""How the prediction log is stored: its tables, what opening it checks, what its errors mean.

Private to :mod:`lifecycle.serving.prediction_log` (the file) and :mod:`lifecycle.serving.log_writer`
(the server's writer). Predictions are stored a segment to a row (one group commit's predictions,
encoded column by column by :mod:`lifecycle.serving._log_codec`): every answered request is
written before it is answered, and a segment costs SQLite one row and 8 parameters however many
predictions it holds.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lifecycle.errors import ConfigError
from lifecycle.serving._log_codec import Segment

DEFAULT_FILE_NAME = "predictions.sqlite"
LAYOUT = 3  # PRAGMA user_version of this layout (2: a row per prediction; before it, 0: inputs as JSON)
SYNCHRONOUS_LEVELS = ("normal", "full")
WAL_CHECKPOINT_PAGES = 10_000
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED: another connection holds the lock; worth waiting for

# A segment to a row, in the order they were committed (rowid). Its small columns come first, so a
# reader that picks the segments a window overlaps reads them without the blobs' overflow pages; no
# index: each one would cost every commit, and a log holds one segment per commit, not per prediction.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS predictions (segment INTEGER PRIMARY KEY, rows INTEGER NOT NULL, "
    "first_timestamp TEXT NOT NULL, last_timestamp TEXT NOT NULL, source TEXT NOT NULL, inputs BLOB NOT NULL, "
    "models BLOB NOT NULL, numbers BLOB NOT NULL, features BLOB)",
    "CREATE TABLE IF NOT EXISTS labels (transaction_id TEXT PRIMARY KEY, is_fraud INTEGER NOT NULL, "
    "labelled_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
INSERT = ("INSERT INTO predictions (rows, first_timestamp, last_timestamp, source, inputs, models, numbers, "
          "features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
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
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
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


def insert_segments(connection: sqlite3.Connection, segments: list[Segment]) -> int:
    """Insert encoded segments in one transaction (all or none); returns the rows they hold."""
    if not segments:
        return 0
    if len(segments) == 1:  # one statement is its own transaction
        connection.execute(INSERT, segments[0].values())
    else:
        with transaction(connection):
            connection.executemany(INSERT, [segment.values() for segment in segments])
    return sum(segment.rows for segment in segments)
