"""The tutorial's model server, kept as written, to measure against (do not copy it).

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
                                     description="Run the tutorial's model server, to measure against.")
    parser.add_argument("--model", default=None, help="registry URI (default: models:/<name>@champion)")
    parser.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (default 8001)")
    args = parser.parse_args(argv)
    served = load_served_model(args.model)
    print(f"serving {served.uri} (version {served.version}) the tutorial's way on http://127.0.0.1:{args.port}",
          flush=True)
    return run_uvicorn(create_tutorial_app(served.model), "127.0.0.1", args.port)


if __name__ == "__main__":
    sys.exit(main())
