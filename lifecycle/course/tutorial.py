"""The servers lesson 05 measures the kit's against: the tutorial's, kept as written (do not copy
it), and each framework's constant answer (its floor on this machine).

What is wrong with it, and where lesson 05 shows the fix:

* it takes any ``dict`` and feeds ``list(features.values())`` to the model: the values go in
  the order the client happened to write the keys, so a client that sends them in another
  order gets a silently wrong answer (our server validates named, typed fields and builds the
  row in the model's own column order);
* the client must compute the features itself, so training and serving can disagree (ours
  computes them with :mod:`lifecycle.features`, the code training used);
* it returns a class, not a probability, and no model version;
* the endpoint is a plain ``def`` calling scikit-learn on one row per request: each call pays
  scikit-learn's per-call cost, in a thread pool, with OpenMP threads per call fighting over
  the cores.

It runs as its own process (``python -m lifecycle.course.tutorial``, started by
:func:`start_tutorial_server`), like the tutorial's ``uvicorn`` command, beside the kit's servers.

The constant servers (:func:`start_constant_server`, ``python -m lifecycle.course.tutorial --constant
rest|grpc``) are the kit's REST and gRPC stacks with the model taken out: the same app, middleware and
kind of route for REST (:func:`create_constant_rest_app`), the same server options and handler
threads for gRPC (:func:`lifecycle.serving.grpc_service.create_constant_grpc_server`), each answering a
prediction-shaped constant. What a framework costs alone is then measured, not assumed, and each
server is judged against its own framework's floor.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fastapi import FastAPI


def create_tutorial_app(model: Any) -> FastAPI:
    """The tutorial's FastAPI server around a fitted scikit-learn model."""
    app = FastAPI()

    @app.post("/predict")
    def predict(features: dict):
        prediction = model.predict([list(features.values())])
        return {"prediction": int(prediction[0])}

    # Not in the tutorial: lets the benchmark see when the server is up. The predict path is untouched.
    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


# A prediction as the kit's servers answer it, so that the constant's response is the same size.
CONSTANT_ANSWER = {"transaction_id": "t-0001", "fraud_probability": 0.0123, "is_fraud": False, "threshold": 0.5,
                   "model_name": "constant", "model_version": "1"}


def create_constant_rest_app() -> FastAPI:
    """The REST server's stack answering a constant: a FastAPI app with the same body-size middleware,
    and ``POST /predict`` as the same kind of plain Starlette route as the kit's (it reads the body, as
    the real route does, then answers the constant without looking at it)."""
    import json

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from lifecycle.serving.rest import BodySizeLimit
    from lifecycle.serving.schema import MAX_SINGLE_BODY_BYTES

    answer = json.dumps(CONSTANT_ANSWER).encode()

    async def predict(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    app = FastAPI(title="Constant")
    app.add_middleware(BodySizeLimit, limits={}, default=MAX_SINGLE_BODY_BYTES)
    app.router.routes.insert(0, Route("/predict", predict, methods=["POST"]))

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def start_constant_server(kind: str, settings: Any = None, wait: bool = True, timeout: float = 120.0) -> Any:
    """Start the constant ``rest`` or ``grpc`` server on a free 127.0.0.1 port (``OMP_NUM_THREADS=1``,
    like the kit's servers).

    Returns:
        The :class:`~lifecycle.serving.process.ServerHandle` (kind ``grpc`` for gRPC, so that readiness
        is asked of its health service; ``constant`` for REST).

    Raises:
        ConfigError: a kind other than ``rest`` or ``grpc``.
    """
    from lifecycle._proc import free_port
    from lifecycle.errors import ConfigError
    from lifecycle.serving.process import launch_server

    if kind not in ("rest", "grpc"):
        raise ConfigError(f"unknown constant server {kind!r}; choose rest or grpc")
    port = free_port()
    args = [sys.executable, "-m", "lifecycle.course.tutorial", "--constant", kind, "--port", str(port)]
    return launch_server(args, "grpc" if kind == "grpc" else "constant", "127.0.0.1", port, settings=settings,
                         env={"OMP_NUM_THREADS": "1"}, timeout=timeout, wait=wait)


def start_tutorial_server(model_uri: str | None = None, settings: Any = None, env: dict[str, str] | None = None,
                          wait: bool = True, timeout: float = 120.0) -> Any:
    """Start the tutorial's server on a reserved 127.0.0.1 port, serving the registry's model, as a
    managed process (see :func:`lifecycle.serving.process.launch_server`).

    As the tutorial runs it: with the libraries' default thread pools (``OMP_NUM_THREADS`` unset),
    unless ``env`` sets it.

    Returns:
        The :class:`~lifecycle.serving.process.ServerHandle`.
    """
    from lifecycle._proc import ReservedPort
    from lifecycle.serving.process import launch_server

    reserved = ReservedPort()
    args = [sys.executable, "-m", "lifecycle.course.tutorial", "--port", str(reserved.port)]
    args += ["--model", model_uri] if model_uri else []
    return launch_server(args, "tutorial", "127.0.0.1", reserved.port, settings=settings,
                         env={"OMP_NUM_THREADS": "", **(env or {})}, timeout=timeout, wait=wait, reserved=reserved)


def main(argv: list[str] | None = None) -> int:
    """``python -m lifecycle.course.tutorial``: serve the registry's model the tutorial's way."""
    from lifecycle.serving.command import run_uvicorn
    from lifecycle.tracking.registry import load_served_model

    parser = argparse.ArgumentParser(prog="python -m lifecycle.course.tutorial",
                                     description="Run the tutorial's model server (or a constant one), to measure "
                                                 "against.")
    parser.add_argument("--model", default=None, help="registry URI (default: models:/<name>@champion)")
    parser.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (default 8001)")
    parser.add_argument("--constant", choices=("rest", "grpc"), default=None,
                        help="serve a constant answer over this framework instead of the tutorial's server")
    args = parser.parse_args(argv)
    if args.constant == "grpc":
        from lifecycle.serving.grpc_service import run_grpc

        run_grpc(None, "127.0.0.1", args.port)
        return 0
    if args.constant == "rest":
        return run_uvicorn(create_constant_rest_app(), "127.0.0.1", args.port)
    served = load_served_model(args.model)
    print(f"serving {served.uri} (version {served.version}) the tutorial's way on http://127.0.0.1:{args.port}",
          flush=True)
    return run_uvicorn(create_tutorial_app(served.model), "127.0.0.1", args.port)


if __name__ == "__main__":
    sys.exit(main())
