"""A real ``mlflow server`` on 127.0.0.1 for lesson 03: started in its own process group, waited
for, and stopped with its helper processes (they linger ~30 s after SIGTERM otherwise).

Taught in notebooks/03_experiment_tracking.ipynb.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lifecycle._proc import free_port
from lifecycle.config import Settings, load_settings
from lifecycle.errors import CommandError


@dataclass
class MlflowServer:
    """A ``mlflow server`` process group on 127.0.0.1, from :func:`start_mlflow_server`."""

    url: str
    process: subprocess.Popen
    log_file: Path
    started: float  # time.monotonic() at the start

    def wait_until_ready(self, timeout: float = 120.0) -> float:
        """Wait for ``/health`` to answer; returns the seconds since the start.

        Raises:
            CommandError: the server exited, or did not answer within ``timeout`` (it is then stopped).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - self.started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.25)
        problem = (f"exited with status {self.process.returncode}" if self.process.poll() is not None
                   else f"did not answer {self.url}/health within {timeout:.0f} s")
        self.stop()
        log = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
        raise CommandError(f"mlflow server {problem}; its log ({self.log_file}) ends:\n{log}",
                           list(self.process.args), self.process.returncode, log)

    def stop(self, grace: float = 15.0) -> float:
        """Stop the whole process group (the server and its uvicorn worker): SIGTERM, then SIGKILL
        for whatever still runs after ``grace`` seconds. Returns the seconds it took.

        The uvicorn worker serves the requests and writes the store; once it has shut down, the
        ``mlflow server`` parent only waits for it and then tears its Python down (about a second,
        with nothing left to save), so it is killed at that point instead of waited for.
        """
        clock = time.monotonic()
        atexit.unregister(self.stop)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)  # a session leader: its pid is the group id
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while (members := self._members()) and time.monotonic() < deadline:
                if sig == signal.SIGTERM and members == [self.process.pid] and Path("/proc").is_dir():
                    break  # only the parent is left: the worker is done (see above)
                time.sleep(0.05)
            if not self._members():
                break
        self.process.wait(timeout=grace)
        return time.monotonic() - clock

    @property
    def running(self) -> bool:
        """Whether any process of the group still runs (zombies, already dead, do not count)."""
        return bool(self._members())

    def _members(self) -> list[int]:
        """The pids of the group's live processes (zombies do not count); without /proc, the leader's
        pid while anything of the group is alive."""
        if not Path("/proc").is_dir():
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return []
            return [self.process.pid]
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, IndexError):  # the process ended while we looked
                continue
            if int(group) == self.process.pid and state != "Z":
                members.append(int(stat.parent.name))
        return sorted(members)


def start_mlflow_server(settings: Settings | None = None, port: int | None = None, wait: bool = True,
                        timeout: float = 120.0) -> MlflowServer:
    """Start a real ``mlflow server`` on 127.0.0.1 with its own store in the workspace.

    Metadata go to ``workspace/mlflow-server.db``, artifacts (uploaded by clients over HTTP) to
    ``workspace/mlflow-server-artifacts``, its output to ``workspace/logs/mlflow-server.log``. One
    worker and no job runner bring start-up near 12 s (about a minute by default). It runs in its
    own process group, stopped as a whole by :meth:`MlflowServer.stop` (also when Python exits).

    Args:
        settings: whose workspace holds the server's store.
        port: the port (default: a free one).
        wait: wait for ``/health`` (else call :meth:`MlflowServer.wait_until_ready` later).
        timeout: seconds to wait.

    Raises:
        CommandError: the ``mlflow`` command is missing, or the server did not come up.
    """
    from lifecycle._shell import find_command

    settings = (settings or load_settings()).ensure_dirs()
    command = find_command("mlflow")
    if command is None:
        raise CommandError("the 'mlflow' command was not found beside this Python or on PATH; "
                           "run 'make setup' (or pip install -e .)")
    port = port or free_port()
    log_file = settings.workspace / "logs" / "mlflow-server.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    args = [command, "server", "--backend-store-uri", f"sqlite:///{settings.workspace / 'mlflow-server.db'}",
            "--artifacts-destination", str(settings.workspace / "mlflow-server-artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with open(log_file, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=settings.workspace,
                                   env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    server = MlflowServer(f"http://127.0.0.1:{port}", process, log_file, time.monotonic())
    atexit.register(server.stop)  # a kernel that dies mid-lesson must not leave a server behind
    if wait:
        server.wait_until_ready(timeout)
    return server


def mlflow_ui_command(settings: Settings | None = None, port: int = 5000) -> str:
    """The shell command that opens the MLflow UI on the settings' store (run it in a terminal)."""
    from lifecycle._shell import find_command

    uri = (settings or load_settings()).mlflow_tracking_uri
    return f"{find_command('mlflow') or 'mlflow'} ui --backend-store-uri {uri} --host 127.0.0.1 --port {port}"
