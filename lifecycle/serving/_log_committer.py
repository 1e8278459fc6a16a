"""The prediction log's writer thread: group commit, and saying when the log cannot be written.

Private to :mod:`lifecycle.serving.log_writer`, which hands it the groups of rows the server's
requests are waiting on (see that module for what a 200 promises). The thread takes whatever groups
are waiting, commits them as one segment in one transaction, and resolves each group's future on
its event loop; SQLite works in C without Python's GIL meanwhile. A log locked by another process
is retried (and reported once); a full, read-only or missing one fails the waiting groups with the
reason, printed once to the server's log when writing stops and once when it resumes.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import asyncio
import atexit
import queue
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field

from lifecycle.serving import _log_store as store
from lifecycle.serving._backpressure import Room
from lifecycle.serving._log_codec import Segment, merge
from lifecycle.serving.prediction_log import PredictionLog

TIMED_OUT = "timed out"


@dataclass(eq=False)
class Group:
    """The rows handed to the sink during one turn of an event loop, committed together.

    Every request of the group awaits the same future; it resolves to None (committed), an error's
    reason, or :data:`TIMED_OUT`. A caller without an event loop waits on ``done`` instead.
    """

    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future | None = None
    done: threading.Event | None = None
    segments: list[Segment] = field(default_factory=list)  # one a request (or a sink call)
    rows: int = 0
    error: str | None = None
    timer: asyncio.TimerHandle | None = None


class Committer:
    """The writer thread of one :class:`~lifecycle.serving.log_writer.PredictionLogWriter`.

    Args:
        log: the log it writes (the thread uses its own connection).
        room: the admitted rows; a group's rows are given back once its commit is settled.

    Attributes:
        written: rows committed; ``commits``: transactions that committed them (group commit: far fewer).
        failed: rows that could not be written (their requests were answered 503).
        trouble: why the log cannot be written now (None: it can), since ``trouble_since`` (monotonic).
    """

    def __init__(self, log: PredictionLog, room: Room) -> None:
        self.log, self._room = log, room
        self.written = self.commits = self.failed = 0
        self.trouble: str | None = None
        self.trouble_since = 0.0
        # A C-level queue: put() from the event loop costs a fraction of a microsecond and wakes the
        # writer without the Python-level Condition's per-wait lock and GIL hand-offs.
        self._queue: queue.SimpleQueue[Group | None] = queue.SimpleQueue()
        self._restart = threading.Lock()
        self._abandon = False
        self._probe_queued = False
        self._thread = threading.Thread()  # replaced by _start
        self._start()

    def _start(self) -> None:
        """Start the writer thread (again, for an app that is started again after :meth:`close`)."""
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def enqueue(self, group: Group) -> None:
        """Hand a group to the thread (restarted first if an app's shutdown closed it)."""
        if not self._thread.is_alive():  # closed by an app's shutdown, used by the next start
            with self._restart:
                if not self._thread.is_alive():
                    self._start()
        self._queue.put(group)

    def probe(self) -> None:
        """Queue one small write (unless one is queued), so a log that can be written again is noticed."""
        if not self._probe_queued:
            self._probe_queued = True
            self.enqueue(Group(None))

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
        if trouble == self.trouble and not unwritten:
            return
        if trouble is None:
            print(f"prediction log {self.log.path}: writing again", file=sys.stderr, flush=True)
        else:
            lost = f"; {unwritten} rows not written, their requests answered 503" if unwritten else ""
            print(f"prediction log {self.log.path} {trouble}{lost}; answering 503 until it can be written",
                  file=sys.stderr, flush=True)
            if self.trouble is None:
                self.trouble_since = time.monotonic()
        self.trouble = trouble

    def _settle(self, groups: list[Group], error: str | None) -> None:
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
                group.loop.call_soon_threadsafe(answer, group)
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



def answer(group: Group) -> None:
    """On the group's event loop: resolve its future with the commit's outcome."""
    if group.timer is not None:
        group.timer.cancel()
    if not group.future.done():
        group.future.set_result(group.error)


def expire(group: Group) -> None:
    """On the group's event loop, ``commit_timeout`` after the hand-over: its requests stop waiting (503)."""
    if not group.future.done():
        group.future.set_result(TIMED_OUT)
