"""lifecycle.serving: the typed schema, the compiled predictor and micro-batcher, the REST app and
the gRPC service in process, the committed gRPC stubs, and (slow) real server processes loading a
registered model, as a user starts them."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from lifecycle._proc import check_loopback
from lifecycle.config import load_settings
from lifecycle.course.serving_report import summarise
from lifecycle.data import generate_transactions
from lifecycle.errors import ConfigError
from lifecycle.features import FEATURE_COLUMNS, build_features, split_by_time
from lifecycle.proto import STUBS, describe_proto, fraud_pb2, fraud_pb2_grpc, generate_stubs
from lifecycle.serving.predictor import BatchedPredictor, MicroBatcher, ThreadMicroBatcher, compile_predictor
from lifecycle.serving.rest import create_app
from lifecycle.serving.schema import Transaction, request_bodies
from lifecycle.serving.scorer import FraudScorer
from lifecycle.tracking import ServedModel
from lifecycle.training import train_fraud_model

SUM_DERIVED = ["user_amount_mean", "user_amount_std", "amount_vs_user_avg", "amount_zscore"]
GOOD = {"transaction_id": "t-1", "user_id": "u00042", "timestamp": "2026-01-28T08:15:00", "amount": 42.5,
        "merchant_category": "grocery", "channel": "chip", "device": "terminal", "country": "US"}


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """As in a server worker: one OpenMP thread per predict call (2 shared cores otherwise thrash)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def windows():
    train, test = split_by_time(generate_transactions(12_000, seed=11, users=1_000), 0.25)
    return train, test


@pytest.fixture(scope="module")
def served(windows) -> ServedModel:
    """The course's default model (HGB) as lesson 03's registry would hand it to a server."""
    train, test = windows
    trained = train_fraud_model(train, test, "hgb", seed=11)
    return ServedModel(trained.model, trained.threshold, "fraud-detector", "7", "models:/fraud-detector@champion",
                       train)


@pytest.fixture(scope="module")
def later(windows):
    """Transactions after the training window, as JSON-ready request bodies."""
    return request_bodies(windows[1])


def test_schema_rejects_what_lax_parsing_would_let_through():
    with pytest.raises(ValidationError) as err:
        Transaction.model_validate({**GOOD, "amount": "12.5", "channel": "fax", "tip": 1})
    problems = {e["loc"][0]: e["type"] for e in err.value.errors()}
    assert problems == {"amount": "float_type", "channel": "literal_error", "tip": "extra_forbidden"}
    with pytest.raises(ValidationError, match="ISO-8601 text"):
        Transaction.model_validate({**GOOD, "timestamp": 1_769_588_100})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Transaction.model_validate({**GOOD, "amount": -1})
    accepted = Transaction.model_validate({**GOOD, "amount": 42, "timestamp": "2026-01-28T09:15:00+01:00"})
    assert accepted.amount == 42.0 and accepted.timestamp == datetime(2026, 1, 28, 8, 15)  # naive UTC


def test_compiled_predictor_gives_scikit_learns_probabilities(served, windows):
    features = build_features(windows[1], history=windows[0]).to_numpy()
    assert len(features) >= 2_000
    expected = served.model.predict_proba(build_features(windows[1], history=windows[0]))[:, 1]
    compiled = compile_predictor(served.model)
    assert compiled.name == "compiled"
    one_by_one = np.concatenate([compiled.predict_proba(features[i:i + 1]) for i in range(500)])
    in_sixteens = np.concatenate([compiled.predict_proba(features[i:i + 16]) for i in range(0, len(features), 16)])
    at_once = compiled.predict_proba(features)  # large batches go through scikit-learn's own loop
    assert np.abs(one_by_one - expected[:500]).max() < 1e-6
    assert np.abs(in_sixteens - expected).max() < 1e-6
    assert np.abs(at_once - expected).max() < 1e-6


def test_compiled_random_forest_rounds_inputs_like_scikit_learn(windows):
    # Lesson 03 may promote a random forest; its trees compare float32 values.
    from lifecycle.training import make_model

    train, later = windows
    model = make_model("random_forest", 42, n_estimators=60)
    model.fit(build_features(train), train["is_fraud"])
    features = build_features(later, history=train)
    expected = model.predict_proba(features)[:, 1]
    compiled = compile_predictor(model)
    rows = features.to_numpy()
    in_sixteens = np.concatenate([compiled.predict_proba(rows[i:i + 16]) for i in range(0, len(rows), 16)])
    assert np.abs(in_sixteens - expected).max() < 1e-6


