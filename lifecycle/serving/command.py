"""The ``lifecycle serve`` command, also run as ``python -m lifecycle.serving`` (what
:func:`~lifecycle.serving.process.start_server` starts): load the model, then serve it until stopped.

One argument parser for both (:func:`add_serve_arguments`). Every server process sets
``OMP_NUM_THREADS=1`` before scikit-learn loads: with a thread pool per predict call and several
requests at once, OpenMP threads fight over the cores. Scale with worker processes instead
(``--workers``).

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from lifecycle.errors import ConfigError

SERVER_KINDS = ("rest", "grpc", "constant")
DEFAULT_PORTS = {"rest": 8000, "grpc": 50051, "constant": 8002}
PREDICTION_LOG_DEFAULT = "workspace"  # workspace/predictions.sqlite, unless LIFECYCLE_PREDICTION_LOG names a file
PREDICTION_LOG_OFF = "off"


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``lifecycle serve`` and ``python -m lifecycle.serving``: the same parser for both."""
    parser.add_argument("kind", choices=SERVER_KINDS,
                        help="rest (FastAPI), grpc, or constant (a FastAPI constant: the framework's ceiling)")
    parser.add_argument("--model", default=None, metavar="URI",
                        help="registry URI (default: models:/<registered model>@champion)")
    parser.add_argument("--model-export", default=None, metavar="FOLDER",
                        help="serve this local export of the --model version (lifecycle.tracking.export_served_model; "
                             "start_server passes one) without importing MLflow; default: export it now")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8000 rest, 50051 grpc, 8002 constant)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--predictor", default="auto", choices=("auto", "compiled", "sklearn"),
                        help="compiled (Treelite), sklearn, or auto: compiled where the model allows (default)")
    parser.add_argument("--no-micro-batching", action="store_true", help="one predict call per request")
    parser.add_argument("--prediction-log", default=PREDICTION_LOG_DEFAULT, metavar="PATH",
                        help="REST: commit every prediction to this SQLite file before answering it (default: "
                             f"$LIFECYCLE_PREDICTION_LOG, else workspace/predictions.sqlite; '{PREDICTION_LOG_OFF}': "
                             "no log; its folder must exist; LIFECYCLE_PREDICTION_LOG_SYNC=full also survives power "
                             "loss)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m lifecycle.serving`` (the arguments of ``lifecycle serve``)."""
    return add_serve_arguments(argparse.ArgumentParser(prog="python -m lifecycle.serving",
                                                       description="Run one model server."))


def serve_command(args: argparse.Namespace) -> int:
    """The ``lifecycle serve rest|grpc`` command (see :mod:`lifecycle.cli`): load, then serve until Ctrl-C.

    The model is loaded before the server starts, so a missing champion fails at once with the fix. It
    is read from ``--model-export`` (no MLflow in the server); without one the version ``--model``
    names is exported first (:func:`~lifecycle.tracking.export.export_served_model`, through MLflow).
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
    writer = _open_prediction_log(args) if kind == "rest" and workers == 1 else None  # fail in a moment
    uri, folder = _model_export(args)
    if kind == "grpc" and workers > 1:
        return _run_grpc_workers(args, workers, uri, folder)
    if kind == "rest" and workers > 1:
        return _run_rest_workers(args, host, port, workers, predictor, uri, folder)
    from lifecycle.tracking.export import load_exported_model

    served = load_exported_model(folder, uri)
    where = f"{host}:{port}" if kind == "grpc" else f"http://{host}:{port}"
    print(f"serving {served.uri} (version {served.version}) over {kind} on {where}; Ctrl-C stops", flush=True)
    if kind == "grpc":
        from lifecycle.serving.grpc_service import run_grpc

        run_grpc(served, host, port, predictor=predictor, micro_batching=micro_batching)
        return 0
    from lifecycle.serving.rest import create_app, prepare_server_process

    app = create_app(served, predictor=predictor, micro_batching=micro_batching, on_prediction=writer)
    prepare_server_process()
    return run_uvicorn(app, host, port)


def _model_export(args: argparse.Namespace) -> tuple[str, str]:
    """``(uri, export folder)`` of what to serve: ``--model`` (default: the champion) and ``--model-export``,
    exported now when not given (the only case in which a server imports MLflow)."""
    from lifecycle.tracking.export import export_served_model, served_uri

    uri = served_uri(getattr(args, "model", None))
    return uri, str(getattr(args, "model_export", None) or export_served_model(uri))


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
    """Where a REST server logs its predictions: ``--prediction-log PATH``; by default
    ``$LIFECYCLE_PREDICTION_LOG``, else ``workspace/predictions.sqlite``; ``off``: nowhere."""
    given = getattr(args, "prediction_log", PREDICTION_LOG_DEFAULT) or PREDICTION_LOG_DEFAULT
    if given == PREDICTION_LOG_OFF:
        return None
    from lifecycle.serving.prediction_log import DEFAULT_FILE_NAME, PREDICTION_LOG_ENV

    if given != PREDICTION_LOG_DEFAULT:
        return Path(given)
    if os.environ.get(PREDICTION_LOG_ENV):
        return Path(os.environ[PREDICTION_LOG_ENV])
    from lifecycle.config import load_settings

    return load_settings().workspace / DEFAULT_FILE_NAME


def _constant_app() -> Any:
    from lifecycle.serving.rest import create_constant_app

    return create_constant_app()


def run_uvicorn(app: Any, host: str, port: int, **options: Any) -> int:
    import uvicorn

    # Access logs cost ~10% of a small request here; the benchmark compares servers without them.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, **options)
    return 0


def _run_rest_workers(args: argparse.Namespace, host: str, port: int, workers: int, predictor: str, uri: str,
                      folder: str) -> int:
    from lifecycle.serving.rest import MODEL_EXPORT_ENV, MODEL_URI_ENV, PREDICTOR_ENV

    os.environ[MODEL_URI_ENV], os.environ[MODEL_EXPORT_ENV] = uri, folder
    os.environ[PREDICTOR_ENV] = predictor
    log_path = _prediction_log_path(args)
    if log_path is not None:  # each worker appends to the same file (SQLite WAL serialises the writers)
        from lifecycle.serving.prediction_log import PREDICTION_LOG_ENV, check_log_path

        os.environ[PREDICTION_LOG_ENV] = str(check_log_path(log_path))  # fail here, not in every worker
    print(f"serving {args.model or 'the champion'} over rest on http://{host}:{port} with {workers} workers",
          flush=True)
    return run_uvicorn("lifecycle.serving.rest:app_from_environment", host, port, factory=True, workers=workers)


def _run_grpc_workers(args: argparse.Namespace, workers: int, uri: str, folder: str) -> int:
    """Several gRPC processes on one port (SO_REUSEPORT): the kernel spreads connections over them."""
    command = [sys.executable, "-m", "lifecycle.serving", "grpc", "--host", args.host,
               "--port", str(args.port or DEFAULT_PORTS["grpc"]), "--workers", "1",
               "--predictor", getattr(args, "predictor", "auto")]
    command += ["--model", uri, "--model-export", folder]  # exported once, read by every worker
    command += ["--no-micro-batching"] if getattr(args, "no_micro_batching", False) else []
    children = [subprocess.Popen(command) for _ in range(workers)]

    def forward(sig: int, _frame: Any) -> None:
        for child in children:
            child.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lifecycle.serving``."""
    from lifecycle.errors import LifecycleError

    args = build_parser().parse_args(argv)
    try:
        return serve_command(args)
    except LifecycleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
