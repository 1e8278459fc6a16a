"""The prediction log (lifecycle.serving.prediction_log): idempotent appends, late labels joined into
labelled windows, the server's background writer, and (slow) a real REST server under 10,000
concurrent requests logging each exactly once, across a restart."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time

import pandas as pd
import pytest

from lifecycle.data import generate_transactions
from lifecycle.errors import ConfigError, SchemaError
from lifecycle.serving.prediction_log import PredictionLog, PredictionLogWriter
from lifecycle.serving.scorer import PredictionRecord


def records(transactions: pd.DataFrame, model_version: str = "1") -> list[PredictionRecord]:
    """Server-like records: the transaction as the server parsed it (timestamp a datetime)."""
    rows = transactions.drop(columns=["is_fraud"]).to_dict("records")
    return [PredictionRecord({**row, "timestamp": row["timestamp"].to_pydatetime()}, {"amount": row["amount"]},
                             0.9 if i % 10 == 0 else 0.1, i % 10 == 0, 0.5, "fraud-detector", model_version, 1.0)
            for i, row in enumerate(rows)]


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generate_transactions(300, 5, start="2026-02-01", days=3)


def test_appends_are_idempotent_and_survive_reopening(tmp_path, transactions):
    log = PredictionLog(tmp_path / "log.sqlite")
    assert log.append(records(transactions)) == 300
    assert log.append(records(transactions.head(50), model_version="2")) == 0  # retries: ignored
    log.close()
    reopened = PredictionLog(tmp_path / "log.sqlite")
    assert reopened.count() == 300 and reopened.duplicates() == 0
    mode = sqlite3.connect(tmp_path / "log.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_window_joins_late_labels_and_gives_back_the_inputs(tmp_path, transactions):
    log = PredictionLog(tmp_path / "log.sqlite")
    log.append(records(transactions))
    assert log.window(labelled_only=True).empty  # no chargebacks yet
    log.add_labels(transactions.head(200)[["transaction_id", "is_fraud"]])
    everything = log.window()
    assert len(everything) == 300 and int(everything["is_fraud"].isna().sum()) == 100
    labelled = log.window(labelled_only=True)
    expected = transactions.head(200).sort_values(["timestamp", "transaction_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(labelled[list(transactions.columns)], expected[list(transactions.columns)])
    day = log.window("2026-02-02", "2026-02-03")
    assert len(day) == ((transactions["timestamp"] >= "2026-02-02") & (transactions["timestamp"] < "2026-02-03")).sum()


def test_backfill_from_batch_scoring_is_marked_and_not_doubled(tmp_path, transactions):
    log = PredictionLog(tmp_path / "log.sqlite")
    log.append(records(transactions.head(100)))
    new = log.append_frame(transactions, [0.2] * len(transactions), 0.5, "fraud-detector", "1")
    assert new == 200 and log.count(source="server") == 100 and log.count(source="batch") == 200


def test_bad_inputs_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        PredictionLog(tmp_path)
    with pytest.raises(SchemaError, match="is_fraud"):
        PredictionLog(tmp_path / "log.sqlite").add_labels(pd.DataFrame({"transaction_id": ["t1"]}))


def test_writer_from_many_threads_loses_nothing_when_closed(tmp_path, transactions):
    writer = PredictionLogWriter(tmp_path / "log.sqlite", max_batch=64)
    batches = [records(transactions.iloc[i::8]) for i in range(8)]
    threads = [threading.Thread(target=lambda b=batch: [writer([r]) for r in b]) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert writer.written == 300 and PredictionLog(tmp_path / "log.sqlite").count() == 300


def test_writer_reports_a_batch_it_cannot_store_and_keeps_writing(tmp_path, transactions, capsys):
    writer = PredictionLogWriter(tmp_path / "log.sqlite")
    unstorable = records(transactions.head(1))
    unstorable[0].transaction["timestamp"] = object()  # not a time the log can write
    writer(unstorable)
    writer.close()
    assert writer.failed == 1 and "could not write 1 records (TypeError" in capsys.readouterr().err
    writer = PredictionLogWriter(tmp_path / "log.sqlite")
    writer(records(transactions.head(10)))
    writer.close()
    assert writer.written == 10 and writer.failed == 0


@pytest.fixture(scope="module")
def champion_settings():
    from threadpoolctl import threadpool_limits

    from lifecycle.config import load_settings
    from lifecycle.tracking import ensure_champion

    settings = load_settings().ensure_dirs()
    with threadpool_limits(1):
        ensure_champion(settings, seed=3, rows=4_000)
    return settings


def _wait_until_refused(port: int, timeout: float = 30.0) -> None:
    """Wait until nothing accepts connections on ``port`` (a server that stopped listening)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        assert time.monotonic() < deadline, f"port {port} still accepts connections after {timeout:.0f} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_a_graceful_stop_writes_what_is_still_queued(tmp_path, champion_settings):
    """SIGTERM while the log is busy (another process holds its write lock): the server must write
    the queued records before it exits (uvicorn re-raises SIGTERM after shutdown, so only the
    app's own shutdown can flush them)."""
    from lifecycle.serving.loadgen import run_http_load
    from lifecycle.serving.process import start_server
    from lifecycle.serving.schema import request_bodies

    path = tmp_path / "predictions.sqlite"
    PredictionLog(path).close()
    bodies = [json.dumps(body).encode() for body in request_bodies(generate_transactions(200, 6, start="2026-02-01"))]
    with start_server("rest", settings=champion_settings, prediction_log=path) as server:
        blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN EXCLUSIVE")  # the server's writer now waits for this lock
        result = run_http_load(f"{server.url}/predict", bodies, concurrency=8, seconds=60, max_requests=200,
                               warmup_requests=0)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        _wait_until_refused(server.port)  # SIGTERM: uvicorn stops accepting, then the app shuts down
        assert server.running, "the server exited before its shutdown could flush the log"
        blocker.execute("COMMIT")  # released while the server stops
        stopping.join()
    assert result.requests == 200 and result.errors == 0
    assert PredictionLog(path).count() == 200


@pytest.mark.slow
def test_real_server_logs_every_one_of_10000_concurrent_requests_once(tmp_path, champion_settings):
    from lifecycle.serving.loadgen import run_http_load
    from lifecycle.serving.process import start_server
    from lifecycle.serving.schema import request_bodies

    settings = champion_settings
    path = tmp_path / "predictions.sqlite"
    later = generate_transactions(10_000, 4, start="2026-02-01", days=7)
    bodies = [json.dumps(body).encode() for body in request_bodies(later)]
    with start_server("rest", settings=settings, prediction_log=path) as server:
        result = run_http_load(f"{server.url}/predict", bodies, concurrency=32, seconds=120,
                               max_requests=10_000, warmup_requests=0)
    assert result.requests == 10_000 and result.errors == 0, result.status_counts
    log = PredictionLog(path)
    assert log.count() == 10_000 and log.duplicates() == 0
    assert set(log.window()["transaction_id"]) == set(later["transaction_id"])

    with start_server("rest", settings=settings, prediction_log=path) as server:  # a restart, and retries
        again = run_http_load(f"{server.url}/predict", bodies[:500], concurrency=32, seconds=60,
                              max_requests=500, warmup_requests=0)
    assert again.errors == 0 and log.count() == 10_000 and log.duplicates() == 0
