"""Starting and stopping model servers: the ``lifecycle serve`` command and server subprocesses.

:func:`start_server` runs a server as a child process in its own process group on a free
127.0.0.1 port, waits until it says it is ready, and returns a :class:`ServerHandle` whose
``stop()`` ends the whole group. The notebooks, the benchmark and lesson 06's canary use it.

Every server process sets ``OMP_NUM_THREADS=1`` before scikit-learn loads: with a thread pool per
predict call and several requests at once, OpenMP threads fight over the cores. Scale with
worker processes instead (``--workers``).

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.errors import CommandError, ConfigError

SERVER_KINDS = ("rest", "grpc", "constant")
DEFAULT_PORTS = {"rest": 8000, "grpc": 50051, "constant": 8002}


@dataclass
class ServerHandle:
    """A running server subprocess (see :func:`start_server`)."""

    kind: str
    host: str
    port: int
    process: subprocess.Popen
    log_file: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        """``http://host:port`` for HTTP servers; ``host:port`` (a gRPC target) for gRPC."""
        return f"{self.host}:{self.port}" if self.kind == "grpc" else f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the server's processes (all workers), from /proc; None elsewhere.

        Unlike requests/s, it does not change when other programs compete for the cores, so it is the
        steadier measure of what one request costs the server.
        """
        proc, total, found = Path("/proc"), 0.0, False
        if not proc.is_dir():
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):  # the process ended while we looked
                continue
            if int(fields[2]) == self.process.pid:  # the process group started by start_server
                total += (int(fields[11]) + int(fields[12])) / ticks
                found = True
        return total if found else None

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """Crash the server on purpose: SIGKILL to its whole process group, no shutdown, nothing flushed.

        What a lesson uses to show what a crash does (the canary's fallback, the prediction log's promise).
        """
        atexit.unregister(self.stop)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self, grace: float = 10.0) -> None:
        """End the server's whole process group: SIGTERM, then SIGKILL for whatever is left."""
        atexit.unregister(self.stop)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self.process.wait()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(kind: str = "rest", model_uri: str | None = None, port: int | None = None,
                 host: str = "127.0.0.1", workers: int = 1, predictor: str = "auto", micro_batching: bool = True,
                 settings: Any = None, env: dict[str, str] | None = None, timeout: float = 120.0,
                 wait: bool = True, prediction_log: str | Path | None = None) -> ServerHandle:
    """Start a model server subprocess and wait until it is ready.

    Args:
        kind: ``rest``, ``grpc`` or ``constant`` (FastAPI returning a constant: the framework's ceiling).
        model_uri: registry URI (default: the settings' ``models:/<name>@champion``).
        port: the port (default: a free one).
        host: address to bind.
        workers: server processes (each holds its own copy of the model and the per-user state).
        predictor: ``auto``, ``compiled`` or ``sklearn``.
        micro_batching: gather concurrent requests into one predict call.
        settings: whose workspace and MLflow store the server uses (default: the environment's).
        env: extra environment variables for the server process (they win).
        timeout: seconds to wait for readiness.
        wait: wait for readiness before returning.
        prediction_log: a REST server commits every prediction to this SQLite file before it
            answers (:mod:`lifecycle.serving.log_writer`, lesson 07); its folder must exist. None: no log.

    Returns:
        The :class:`ServerHandle` (also stopped when this Python process exits).

    Raises:
        ConfigError: an unknown kind.
        CommandError: the server exited or was not ready within ``timeout`` (it is stopped; the
            message holds the end of its log).
    """
    from lifecycle._proc import free_port

    if kind not in SERVER_KINDS:
        raise ConfigError(f"unknown server kind {kind!r}; choose one of {', '.join(SERVER_KINDS)}")
    port = port or free_port()
    args = [sys.executable, "-m", "lifecycle.serving", kind, "--host", host, "--port", str(port),
            "--workers", str(workers), "--predictor", predictor]
    args += ["--model", model_uri] if model_uri else []
    args += [] if micro_batching else ["--no-micro-batching"]
    args += ["--prediction-log", str(Path(prediction_log).resolve())] if prediction_log else []
    return launch_server(args, kind, host, port, settings=settings, env=env, timeout=timeout, wait=wait)


