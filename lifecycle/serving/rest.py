"""The REST server: a FastAPI app that serves a registered fraud model.

    POST /predict         one typed transaction  → probability, decision, model name/version
    POST /predict/batch   up to 5,000 at once    → one answer each, in order
    GET  /health          the process is alive
    GET  /ready           the model is loaded and the prediction log can be written (503 and
                          the reason otherwise): route traffic only when 200
    GET  /metadata        what is served, and how

Bad input is answered 422 with one message per bad field (FastAPI's ``detail`` list), a body
over the limit 413, never 500. With a prediction log (a
:class:`~lifecycle.serving.log_writer.PredictionLogWriter`), a 200 means the request's predictions
are committed to the log; a log that cannot take them (behind, locked, full) gets the request a
503 with ``Retry-After``, never an unlogged 200. Every status the scoring routes answer is in the
OpenAPI document (``/openapi.json``), with every constraint the schema enforces.

Endpoints are ``async def``: they run on the event loop, with no hop to a thread pool (which
costs more than the model does here), and the per-user feature state is only touched there
(see :mod:`lifecycle.serving.scorer`).

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route

from lifecycle.serving._body_limit import BodySizeLimit
from lifecycle.serving._http import json_request_body, json_response, parse_body, scoring_responses, validation_failed
from lifecycle.serving.schema import (
    MAX_BATCH_BODY_BYTES,
    MAX_SINGLE_BODY_BYTES,
    BatchPrediction,
    ModelMetadata,
    Prediction,
    Transaction,
    TransactionBatch,
)
from lifecycle.serving.scorer import FraudScorer, PredictionSink

MODEL_URI_ENV = "LIFECYCLE_SERVE_MODEL_URI"
MODEL_EXPORT_ENV = "LIFECYCLE_SERVE_MODEL_EXPORT"  # its local export (lifecycle.tracking.export_served_model)
PREDICTOR_ENV = "LIFECYCLE_SERVE_PREDICTOR"
PREDICTION_LOG_ENV = "LIFECYCLE_PREDICTION_LOG"  # the same name as lifecycle.serving.prediction_log's


RETRY_AFTER_SECONDS = 1


class _ModelSlot:
    """Holds the scorer once the model is loaded; remembers why loading failed if it did."""

    def __init__(self) -> None:
        self.scorer: FraudScorer | None = None
        self.error: str | None = None

    def not_ready(self) -> JSONResponse:
        status = "failed" if self.error else "loading"
        return JSONResponse({"status": status, "error": self.error}, status_code=503)

    def cannot_score(self) -> JSONResponse:
        """A scoring route's 503 while the model is not in (the same ``detail`` shape as its other errors)."""
        why = f"the model failed to load: {self.error}" if self.error else "the model is still loading"
        return _unavailable(why)


def _unavailable(detail: str, retry_after: int = RETRY_AFTER_SECONDS) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(retry_after)})