def test_compile_predictor_refuses_what_it_cannot_compile():
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    assert compile_predictor(model).name == "sklearn"  # auto falls back
    with pytest.raises(ConfigError, match="needs a tree ensemble.*got LogisticRegression"):
        compile_predictor(model, "compiled")
    with pytest.raises(ConfigError, match="unknown predictor 'onnx'"):
        compile_predictor(model, "onnx")


def test_micro_batcher_shares_one_call_among_concurrent_rows_with_the_same_answers(served, windows):
    rows = build_features(windows[1].iloc[:40], history=windows[0]).to_numpy()
    predictor = compile_predictor(served.model)
    batcher = MicroBatcher(predictor.predict_proba, max_rows=64)

    async def together():
        return await asyncio.gather(*(batcher.submit(list(row)) for row in rows))

    answers = asyncio.run(together())
    assert batcher.batches_ == 1 and batcher.rows_ == 40
    assert answers == [float(predictor.predict_proba(row[None, :])[0]) for row in rows]


def test_scorer_computes_the_features_training_computes(served, windows, later):
    """Train/serve consistency: streaming requests through the server's state gives the rows that
    build_features gives the same transactions (with the training window as history)."""
    scorer = FraudScorer(served, micro_batching=False)
    parsed = [dict(Transaction.model_validate(body)) for body in later[:1_000]]
    served_rows = np.asarray([scorer.features_row(txn)[1] for txn in parsed])
    trained_rows = build_features(windows[1].iloc[:1_000], history=windows[0])[scorer.columns].to_numpy()
    assert scorer.columns == list(served.model.feature_names_in_) == FEATURE_COLUMNS
    # Same bits, except columns from running sums of amounts (pandas' cumsum compensates rounding;
    # see tests/unit/test_features.py): those agree to ~1e-13.
    sum_derived = [FEATURE_COLUMNS.index(c) for c in SUM_DERIVED]
    exact = [i for i in range(len(FEATURE_COLUMNS)) if i not in sum_derived]
    np.testing.assert_array_equal(served_rows[:, exact], trained_rows[:, exact])
    np.testing.assert_allclose(served_rows[:, sum_derived], trained_rows[:, sum_derived], rtol=1e-11, atol=1e-9)
    probabilities = served.model.predict_proba(trained_rows)[:, 1]
    assert np.abs(scorer.predictor.predict_proba(served_rows) - probabilities).max() < 1e-9


@pytest.fixture
def client(served):
    with TestClient(create_app(served)) as test_client:
        yield test_client


def test_predict_answers_probability_decision_and_version(client, served):
    answer = client.post("/predict", json=GOOD)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"transaction_id", "fraud_probability", "is_fraud", "threshold", "model_name",
                         "model_version"}
    assert 0 <= body["fraud_probability"] <= 1 and body["transaction_id"] == "t-1"
    assert body["is_fraud"] == (body["fraud_probability"] >= served.threshold)
    assert (body["model_name"], body["model_version"]) == ("fraud-detector", "7")


def test_key_order_does_not_matter(served):
    """The tutorial's list(features.values()) bug cannot happen: fields are named, rows are built in the
    model's column order."""
    answers = []
    for keys in (list(GOOD), list(reversed(GOOD))):
        with TestClient(create_app(served)) as fresh:
            content = json.dumps({key: GOOD[key] for key in keys})
            answers.append(fresh.post("/predict", content=content, headers={"content-type": "application/json"}).json())
    assert answers[0] == answers[1]


@pytest.mark.parametrize(("change", "field", "kind"), [
    ({"amount": "12.5"}, "amount", "float_type"),
    ({"amount": None}, "amount", "float_type"),
    ({"device": "fax"}, "device", "literal_error"),
    ({"coupon": "x"}, "coupon", "extra_forbidden"),
    ({"timestamp": "yesterday"}, "timestamp", "value_error"),
    ({"timestamp": "1769588100"}, "timestamp", "value_error"),  # a number in a string is no timestamp either
    ({"timestamp": "2026-02-30T08:15:00"}, "timestamp", "value_error"),  # no such day
])
def test_bad_fields_get_422_naming_the_field(client, change, field, kind):
    answer = client.post("/predict", json={**GOOD, **change})
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", field], kind)]


