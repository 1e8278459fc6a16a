"""Prefect's internals the pipeline needs, in one place, behind the kit's own small interface.

Checked against Prefect :data:`CHECKED_WITH` (``tests/unit/test_packaging.py`` fails when the installed
Prefect is another minor version, or when one of these internals has moved: check them again then).

What is still internal, and why:

* :func:`ephemeral_server_environment`: ``PREFECT__SERVER_EPHEMERAL`` and ``PREFECT__SERVER_FINAL``,
  what Prefect's own ``SubprocessASGIServer`` sets to start its temporary server (no UI, no
  background services a local flow run does not use). Prefect has no public way to start that server
  ahead of time, in the background; the public ``prefect server start`` starts every service (about
  18 s here against 10–15 s).
* :func:`drain_workers`: ``APILogWorker`` and ``EventsWorker``, Prefect's background senders of logs and
  events, drained before the server stops (else the flow run's task states are lost). The public
  ``APILogHandler.flush()`` does not wait when an event loop runs (a Jupyter kernel), and events have
  no public flush.

Replaced by public API: ``state.result(_sync=True)`` (a private switch) and ``run_coro_as_sync`` by
the public ``state.result()`` and ``drain_all()`` run in a thread that has no event loop, where Prefect
answers synchronously (:func:`off_the_event_loop`).

Taught in notebooks/04_orchestration.ipynb (through :mod:`lifecycle.pipeline.flow`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

CHECKED_WITH = "3.9.1"  # the Prefect version these internals were read in
DRAIN_TIMEOUT = 10.0

T = TypeVar("T")


def ephemeral_server_environment() -> dict[str, str]:
    """The environment that makes ``prefect.server.api.server:create_app`` the temporary server Prefect
    would start itself on first use."""
    return {"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


def off_the_event_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``function`` in a fresh thread, where no event loop runs: Prefect's dual sync/async methods
    then run (and block) synchronously, even when the caller is a Jupyter cell (whose loop runs)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lifecycle-prefect") as pool:
        return pool.submit(function, *args, **kwargs).result()


def state_result(state: Any) -> Any:
    """A final flow or task state's result (``state.result()``, synchronously, wherever it is called)."""
    return off_the_event_loop(state.result)


def drain_workers(timeout: float = DRAIN_TIMEOUT) -> None:
    """Send the logs and events Prefect still queues to its server (before the server stops); a no-op
    before Prefect has sent any."""
    if "prefect.events.worker" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        off_the_event_loop(worker.drain_all, timeout=timeout)
