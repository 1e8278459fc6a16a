"""Lesson 07's crash test: kill a logging server in the middle of a load, count its answers against its log.

The prediction log promises that a prediction the server answered is a prediction the log holds
(:mod:`lifecycle.serving.log_writer`). :func:`crash_test` checks it the hard way, as an operator's
worst day would: a real REST server with a prediction log, ``concurrency`` requests in flight, each
with its own transaction id, then ``SIGKILL`` to the whole server (no shutdown, nothing flushed).
Every id answered 200 is then looked up in the log. Requests the kill cut off may be in the log or
not (their answer never arrived, so a client retries them, and the log ignores the duplicate).

Taught in notebooks/07_monitoring.ipynb; ``benchmarks/prediction_log.py`` runs it three times.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle._aio import run_in_fresh_loop


@dataclass
class CrashTest:
    """What one crash test found."""

    seconds: float  # load time before the kill
    concurrency: int
    workers: int
    answered: int  # requests answered 200
    cut_off: int  # requests the kill left without an answer
    outstanding_at_kill: int  # requests sent and not yet answered when the kill was sent (cut off, or answered
    # before it landed and read after it: those must be in the log too)
    rows_in_log: int
    unlogged: list[str] = field(default_factory=list)  # answered 200 but not in the log: the promise is []
    other_statuses: dict[str, int] = field(default_factory=dict)

    @property
    def logged_unanswered(self) -> int:
        """Rows committed for requests whose answer the kill cut off (the client retries; the log dedupes)."""
        return self.rows_in_log - (self.answered - len(self.unlogged))

    def report(self) -> str:
        """The result in two lines, for a learner (no ports, paths or process ids)."""
        workers = f"{self.workers} workers, " if self.workers > 1 else ""
        return (f"SIGKILL after {self.seconds:.1f} s of load ({workers}{self.concurrency} requests in flight): "
                f"{self.answered:,} answered 200, {self.answered - len(self.unlogged):,} of them in the log; "
                f"answered but not logged: {len(self.unlogged)}\n"
                f"{self.cut_off} requests cut off by the kill; {self.logged_unanswered} of them were logged "
                f"before their answer could be sent (a retry is logged once)")


def crash_test(settings: Any = None, log_path: str | Path | None = None, seconds: float = 3.0,
               concurrency: int = 32, workers: int = 1, model_uri: str | None = None, seed: int = 7) -> CrashTest:
    """Start a REST server with a fresh prediction log, load it, SIGKILL it mid-load, count answers against rows.

    Args:
        settings: whose workspace and registry (default: the environment's); the model is the champion
            unless ``model_uri`` names another.
        log_path: the log file (default ``workspace/crash-test/predictions.sqlite``); it starts empty.
        seconds: load time before the kill.
        concurrency: requests in flight, each transaction id sent once.
        workers: server processes (several writers of one log file).
        model_uri: registry URI of the model to serve.
        seed: seed of the transactions sent.

    Returns:
        The :class:`CrashTest`; its ``unlogged`` list is empty when the promise held.
    """
    from lifecycle.config import load_settings
    from lifecycle.data import generate_transactions
    from lifecycle.serving.prediction_log import PredictionLog
    from lifecycle.serving.process import start_server
    from lifecycle.serving.schema import request_bodies

    settings = (settings or load_settings()).ensure_dirs()
    path = Path(log_path) if log_path is not None else settings.workspace / "crash-test" / "predictions.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # a fresh log: every row in it comes from this run
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    templates = request_bodies(generate_transactions(2_000, seed, start="2026-02-01", days=14))
    server = start_server("rest", model_uri=model_uri, settings=settings, workers=workers, prediction_log=path)
    try:
        statuses, outstanding = _load_until_killed(f"{server.url}/predict", templates, concurrency, seconds,
                                                   server.kill)
    finally:
        server.kill()
    answered = {tid for tid, status in statuses.items() if status == 200}
    log = PredictionLog(path)
    logged = log.transaction_ids()
    others = Counter(str(status) for status in statuses.values() if status not in (0, 200))
    return CrashTest(seconds=seconds, concurrency=concurrency, workers=workers, answered=len(answered),
                     cut_off=sum(status == 0 for status in statuses.values()), outstanding_at_kill=outstanding,
                     rows_in_log=len(logged),
                     unlogged=sorted(answered - logged), other_statuses=dict(others))


def _load_until_killed(url: str, templates: list[dict[str, Any]], concurrency: int, seconds: float,
                       kill: Any) -> tuple[dict[str, int], int]:
    """Keep ``concurrency`` requests in flight, each a new transaction id, until ``kill()`` has ended the
    server ``seconds`` in; returns each id's status (0: no answer) and how many were unanswered at the kill."""
    import aiohttp

    statuses: dict[str, int] = {}
    outstanding: list[int] = []
    stopping = threading.Event()  # no new request once the kill is on its way: only those in flight are cut off

    async def main() -> None:
        counter = iter(range(10**9))
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            async def worker() -> None:
                while not stopping.is_set():
                    i = next(counter)
                    tid = f"crash-{i:07d}"
                    body = json.dumps({**templates[i % len(templates)], "transaction_id": tid}).encode()
                    statuses[tid] = 0  # until an answer arrives
                    try:
                        async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
                            await r.read()
                            statuses[tid] = r.status
                    except (aiohttp.ClientError, TimeoutError):  # the kill cut this request off
                        pass

            async def killer() -> None:
                await asyncio.sleep(seconds)  # the load's duration, not a wait for something to happen
                stopping.set()
                # In the loop's own thread: no answer in flight is read, and no request sent, until the server
                # is dead (from a thread, a slow start let the requests in flight finish first: none cut off).
                outstanding.append(sum(status == 0 for status in statuses.values()))
                kill()

            await asyncio.gather(killer(), *(worker() for _ in range(concurrency)))

    run_in_fresh_loop(main, "crash-test-load")
    return statuses, outstanding[0]


def send_tracked(url: str, bodies: list[dict[str, Any]], concurrency: int = 8) -> dict[int, tuple[int, dict]]:
    """POST each body once, ``concurrency`` at a time; returns each body's index → (status, headers).

    A status of 0 means no answer (a refused or broken connection).
    """
    import aiohttp

    answers: dict[int, tuple[int, dict]] = {}

    async def main() -> None:
        pending = iter(range(len(bodies)))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                         timeout=aiohttp.ClientTimeout(total=120)) as session:
            async def worker() -> None:
                for i in pending:
                    try:
                        async with session.post(url, json=bodies[i]) as response:
                            await response.read()
                            answers[i] = (response.status, dict(response.headers))
                    except (aiohttp.ClientError, TimeoutError):
                        answers[i] = (0, {})

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    run_in_fresh_loop(main, "crash-test-load")
    return answers
