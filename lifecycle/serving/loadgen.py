"""A small, bounded load generator for the model servers (127.0.0.1 only).

Two kinds of load, because they answer two questions:

* **closed loop** (:func:`run_http_load`, :func:`run_grpc_load`): a fixed number of requests in
  flight, each sent when the last one came back. It measures *throughput* (how many answers a
  second the server can give). Its latency is not the server's: with ``c`` in flight, p50 is about
  ``c`` ÷ throughput, whatever the server does.
* **open loop** (``rate=...``): requests sent at a fixed rate, as independent users arrive, whether
  or not earlier ones have come back. Latency is counted from when each request *should* have been
  sent, so a stall shows up in every request it delays. At a rate the server can sustain, this is
  the latency a user sees.

REST load goes through aiohttp, gRPC load through grpcio's asyncio client. The client matters:
httpx as a load client tops out at a few hundred requests/s here, which makes any server look slow
and any comparison through it meaningless, so the client's name is part of every result.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from lifecycle._aio import run_in_fresh_loop
from lifecycle._proc import check_loopback
from lifecycle.errors import ConfigError


@dataclass
class LoadResult:
    """What one load run measured."""

    label: str
    client: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rows_per_request: int = 1
    warmup_requests: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    status_counts: dict[str, int] = field(default_factory=dict)
    offered_rps: float | None = None  # open loop: the rate requests were sent at (None: closed loop)
    max_in_flight: int = 0

    @property
    def rps(self) -> float:
        """Answered requests per second (errors included: they cost the server too)."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rps * self.rows_per_request

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> dict[str, Any]:
        """The numbers, rounded, without the raw latencies."""
        out = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        out.update(rps=round(self.rps, 1), rows_per_second=round(self.rows_per_second, 1),
                   p50_ms=round(self.percentile_ms(50), 3), p99_ms=round(self.percentile_ms(99), 3),
                   seconds=round(self.seconds, 3))
        return out


def run_http_load(url: str, bodies: list[bytes], concurrency: int = 16, seconds: float = 3.0,
                  max_requests: int | None = None, warmup_requests: int = 50, label: str = "",
                  rows_per_request: int = 1, rate: float | None = None) -> LoadResult:
    """POST ``bodies`` (cycled, in order) to ``url``: ``concurrency`` requests in flight (closed
    loop), or ``rate`` requests a second (open loop).

    Args:
        url: e.g. ``http://127.0.0.1:8000/predict`` (loopback only).
        bodies: JSON request bodies.
        concurrency: closed loop: requests kept in flight (one keep-alive connection each); open
            loop: the most connections opened.
        seconds: stop after this long (the run is always bounded in time).
        max_requests: also stop after this many requests.
        warmup_requests: sent first and not counted (connections opened, caches warm).
        label: a name for the result.
        rows_per_request: transactions per body (for rows/s of batch requests).
        rate: send this many requests a second, evenly spaced, whatever comes back (open loop).

    Returns:
        The :class:`LoadResult` (client ``aiohttp``).

    Raises:
        ConfigError: concurrency below 1, seconds or rate not above 0.
    """
    check_loopback(urlsplit(url).hostname or "")
    import aiohttp
    import yarl

    target, headers = yarl.URL(url), {"Content-Type": "application/json"}

    async def send(session: Any, body: bytes) -> int:
        async with session.post(target, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def main() -> LoadResult:
        # The client shares the machine with the server: keep its work per request small (a parsed
        # URL reused, no headers the server ignores, no decompression).
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding")) as session:
            return await _drive(lambda i: send(session, bodies[i % len(bodies)]), concurrency, seconds,
                                max_requests, warmup_requests, label, f"aiohttp {aiohttp.__version__}",
                                rows_per_request, ok=lambda status: status == "200", rate=rate)

    return run_in_fresh_loop(main, "load-generator")


def run_grpc_load(address: str, messages: list[Any], method: str = "Predict", concurrency: int = 16,
                  seconds: float = 3.0, max_requests: int | None = None, warmup_requests: int = 50,
                  label: str = "", rows_per_request: int = 1, rate: float | None = None) -> LoadResult:
    """Call ``method`` of the FraudDetector service at ``address`` with ``messages`` (cycled).

    Arguments as :func:`run_http_load`; ``address`` is ``127.0.0.1:PORT`` and ``method`` is
    ``Predict`` or ``PredictBatch``. All calls share one HTTP/2 channel, as gRPC clients do.
    """
    check_loopback(address.rsplit(":", 1)[0])
    import grpc

    from lifecycle.proto import fraud_pb2_grpc

    async def main() -> LoadResult:
        async with grpc.aio.insecure_channel(address) as channel:
            call = getattr(fraud_pb2_grpc.FraudDetectorStub(channel), method)

            async def send(i: int) -> str:
                try:
                    await call(messages[i % len(messages)], timeout=30)
                    return "OK"
                except grpc.aio.AioRpcError as err:
                    return err.code().name

            return await _drive(send, concurrency, seconds, max_requests, warmup_requests, label,
                                f"grpcio {grpc.__version__} (grpc.aio)", rows_per_request, ok=lambda s: s == "OK",
                                rate=rate)

    return run_in_fresh_loop(main, "load-generator")


async def _drive(send: Any, concurrency: int, seconds: float, max_requests: int | None, warmup: int,
                 label: str, client: str, rows_per_request: int, ok: Any, rate: float | None = None) -> LoadResult:
    if concurrency < 1 or seconds <= 0 or (rate is not None and rate <= 0):
        raise ConfigError(f"concurrency must be >= 1, seconds > 0 and rate > 0 (or None); got {concurrency}, "
                          f"{seconds} and {rate}")
    for start in range(0, warmup, concurrency):
        await asyncio.gather(*(send(i) for i in range(start, min(start + concurrency, warmup))))
    latencies: list[float] = []
    statuses: Counter = Counter()
    limit = max_requests if max_requests is not None else 10**12
    began = time.perf_counter()
    in_flight = [0, 0]  # now, most

    async def one(i: int, due: float) -> None:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        status = await send(warmup + i)
        latencies.append((time.perf_counter() - due) * 1000)  # from when it was due: a stall counts
        statuses[str(status)] += 1
        in_flight[0] -= 1

    if rate is None:
        counter, deadline = iter(range(10**12)), began + seconds

        async def worker() -> None:
            while (i := next(counter)) < limit and time.perf_counter() < deadline:
                await one(i, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:
        tasks = []
        for i in range(min(limit, max(1, int(rate * seconds)))):
            due = began + i / rate
            if due > time.perf_counter():
                await asyncio.sleep(due - time.perf_counter())
            tasks.append(asyncio.ensure_future(one(i, due)))
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    errors = sum(n for status, n in statuses.items() if not ok(status))
    return LoadResult(label=label, client=client, concurrency=concurrency, requests=len(latencies), errors=errors,
                      seconds=elapsed, rows_per_request=rows_per_request, warmup_requests=warmup,
                      latencies_ms=latencies, status_counts=dict(statuses), offered_rps=rate,
                      max_in_flight=in_flight[1])
