"""Model servers as processes: start one, wait until it answers, stop it (or crash it on purpose).

:func:`start_server` runs ``python -m lifecycle.serving KIND`` (:mod:`lifecycle.serving.command`) as a
:class:`~lifecycle._proc.ManagedProcess`: its own process group, on a reserved 127.0.0.1 port, tied to
this Python process (a crashed kernel leaves no server behind). The returned :class:`ServerHandle`
says where it listens (``url``), whether it runs, what it costs (``cpu_seconds()``, ``memory_bytes()``),
and ends it: ``stop()`` (graceful, the whole group) or ``kill()`` (SIGKILL, as a crash would).
The notebooks, the benchmark and lesson 06's canary use it.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle._proc import ManagedProcess, ReservedPort, http_ready, launch
from lifecycle.errors import ConfigError
from lifecycle.serving.command import PREDICTION_LOG_OFF, SERVER_KINDS


@dataclass(eq=False)
class ServerHandle(ManagedProcess):
    """A running model server (see :func:`start_server`): a :class:`~lifecycle._proc.ManagedProcess` that
    knows its kind, hence its address and its readiness check."""

    kind: str = "rest"

    @property
    def url(self) -> str:
        """``http://host:port`` for HTTP servers; ``host:port`` (a gRPC target) for gRPC."""
        return f"{self.host}:{self.port}" if self.kind == "grpc" else f"http://{self.host}:{self.port}"


def start_server(kind: str = "rest", model_uri: str | None = None, port: int | None = None,
                 host: str = "127.0.0.1", workers: int = 1, predictor: str = "auto", micro_batching: bool = True,
                 settings: Any = None, env: dict[str, str] | None = None, timeout: float = 120.0,
                 wait: bool = True, prediction_log: str | Path | None = None) -> ServerHandle:
    """Start a model server subprocess and wait until it is ready.

    Args:
        kind: ``rest``, ``grpc`` or ``constant`` (FastAPI returning a constant: the framework's ceiling).
        model_uri: registry URI (default: the settings' ``models:/<name>@champion``), resolved here, once,
            to a local export of its version (:func:`lifecycle.tracking.export_served_model`) that the
            server reads without importing MLflow.
        port: the port (default: a free one, reserved until the server listens).
        host: address to bind.
        workers: server processes (each holds its own copy of the model and the per-user state).
        predictor: ``auto``, ``compiled`` or ``sklearn``.
        micro_batching: gather concurrent requests into one predict call.
        settings: whose workspace and MLflow store the server uses (default: the environment's).
        env: extra environment variables for the server process (they win).
        timeout: seconds to wait for readiness.
        wait: wait for readiness before returning (else call :func:`wait_until_ready`).
        prediction_log: a REST server commits every prediction to this SQLite file before it
            answers (:mod:`lifecycle.serving.log_writer`, lesson 07); its folder must exist. None: no log.

    Returns:
        The :class:`ServerHandle` (also stopped when this Python process exits, however it exits).

    Raises:
        ConfigError: an unknown kind, or a URI that names no version (no champion yet).
        CommandError: the server exited or was not ready within ``timeout`` (it is stopped; the
            message holds the end of its log).
    """
    if kind not in SERVER_KINDS:
        raise ConfigError(f"unknown server kind {kind!r}; choose one of {', '.join(SERVER_KINDS)}")
    export = [] if kind == "constant" else ["--model-export", str(_export(model_uri, settings))]
    reserved = ReservedPort(host) if port is None else None
    port = reserved.port if reserved is not None else port
    args = [sys.executable, "-m", "lifecycle.serving", kind, "--host", host, "--port", str(port),
            "--workers", str(workers), "--predictor", predictor,
            "--prediction-log", str(Path(prediction_log).resolve()) if prediction_log else PREDICTION_LOG_OFF]
    args += (["--model", model_uri] if model_uri else []) + export
    args += [] if micro_batching else ["--no-micro-batching"]
    return launch_server(args, kind, host, port, settings=settings, env=env, timeout=timeout, wait=wait,
                         reserved=reserved)


def _export(model_uri: str | None, settings: Any) -> Path:
    """The local export of the version ``model_uri`` names now (MLflow, in this process: once per version)."""
    from lifecycle.config import load_settings
    from lifecycle.tracking.export import export_served_model

    return export_served_model(model_uri, (settings or load_settings()).ensure_dirs()).resolve()


def launch_server(args: list[str], kind: str, host: str, port: int, settings: Any = None,
                  env: dict[str, str] | None = None, timeout: float = 120.0, wait: bool = True,
                  reserved: ReservedPort | None = None) -> ServerHandle:
    """Run ``args`` as a managed server process with the settings' workspace and MLflow store in its
    environment and its output in ``workspace/logs/serve-<kind>-<port>.log``.

    Args:
        args: the command line (it must bind ``host:port``).
        kind: ``grpc`` (readiness: the gRPC health service) or anything else (HTTP ``/ready``).
        host: the address it binds.
        port: the port it binds.
        settings: whose workspace and MLflow store it uses.
        env: extra environment variables (they win; a value of ``""`` removes the variable).
        timeout: seconds to wait for readiness.
        wait: wait for readiness before returning.
        reserved: the :class:`~lifecycle._proc.ReservedPort` holding ``port`` until the server listens.

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
    handle = launch(args, f"{kind} server", settings.workspace / "logs" / f"serve-{kind}-{port}.log", env=child_env,
                    cwd=settings.root, host=host, port=port, reserved=reserved, cls=ServerHandle, kind=kind)
    if wait:
        wait_until_ready(handle, timeout)
    return handle


def wait_until_ready(handle: ServerHandle, timeout: float = 120.0) -> float:
    """Poll the server's readiness (HTTP ``/ready``; gRPC health) until it answers; returns the seconds
    from its start to its first healthy answer.

    Raises:
        CommandError: the process exited, or was not ready in time (then it is stopped).
    """
    probe = (lambda: _grpc_ready(handle.url)) if handle.kind == "grpc" else http_ready(f"{handle.url}/ready")
    return handle.wait_until_ready(probe, timeout)


def _grpc_ready(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING
