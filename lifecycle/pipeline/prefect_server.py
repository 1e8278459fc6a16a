"""Prefect for the pipeline: whether it is installed, its settings, and its local API server.

Prefect is optional (``pip install -e '.[orchestration]'``); :func:`require_prefect` says how to
install it when it is missing. With no ``PREFECT_API_URL`` set, Prefect starts a temporary local
server on first use; :func:`start_prefect_server` starts that same server beforehand, in the
background, so its start-up (10–15 s on 2 cores) overlaps other work.

Taught in notebooks/04_orchestration.ipynb .
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle._proc import ManagedProcess, ReservedPort, http_ready, launch
from lifecycle._quiet import quiet_prefect
from lifecycle.config import Settings, load_settings
from lifecycle.errors import CommandError, ConfigError
from lifecycle.pipeline._prefect import drain_workers, ephemeral_server_environment

PREFECT_INSTALL_HINT = ("Prefect is not installed here: it is the optional 'orchestration' extra. Install it "
                        "with pip install -e '.[orchestration]' in the kit's folder (make setup does), then "
                        "restart the kernel.")
# The server starts beside the lesson's own work: at a lower CPU priority, so that on a busy machine it
# takes idle time rather than slowing (and distorting the timings of) the dvc repro runs.
BACKGROUND_NICENESS = 10
_STARTED: dict[str, PrefectServer] = {}  # the server start_prefect_server started in this process, if any


def prefect_installed() -> bool:
    """Whether Prefect, the optional ``orchestration`` extra, is installed."""
    return importlib.util.find_spec("prefect") is not None


def require_prefect() -> None:
    """Raise :class:`~lifecycle.errors.ConfigError` saying how to install Prefect, if it is missing."""
    if not prefect_installed():
        raise ConfigError(PREFECT_INSTALL_HINT)


def configure_prefect(settings: Settings | None = None) -> dict[str, str]:
    """Keep Prefect's files in the workspace and its telemetry off. Call it before Prefect is imported:
    Prefect reads its settings once, at import.

    ``PREFECT_HOME`` (database, results) defaults to ``workspace/prefect``; one set already is kept,
    and so is ``PREFECT_API_URL`` (a Prefect server or Prefect Cloud: then no local server starts).

    Returns:
        The Prefect settings in effect: ``home``, ``results`` and ``api``.

    Raises:
        ConfigError: Prefect is not installed.
    """
    _set_prefect_environment(settings)
    from prefect.settings import get_current_settings

    current = get_current_settings()
    return {"home": str(current.home), "results": str(current.results.local_storage_path),
            "api": str(current.api.url or "a temporary local server, started on first use")}


def _set_prefect_environment(settings: Settings | None = None) -> None:
    """What :func:`configure_prefect` sets, without importing Prefect (a server can start meanwhile)."""
    require_prefect()
    settings = settings or load_settings()
    os.environ.setdefault("PREFECT_HOME", str(settings.workspace / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    quiet_prefect()  # uncoloured logs, and only warnings on the console: the lesson reads runs from the API
    # The first start creates the server's database; on a busy 2-core machine that outlasts the 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@dataclass(eq=False)
class PrefectServer(ManagedProcess):
    """Prefect's temporary API server, started in the background by :func:`start_prefect_server` as a
    managed process (:mod:`lifecycle._proc`). ``ready_after`` is its start-up time, recorded by a
    thread that polls ``/health`` even when nobody waits for it."""

    _answered: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def _watch(self) -> None:
        """Poll ``/health`` until the server answers or exits (in a thread)."""
        try:
            super().wait_until_ready(http_ready(f"{self.api_url}/health"), timeout=float("inf"), interval=0.1)
        except CommandError:
            pass  # it exited: wait_until_ready says so
        finally:
            self._answered.set()

    def wait_until_ready(self, timeout: float = 180.0) -> float:  # type: ignore[override]
        """Wait until the server answers; returns the seconds this call waited (0 if it was up already).

        Raises:
            CommandError: it exited, or did not answer within ``timeout`` (it is then stopped).
        """
        clock = time.monotonic()
        self._answered.wait(timeout)
        if self.ready_after is not None:
            _set_niceness(self.process.pid, 0)  # from now on it serves the flow runs
            return time.monotonic() - clock
        problem = (f"exited with status {self.process.returncode}" if not self.running
                   else f"did not answer {self.api_url}/health within {timeout:.0f} s")
        self.stop(drain=False)
        log = self.log_tail(15)
        raise CommandError(f"Prefect's server {problem}; its log ({self.log_file}) ends:\n{log}\nRun the cell "
                           "again, or unset PREFECT_API_URL and let Prefect start its own server",
                           list(self.argv), self.process.returncode, log)

    def stop(self, drain: bool = True, grace: float = 10.0) -> float:  # type: ignore[override]
        """Send Prefect's pending logs and events (``drain``), stop the server, and point Prefect back
        at its own temporary server (no ``PREFECT_API_URL``). Returns the seconds it took."""
        clock = time.monotonic()
        if drain and self.ready_after is not None and self.running:
            drain_prefect_workers()
        super().stop(grace)
        if os.environ.get("PREFECT_API_URL") == self.api_url:
            del os.environ["PREFECT_API_URL"]
            _refresh_prefect_settings()
        return time.monotonic() - clock

    def _at_exit(self) -> None:
        self.stop(drain=False)  # Prefect's own exit handlers, registered later, ran first and drained


def start_prefect_server(settings: Settings | None = None) -> PrefectServer | None:
    """Start the temporary server Prefect would start on first use, but now and in the background, so
    its start-up (importing the server, creating its database: 10–15 s on an idle 2-core machine) overlaps
    other work.

    It is the command Prefect runs (uvicorn serving ``prefect.server.api.server:create_app``) with the
    same settings, minus block-type registration, which a flow with local results does not use. Its
    output goes to ``PREFECT_HOME/server.log``; ``PREFECT_API_URL`` points Prefect at it. It stops
    with :meth:`PrefectServer.stop`, or when Python exits. Call it before Prefect is imported.

    Returns:
        The server (wait for it with :meth:`PrefectServer.wait_until_ready`), or None when
        ``PREFECT_API_URL`` already names a server (then nothing is started).

    Raises:
        ConfigError: Prefect is not installed.
    """
    _set_prefect_environment(settings)
    running = _STARTED.get("server")
    if running and running.running and os.environ.get("PREFECT_API_URL") == running.api_url:
        return running  # started earlier in this process (a notebook cell run twice)
    if os.environ.get("PREFECT_API_URL"):
        return None
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    reserved = ReservedPort()
    args = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(reserved.port), "--log-level", "error", "--lifespan", "on"]
    environment = {**os.environ, "PREFECT_UI_ENABLED": "0", **ephemeral_server_environment(),
                   "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false"}
    server = launch(args, "Prefect's server", home / "server.log", env=environment, reserved=reserved,
                    append_log=True, cls=PrefectServer)
    _set_niceness(server.process.pid, BACKGROUND_NICENESS)  # the lesson's own work, and its timings, come first
    threading.Thread(target=server._watch, name="prefect-server-health", daemon=True).start()
    os.environ["PREFECT_API_URL"] = server.api_url
    _refresh_prefect_settings()
    _STARTED["server"] = server
    return server


def _set_niceness(pid: int, niceness: int) -> None:
    """Set a process's CPU priority, all its threads' on Linux (POSIX only). Raising it back may need
    privileges: then it stays low."""
    if not hasattr(os, "setpriority"):
        return
    threads = Path(f"/proc/{pid}/task")
    for thread in [int(path.name) for path in threads.iterdir()] if threads.is_dir() else [pid]:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, niceness)
        except (PermissionError, ProcessLookupError):
            pass  # not allowed here, or it already ended: its priority does not matter then


def _refresh_prefect_settings() -> None:
    """Prefect reads the environment once, at import: make an imported Prefect read it again."""
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def drain_prefect_workers() -> None:
    """Send the logs and events Prefect still queues to its server (before the server stops)."""
    drain_workers()


def start_prefect_api(settings: Settings | None = None) -> float:
    """Connect to Prefect's API, starting the temporary local server if no ``PREFECT_API_URL`` is set;
    returns the seconds it took. The server stops when Python exits."""
    configure_prefect(settings)
    from prefect.client.orchestration import get_client

    clock = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.api_healthcheck()
    return time.perf_counter() - clock
