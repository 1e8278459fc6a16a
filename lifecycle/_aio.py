"""Private helper shared by the stages that drive servers with asyncio (serving's load generator, the
canary's traffic, the course's crash test): run a coroutine on a fresh event loop in its own thread.

A Jupyter kernel already runs an event loop in its main thread, so ``asyncio.run`` there fails; a thread
of our own has none. An exception raised inside is raised again in the caller's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any


def run_in_fresh_loop(main: Callable[[], Awaitable[Any]], name: str = "asyncio-runner") -> Any:
    """``asyncio.run(main())`` in a new thread called ``name``; returns what ``main`` returns."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as err:  # re-raised in the caller's thread below
            outcome["error"] = err

    thread = threading.Thread(target=target, name=name)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