def create_app(served: Any | Callable[[], Any], predictor: str = "auto", micro_batching: bool = True,
               on_prediction: PredictionSink | None = None) -> FastAPI:
    """Build the REST app for a served model.

    Args:
        served: a ``ServedModel`` (see ``lifecycle.tracking.load_served_model``), or a function
            returning one: the app then starts at once and loads in the background, answering
            ``/ready`` and ``/predict`` with 503 until the model is in.
        predictor: ``auto``, ``compiled`` or ``sklearn`` (see :func:`~lifecycle.serving.predictor.compile_predictor`).
        micro_batching: gather concurrent ``/predict`` requests into one predict call.
        on_prediction: optional sink given the records of every answered request. A
            :class:`~lifecycle.serving.log_writer.PredictionLogWriter` (lesson 07) is awaited: the
            answer waits for the commit, and a log that cannot take the rows gets the request a 503.

    Returns:
        The FastAPI application (run it with uvicorn, or :func:`lifecycle.serving.start_server`).
    """
    slot = _ModelSlot()
    log = on_prediction if hasattr(on_prediction, "write_through") else None
    if log is not None:
        from lifecycle.serving.log_writer import PredictionLogUnavailable as log_unavailable
    else:  # nothing can be unavailable, and a server without a log does not pay for the log's imports
        log_unavailable = ()

    def load() -> None:
        model = served() if callable(served) else served
        slot.scorer = FraudScorer(model, predictor=predictor, micro_batching=micro_batching,
                                  on_prediction=on_prediction)

    def load_in_background() -> None:
        try:
            load()
        except Exception as err:  # reported by /ready with the reason; the process stays up to say so
            slot.error = f"{type(err).__name__}: {err}"
            traceback.print_exc()

    if not callable(served):
        load()

    async def lifespan(app: FastAPI):
        if callable(served):
            threading.Thread(target=load_in_background, name="model-loader", daemon=True).start()
        yield
        # A graceful stop ends here, after the last request was answered. It is the last moment to
        # flush the sink: uvicorn then re-raises SIGTERM, which ends the process without `finally`.
        close = getattr(on_prediction, "close", None)
        if close is not None:
            await asyncio.to_thread(close)

    app = FastAPI(title="Fraud detector", version="1", lifespan=lifespan,
                  description="Scores card transactions with a registered fraud model (ML Lifecycle Lab, lesson 05).")

    app.add_middleware(BodySizeLimit, limits={"/predict/batch": MAX_BATCH_BODY_BYTES}, default=MAX_SINGLE_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, validation_failed)

    async def scored(rows: int, score: Callable[[], Any]) -> Response:
        """The answer of a scoring route: after the log's commit when there is a log, 503 when it cannot take it."""
        if log is None:
            answer = score()
            return json_response(await answer if asyncio.iscoroutine(answer) else answer)
        try:
            return json_response(await log.write_through(rows, score))
        except log_unavailable as err:
            return _unavailable(str(err), err.retry_after)

    # The scoring routes are the hot path, so they do less than FastAPI would: pydantic validates the
    # body's bytes in one call (JSON mode: the same rules and errors as FastAPI's parse-then-validate),
    # and the scorer's answer is written as JSON without being validated a second time.
    async def predict(request: Request) -> Response:
        transaction = parse_body(Transaction, await request.body())
        if slot.scorer is None:
            return slot.cannot_score()
        scorer = slot.scorer
        return await scored(1, lambda: scorer.score(transaction.__dict__.copy()))  # the fields, as a plain dict

    async def predict_batch(request: Request) -> Response:
        batch = parse_body(TransactionBatch, await request.body())
        if slot.scorer is None:
            return slot.cannot_score()
        scorer = slot.scorer

        def score() -> dict[str, Any]:
            predictions = scorer.score_many([transaction.__dict__.copy() for transaction in batch.transactions])
            return {"predictions": predictions, "model_name": scorer.served.name,
                    "model_version": str(scorer.served.version)}

        return await scored(len(batch.transactions), score)

    for path, endpoint, body, answer in (("/predict", predict, Transaction, Prediction),
                                         ("/predict/batch", predict_batch, TransactionBatch, BatchPrediction)):
        # Documented as a FastAPI route (its schemas in /docs and /openapi.json), served by a plain
        # Starlette route placed before it: that skips FastAPI's per-request dependency solving, a
        # fifth of the server's CPU per request here (benchmarks/serving.py). Errors still go through
        # the app's handlers, so a bad body gets the same 422.
        summary = "Score one transaction" if path == "/predict" else "Score many transactions, in order"
        app.post(path, response_model=answer, openapi_extra=json_request_body(body), responses=scoring_responses(path),
                 summary=summary)(endpoint)
        app.router.routes.insert(0, Route(path, endpoint, methods=["POST"]))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready", responses={503: {"description": "the model is not loaded (yet), or the prediction log "
                                                       "cannot be written: `status` and `error` say which"}})
    async def ready() -> Any:
        if slot.scorer is None:
            return slot.not_ready()
        problem = log.problem() if log is not None else None
        if problem is not None:
            return JSONResponse({"status": "log-unavailable", "error": problem}, status_code=503)
        return {"status": "ready", "model_name": slot.scorer.served.name,
                "model_version": str(slot.scorer.served.version)}

    @app.get("/metadata", response_model=ModelMetadata, responses={503: {"description": "model not loaded yet"}})
    async def metadata() -> Any:
        if slot.scorer is None:
            return slot.not_ready()
        return slot.scorer.metadata()

    app.state.model_slot = slot
    return app


def prepare_server_process() -> None:
    """Settings for a long-lived server process, applied once its model is loaded (never called in a
    notebook's kernel: the switch interval changes how every thread there is scheduled; the playgrounds
    freeze a kernel's heap for their own reason, :func:`lifecycle.course.playgrounds._base._settle_heap`).

    * ``gc.freeze()``: everything alive now (the model, the users' feature state, the libraries)
      leaves the garbage collector's view, so its collections walk only what requests create.
      Without it every full collection walks millions of objects, and the objects each logged
      prediction creates trigger collections often enough to cost more than the logging itself.
    * a 1 ms GIL switch interval (Python's default is 5 ms): the prediction log's writer thread
      needs the GIL for a moment at each step of a commit, and every request waits for its commit;
      at 5 ms, each of those moments can wait 5 ms while the event loop scores the next requests.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


def create_constant_app() -> FastAPI:
    """A FastAPI app whose ``/predict`` returns a constant: the framework's own ceiling, for comparison."""
    app = FastAPI(title="Constant")

    @app.post("/predict")
    async def predict() -> dict[str, float]:
        return {"fraud_probability": 0.0}

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def app_from_environment() -> FastAPI:
    """App factory for ``uvicorn --factory`` and multi-worker runs: each worker loads the model named
    by ``LIFECYCLE_SERVE_MODEL_URI`` (empty: the registry's champion) from its local export in
    ``LIFECYCLE_SERVE_MODEL_EXPORT`` (unset: exported now, through MLflow) before it accepts a connection,
    so the shared socket only hands requests to workers that can answer them. With
    ``LIFECYCLE_PREDICTION_LOG`` set, every worker appends its predictions to that file, each with
    its own writer (SQLite's WAL serialises the writers' commits)."""
    from lifecycle.tracking.export import export_served_model, load_exported_model, served_uri

    uri = served_uri(os.environ.get(MODEL_URI_ENV) or None)
    folder = os.environ.get(MODEL_EXPORT_ENV) or export_served_model(uri)
    on_prediction = None
    if os.environ.get(PREDICTION_LOG_ENV):  # lesson 07; the app's shutdown flushes it
        from lifecycle.serving.log_writer import SYNC_ENV, PredictionLogWriter

        on_prediction = PredictionLogWriter(os.environ[PREDICTION_LOG_ENV],
                                            synchronous=os.environ.get(SYNC_ENV, "normal"))
    app = create_app(load_exported_model(folder, uri), predictor=os.environ.get(PREDICTOR_ENV, "auto"),
                     on_prediction=on_prediction)
    prepare_server_process()
    return app
