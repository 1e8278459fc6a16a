"""Bounded room for rows on their way to the prediction log (private to lifecycle.serving.log_writer).

At most ``capacity`` rows are admitted and not yet committed. A request whose rows do not fit waits,
in arrival order, for earlier rows to be committed, up to ``max_wait`` seconds; then it is refused
(the server answers 503). A request larger than the whole room is admitted alone, when the room is
empty. Rows are admitted on the server's event loop and released by the writer thread.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class Room:
    """Admission control in rows: :meth:`take` or :meth:`wait`, then :meth:`release` once written.

    Args:
        capacity: most rows admitted and not yet released.
        max_wait: seconds :meth:`wait` waits for room before it raises ``TimeoutError``.
    """

    def __init__(self, capacity: int, max_wait: float) -> None:
        self.capacity, self.max_wait = capacity, max_wait
        self.held = 0  # rows admitted and not yet released
        self._lock = threading.Lock()  # the loop admits, the writer thread releases
        self._waiting: deque[tuple[int, asyncio.Future, asyncio.AbstractEventLoop]] = deque()

    def take(self, rows: int) -> bool:
        """Admit ``rows`` now if they fit and no one waits before them; whether they were admitted."""
        with self._lock:
            if self._waiting or (self.held + rows > self.capacity and self.held > 0):
                return False
            self.held += rows
            return True

    def add(self, rows: int) -> None:
        """Count rows that arrived without asking (they still take room until released)."""
        with self._lock:
            self.held += rows

    async def wait(self, rows: int) -> None:
        """Wait (in order) until ``rows`` fit, then admit them.

        Raises:
            TimeoutError: no room within ``max_wait`` seconds (the rows are not admitted).
        """
        loop = asyncio.get_running_loop()
        entry = (rows, loop.create_future(), loop)
        with self._lock:
            self._waiting.append(entry)
        try:
            async with asyncio.timeout(self.max_wait):
                await entry[1]
        except TimeoutError:
            with self._lock:
                if entry in self._waiting:
                    self._waiting.remove(entry)
            raise

    def release(self, rows: int) -> None:
        """Give back room (from any thread); whoever waits for it is admitted on their own loop."""
        with self._lock:
            self.held -= rows
            loops = {loop for _, _, loop in self._waiting}
        for loop in loops:
            try:
                loop.call_soon_threadsafe(self._admit_waiting)
            except RuntimeError:  # that loop has closed: its requests are gone
                pass

    def _admit_waiting(self) -> None:
        with self._lock:
            while self._waiting:
                wanted, future, _ = self._waiting[0]
                if future.done():  # a request that gave up already
                    self._waiting.popleft()
                    continue
                if self.held + wanted > self.capacity and self.held > 0:
                    return
                self._waiting.popleft()
                self.held += wanted
                future.set_result(None)