def launch_server(args: list[str], kind: str, host: str, port: int, settings: Any = None,
                  env: dict[str, str] | None = None, timeout: float = 120.0, wait: bool = True) -> ServerHandle:
    """Run ``args`` as a server subprocess in its own process group, with the settings' workspace and
    MLflow store in its environment and its output in ``workspace/logs/serve-<kind>-<port>.log``.

    Args:
        args: the command line (it must bind ``host:port``).
        kind: ``grpc`` (readiness: the gRPC health service) or anything else (HTTP ``/ready``).
        host: the address it binds.
        port: the port it binds.
        settings: whose workspace and MLflow store it uses.
        env: extra environment variables (they win; a value of ``""`` removes the variable).
        timeout: seconds to wait for readiness.
        wait: wait for readiness before returning.

    Returns:
        The :class:`ServerHandle` (also stopped when this Python process exits).
    """
    from lifecycle.config import load_settings

    settings = (settings or load_settings()).ensure_dirs()
    child_env = {**os.environ, "LIFECYCLE_ROOT": str(settings.root), "LIFECYCLE_WORKSPACE": str(settings.workspace),
                 "LIFECYCLE_BUILD": str(settings.build), "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
                 "LIFECYCLE_REGISTERED_MODEL": settings.registered_model, "PYTHONUNBUFFERED": "1"}
    child_env.update(env or {})
    child_env = {name: value for name, value in child_env.items() if value != ""}
    log_file = settings.workspace / "logs" / f"serve-{kind}-{port}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                                   start_new_session=True, cwd=settings.root)
    handle = ServerHandle(kind, host, port, process, log_file)
    atexit.register(handle.stop)
    if wait:
        wait_until_ready(handle, timeout)
    return handle


def wait_until_ready(handle: ServerHandle, timeout: float = 120.0) -> float:
    """Poll the server's readiness (HTTP ``/ready``; gRPC health) until it answers; returns seconds waited.

    Raises:
        CommandError: the process exited, or was not ready in time (then it is stopped).
    """
    deadline = time.monotonic() + timeout
    probe = _grpc_ready if handle.kind == "grpc" else _http_ready
    while time.monotonic() < deadline:
        if not handle.running:
            raise CommandError(f"{handle.kind} server exited with status {handle.process.returncode} before it was "
                               f"ready; its log ({handle.log_file}) ends:\n{handle.log_tail()}",
                               handle.process.args, handle.process.returncode, handle.log_tail())
        if probe(handle):
            return time.monotonic() - handle.started
        time.sleep(0.2)
    handle.stop()
    raise CommandError(f"{handle.kind} server on port {handle.port} was not ready within {timeout:.0f} s; "
                       f"its log ({handle.log_file}) ends:\n{handle.log_tail()}", handle.process.args, None,
                       handle.log_tail())


