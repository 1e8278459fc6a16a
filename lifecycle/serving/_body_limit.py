"""The REST server's body-size limit: 413 before a too-large body is read (private to lifecycle.serving.rest).

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lifecycle.serving.schema import MAX_BATCH_ROWS

# Read (and drop) up to this much of a refused body before answering: a client still sending gets
# the 413 instead of a broken pipe. Beyond it the connection is closed on the sender.
DRAIN_LIMIT = 8 * 1024 * 1024


async def _drain(receive: Callable, most: int) -> None:
    seen = 0
    while seen <= most:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodySizeLimit:
    """ASGI middleware: answer 413 to a request body over the limit for its path, before the app reads it.

    A declared ``Content-Length`` is checked at once; a chunked body is read up to the limit and
    then handed on whole. (FastAPI gained a ``max_body_size`` option only in 0.165; this works
    with every version.)
    """

    def __init__(self, app: Any, limits: dict[str, int], default: int) -> None:
        self.app, self.limits, self.default = app, limits, default

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limits.get(scope["path"], self.default)
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                await _drain(receive, DRAIN_LIMIT)
                return await self._refuse(send, scope["path"], limit, declared.decode("latin-1"))
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_LIMIT)
                return await self._refuse(send, scope["path"], limit, f"more than {limit}")
            if not message.get("more_body", False):
                break
        return await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks)}], receive), send)

    @staticmethod
    async def _refuse(send: Callable, path: str, limit: int, size: str) -> None:
        hint = (f"; send at most {MAX_BATCH_ROWS:,} transactions per request" if path == "/predict/batch"
                else "; to score many transactions use /predict/batch")
        body = json.dumps({"detail": f"request body of {size} bytes is over the {limit:,}-byte limit of {path}{hint}"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body.encode()})


def _replay(messages: list[dict], then: Callable | None = None) -> Callable:
    """A ``receive`` that yields ``messages`` first, then defers to ``then`` (e.g. for disconnects)."""
    pending = list(messages)

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
