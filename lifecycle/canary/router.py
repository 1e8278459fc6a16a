"""The canary router: an ASGI app in front of two model servers that splits traffic by user.

Each user id hashes to a bucket in ``[0, 100)``; a user goes to the canary when their bucket is
below the canary's weight. The split is sticky (one user, one model, for every request) and
monotone: raising the weight from 5 to 25 keeps the first 5% of users on the canary. Every
answer says who served it in the headers ``x-served-by`` (``stable`` or ``canary``),
``x-model-version`` and ``x-canary-weight``.

**Shadow mode** (``set_weight(0, shadow=True)``): every request also goes to the canary, in
parallel, and its answer is recorded but never returned; users get stable's answer only. The
gates then compare the two models on the same requests, with no user exposed to the canary.

Safety, the point of a canary:

* the weight and the record of the current step are swapped together in one assignment, so a
  request sees the old or the new split, never half of each, and none waits or is dropped;
* when the canary fails a request (no connection, a 5xx, a timeout) the router answers it from
  the stable server and counts a canary error: scoring is idempotent, so the retry is safe;
* when the canary cannot be reached at all (refused connections, or several failures in a row that
  are not timeouts) the router rolls back by itself: weight 0, with the reason in
  :attr:`CanaryRouter.rollback_reason_`. Slowness is for the gates to judge, against stable.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

from lifecycle.canary.evidence import CANARY, STABLE, Answer, StepWindow
from lifecycle.errors import ConfigError

BUCKETS = 100


def user_bucket(user_id: str) -> int:
    """The user's bucket in ``[0, 100)``: the first 8 bytes of SHA-256 of the id, modulo 100.

    Python's own ``hash()`` of a string changes with every process (hash randomisation), so a
    user would change models whenever the router restarts; a cryptographic hash never does.
    """
    return int.from_bytes(hashlib.sha256(str(user_id).encode()).digest()[:8], "big") % BUCKETS


def routes_to_canary(user_id: str, weight: int) -> bool:
    """Whether ``user_id`` is served by the canary when the canary's weight is ``weight`` percent."""
    return user_bucket(user_id) < weight


