"""The canary router served: uvicorn in a thread of this Python process, on 127.0.0.1.

A thread (not a process) keeps the router's state in the notebook's process, so a lesson reads its
windows and changes its weight directly; the port is reserved before uvicorn starts and handed to it,
so no other server can take it meanwhile.

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from lifecycle.canary.router import CanaryRouter
from lifecycle.errors import CommandError


@dataclass
class RouterServer:
    """A :class:`CanaryRouter` served by uvicorn on 127.0.0.1, in a thread of this process."""

    router: CanaryRouter
    host: str
    port: int
    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (requests in flight finish first)."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> RouterServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_router(router: CanaryRouter, host: str = "127.0.0.1", port: int | None = None,
                 timeout: float = 10.0) -> RouterServer:
    """Serve ``router`` with uvicorn in a background thread; returns once it accepts requests.

    A thread (not a process) keeps the router's state in this Python process, so a notebook can
    read its windows and change its weight directly.

    Args:
        router: the router to serve.
        host: a loopback address.
        port: the port (default: a free one).
        timeout: seconds to wait for uvicorn to start.

    Returns:
        The :class:`RouterServer`; ``stop()`` it when done.

    Raises:
        ConfigError: a host that is not this machine.
        CommandError: uvicorn did not start within ``timeout``.
    """
    import uvicorn

    from lifecycle._proc import ReservedPort, check_loopback

    check_loopback(host)
    # A port of our own, bound before uvicorn starts and handed to it: no other server can take it meanwhile.
    reserved = ReservedPort(host) if port is None else None
    port = reserved.port if reserved is not None else port
    config = uvicorn.Config(router, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    sockets = [reserved.socket()] if reserved is not None else None
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, name=f"canary-router-{port}",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise CommandError(f"the canary router did not start on {host}:{port} within {timeout:.0f} s; "
                               "is the port taken? pass another port, or none for a free one")
        time.sleep(0.01)
    return RouterServer(router, host, port, server, thread)
