"""The gRPC server: the REST server's operations over HTTP/2 and protocol buffers.

``FraudDetector.Predict``, ``PredictBatch`` and ``GetMetadata`` (see ``lifecycle/proto/fraud.proto``),
plus the standard ``grpc.health.v1.Health`` service: NOT_SERVING while the model loads, SERVING
once it can answer. Requests are validated by the same pydantic models as REST, so a bad field
gets ``INVALID_ARGUMENT`` with the same field-level messages the REST server puts in its 422,
and a message over the size limit gets ``RESOURCE_EXHAUSTED`` (REST's 413).

It is grpcio's thread-pool server: grpc's C core reads and writes HTTP/2 in its own threads,
outside Python's GIL, and a few Python threads run the handlers. Measured here it answered about
twice the calls of grpcio's asyncio server for less CPU a call. Handlers share one
:class:`~lifecycle.serving.scorer.FraudScorer`, whose per-user state sits behind a lock. Like the REST
server, it micro-batches by default: handlers that score at the same moment share one predict call
(:class:`~lifecycle.serving.predictor.ThreadMicroBatcher`), so the two servers compare like with like.

:func:`create_constant_grpc_server` is the same server answering a constant: gRPC's own floor on a
machine, what lesson 05 measures the real server against.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import json
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic import ValidationError

from lifecycle.proto import fraud_pb2, fraud_pb2_grpc
from lifecycle.serving.predictor import BatchedPredictor
from lifecycle.serving.schema import (
    MAX_BATCH_BODY_BYTES,
    MAX_BATCH_ROWS,
    Transaction,
    TransactionBatch,
    validation_errors,
)
from lifecycle.serving.scorer import FraudScorer, PredictionSink

HANDLER_THREADS = 4  # measured here: 4 beat 1 and 8
SERVICE_NAME = fraud_pb2.DESCRIPTOR.services_by_name["FraudDetector"].full_name
_FIELDS = [f.name for f in fraud_pb2.Transaction.DESCRIPTOR.fields]


def transaction_from_message(message: Any) -> dict[str, Any]:
    """Validate a ``Transaction`` message by the REST rules; a field that was not set is missing.

    Raises:
        ValidationError: with field-level errors.
    """
    return dict(Transaction.model_validate(_set_fields(message)))


def transactions_from_batch(messages: Any) -> list[dict[str, Any]]:
    """Validate a batch's messages in one pydantic call (as REST validates its JSON batch).

    Raises:
        ValidationError: with field-level errors located ``["transactions", index, field]``.
    """
    batch = TransactionBatch.model_validate({"transactions": [_set_fields(message) for message in messages]})
    return [transaction.__dict__.copy() for transaction in batch.transactions]


def _set_fields(message: Any) -> dict[str, Any]:
    """The fields the client set (an unset optional field is missing, not "" or 0.0). Measured here,
    getattr with HasField per field is cheaper than ``ListFields()``."""
    return {name: getattr(message, name) for name in _FIELDS if message.HasField(name)}


class FraudDetectorService(fraud_pb2_grpc.FraudDetectorServicer):
    """The servicer: answers UNAVAILABLE until :attr:`scorer` is set, then scores."""

    def __init__(self) -> None:
        self.scorer: FraudScorer | None = None
        self.load_error: str | None = None

    def _scorer_or_abort(self, context: grpc.ServicerContext) -> FraudScorer:
        if self.scorer is None:
            reason = f"model failed to load: {self.load_error}" if self.load_error else "model is still loading"
            context.abort(grpc.StatusCode.UNAVAILABLE, reason)
        return self.scorer

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (gRPC's name)
        scorer = self._scorer_or_abort(context)
        try:
            transaction = transaction_from_message(request)
        except ValidationError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _describe(validation_errors(err)))
        return _prediction(scorer.score_now(transaction))

    def PredictBatch(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        scorer = self._scorer_or_abort(context)
        if not 1 <= len(request.transactions) <= MAX_BATCH_ROWS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"a batch holds 1 to {MAX_BATCH_ROWS} transactions, got {len(request.transactions)}")
        try:
            transactions = transactions_from_batch(request.transactions)
        except ValidationError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _describe(validation_errors(err)))
        answers = scorer.score_many(transactions)
        return fraud_pb2.PredictionBatch(predictions=[_prediction(a) for a in answers],
                                         model_name=scorer.served.name, model_version=str(scorer.served.version))

    def GetMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        scorer = self._scorer_or_abort(context)
        batched = isinstance(scorer.predictor, BatchedPredictor)
        return fraud_pb2.ModelMetadata(**{**scorer.metadata(), "micro_batching": batched})


def _prediction(answer: dict[str, Any]) -> Any:
    return fraud_pb2.Prediction(**{**answer, "transaction_id": answer["transaction_id"] or ""})


def _describe(errors: list[dict[str, Any]]) -> str:
    """Field errors as JSON text: the same ``loc``/``msg``/``type`` items REST returns under ``detail``."""
    return "invalid transaction: " + json.dumps(errors)


def _new_server(threads: int) -> grpc.Server:
    """grpcio's thread-pool server with the kit's options (shared by the real and the constant server)."""
    options = [("grpc.max_receive_message_length", MAX_BATCH_BODY_BYTES), ("grpc.so_reuseport", 1)]
    return grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc-handler"),
                       options=options)


def create_grpc_server(served: Any | Callable[[], Any], host: str = "127.0.0.1", port: int = 50051,
                       predictor: str = "auto", on_prediction: PredictionSink | None = None,
                       threads: int = HANDLER_THREADS, micro_batching: bool = True) -> tuple[grpc.Server, int]:
    """Build and start the gRPC server.

    Args:
        served: a ``ServedModel`` or a function returning one (then loaded in a background thread
            while the health service says NOT_SERVING and calls get UNAVAILABLE).
        host: address to bind (127.0.0.1 unless you mean to expose it).
        port: port to bind (0: any free port).
        predictor: ``auto``, ``compiled`` or ``sklearn`` (see :func:`~lifecycle.serving.predictor.compile_predictor`).
        on_prediction: optional sink given the records of every answered call.
        threads: Python threads running handlers.
        micro_batching: handlers scoring at the same moment share one predict call (as REST's do).

    Returns:
        The started ``grpc.Server`` (stop it with ``.stop(grace)``) and the port it is bound to.
    """
    server = _new_server(threads)
    service = FraudDetectorService()
    fraud_pb2_grpc.add_FraudDetectorServicer_to_server(service, server)
    health_service = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_service, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    for name in ("", SERVICE_NAME):
        health_service.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def load() -> None:
        try:
            model = served() if callable(served) else served
            # The scorer's own batcher lives on an event loop; handler threads share a thread batcher,
            # put in front of the scorer's predictor (its public attribute) for one-row calls.
            scorer = FraudScorer(model, predictor=predictor, micro_batching=False, on_prediction=on_prediction)
            if micro_batching:
                scorer.predictor = BatchedPredictor(scorer.predictor)
            service.scorer = scorer
        except Exception as err:  # reported to every caller as UNAVAILABLE with the reason
            service.load_error = f"{type(err).__name__}: {err}"
            traceback.print_exc()
            return
        for name in ("", SERVICE_NAME):
            health_service.set(name, health_pb2.HealthCheckResponse.SERVING)

    if callable(served):
        threading.Thread(target=load, name="model-loader", daemon=True).start()
    else:
        load()
    server.start()
    return server, bound


class ConstantFraudDetector(fraud_pb2_grpc.FraudDetectorServicer):
    """Answers every call with the same prediction (the request is parsed, then ignored)."""

    ANSWER = fraud_pb2.Prediction(transaction_id="t-0001", fraud_probability=0.0123, is_fraud=False,
                                  threshold=0.5, model_name="constant", model_version="1")

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (gRPC's name)
        return self.ANSWER

    def PredictBatch(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return fraud_pb2.PredictionBatch(predictions=[self.ANSWER] * len(request.transactions),
                                         model_name="constant", model_version="1")


def create_constant_grpc_server(host: str = "127.0.0.1", port: int = 0,
                                threads: int = HANDLER_THREADS) -> tuple[grpc.Server, int]:
    """The gRPC server as :func:`create_grpc_server` builds it (same options, same handler threads,
    health service), answering a constant: what gRPC alone costs on this machine. Returns the started
    server and its port."""
    server = _new_server(threads)
    fraud_pb2_grpc.add_FraudDetectorServicer_to_server(ConstantFraudDetector(), server)
    health_service = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_service, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound


def run_grpc(served: Any | Callable[[], Any] | None, host: str = "127.0.0.1", port: int = 50051,
             predictor: str = "auto", threads: int = HANDLER_THREADS, micro_batching: bool = True) -> None:
    """Run the gRPC server in the foreground until SIGINT or SIGTERM (then a 2-second grace);
    ``served=None`` runs :func:`create_constant_grpc_server` instead."""
    if served is None:
        server, _ = create_constant_grpc_server(host, port, threads=threads)
    else:
        server, _ = create_grpc_server(served, host, port, predictor=predictor, threads=threads,
                                       micro_batching=micro_batching)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2.0).wait()
