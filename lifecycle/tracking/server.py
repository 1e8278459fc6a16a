"""A real ``mlflow server`` on 127.0.0.1 for lesson 03, as a managed process (:mod:`lifecycle._proc`):
its own process group on a reserved port, tied to the Python that started it, stopped with its
helper processes (they linger ~30 s after SIGTERM otherwise).

Taught in notebooks/03_experiment_tracking.ipynb.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lifecycle._proc import ManagedProcess, ReservedPort, http_ready, launch
from lifecycle.config import Settings, load_settings
from lifecycle.errors import CommandError


@dataclass(eq=False)
class MlflowServer(ManagedProcess):
    """A ``mlflow server`` process group on 127.0.0.1, from :func:`start_mlflow_server`.

    ``stop()`` returns the seconds it took: the uvicorn worker serves the requests and writes the
    store; once it has shut down, the ``mlflow server`` parent only waits for it and then tears its
    Python down (about a second, with nothing left to save), so it is killed at that point instead of
    waited for.
    """

    leader_lingers: bool = True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_until_ready(self, timeout: float = 120.0) -> float:  # type: ignore[override]
        """Wait for ``/health`` to answer; returns the seconds since the start.

        Raises:
            CommandError: the server exited, or did not answer within ``timeout`` (it is then stopped).
        """
        return super().wait_until_ready(http_ready(f"{self.url}/health"), timeout, interval=0.25)

    def stop(self, grace: float = 15.0) -> float:
        """Stop the whole process group (the server and its uvicorn worker): SIGTERM, then SIGKILL for
        whatever still runs after ``grace`` seconds. Returns the seconds it took."""
        return super().stop(grace)


def start_mlflow_server(settings: Settings | None = None, port: int | None = None, wait: bool = True,
                        timeout: float = 120.0) -> MlflowServer:
    """Start a real ``mlflow server`` on 127.0.0.1 with its own store in the workspace.

    Metadata go to ``workspace/mlflow-server.db``, artifacts (uploaded by clients over HTTP) to
    ``workspace/mlflow-server-artifacts``, its output to ``workspace/logs/mlflow-server.log``. One
    worker and no job runner bring start-up near 12 s (about a minute by default). It runs in its
    own process group, stopped as a whole by :meth:`MlflowServer.stop` (also when Python exits, and
    by its watchdog when Python dies).

    Args:
        settings: whose workspace holds the server's store.
        port: the port (default: a free one, reserved until the server listens).
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
    reserved = ReservedPort() if port is None else None
    port = reserved.port if reserved is not None else port
    args = [command, "server", "--backend-store-uri", f"sqlite:///{settings.workspace / 'mlflow-server.db'}",
            "--artifacts-destination", str(settings.workspace / "mlflow-server-artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = launch(args, "mlflow server", settings.workspace / "logs" / "mlflow-server.log", cwd=settings.workspace,
                    env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, reserved=reserved, port=port,
                    cls=MlflowServer)
    if wait:
        server.wait_until_ready(timeout)
    return server


def mlflow_ui_command(settings: Settings | None = None, port: int = 5000) -> str:
    """The shell command that opens the MLflow UI on the settings' store, to run in a terminal from the kit's
    folder: paths under it are written relative to it (``./.venv/bin/mlflow``, ``sqlite:///./workspace/…``),
    and a workspace elsewhere as ``$LIFECYCLE_WORKSPACE`` (the variable that put it there), so the command
    reads the same on every machine (taught in notebooks/03_experiment_tracking.ipynb)."""
    from lifecycle._shell import find_command

    settings = settings or load_settings()
    command = (f"{find_command('mlflow') or 'mlflow'} ui --backend-store-uri {settings.mlflow_tracking_uri} "
               f"--host 127.0.0.1 --port {port}")
    root, workspace = settings.root.resolve(), settings.workspace.resolve()
    if not workspace.is_relative_to(root):
        command = command.replace(f"{workspace}/", "$LIFECYCLE_WORKSPACE/")
    return command.replace(f"{root}/", "./")
