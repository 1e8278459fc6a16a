"""Client traffic for a canary: send transactions through the router and keep every answer.

Unlike the serving load generator, which counts, this client keeps one row per request: its
status, which model answered (the router's ``x-served-by`` and ``x-model-version`` headers), the
score and the latency. That is how the lesson shows, from the client's side, that no request was
dropped and how many the canary answered. It uses aiohttp (httpx as a client tops out at a few
hundred requests/s here; see shared/RECIPES.md).

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from lifecycle._aio import run_in_fresh_loop

ANSWER_COLUMNS = ["transaction_id", "user_id", "status", "served_by", "model_version", "fraud_probability",
                  "is_fraud", "latency_ms", "error"]


def send_requests(url: str, bodies: list[dict[str, Any]], concurrency: int = 16, timeout: float = 30.0) -> pd.DataFrame:
    """POST each body to ``url`` once, ``concurrency`` at a time, and return every answer.

    Args:
        url: the ``/predict`` endpoint, e.g. ``http://127.0.0.1:8100/predict`` (loopback only).
        bodies: transactions as JSON-ready dicts (see ``lifecycle.serving.schema.request_bodies``),
            sent in this order (up to ``concurrency`` overlap).
        concurrency: requests in flight at once.
        timeout: seconds one request may take.

    Returns:
        One row per body, in the order given: ``ANSWER_COLUMNS``. ``status`` is 0 when no HTTP
        answer came back (``error`` says why).

    Raises:
        ConfigError: a URL that is not on this machine, or ``concurrency`` below 1.
    """
    from lifecycle._proc import check_loopback
    from lifecycle.errors import ConfigError

    check_loopback(urlsplit(url).hostname or "")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    payloads = [json.dumps(body).encode() for body in bodies]
    rows: list[dict[str, Any] | None] = [None] * len(bodies)

    async def main() -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=2.0)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            positions = iter(range(len(payloads)))

            async def worker() -> None:
                for i in positions:
                    rows[i] = await _post(session, url, payloads[i], bodies[i])

            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(payloads)) or 1)))

    run_in_fresh_loop(main, "canary-traffic")
    return pd.DataFrame(rows, columns=ANSWER_COLUMNS)


async def _post(session: Any, url: str, payload: bytes, body: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    row = {"transaction_id": body.get("transaction_id"), "user_id": body.get("user_id"), "status": 0,
           "served_by": None, "model_version": None, "fraud_probability": None, "is_fraud": None, "error": None}
    started = time.perf_counter()
    try:
        async with session.post(url, data=payload, headers={"content-type": "application/json"}) as response:
            content = await response.read()
            row.update(status=response.status, served_by=response.headers.get("x-served-by"),
                       model_version=response.headers.get("x-model-version"))
    except (TimeoutError, aiohttp.ClientError) as err:
        row["error"] = f"{type(err).__name__}: {err}"
        content = b""
    row["latency_ms"] = (time.perf_counter() - started) * 1000
    if row["status"] == 200:
        parsed = json.loads(content)
        row.update(fraud_probability=parsed.get("fraud_probability"), is_fraud=parsed.get("is_fraud"))
    elif row["status"]:
        row["error"] = content[:200].decode(errors="replace")
    return row
