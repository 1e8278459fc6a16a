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
import atexit
import contextvars
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lifecycle.errors import LifecycleError
from lifecycle.serving import _log_store as store
from lifecycle.serving._backpressure import Room
from lifecycle.serving._log_codec import RecordEncoder, Segment, merge
from lifecycle.serving.prediction_log import PredictionLog

SYNC_ENV = "LIFECYCLE_PREDICTION_LOG_SYNC"
RETRY_AFTER_SECONDS = 1
T = TypeVar("T")
_TIMED_OUT = "timed out"

# The groups (and row counts) the sink filled during one write_through call: the sink runs inside
# the scorer, in the request's own task, so a context variable carries them back to the request.
_QUEUED: contextvars.ContextVar[list[tuple[_Group, int]] | None] = contextvars.ContextVar(
    "prediction_log_queued", default=None)


class PredictionLogUnavailable(LifecycleError):
    """The prediction log cannot take (or has not committed) a request's rows: answer 503, not 200.

    Attributes:
        retry_after: seconds a client should wait before retrying.
    """

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(eq=False)
class _Group:
    """The rows handed to the sink during one turn of an event loop, committed together.

    Every request of the group awaits the same future; it resolves to None (committed), an error's
    reason, or :data:`_TIMED_OUT`. A caller without an event loop waits on ``done`` instead.
    """

    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future | None = None
    done: threading.Event | None = None
    segments: list[Segment] = field(default_factory=list)  # one a request (or a sink call)
    rows: int = 0
    error: str | None = None
    timer: asyncio.TimerHandle | None = None


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
        self.written = self.commits = self.failed = self.refused = 0
        self._encode = RecordEncoder(self.log.feature_columns)
        self._room = Room(capacity, max_wait)  # rows admitted and not yet committed (or failed)
        self._open: _Group | None = None  # the current turn's group, not handed over yet
        # A C-level queue: put() from the event loop costs a fraction of a microsecond and wakes the
        # writer without the Python-level Condition's per-wait lock and GIL hand-offs.
        self._queue: queue.SimpleQueue[_Group | None] = queue.SimpleQueue()
        self._restart = threading.Lock()
        self._abandon = False
        self._trouble: str | None = None
        self._trouble_since = 0.0
        self._probe_queued = False
        self._thread = threading.Thread()  # replaced by _start
        self._start()

    def _start(self) -> None:
        """Start the writer thread (again, for an app that is started again after :meth:`close`)."""
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

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
        queued: list[tuple[_Group, int]] = []
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
            if outcome is _TIMED_OUT:
                raise PredictionLogUnavailable(f"the prediction log did not commit within {self.commit_timeout:g} s "
                                               f"(it {self._trouble or 'is behind'})")
            if outcome is not None:
                raise PredictionLogUnavailable(f"the prediction could not be logged: {outcome}")
        return result

    async def _wait_for_room(self, rows: int) -> None:
        try:
            await self._room.wait(rows)
        except TimeoutError:
            self.refused += 1
            raise PredictionLogUnavailable(f"the prediction log is behind ({self._room.held:,} rows waiting to be "
                                           f"written{'; it ' + self._trouble if self._trouble else ''})") from None

    def __call__(self, records: list[Any]) -> None:
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
            group = self._open = _Group(loop, loop.create_future())
            loop.call_soon(self._hand_over, group)  # after every request ready in this turn has scored
        group.segments.append(segment)
        group.rows += segment.rows
        queued = _QUEUED.get()
        if queued is None:  # not admitted by write_through: counted, so the bound still holds
            self._room.add(segment.rows)
        else:
            queued.append((group, segment.rows))
        return None

    def _hand_over(self, group: _Group) -> None:
        if self._open is group:
            self._open = None
        group.timer = group.loop.call_later(self.commit_timeout, _expire, group)
        self._enqueue(group)

    def _write_now(self, segment: Segment) -> None:
        group = _Group(None, done=threading.Event(), segments=[segment], rows=segment.rows)
        self._enqueue(group)
        group.done.wait()
        if group.error is not None:
            raise PredictionLogUnavailable(f"the prediction could not be logged: {group.error}")

    def _enqueue(self, group: _Group) -> None:
        if not self._thread.is_alive():  # closed by an app's shutdown, used by the next start
            with self._restart:
                if not self._thread.is_alive():
                    self._start()
        self._queue.put(group)

    def problem(self) -> str | None:
        """Why the log cannot take predictions now (None when it can): what ``/ready`` reports.

        A log that failed stays reported until a write succeeds; with no traffic to write, asking
        queues a probe (a one-row write to the log's ``meta`` table), so a freed disk is noticed.
        """
        if self._trouble is None:
            return None
        if not self._probe_queued:
            self._probe_queued = True
            self._enqueue(_Group(None))
        return f"prediction log {self.log.path} {self._trouble} (for {time.monotonic() - self._trouble_since:.1f} s)"

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            groups = [self._queue.get()]  # waits, off the GIL, for the next hand-over
            while True:  # and takes whatever else is waiting: one transaction for all of it
                try:
                    groups.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = None in groups
            groups = [group for group in groups if group is not None]
            if groups:
                segments = [segment for group in groups for segment in group.segments]
                self._settle(groups, self._write(segments))
        self.log.close()  # this thread's connection

    def _write(self, segments: list[Segment]) -> str | None:
        """Commit ``segments`` as one (retrying while another process holds the lock); the reason it
        failed, or None."""
        rows = sum(segment.rows for segment in segments)
        while True:
            try:
                if segments:
                    self.written += self.log.insert_segments([merge(segments)])
                    self.commits += 1
                else:
                    self._probe()
            except sqlite3.Error as err:
                if store.is_busy(err) and not self._abandon:
                    self._report("is locked by another process: waiting for its write lock")
                    time.sleep(0.01)  # SQLite waited busy_timeout already; do not spin if it did not
                    continue
                return self._failed(rows, store.explain(err))
            except Exception as err:  # a row SQLite cannot take: its requests get 503; the thread lives on
                return self._failed(rows, f"{type(err).__name__}: {err}")
            self._report(None)
            return None

    def _failed(self, rows: int, reason: str) -> str:
        self.failed += rows
        self._report(f"cannot be written: {reason}", unwritten=rows)
        return reason

    def _probe(self) -> None:
        self._probe_queued = False
        self.log.touch()

    def _report(self, trouble: str | None, unwritten: int = 0) -> None:
        """Say once, in the server's log, that writing stopped (and why) or resumed."""
        if trouble == self._trouble and not unwritten:
            return
        if trouble is None:
            print(f"prediction log {self.log.path}: writing again", file=sys.stderr, flush=True)
        else:
            lost = f"; {unwritten} rows not written, their requests answered 503" if unwritten else ""
            print(f"prediction log {self.log.path} {trouble}{lost}; answering 503 until it can be written",
                  file=sys.stderr, flush=True)
            if self._trouble is None:
                self._trouble_since = time.monotonic()
        self._trouble = trouble

    def _settle(self, groups: list[_Group], error: str | None) -> None:
        """Tell every waiting request how its commit went, then give back the room its rows held."""
        held = 0
        for group in groups:
            group.error = error
            if group.loop is None:
                if group.done is not None:
                    group.done.set()
                continue
            held += group.rows
            try:
                group.loop.call_soon_threadsafe(_answer, group)
            except RuntimeError:  # that loop has closed: no one is waiting any more
                pass
        if held:
            self._room.release(held)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer thread (idempotent).

        A log locked by another process for longer than ``timeout`` seconds is given up on: the
        rows still queued are counted in :attr:`failed` and reported.
        """
        atexit.unregister(self.close)
        if not self._thread.is_alive():
            return
        self._queue.put(None)  # after everything queued before it
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon = True
            self._thread.join(timeout)


def _answer(group: _Group) -> None:
    """On the group's event loop: resolve its future with the commit's outcome."""
    if group.timer is not None:
        group.timer.cancel()
    if not group.future.done():
        group.future.set_result(group.error)


def _expire(group: _Group) -> None:
    """On the group's event loop, ``commit_timeout`` after the hand-over: its requests stop waiting (503)."""
    if not group.future.done():
        group.future.set_result(_TIMED_OUT)
