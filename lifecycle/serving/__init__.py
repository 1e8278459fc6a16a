"""Serving the fraud model over REST and gRPC, fast, with the same answers as training.

Where the time of one prediction goes, and how this package wins it back:

* the model call: scikit-learn spends about a millisecond per ``predict_proba`` call on one row;
  :mod:`~lifecycle.serving.predictor` serves the same trees through Treelite (tens of
  microseconds, same probabilities) and micro-batches concurrent requests into one call;
* the web stack: ``async def`` endpoints on one event loop (no thread-pool hop), one
  ``OMP_NUM_THREADS=1`` process per core;
* features: computed in the server from per-user state with :mod:`lifecycle.features`, the
  code training used, so a client cannot send them wrong or in the wrong order.

Modules: :mod:`~lifecycle.serving.schema` (the typed request), :mod:`~lifecycle.serving.scorer`
(features → predictor → decision), :mod:`~lifecycle.serving.rest` (FastAPI app),
:mod:`~lifecycle.serving.grpc_service` (gRPC service and health), :mod:`~lifecycle.serving.process`
(model servers as managed processes), :mod:`~lifecycle.serving.command` (``lifecycle serve``, what those
processes run), :mod:`~lifecycle.serving.loadgen` (bounded load on 127.0.0.1),
:mod:`~lifecycle.serving.prediction_log` (every answered prediction, for monitoring). The course measures
these servers against the tutorial's (:mod:`lifecycle.course.serving_bench`).

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it; imported on first use so `import lifecycle.serving` stays light.
_EXPORTS = {
    "Transaction": "lifecycle.serving.schema",
    "TransactionBatch": "lifecycle.serving.schema",
    "Prediction": "lifecycle.serving.schema",
    "FraudScorer": "lifecycle.serving.scorer",
    "PredictionRecord": "lifecycle.serving.scorer",
    "compile_predictor": "lifecycle.serving.predictor",
    "model_feature_order": "lifecycle.serving.predictor",
    "MicroBatcher": "lifecycle.serving.predictor",
    "create_app": "lifecycle.serving.rest",
    "create_constant_app": "lifecycle.serving.rest",
    "create_grpc_server": "lifecycle.serving.grpc_service",
    "start_server": "lifecycle.serving.process",
    "ServerHandle": "lifecycle.serving.process",
    "wait_until_ready": "lifecycle.serving.process",
    "run_http_load": "lifecycle.serving.loadgen",
    "run_grpc_load": "lifecycle.serving.loadgen",
    "request_bodies": "lifecycle.serving.schema",
    "PredictionLog": "lifecycle.serving.prediction_log",
    "PredictionLogWriter": "lifecycle.serving.log_writer",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.serving", _EXPORTS, globals())