def test_missing_field_and_broken_json_get_422(client):
    missing = client.post("/predict", json={k: v for k, v in GOOD.items() if k != "amount"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "amount"]
    broken = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("body", [
    b"NaN", b"[]", b"\xff{", b"[" * 5_000 + b"]" * 5_000,
    json.dumps({**GOOD, "amount": 1.0}).replace("1.0", "1e400").encode(),  # infinity: JSON cannot echo it back
])
def test_odd_bodies_get_4xx_never_500(client, body):
    for path in ("/predict", "/predict/batch"):
        answer = client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= answer.status_code < 500, (path, body, answer.status_code)


def test_oversized_bodies_get_413_declared_or_chunked(client):
    too_big = client.post("/predict", content=b" " * 2_000_000, headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and "use /predict/batch" in too_big.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b" " * 50_000

    chunked = client.post("/predict/batch", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and "at most 5,000 transactions" in chunked.json()["detail"]


def test_batch_answers_in_order_like_single_requests(served, later):
    with TestClient(create_app(served)) as one_by_one, TestClient(create_app(served)) as batched:
        singles = [one_by_one.post("/predict", json=body).json()["fraud_probability"] for body in later[:50]]
        answer = batched.post("/predict/batch", json={"transactions": later[:50]})
    assert answer.status_code == 200
    assert [p["fraud_probability"] for p in answer.json()["predictions"]] == singles
    assert [p["transaction_id"] for p in answer.json()["predictions"]] == [b["transaction_id"] for b in later[:50]]


def test_the_api_docs_describe_the_scoring_routes_the_server_answers(client):
    spec = client.get("/openapi.json").json()
    single = spec["paths"]["/predict"]["post"]
    assert single["requestBody"]["content"]["application/json"]["schema"]["properties"]["amount"]["type"] == "number"
    answer = single["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/Prediction"}
    batch = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" not in json.dumps(batch) and batch["properties"]["transactions"]["maxItems"] == 5_000
    assert client.get("/predict").status_code == 405  # served routes answer POST only


def test_health_ready_metadata_and_prediction_hook(served):
    records = []
    with TestClient(create_app(served, on_prediction=records.extend)) as client:
        assert client.get("/health").json() == {"status": "alive"}
        assert client.get("/ready").status_code == 200
        metadata = client.get("/metadata").json()
        client.post("/predict", json=GOOD)
    assert metadata["predictor"] == "compiled" and metadata["history_rows"] == len(served.history)
    assert metadata["feature_columns"] == FEATURE_COLUMNS and metadata["micro_batching"] is True
    assert len(records) == 1 and records[0].transaction["user_id"] == "u00042"
    assert set(records[0].features) == set(FEATURE_COLUMNS) and records[0].model_version == "7"


def test_a_batch_reaches_the_sink_as_the_arrays_it_was_scored_with(served, later):
    batches = []
    with TestClient(create_app(served, on_prediction=batches.append)) as client:
        answer = client.post("/predict/batch", json={"transactions": later[:50]}).json()
    [batch] = batches
    fresh = FraudScorer(served, micro_batching=False)  # the same state before the batch: the same features
    expected = [fresh.features_row(dict(Transaction.model_validate(body)))[1] for body in later[:50]]
    np.testing.assert_array_equal(batch.features, expected)
    assert batch.feature_columns == tuple(FEATURE_COLUMNS) and batch.model_version == "7"
    assert batch.scores.tolist() == [row["fraud_probability"] for row in answer["predictions"]]
    assert batch.decisions.tolist() == [row["is_fraud"] for row in answer["predictions"]]
    record = batch[49]  # read as records, the same numbers
    assert record.transaction["transaction_id"] == later[49]["transaction_id"]
    assert record.features == dict(zip(FEATURE_COLUMNS, expected[49], strict=True))
    assert record.fraud_probability == answer["predictions"][49]["fraud_probability"]


def test_ready_is_503_until_a_background_load_finishes_and_says_why_it_failed(served):
    release = threading.Event()

    def slow_loader():
        release.wait(10)
        return served

    with TestClient(create_app(slow_loader)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 503 and client.get("/ready").json()["status"] == "loading"
        assert client.post("/predict", json=GOOD).status_code == 503
        release.set()
        for _ in range(100):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert client.post("/predict", json=GOOD).status_code == 200

    def failing_loader():
        raise ConfigError("no champion yet; run notebooks/03_experiment_tracking.ipynb")

    with TestClient(create_app(failing_loader)) as client:
        for _ in range(100):
            status = client.get("/ready").json()
            if status["status"] != "loading":
                break
            time.sleep(0.05)
    assert status == {"status": "failed",
                      "error": "ConfigError: no champion yet; run notebooks/03_experiment_tracking.ipynb"}


@pytest.fixture
def grpc_target(served):
    """The gRPC service on a free port in this process."""
    from lifecycle.serving.grpc_service import create_grpc_server

    server, port = create_grpc_server(served, port=0)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_grpc_answers_like_rest_and_names_bad_fields(grpc_target, served):
    with TestClient(create_app(served)) as client:
        rest = client.post("/predict", json=GOOD).json()
    with grpc.insecure_channel(grpc_target) as channel:
        stub = fraud_pb2_grpc.FraudDetectorStub(channel)
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        answer = stub.Predict(fraud_pb2.Transaction(**GOOD))
        with pytest.raises(grpc.RpcError) as bad:
            stub.Predict(fraud_pb2.Transaction(**{k: v for k, v in GOOD.items() if k != "amount"}))
        with pytest.raises(grpc.RpcError) as huge:
            stub.Predict(fraud_pb2.Transaction(**{**GOOD, "user_id": "u" * 2_000_000}))  # a 2 MB message
        metadata = stub.GetMetadata(fraud_pb2.MetadataRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert answer.fraud_probability == rest["fraud_probability"] and answer.model_version == "7"
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert json.loads(bad.value.details().removeprefix("invalid transaction: ")) == [
        {"loc": ["amount"], "msg": "Field required", "type": "missing"}]
    assert huge.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert list(metadata.feature_columns) == FEATURE_COLUMNS
    assert metadata.micro_batching and metadata.predictor == "compiled", "the same settings as the REST server"


def test_thread_micro_batcher_shares_calls_between_threads_and_keeps_each_answer():
    calls: list[int] = []
    started = threading.Event()

    def slow_predict(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        started.set()
        time.sleep(0.01)  # a predict call long enough for other threads to queue behind it
        return rows[:, 0] * 2

    batcher = ThreadMicroBatcher(slow_predict, max_rows=8)
    assert batcher.predict_one([21.0]) == 42.0 and calls == [1], "a lone row runs at once, alone"
    answers: dict[tuple[int, int], float] = {}

    def submit(thread: int) -> None:
        for i in range(10):
            answers[thread, i] = batcher.predict_one([thread * 100.0 + i])

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {(t, i): 2 * (t * 100.0 + i) for t in range(12) for i in range(10)}
    assert batcher.rows_ == 121 and max(calls) <= 8 and batcher.mean_batch_rows > 2, calls

    def broken(rows: np.ndarray) -> np.ndarray:
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        ThreadMicroBatcher(broken).predict_one([1.0])


def test_batched_predictor_gives_the_same_probabilities_one_row_or_many(served, windows):
    features = build_features(windows[1].head(50), history=windows[0]).to_numpy()
    compiled = compile_predictor(served.model)
    batched = BatchedPredictor(compiled)
    one_by_one = np.concatenate([batched.predict_proba(features[i:i + 1]) for i in range(len(features))])
    np.testing.assert_allclose(one_by_one, compiled.predict_proba(features), atol=1e-12)
    assert batched.name == "compiled" and batched.batcher.rows_ == len(features)


def test_grpc_batch_validates_like_rest_and_scores_in_order(grpc_target, served, later):
    batch = later[:40]
    with TestClient(create_app(served)) as client:
        rest = client.post("/predict/batch", json={"transactions": batch}).json()
        rest_error = client.post("/predict/batch", json={"transactions": [batch[0], {**batch[1], "amount": "x"}]})
    with grpc.insecure_channel(grpc_target) as channel:
        stub = fraud_pb2_grpc.FraudDetectorStub(channel)
        answer = stub.PredictBatch(fraud_pb2.TransactionBatch(transactions=[fraud_pb2.Transaction(**t) for t in batch]))
        missing = {k: v for k, v in batch[1].items() if k != "amount"}
        with pytest.raises(grpc.RpcError) as bad:
            stub.PredictBatch(fraud_pb2.TransactionBatch(transactions=[fraud_pb2.Transaction(**batch[0]),
                                                                       fraud_pb2.Transaction(**missing)]))
    assert [p.fraud_probability for p in answer.predictions] == [p["fraud_probability"] for p in rest["predictions"]]
    assert [p.transaction_id for p in answer.predictions] == [t["transaction_id"] for t in batch]
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert json.loads(bad.value.details().removeprefix("invalid transaction: ")) == [
        {"loc": ["transactions", 1, "amount"], "msg": "Field required", "type": "missing"}]
    assert rest_error.json()["detail"][0]["loc"] == ["body", "transactions", 1, "amount"], "the same location"


def test_constant_servers_answer_a_prediction_shaped_constant():
    from lifecycle.course.tutorial import CONSTANT_ANSWER, create_constant_rest_app
    from lifecycle.serving.grpc_service import create_constant_grpc_server

    with TestClient(create_constant_rest_app()) as client:
        answer = client.post("/predict", json=GOOD)
        too_big = client.post("/predict", content=b" " * 2_000_000, headers={"content-type": "application/json"})
        assert client.get("/ready").status_code == 200
    assert answer.status_code == 200 and answer.json() == CONSTANT_ANSWER and too_big.status_code == 413
    assert set(CONSTANT_ANSWER) == set(fraud_pb2.Prediction.DESCRIPTOR.fields_by_name), "shaped like an answer"
    server, port = create_constant_grpc_server(port=0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
            single = fraud_pb2_grpc.FraudDetectorStub(channel).Predict(fraud_pb2.Transaction(**GOOD))
            many = fraud_pb2_grpc.FraudDetectorStub(channel).PredictBatch(
                fraud_pb2.TransactionBatch(transactions=[fraud_pb2.Transaction(**GOOD)] * 3))
    finally:
        server.stop(grace=None)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert single.model_name == "constant" and len(many.predictions) == 3


def test_open_loop_sends_at_its_rate_and_counts_latency_from_when_each_was_due():
    from lifecycle.serving.grpc_service import create_constant_grpc_server
    from lifecycle.serving.loadgen import run_grpc_load

    server, port = create_constant_grpc_server(port=0)
    try:
        messages = [fraud_pb2.Transaction(**GOOD)]
        opened = run_grpc_load(f"127.0.0.1:{port}", messages, rate=200, seconds=0.5, warmup_requests=5, label="open")
        closed = run_grpc_load(f"127.0.0.1:{port}", messages, concurrency=4, seconds=0.3, warmup_requests=5)
    finally:
        server.stop(grace=None)
    summary = opened.summary()
    assert opened.requests == 100 and opened.errors == 0, "open loop: exactly rate x seconds requests"
    assert summary["offered_rps"] == 200 and summary["max_in_flight"] >= 1 and summary["p50_ms"] > 0
    assert opened.seconds >= 0.495, "the last request is sent when it is due, not earlier"
    assert closed.offered_rps is None and closed.max_in_flight <= 4 and closed.requests > 0
    with pytest.raises(ConfigError, match="rate > 0"):
        run_grpc_load("127.0.0.1:1", messages, rate=0)


def test_committed_grpc_stubs_match_the_proto(tmp_path):
    """Edit fraud.proto, then run `python -m lifecycle.proto`: this test fails until you do."""
    from importlib import metadata
    from pathlib import Path

    from google.protobuf import descriptor_pb2

    committed = descriptor_pb2.FileDescriptorProto.FromString(fraud_pb2.DESCRIPTOR.serialized_pb)
    assert describe_proto(tmp_path) == committed, "lifecycle/proto stubs are stale: run `python -m lifecycle.proto`"
    # With the generator that wrote them, a regeneration gives the very same files.
    if metadata.version("grpcio-tools") == fraud_pb2_grpc.GRPC_GENERATED_VERSION:
        generated = generate_stubs(tmp_path / "out")
        for path in generated:
            assert path.read_text() == (Path(fraud_pb2.__file__).parent / path.name).read_text(), \
                f"{path.name} differs from a regeneration: run `python -m lifecycle.proto`"
        assert [path.name for path in generated] == list(STUBS)


def test_load_generator_never_leaves_this_machine():
    for host in ("127.0.0.1", "localhost", "127.0.0.5"):
        check_loopback(host)
    for host in ("10.0.0.1", "192.168.1.2", "example.com"):
        with pytest.raises(ConfigError, match="only target this machine"):
            check_loopback(host)


def test_summary_puts_each_server_against_its_own_floor():
    def run(rps, rows=None, p50=1.0, cpu=None, offered=None):
        return {"rps": rps, "rows_per_second": rows or rps, "p50_ms": p50, "p99_ms": 3 * p50,
                "server_cpu_us_per_row": cpu, "offered_rps": offered}

    runs = {"tutorial": run(100.0, cpu=5_000.0), "rest": run(2_500.0, cpu=200.0), "grpc": run(2_400.0, cpu=300.0),
            "rest_constant": run(4_000.0, cpu=100.0), "grpc_constant": run(3_000.0, cpu=250.0),
            "rest_batch": run(60.0, 60_000.0), "grpc_batch": run(50.0, 50_000.0),
            "rest_open_loop": run(1_200.0, p50=0.8, offered=1_200.0), "grpc_open_loop": run(1_200.0, p50=0.9)}
    wire = {"json_request": 210.0, "json_response": 190.0, "protobuf_request": 93.0, "protobuf_response": 58.0}
    summary = summarise(runs, wire)
    figures = summary["figures"]
    assert (figures["rest_of_constant"], figures["grpc_of_constant"]) == (0.625, 0.8)
    assert figures["rest_of_constant_by_cpu"] == 0.5 and figures["grpc_vs_rest"] == 0.96
    assert (figures["rest_p50_ms"], figures["grpc_p50_ms"], figures["open_loop_rps"]) == (0.8, 0.9, 1_200.0)
    assert (figures["json_bytes_per_row"], figures["protobuf_bytes_per_row"]) == (400.0, 151.0)
    assert figures["grpc_batch_vs_rest_batch"] == pytest.approx(0.833, abs=1e-3)
    assert {name: t["met"] for name, t in summary["targets"].items()} == {
        "rest_of_constant": False, "grpc_of_constant": True, "grpc_batch_vs_rest_batch": False,
        "rest_vs_tutorial": True}


@pytest.mark.slow
def test_constant_servers_run_as_processes_and_take_both_kinds_of_load(isolated_workspace):
    """The benchmark's floors as it starts them (subprocesses on free ports), loaded closed and open loop
    by the clients the benchmark uses; stop() ends them."""
    from lifecycle.course.tutorial import start_constant_server
    from lifecycle.serving.loadgen import run_grpc_load, run_http_load

    settings = load_settings()
    rest, grpc_server = start_constant_server("rest", settings, wait=False), start_constant_server("grpc", settings)
    try:
        from lifecycle.serving.process import wait_until_ready

        wait_until_ready(rest)
        body = [json.dumps(GOOD).encode()]
        closed = run_http_load(f"{rest.url}/predict", body, concurrency=8, seconds=0.5)
        opened = run_http_load(f"{rest.url}/predict", body, rate=100, seconds=0.5)
        over_grpc = run_grpc_load(grpc_server.url, [fraud_pb2.Transaction(**GOOD)], rate=100, seconds=0.5)
        assert rest.cpu_seconds() > 0
    finally:
        rest.stop()
        grpc_server.stop()
    assert closed.errors == 0 and closed.requests > 0 and closed.client.startswith("aiohttp")
    assert (opened.requests, opened.errors, over_grpc.requests, over_grpc.errors) == (50, 0, 50, 0)
    assert not rest.running and not grpc_server.running
    with pytest.raises(ConfigError, match="choose rest or grpc"):
        start_constant_server("soap", settings)


@pytest.mark.slow
def test_real_servers_from_the_registry_as_a_user_starts_them():
    """`lifecycle serve rest|grpc` as subprocesses on a registered champion: curl-like checks, 10,000
    requests at 32 in flight without an error, and stop() ends the process group."""
    import urllib.error
    import urllib.request

    from lifecycle.serving.loadgen import run_http_load
    from lifecycle.serving.process import start_server, wait_until_ready
    from lifecycle.tracking import ensure_champion

    settings = load_settings().ensure_dirs()
    ensure_champion(settings, seed=3, rows=4_000)
    rest = start_server("rest", settings=settings, wait=False)
    grpc_server = start_server("grpc", settings=settings, wait=False)
    try:
        wait_until_ready(rest)
        wait_until_ready(grpc_server)

        def post(body: bytes) -> int:
            request = urllib.request.Request(f"{rest.url}/predict", data=body,
                                             headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(request) as response:
                    return response.status
            except urllib.error.HTTPError as err:
                return err.code

        assert post(json.dumps(GOOD).encode()) == 200
        assert post(json.dumps({**GOOD, "amount": "12.5"}).encode()) == 422
        assert post(json.dumps({k: v for k, v in GOOD.items() if k != "amount"}).encode()) == 422
        assert post(b"x" * 2_000_000) == 413
        bodies = [json.dumps({**GOOD, "transaction_id": f"t{i}", "user_id": f"u{i % 500:05d}"}).encode()
                  for i in range(2_000)]
        load = run_http_load(f"{rest.url}/predict", bodies, concurrency=32, seconds=120, max_requests=10_000)
        assert (load.requests, load.errors) == (10_000, 0)
        with grpc.insecure_channel(grpc_server.url) as channel:
            answer = fraud_pb2_grpc.FraudDetectorStub(channel).Predict(fraud_pb2.Transaction(**GOOD))
        assert answer.model_name == settings.registered_model and answer.model_version == "1"
    finally:
        rest.stop()
        grpc_server.stop()
    assert not rest.running and not grpc_server.running


@pytest.mark.slow
def test_a_server_from_a_local_export_answers_as_from_the_registry_and_never_imports_mlflow():
    """start_server exports the champion in this process and the server reads the plain files: the same
    answer and /metadata as the model loaded through MLflow, and not one mlflow module imported
    (the server's own import log, ``PYTHONPROFILEIMPORTTIME``). A broken export stops the server at
    once, naming the folder and the fix."""
    import sys
    import urllib.request

    from lifecycle._proc import ReservedPort
    from lifecycle.errors import CommandError
    from lifecycle.serving.process import launch_server, start_server
    from lifecycle.tracking import ensure_champion, export_served_model, load_served_model

    settings = load_settings().ensure_dirs()
    ensure_champion(settings, seed=3, rows=4_000)
    uri = f"models:/{settings.registered_model}@champion"
    with TestClient(create_app(load_served_model(uri, settings))) as client:  # the model as MLflow loads it
        expected, expected_metadata = client.post("/predict", json=GOOD).json(), client.get("/metadata").json()
    with start_server("rest", settings=settings, env={"PYTHONPROFILEIMPORTTIME": "1"}) as server:
        request = urllib.request.Request(f"{server.url}/predict", data=json.dumps(GOOD).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request) as response:
            answer = json.load(response)
        with urllib.request.urlopen(f"{server.url}/metadata") as response:
            metadata = json.load(response)
    assert answer == expected and metadata == expected_metadata
    log = server.log_file.read_text()
    imported = {line.rsplit("|", 1)[1].strip() for line in log.splitlines() if line.startswith("import time:")}
    assert {"sklearn", "lifecycle.tracking.export", "lifecycle.serving.rest"} <= imported, log[-2_000:]
    assert not {name for name in imported if name.split(".")[0] == "mlflow"}
    # Without --prediction-log the server does not pay for the log's imports either (about 1 s).
    assert not imported & {"lifecycle.serving.log_writer", "lifecycle.serving.prediction_log"}
    assert f"serving {uri} (version 1) over rest on {server.url}; Ctrl-C stops" in log

    folder = export_served_model(uri, settings)
    (folder / "history.csv").unlink()
    reserved = ReservedPort()
    command = [sys.executable, "-m", "lifecycle.serving", "rest", "--port", str(reserved.port), "--model", uri,
               "--model-export", str(folder), "--prediction-log", "off"]
    with pytest.raises(CommandError) as refused:
        launch_server(command, "rest", "127.0.0.1", reserved.port, settings=settings, reserved=reserved, timeout=60)
    assert f"error: model export {folder} cannot be served: its model or history file is missing" \
        in refused.value.output, refused.value.output
    assert "delete the folder and start the server again" in refused.value.output
