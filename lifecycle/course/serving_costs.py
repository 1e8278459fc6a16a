"""Where the time and the bytes of a prediction go, measured inside one process (lesson 05).

* :func:`time_stages`: CPU microseconds per transaction of each step a server performs (parse and
  validate, features from per-user state, the model call one row at a time and in batches);
* :func:`time_batch_decoding`: what turning one batch request into validated transactions costs, per
  protocol;
* :func:`wire_bytes`: what one transaction of a batch weighs as JSON and as protobuf.

CPU time, not wall-clock time: it stays put when other programs compete for the cores.

Taught in notebooks/05_serving.ipynb; part of the serving benchmark (:mod:`lifecycle.course.serving_bench`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.serving.schema import request_bodies


def time_stages(served: Any, transactions: pd.DataFrame, rows: int = 1_000) -> dict[str, float]:
    """CPU microseconds per transaction of each step of a prediction, measured in this process.

    CPU time, not wall-clock time: it stays put when other programs compete for the cores.

    Returns:
        Step name → microseconds per transaction.
    """
    from threadpoolctl import threadpool_limits

    from lifecycle.features import FEATURE_COLUMNS, FeatureState
    from lifecycle.serving.predictor import compile_predictor, model_feature_order
    from lifecycle.serving.schema import Transaction

    bodies = [json.dumps(body).encode() for body in request_bodies(transactions.iloc[:rows])]
    clock = time.process_time()
    parsed = [dict(Transaction.model_validate_json(body)) for body in bodies]
    stages = {"parse + validate request": _per(clock, len(bodies))}
    state = FeatureState().fit(served.history)
    columns = model_feature_order(served.model, FEATURE_COLUMNS)
    clock = time.process_time()
    features = [state.score_and_update(txn) for txn in parsed]
    stages["features from per-user state"] = _per(clock, len(parsed))
    matrix = np.asarray([[row[name] for name in columns] for row in features], dtype=np.float64)
    with threadpool_limits(limits=1):  # as in a server worker (OMP_NUM_THREADS=1)
        sklearn, served_predictor = compile_predictor(served.model, "sklearn"), compile_predictor(served.model)
        for label, predictor in (("model: scikit-learn", sklearn), (f"model: served ({served_predictor.name})",
                                                                    served_predictor)):
            predictor.predict_proba(matrix[:300])  # the first calls pay one-time set-up
            clock, calls = time.process_time(), 0
            # Up to 200 one-row calls, or a quarter of a CPU second (a slow model's call takes milliseconds).
            while calls < min(200, len(matrix)) and (calls < 10 or time.process_time() - clock < 0.25):
                predictor.predict_proba(matrix[calls:calls + 1])
                calls += 1
            stages[f"{label}, 1 row a call"] = _per(clock, calls)
            clock = time.process_time()
            for start in range(0, len(matrix), 16):
                predictor.predict_proba(matrix[start:start + 16])
            stages[f"{label}, 16 rows a call"] = _per(clock, len(matrix))
        clock = time.process_time()
        served_predictor.predict_proba(matrix)  # what one batch request's predict call does
        stages[f"model: served ({served_predictor.name}), {len(matrix):,} rows a call"] = _per(clock, len(matrix))
    return stages


def time_batch_decoding(payloads: dict[str, list], repeats: int = 5) -> dict[str, float]:
    """CPU microseconds per transaction to turn one batch request's body into validated transactions,
    over REST (pydantic-core parses and validates the JSON bytes in one call) and over gRPC (protobuf
    parses the bytes; the messages are read field by field into the same pydantic validation)."""
    from lifecycle.proto import fraud_pb2
    from lifecycle.serving.grpc_service import transactions_from_batch
    from lifecycle.serving.schema import TransactionBatch

    body, raw = payloads["json_batch"][0], payloads["grpc_batch"][0].SerializeToString()
    rows = len(payloads["grpc_batch"][0].transactions)
    clock = time.process_time()
    for _ in range(repeats):
        [transaction.__dict__.copy() for transaction in TransactionBatch.model_validate_json(body).transactions]
    stages = {"REST: JSON bytes → validated transactions": _per(clock, repeats * rows)}
    clock = time.process_time()
    for _ in range(repeats):
        messages = fraud_pb2.TransactionBatch.FromString(raw).transactions
    stages["gRPC: protobuf bytes → messages"] = _per(clock, repeats * rows)
    clock = time.process_time()
    for _ in range(repeats):
        transactions_from_batch(messages)
    stages["gRPC: messages → validated transactions"] = _per(clock, repeats * rows)
    return stages


def _per(clock: float, count: int) -> float:
    return round((time.process_time() - clock) / max(count, 1) * 1e6, 2)


def wire_bytes(payloads: dict[str, list], servers: dict[str, Any] | None = None) -> dict[str, float]:
    """Bytes per transaction of a batch, as JSON and as protobuf: the request body, and (when the
    servers are given) the answer's body. HTTP headers and HTTP/2 frames are left out: per batch
    they are a few hundred bytes, spread over every row."""
    import urllib.request

    rows = len(payloads["grpc_batch"][0].transactions)
    sizes = {"json_request": len(payloads["json_batch"][0]) / rows,
             "protobuf_request": payloads["grpc_batch"][0].ByteSize() / rows}
    if servers and "rest" in servers:
        request = urllib.request.Request(f"{servers['rest'].url}/predict/batch", data=payloads["json_batch"][0],
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            sizes["json_response"] = len(answer.read()) / rows
    if servers and "grpc" in servers:
        import grpc

        from lifecycle.proto import fraud_pb2_grpc

        with grpc.insecure_channel(servers["grpc"].url) as channel:
            answer = fraud_pb2_grpc.FraudDetectorStub(channel).PredictBatch(payloads["grpc_batch"][0], timeout=30)
        sizes["protobuf_response"] = answer.ByteSize() / rows
    return {name: round(value, 1) for name, value in sizes.items()}
