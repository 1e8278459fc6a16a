"""The server's prediction-log writer: a prediction is answered only once the log has committed it.

What a 200 from ``/predict`` or ``/predict/batch`` promises, with a log attached:

* **Against a crash of the process** (SIGKILL, the OOM killer, a segfault), everything answered is in
  the log. A request's rows are committed before its answer is written to the socket, and with
  SQLite's WAL a committed transaction is in the operating system's file cache when ``COMMIT``
  returns; the process may die at any moment after that. Lesson 07 shows it: it kills a server in
  the middle of a load and counts the answers against the rows.
* **Against a power loss or a kernel crash**, with the default ``synchronous="normal"``, the file is
  never torn or corrupt, but the last transactions committed before the cut may be gone: WAL is
  synced to the disk at checkpoints, not at every commit. ``synchronous="full"`` syncs the WAL at
  every commit, and a 200 then survives a power loss too.

Why ``normal``: the promise the prediction log owes its readers (monitoring, late labels, retraining)
is "nothing the server answered is missing", and the everyday way to break it is a process that
dies (a deploy's SIGKILL, the OOM killer), which ``normal`` covers completely. A power cut costs at
most the last moments of traffic, which a statistical monitor can afford; a sync per commit costs
one disk flush per group of requests (``benchmarks/prediction_log.py`` measures both levels side by
side). Where a power cut must lose nothing, choose ``full`` (``LIFECYCLE_PREDICTION_LOG_SYNC=full``
for a server), or replicate the log, as Kafka's ``acks=all`` does, rather than flush each write.

How it stays fast and bounded:

* **Group commit.** One writer thread commits whatever rows are waiting in one transaction, so the
  requests in flight share one commit. SQLite does its work in C without Python's GIL, on the
  other core, while the event loop scores the next requests.
* **Backpressure.** At most ``capacity`` rows are admitted and not yet committed. A request that
  would exceed it waits (in order) up to ``max_wait`` seconds for room, then gets 503 with
  ``Retry-After``: memory stays bounded and nothing is answered unlogged.
* **Honest failure.** A log that is locked by another process, full, or read-only fails the
  requests waiting on it with 503 and the reason; ``/ready`` answers 503 with the same reason, and
  the server's log says it once when writing stops and once when it resumes.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lifecycle.errors import LifecycleError
from lifecycle.serving._backpressure import Room
from lifecycle.serving._log_codec import RecordEncoder, Segment
from lifecycle.serving._log_committer import TIMED_OUT, Committer, Group, expire
from lifecycle.serving.prediction_log import PredictionLog

SYNC_ENV = "LIFECYCLE_PREDICTION_LOG_SYNC"
RETRY_AFTER_SECONDS = 1
T = TypeVar("T")

# The groups (and row counts) the sink filled during one write_through call: the sink runs inside
# the scorer, in the request's own task, so a context variable carries them back to the request.
_QUEUED: contextvars.ContextVar[list[tuple[Group, int]] | None] = contextvars.ContextVar(
    "prediction_log_queued", default=None)


class PredictionLogUnavailable(LifecycleError):
    """The prediction log cannot take (or has not committed) a request's rows: answer 503, not 200.

    Attributes:
        retry_after: seconds a client should wait before retrying.
    """

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PredictionLogWriter:
    """The server's ``on_prediction`` sink, with commit-before-answer (group commit, backpressure).

    The REST app calls :meth:`write_through` around each scoring call; the sink itself (calling the
    writer with a request's records) adds their rows to the group of the current turn of the event
    loop, which is handed to the writer thread once that turn ends: one wake-up and one commit for
    all the requests of the turn. Called from a thread with no event loop (a gRPC worker, a script),
    the sink returns once its rows are committed. One event loop at a time uses a writer (one per
    server process).

    Args:
        path: the prediction log's file (its folder must exist).
        capacity: most rows admitted and not yet committed; at least one full batch request.
        max_wait: seconds a request waits for room before it gets 503.
        commit_timeout: seconds a request waits for its commit before it gets 503.
        synchronous: ``normal`` (durable against a process crash) or ``full`` (also against power loss).
        max_bytes: the largest the log file may grow (None: the disk's size); at the limit, requests get 503.

    Attributes:
        written: rows committed; ``commits``: transactions that committed them (group commit: far fewer).
        failed: rows that could not be written (their requests were answered 503).
        refused: requests answered 503 because the log was behind (no room within ``max_wait``).

    Raises:
        ConfigError: the log cannot be written (the path and the fix are named); a bad setting.
    """

    def __init__(self, path: str | Path, capacity: int = 20_000, max_wait: float = 1.0,
                 commit_timeout: float = 5.0, synchronous: str = "normal", max_bytes: int | None = None) -> None:
        from lifecycle.errors import ConfigError
        from lifecycle.serving.schema import MAX_BATCH_ROWS

        if capacity < MAX_BATCH_ROWS or max_wait <= 0 or commit_timeout <= 0:
            raise ConfigError(f"prediction log writer needs capacity >= {MAX_BATCH_ROWS} rows (one full batch) and "
                              f"positive waits; got capacity={capacity}, max_wait={max_wait}, "
                              f"commit_timeout={commit_timeout}")
        # Writes wait a little for another process's lock inside SQLite (in C, off the GIL), then the
        # writer thread retries, reporting a lock that lasts.
        self.log = PredictionLog(path, busy_timeout=0.1, synchronous=synchronous, max_bytes=max_bytes)
        self.capacity, self.max_wait, self.commit_timeout = capacity, max_wait, commit_timeout
        self.refused = 0
        self._encode = RecordEncoder(self.log.feature_columns)
        self._room = Room(capacity, max_wait)  # rows admitted and not yet committed (or failed)
        self._open: Group | None = None  # the current turn's group, not handed over yet
        self._committer = Committer(self.log, self._room)

    # --- the request side (the server's event loop) ---------------------------------------------

    async def write_through(self, rows: int, produce: Callable[[], Awaitable[T] | T]) -> T:
        """Admit ``rows``, run ``produce`` (which scores and calls this sink), wait for the commit.

        Returns:
            What ``produce`` returned, once every row it handed to the sink is committed.

        Raises:
            PredictionLogUnavailable: no room within ``max_wait``, or the rows were not committed
                (the reason says why); answer 503 with ``Retry-After``.
        """
        if not self._room.take(rows):
            await self._wait_for_room(rows)
        queued: list[tuple[Group, int]] = []
        token = _QUEUED.set(queued)
        try:
            result = produce()
            if asyncio.iscoroutine(result):
                result = await result
        finally:
            _QUEUED.reset(token)
            for _, count in queued:
                rows -= count
            if rows:  # admitted, never handed to the sink (or the scoring failed)
                self._room.release(rows)
        for group, _ in queued:
            outcome = await group.future
            if outcome is TIMED_OUT:
                raise PredictionLogUnavailable(f"the prediction log did not commit within {self.commit_timeout:g} s "
                                               f"(it {self._committer.trouble or 'is behind'})")
            if outcome is not None:
                raise PredictionLogUnavailable(f"the prediction could not be logged: {outcome}")
        return result

    async def _wait_for_room(self, rows: int) -> None:
        try:
            await self._room.wait(rows)
        except TimeoutError:
            self.refused += 1
            trouble = self._committer.trouble
            raise PredictionLogUnavailable(f"the prediction log is behind ({self._room.held:,} rows waiting to be "
                                           f"written{'; it ' + trouble if trouble else ''})") from None

    def __call__(self, records: Sequence[Any]) -> None:
        """The sink: add the records' rows to this turn's group (on an event loop), or write them now.

        Raises:
            PredictionLogUnavailable: called outside an event loop, and the rows could not be written.
        """
        if not records:
            return None
        segment = self._encode(records)  # a request's rows, encoded in a few calls
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._write_now(segment)
        group = self._open
        if group is None or group.loop is not loop:
            group = self._open = Group(loop, loop.create_future())
            loop.call_soon(self._hand_over, group)  # after every request ready in this turn has scored
        group.segments.append(segment)
        group.rows += segment.rows
        queued = _QUEUED.get()
        if queued is None:  # not admitted by write_through: counted, so the bound still holds
            self._room.add(segment.rows)
        else:
            queued.append((group, segment.rows))
        return None

    def _hand_over(self, group: Group) -> None:
        if self._open is group:
            self._open = None
        group.timer = group.loop.call_later(self.commit_timeout, expire, group)
        self._committer.enqueue(group)

    def _write_now(self, segment: Segment) -> None:
        group = Group(None, done=threading.Event(), segments=[segment], rows=segment.rows)
        self._committer.enqueue(group)
        group.done.wait()
        if group.error is not None:
            raise PredictionLogUnavailable(f"the prediction could not be logged: {group.error}")

    def problem(self) -> str | None:
        """Why the log cannot take predictions now (None when it can): what ``/ready`` reports.

        A log that failed stays reported until a write succeeds; with no traffic to write, asking
        queues a probe (a one-row write to the log's ``meta`` table), so a freed disk is noticed.
        """
        trouble = self._committer.trouble
        if trouble is None:
            return None
        self._committer.probe()
        since = time.monotonic() - self._committer.trouble_since
        return f"prediction log {self.log.path} {trouble} (for {since:.1f} s)"

    @property
    def written(self) -> int:
        """Rows committed."""
        return self._committer.written

    @property
    def commits(self) -> int:
        """Transactions that committed :attr:`written` (group commit: far fewer than requests)."""
        return self._committer.commits

    @property
    def failed(self) -> int:
        """Rows that could not be written (their requests were answered 503)."""
        return self._committer.failed

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer thread (idempotent).

        A log locked by another process for longer than ``timeout`` seconds is given up on: the
        rows still queued are counted in :attr:`failed` and reported.
        """
        self._committer.close(timeout)
