"""Prefect for the pipeline: whether it is installed, its settings, and its local API server.

Prefect is optional (``pip install -e '.[orchestration]'``); :func:`require_prefect` says how to
install it when it is missing. With no ``PREFECT_API_URL`` set, Prefect starts a temporary local
server on first use; :func:`start_prefect_server` starts that same server beforehand, in the
background, so its start-up (10–15 s on 2 cores) overlaps other work.

Taught in notebooks/04_orchestration.ipynb .
"""

from __future__ import annotations

import atexit
import importlib.util
import inspect
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle._quiet import quiet_prefect
from lifecycle.config import Settings, load_settings
from lifecycle.errors import CommandError, ConfigError

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


@dataclass
class PrefectServer:
    """Prefect's temporary API server, started in the background by :func:`start_prefect_server`."""

    api_url: str
    process: subprocess.Popen
    log_file: Path
    started: float  # time.monotonic() at the start
    ready_after: float | None = None  # seconds from the start to its first healthy answer
    _answered: threading.Event = field(default_factory=threading.Event, repr=False)

    def _watch(self) -> None:
        """Poll ``/health`` (in a thread) until the server answers or exits, so ``ready_after`` is the
        start-up time even when nobody waits for it."""
        while self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        self.ready_after = time.monotonic() - self.started
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.1)
        self._answered.set()

    def wait_until_ready(self, timeout: float = 180.0) -> float:
        """Wait until the server answers; returns the seconds this call waited (0 if it was up already).

        Raises:
            CommandError: it exited, or did not answer within ``timeout`` (it is then stopped).
        """
        clock = time.monotonic()
        self._answered.wait(timeout)
        if self.ready_after is not None:
            _set_niceness(self.process.pid, 0)  # from now on it serves the flow runs
            return time.monotonic() - clock
        problem = (f"exited with status {self.process.returncode}" if self.process.poll() is not None
                   else f"did not answer {self.api_url}/health within {timeout:.0f} s")
        self.stop()
        log = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
        raise CommandError(f"Prefect's server {problem}; its log ({self.log_file}) ends:\n{log}\nRun the cell "
                           "again, or unset PREFECT_API_URL and let Prefect start its own server",
                           list(self.process.args), self.process.returncode, log)

    def stop(self, drain: bool = True) -> None:
        """Send Prefect's pending logs and events (``drain``), stop the server, and point Prefect back
        at its own temporary server (no ``PREFECT_API_URL``)."""
        atexit.unregister(self._stop_at_exit)
        if drain and self.ready_after is not None and self.process.poll() is None:
            drain_prefect_workers()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.environ.get("PREFECT_API_URL") == self.api_url:
            del os.environ["PREFECT_API_URL"]
            _refresh_prefect_settings()

    def _stop_at_exit(self) -> None:
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
    from lifecycle._proc import free_port

    _set_prefect_environment(settings)
    running = _STARTED.get("server")
    if running and running.process.poll() is None and os.environ.get("PREFECT_API_URL") == running.api_url:
        return running  # started earlier in this process (a notebook cell run twice)
    if os.environ.get("PREFECT_API_URL"):
        return None
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]
    environment = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                   "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false"}
    with open(home / "server.log", "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=environment)
    _set_niceness(process.pid, BACKGROUND_NICENESS)  # the lesson's own work, and its timings, come first
    server = PrefectServer(f"http://127.0.0.1:{port}/api", process, home / "server.log", time.monotonic())
    atexit.register(server._stop_at_exit)  # a kernel that fails mid-lesson must not leave a server behind
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
    if "prefect.events.worker" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for worker in (APILogWorker, EventsWorker):
            result = worker.drain_all(timeout=10)
            if inspect.isawaitable(result):  # in a Jupyter kernel, whose event loop is running
                await result

    run_coro_as_sync(drain())


def start_prefect_api(settings: Settings | None = None) -> float:
    """Connect to Prefect's API, starting the temporary local server if no ``PREFECT_API_URL`` is set;
    returns the seconds it took. The server stops when Python exits."""
    configure_prefect(settings)
    from prefect.client.orchestration import get_client

    clock = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.api_healthcheck()
    return time.perf_counter() - clock