class CanaryRouter:
    """Route ``/predict`` requests between a stable and a canary model server, sticky per user.

    Args:
        stable_url: the stable server, e.g. ``http://127.0.0.1:8000`` (the champion).
        canary_url: the canary server (the challenger).
        weight: the canary's share of users, in percent (0–100).
        canary_timeout: seconds a canary may take before the request goes to stable instead.
        stable_timeout: seconds the stable server may take.
        max_consecutive_failures: canary failures in a row (timeouts aside) that roll back by themselves.

    Attributes:
        weight_: the canary's current weight.
        shadow_: whether every request is mirrored to the canary (its answers recorded, not returned).
        window_: the :class:`StepWindow` of the current weight; ``windows_`` holds all of them.
        rollback_reason_: why the router rolled back by itself, or None.
        events_: every weight change: ``{"seconds", "weight", "reason"}``.

    The router is an ASGI app: serve it with :func:`~lifecycle.canary.serve.serve_router`, or any ASGI
    server that runs its lifespan (the pool of connections to the model servers opens there). It keeps
    every call of every window in memory, for the gates to read: right for a lesson's thousands of requests, not
    for a router that runs for days (that one would aggregate per window).
    """

    def __init__(self, stable_url: str, canary_url: str, weight: int = 0, canary_timeout: float = 2.0,
                 stable_timeout: float = 30.0, max_consecutive_failures: int = 3) -> None:
        self.stable_url = stable_url.rstrip("/")
        self.canary_url = canary_url.rstrip("/")
        self.canary_timeout = canary_timeout
        self.stable_timeout = stable_timeout
        self.max_consecutive_failures = max_consecutive_failures
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._consecutive_failures = 0
        self.windows_: list[StepWindow] = []
        self.events_: list[dict[str, Any]] = []
        self.rollback_reason_: str | None = None
        self._route: tuple[int, bool, StepWindow]
        self.set_weight(weight, "start")
        self._session: Any = None
        self._mirrors: set[Any] = set()  # shadow calls in flight (asyncio keeps only weak references)
        self._app = self._build_app()

    @property
    def weight_(self) -> int:
        return self._route[0]

    @property
    def shadow_(self) -> bool:
        return self._route[1]

    @property
    def window_(self) -> StepWindow:
        return self._route[2]

    def set_weight(self, weight: int, reason: str = "", shadow: bool = False) -> StepWindow:
        """Give the canary ``weight`` percent of users; returns the new step's window.

        The weight and its window change in one assignment: each request reads both at once.

        Args:
            weight: the canary's share of users, in percent.
            reason: why, for :attr:`events_`.
            shadow: mirror every request to the canary (weight must be 0: users get stable's answers).

        Raises:
            ConfigError: a weight outside 0–100, or shadow with a weight above 0.
        """
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= BUCKETS:
            raise ConfigError(f"canary weight must be a whole percent from 0 to {BUCKETS}, got {weight!r}")
        if shadow and weight:
            raise ConfigError(f"a shadow step serves every user from stable: use weight 0 with shadow=True, "
                              f"got weight {weight}")
        with self._lock:
            window = StepWindow(weight, shadow)
            self._route = (weight, shadow, window)
            self.windows_.append(window)
            self.events_.append({"seconds": round(time.monotonic() - self._started, 3), "weight": weight,
                                 "shadow": shadow, "reason": reason})
        return window

    def rollback(self, reason: str) -> StepWindow:
        """Send every user to stable at once (weight 0), and remember why."""
        if self.rollback_reason_ is None:
            self.rollback_reason_ = reason
        return self.set_weight(0, f"rollback: {reason}")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        @asynccontextmanager
        async def lifespan(_app: Any):
            import aiohttp

            # Idle upstream connections close after 2 s, before uvicorn's 5 s keep-alive would
            # close them under us: reusing a connection the server just closed looks like a failure.
            connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=2.0)
            self._session = aiohttp.ClientSession(connector=connector)
            try:
                yield
            finally:
                await self._session.close()

        return Starlette(routes=[Route("/predict", self._predict, methods=["POST"]),
                                 Route("/ready", self._ready, methods=["GET"]),
                                 Route("/router", self._state, methods=["GET"])], lifespan=lifespan)

    async def _predict(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, Response

        body = await request.body()
        user_id = _user_id(body)
        weight, shadow, window = self._route  # one read: this request's split and step
        arm = CANARY if user_id is not None and routes_to_canary(user_id, weight) else STABLE
        window.requests += 1
        window.in_flight += 1
        if shadow and user_id is not None:
            self._mirror(body, window, user_id)
        try:
            answer, content = await self._call(arm, body, window, user_id)
            served_by = arm
            if arm == CANARY and not 0 < answer.status < 500:
                answer, content = await self._call(STABLE, body, window, user_id, fallback=True)
                served_by = STABLE
            if answer.status == 0:
                return JSONResponse({"detail": f"the stable model server at {self.stable_url} did not answer: "
                                               f"{answer.error}"}, status_code=502)
            headers = {"x-served-by": served_by, "x-canary-weight": str(weight),
                       "x-model-version": answer.model_version or ""}
            if answer.retry_after is not None:  # stable is overloaded (a 503 of its prediction log): say when to retry
                headers["Retry-After"] = answer.retry_after
            return Response(content, status_code=answer.status, headers=headers, media_type="application/json")
        finally:
            window.in_flight -= 1

    def _mirror(self, body: bytes, window: StepWindow, user_id: str) -> None:
        """Send a copy of the request to the canary, in parallel with stable's call; nobody waits for it."""
        import asyncio

        window.in_flight += 1
        task = asyncio.ensure_future(self._call(CANARY, body, window, user_id, mirror=True))
        self._mirrors.add(task)

        def done(finished: Any) -> None:
            self._mirrors.discard(finished)
            window.in_flight -= 1

        task.add_done_callback(done)

    async def _call(self, arm: str, body: bytes, window: StepWindow, user_id: str | None,
                    fallback: bool = False, mirror: bool = False) -> tuple[Answer, bytes]:
        import aiohttp

        url = self.canary_url if arm == CANARY else self.stable_url
        timeout = aiohttp.ClientTimeout(total=self.canary_timeout if arm == CANARY else self.stable_timeout)
        started = time.perf_counter()
        content, error, status, retry_after = b"", None, 0, None
        try:
            async with self._session.post(f"{url}/predict", data=body, timeout=timeout,
                                          headers={"content-type": "application/json"}) as response:
                content, status = await response.read(), response.status
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as err:
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        answer = Answer(None, user_id, status, (time.perf_counter() - started) * 1000, fallback=fallback, error=error,
                        mirror=mirror, retry_after=retry_after)
        if status == 200:
            parsed = json.loads(content)
            answer.transaction_id = parsed.get("transaction_id")
            answer.fraud_probability = parsed.get("fraud_probability")
            answer.is_fraud = parsed.get("is_fraud")
            answer.model_version = parsed.get("model_version")
        elif status:
            answer.error = content[:200].decode(errors="replace")
        window.answers[arm].append(answer)
        if arm == CANARY:
            self._watch_canary(answer)
        return answer, content

    def _watch_canary(self, answer: Answer) -> None:
        """Roll back when the canary is gone: refused connections, or failures in a row.

        A timeout is not counted here: on a busy machine both servers slow down, and whether the
        canary is slower than stable is the error and latency gates' question, asked of both arms
        alike. A dead or failing server (no connection, a reset, 5xx) is this watch's.
        """
        if answer.status == 0 and (answer.error or "").startswith("TimeoutError"):
            return
        failed = not 0 < answer.status < 500
        self._consecutive_failures = self._consecutive_failures + 1 if failed else 0
        refused = failed and answer.error is not None and answer.error.startswith("ClientConnectorError")
        if (self.weight_ or self.shadow_) and (refused or self._consecutive_failures >= self.max_consecutive_failures):
            why = "refused the connection" if refused else f"failed {self._consecutive_failures} requests in a row"
            # The kind of error, not its text: the text names the canary's address, which changes every run.
            kind = f"HTTP {answer.status}" if answer.status else (answer.error or "").split(":")[0]
            self.rollback(f"the canary {why} ({kind})")

    async def _ready(self, _request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ready", "weight": self.weight_, "shadow": self.shadow_})

    async def _state(self, _request: Any) -> Any:
        from starlette.responses import JSONResponse

        window = self.window_
        return JSONResponse({"weight": self.weight_, "shadow": self.shadow_, "stable_url": self.stable_url,
                             "canary_url": self.canary_url,
                             "rollback_reason": self.rollback_reason_, "step_requests": window.requests,
                             "step_routed": {arm: window.routed(arm) for arm in (STABLE, CANARY)}})


def _user_id(body: bytes) -> str | None:
    """The request's ``user_id``, or None when the body is not a JSON object with one (stable
    then answers, and rejects the request with the reason)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    value = parsed.get("user_id") if isinstance(parsed, dict) else None
    return str(value) if value is not None else None