def _http_ready(handle: ServerHandle) -> bool:
    try:
        with urllib.request.urlopen(f"{handle.url}/ready", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _grpc_ready(handle: ServerHandle) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(handle.url) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def serve_command(args: argparse.Namespace) -> int:
    """The ``lifecycle serve rest|grpc`` command (see :mod:`lifecycle.cli`): load, then serve until Ctrl-C.

    The model is loaded before the server starts, so a missing champion fails at once with the fix.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before scikit-learn (and its OpenMP runtime) is imported
    kind, host, workers = args.kind, args.host, int(getattr(args, "workers", 1) or 1)
    port = args.port or DEFAULT_PORTS[kind]
    predictor = getattr(args, "predictor", "auto")
    micro_batching = not getattr(args, "no_micro_batching", False)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: binding {host}: the server is reachable from other machines", file=sys.stderr)
    if workers > 1 and kind in ("rest", "grpc"):
        print(f"note: {workers} workers each keep their own per-user feature state; a user's requests must "
              "always reach the same worker for features to match a single server", file=sys.stderr)
    if kind == "constant":
        return run_uvicorn(_constant_app(), host, port)
    if kind == "grpc" and workers > 1:
        return _run_grpc_workers(args, workers)
    if kind == "rest" and workers > 1:
        return _run_rest_workers(args, host, port, workers, predictor)

    writer = _open_prediction_log(args) if kind == "rest" else None  # before the model: fail in a moment
    from lifecycle.tracking.registry import load_served_model

    served = load_served_model(args.model)
    where = f"{host}:{port}" if kind == "grpc" else f"http://{host}:{port}"
    print(f"serving {served.uri} (version {served.version}) over {kind} on {where}; Ctrl-C stops", flush=True)
    if kind == "grpc":
        from lifecycle.serving.grpc_service import run_grpc

        run_grpc(served, host, port, predictor=predictor)
        return 0
    from lifecycle.serving.rest import create_app, prepare_server_process

    app = create_app(served, predictor=predictor, micro_batching=micro_batching, on_prediction=writer)
    prepare_server_process()
    return run_uvicorn(app, host, port)


def _open_prediction_log(args: argparse.Namespace) -> Any:
    """The REST server's :class:`~lifecycle.serving.log_writer.PredictionLogWriter`, or None without a log.

    Raises:
        ConfigError: the log cannot be written (missing or read-only folder, locked or foreign file):
            the server refuses to start, and the message names the path and the fix.
    """
    log_path = _prediction_log_path(args)
    if log_path is None:
        return None
    from lifecycle.serving.log_writer import SYNC_ENV, PredictionLogWriter

    writer = PredictionLogWriter(log_path, synchronous=os.environ.get(SYNC_ENV, "normal"))
    print(f"logging every prediction to {log_path}, committed before it is answered "
          f"(synchronous={writer.log.synchronous})", flush=True)
    return writer


def _prediction_log_path(args: argparse.Namespace) -> Path | None:
    """Where a REST server logs its predictions: ``--prediction-log``, else ``LIFECYCLE_PREDICTION_LOG``;
    ``lifecycle serve`` (whose arguments have no such option) defaults to ``workspace/predictions.sqlite``,
    ``python -m lifecycle.serving`` (what :func:`start_server` runs) to no log."""
    from lifecycle.serving.prediction_log import DEFAULT_FILE_NAME, PREDICTION_LOG_ENV

    given = getattr(args, "prediction_log", _CLI_DEFAULT)
    if given == "off":
        return None
    if given == "workspace":  # the CLI's spelled-out default
        given = _CLI_DEFAULT
    if given and given is not _CLI_DEFAULT:
        return Path(given)
    if os.environ.get(PREDICTION_LOG_ENV):
        return Path(os.environ[PREDICTION_LOG_ENV])
    if given is _CLI_DEFAULT:
        from lifecycle.config import load_settings

        return load_settings().workspace / DEFAULT_FILE_NAME
    return None


_CLI_DEFAULT = object()  # the lifecycle CLI's serve command: log to the workspace by default


def _constant_app() -> Any:
    from lifecycle.serving.rest import create_constant_app

    return create_constant_app()


def run_uvicorn(app: Any, host: str, port: int, **options: Any) -> int:
    import uvicorn

    # Access logs cost ~10% of a small request here; the benchmark compares servers without them.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, **options)
    return 0


def _run_rest_workers(args: argparse.Namespace, host: str, port: int, workers: int, predictor: str) -> int:
    from lifecycle.serving.rest import MODEL_URI_ENV, PREDICTOR_ENV

    os.environ[MODEL_URI_ENV] = args.model or ""
    os.environ[PREDICTOR_ENV] = predictor
    log_path = _prediction_log_path(args)
    if log_path is not None:  # each worker appends to the same file (SQLite WAL serialises the writers)
        from lifecycle.serving.prediction_log import PREDICTION_LOG_ENV, check_log_path

        os.environ[PREDICTION_LOG_ENV] = str(check_log_path(log_path))  # fail here, not in every worker
    print(f"serving {args.model or 'the champion'} over rest on http://{host}:{port} with {workers} workers",
          flush=True)
    return run_uvicorn("lifecycle.serving.rest:app_from_environment", host, port, factory=True, workers=workers)


def _run_grpc_workers(args: argparse.Namespace, workers: int) -> int:
    """Several gRPC processes on one port (SO_REUSEPORT): the kernel spreads connections over them."""
    command = [sys.executable, "-m", "lifecycle.serving", "grpc", "--host", args.host,
               "--port", str(args.port or DEFAULT_PORTS["grpc"]), "--workers", "1",
               "--predictor", getattr(args, "predictor", "auto")]
    command += ["--model", args.model] if args.model else []
    children = [subprocess.Popen(command) for _ in range(workers)]

    def forward(sig: int, _frame: Any) -> None:
        for child in children:
            child.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m lifecycle.serving`` (what :func:`start_server` runs)."""
    parser = argparse.ArgumentParser(prog="python -m lifecycle.serving", description="Run one model server.")
    parser.add_argument("kind", choices=SERVER_KINDS)
    parser.add_argument("--model", default=None, help="registry URI (default: models:/<name>@champion)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 8000 rest, 50051 grpc)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--predictor", default="auto", choices=("auto", "compiled", "sklearn"))
    parser.add_argument("--no-micro-batching", action="store_true", help="one predict call per request")
    parser.add_argument("--prediction-log", default=None, metavar="PATH",
                        help="rest: commit every prediction to this SQLite file before answering it (default: none; "
                             "its folder must exist; LIFECYCLE_PREDICTION_LOG_SYNC=full also survives power loss)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lifecycle.serving``."""
    from lifecycle.errors import LifecycleError

    args = build_parser().parse_args(argv)
    try:
        return serve_command(args)
    except LifecycleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
