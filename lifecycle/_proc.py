"""Helpers for the server processes the stages start: a free loopback port, and loopback-only targets.

Shared by serving, the canary router, the MLflow and Prefect servers.
"""

from __future__ import annotations

import socket

from lifecycle.errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_loopback(host: str) -> None:
    """Refuse any target that is not this machine (load tests never leave 127.0.0.1).

    Raises:
        ConfigError: ``host`` is not a loopback address.
    """
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ConfigError(f"load tests only target this machine; got host {host!r}, use 127.0.0.1")
