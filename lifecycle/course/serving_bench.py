"""The serving benchmark: the same model and the same requests through several servers, like with like.

Configurations (each bounded in time, all on 127.0.0.1, every server one process with
``OMP_NUM_THREADS=1``):

* ``rest_constant`` and ``grpc_constant``: each framework's stack answering a constant
  (:mod:`lifecycle.course.tutorial`): its floor on this machine, through the same load client;
  ``fastapi_constant``: a constant behind a FastAPI-decorated route (``lifecycle serve constant``),
  what the lean route of our REST server saves;
* ``tutorial``: the tutorial's server as written (client-computed features, ``def`` endpoint,
  scikit-learn per request, default thread pools); ``tutorial_one_thread``: the same with
  ``OMP_NUM_THREADS=1`` (what one setting is worth);
* ``rest_sklearn``: our REST server calling scikit-learn once per request (no compiled predictor,
  no micro-batching): the web-side changes alone;
* ``rest`` and ``grpc``: our servers as shipped, with the same predictor and the same micro-batching;
* ``rest_batch`` and ``grpc_batch``: many transactions a request (``/predict/batch``, ``PredictBatch``);
* ``rest_open_loop`` and ``grpc_open_loop``: requests sent at a fixed rate (a share of the slower
  server's closed-loop throughput in the same round), for latency a user would see;
* ``rest_10k_at_32``: 10,000 requests at 32 in flight, counting errors.

Closed-loop runs measure throughput; open-loop runs measure latency (see :mod:`lifecycle.serving.loadgen`).
What each step of a prediction costs, what decoding a batch costs per protocol and what a transaction
weighs as JSON and as protobuf are measured in :mod:`lifecycle.course.serving_costs`.

Taught in notebooks/05_serving.ipynb; run by ``benchmarks/serving.py`` and ``lifecycle bench serving``.
"""

from __future__ import annotations

import json
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import pandas as pd

from lifecycle.course.serving_costs import time_batch_decoding, time_stages, wire_bytes
from lifecycle.course.serving_report import format_report, summarise, write_results
from lifecycle.serving.schema import request_bodies

CONFIGS = ("rest_constant", "grpc_constant", "fastapi_constant", "tutorial", "tutorial_one_thread", "rest_sklearn",
           "rest", "grpc", "rest_batch", "grpc_batch", "rest_open_loop", "grpc_open_loop", "rest_10k_at_32")
QUICK_CONFIGS = ("rest_constant", "grpc_constant", "tutorial", "rest", "grpc", "rest_batch", "grpc_batch",
                 "rest_open_loop", "grpc_open_loop")
# Measured in the first round only: the tutorial's servers are an order of magnitude apart from ours (no
# spread can change that), and the 10k run counts errors, not speed.
ONCE = ("tutorial", "tutorial_one_thread", "rest_sklearn", "rest_10k_at_32")
OPEN_LOOP_SHARE = 0.5  # open-loop rate: this share of the slower server's closed-loop throughput
_PACKAGES = ("fastapi", "uvicorn", "pydantic", "grpcio", "protobuf", "treelite", "scikit-learn", "aiohttp", "numpy")


def benchmark_transactions(history: pd.DataFrame, rows: int = 20_000, seed: int = 42) -> pd.DataFrame:
    """Transactions of the month after ``history`` (the same customers, later), in time order."""
    from lifecycle.data import generate_transactions

    start = (pd.Timestamp(history["timestamp"].max()).normalize() + pd.Timedelta(days=1)).date()
    return generate_transactions(rows, seed, start=str(start), days=30).sort_values("timestamp", kind="stable")


def run_serving_benchmark(configs: tuple[str, ...] = CONFIGS, seconds: float = 3.0, concurrency: int = 16,
                          batch_rows: int = 1_000, batch_concurrency: int = 2, model_uri: str | None = None,
                          settings: Any = None, seed: int = 42, rounds: int = 3, stages: bool = True) -> dict[str, Any]:
    """Start the servers (all at once), load each configuration, stop them; return every number.

    Arguments as :func:`benchmark_servers`, with ``model_uri`` (default: the champion, trained and
    registered if there is none) and ``settings``. Raises ``ConfigError`` for an unknown configuration,
    ``CommandError`` when a server did not start.
    """
    from lifecycle.config import load_settings
    from lifecycle.tracking import ensure_champion, load_served_model

    _check_configs(configs)
    settings = settings or load_settings()
    if model_uri is None:
        ensure_champion(settings, seed=seed)
    served = load_served_model(model_uri, settings)
    servers = start_benchmark_servers(configs, served.uri, settings)
    try:
        return benchmark_servers(servers, served, configs, seconds, concurrency, batch_rows, batch_concurrency,
                                 seed, rounds, stages)
    finally:
        with ThreadPoolExecutor() as stopping:  # all at once: each stop waits for a graceful shutdown
            list(stopping.map(lambda handle: handle.stop(), servers.values()))


def start_benchmark_servers(configs: tuple[str, ...], model_uri: str, settings: Any = None,
                            wait: bool = True) -> dict[str, Any]:
    """Start (in parallel) every server the configurations need; returns name → ``ServerHandle``."""
    from lifecycle.course.tutorial import start_constant_server, start_tutorial_server
    from lifecycle.serving.process import start_server, wait_until_ready

    _check_configs(configs)
    starts = {"rest_constant": lambda: start_constant_server("rest", settings, wait=False),
              "grpc_constant": lambda: start_constant_server("grpc", settings, wait=False),
              "fastapi_constant": lambda: start_server("constant", settings=settings, wait=False),
              "tutorial": lambda: start_tutorial_server(model_uri, settings, wait=False),
              "tutorial_one_thread": lambda: start_tutorial_server(model_uri, settings, {"OMP_NUM_THREADS": "1"},
                                                                   wait=False),
              "rest_sklearn": lambda: start_server("rest", model_uri, predictor="sklearn", micro_batching=False,
                                                   settings=settings, wait=False),
              "rest": lambda: start_server("rest", model_uri, settings=settings, wait=False),
              "grpc": lambda: start_server("grpc", model_uri, settings=settings, wait=False)}
    servers: dict[str, Any] = {}
    try:
        for name in dict.fromkeys(_server_of(config) for config in configs):
            servers[name] = starts[name]()
        for handle in servers.values() if wait else ():
            wait_until_ready(handle)
    except BaseException:
        for handle in servers.values():
            handle.stop()
        raise
    return servers


def benchmark_servers(servers: dict[str, Any], served: Any, configs: tuple[str, ...] = QUICK_CONFIGS,
                      seconds: float = 3.0, concurrency: int = 16, batch_rows: int = 1_000, batch_concurrency: int = 2,
                      seed: int = 42, rounds: int = 1, stages: bool = True) -> dict[str, Any]:
    """Load running servers (from :func:`start_benchmark_servers`) with the same transactions.

    Args:
        servers: name → ``ServerHandle``.
        served: the ``ServedModel`` the servers serve (its history makes the later transactions).
        configs: which configurations to run, in this order within each round.
        seconds: how long each configuration is loaded (after a short warm-up).
        concurrency: requests in flight (closed loop) for single-transaction configurations.
        batch_rows: transactions per batch request (REST and gRPC alike).
        batch_concurrency: batch requests in flight.
        seed: seed of the benchmark's transactions.
        rounds: run every configuration this many times, interleaved (a burst of other work hits every
            configuration alike); each summary is the median round, with every round's figure beside it.
        stages: also run :func:`time_stages`.

    Returns:
        ``{"runs": {config: summary}, "figures", "targets", "wire_bytes", "stages_us", "machine",
        "versions", "model", "settings"}``; each summary holds req/s, rows/s, p50/p99 latency, errors,
        the client used, the server's CPU microseconds per transaction and ``rounds`` (each round's
        requests/s, or p50 for open-loop runs).
    """
    from lifecycle.serving.process import wait_until_ready

    _check_configs(configs)
    for handle in servers.values():
        wait_until_ready(handle)
    later = benchmark_transactions(served.history, rows=20_000, seed=seed)
    payloads = _payloads(later, served.history, batch_rows)
    wire = wire_bytes(payloads, servers)  # before the timed load: the answers then depend on nothing timed
    rounds_of: dict[str, list[dict[str, Any]]] = {}
    for round_number in range(rounds):
        measured: dict[str, float] = {}
        for config in configs:
            if config in ONCE and round_number:
                continue
            rate = None
            if config.endswith("_open_loop"):
                capacity = [measured[name] for name in ("rest", "grpc") if name in measured]
                rate = OPEN_LOOP_SHARE * min(capacity) if capacity else 500.0
            handle = servers[_server_of(config)]
            before = handle.cpu_seconds()
            load = _run_one(config, servers, payloads, seconds, concurrency, batch_concurrency, rate)
            after = handle.cpu_seconds()
            summary = load.summary()
            if before is not None and after is not None:
                rows = (load.requests + load.warmup_requests) * load.rows_per_request
                summary["server_cpu_us_per_row"] = round((after - before) / rows * 1e6, 1)
            measured[config] = summary["rps"]
            rounds_of.setdefault(config, []).append(summary)
    runs = {config: _median_round(config, summaries) for config, summaries in rounds_of.items()}
    result = {"benchmark": "serving", "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(),
                          "load_average": [round(x, 2) for x in os.getloadavg()]},
              "versions": {p: _version(p) for p in _PACKAGES},
              "model": {"uri": served.uri, "version": str(served.version), "class": type(served.model).__name__},
              "settings": {"seconds": seconds, "concurrency": concurrency, "batch_rows": batch_rows,
                           "batch_concurrency": batch_concurrency, "rounds": rounds, "host": "127.0.0.1",
                           "open_loop_share": OPEN_LOOP_SHARE},
              "runs": runs, "wire_bytes": wire, "batch_decode_us": time_batch_decoding(payloads)}
    result.update(summarise(runs, result["wire_bytes"]))
    if stages:
        result["stages_us"] = time_stages(served, later)
    return result


def _check_configs(configs: tuple[str, ...]) -> None:
    from lifecycle.errors import ConfigError

    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ConfigError(f"unknown benchmark configuration(s) {unknown}; choose from {list(CONFIGS)}")


def _server_of(config: str) -> str:
    for server in ("rest", "grpc"):
        if config in (f"{server}_batch", f"{server}_open_loop", f"{server}_10k_at_32"):
            return server
    return config


def _median_round(config: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median figure (p50 for open-loop runs, requests/s otherwise), every round's beside it."""
    key = "p50_ms" if config.endswith("_open_loop") else "rps"
    ordered = sorted(summaries, key=lambda summary: summary[key])
    return {**ordered[(len(ordered) - 1) // 2], "rounds": [summary[key] for summary in summaries]}


def _payloads(later: pd.DataFrame, history: pd.DataFrame, batch_rows: int) -> dict[str, list]:
    """The same transactions as each server wants them: JSON bodies, the tutorial's client-computed
    feature dicts, gRPC messages, and batches of ``batch_rows`` as JSON and as protobuf."""
    from lifecycle.features import build_features
    from lifecycle.proto import fraud_pb2

    records = request_bodies(later)
    features = build_features(later, history=history).to_dict("records")
    messages = [fraud_pb2.Transaction(**record) for record in records]
    starts = range(0, len(records) - batch_rows + 1, batch_rows)
    return {"json": [json.dumps(record).encode() for record in records],
            "tutorial": [json.dumps(row).encode() for row in features],
            "grpc": messages,
            "json_batch": [json.dumps({"transactions": records[i:i + batch_rows]}).encode() for i in starts],
            "grpc_batch": [fraud_pb2.TransactionBatch(transactions=messages[i:i + batch_rows]) for i in starts]}


def _run_one(config: str, servers: dict, payloads: dict[str, list], seconds: float, concurrency: int,
             batch_concurrency: int, rate: float | None) -> Any:
    from lifecycle.serving.loadgen import run_grpc_load, run_http_load

    server = servers[_server_of(config)]
    if config.startswith("grpc"):
        if config == "grpc_batch":
            return run_grpc_load(server.url, payloads["grpc_batch"], "PredictBatch", batch_concurrency, seconds,
                                 warmup_requests=2, label=config,
                                 rows_per_request=len(payloads["grpc_batch"][0].transactions))
        return run_grpc_load(server.url, payloads["grpc"], concurrency=concurrency, seconds=seconds, label=config,
                             rate=rate)
    if config == "rest_batch":
        rows = len(json.loads(payloads["json_batch"][0])["transactions"])
        return run_http_load(f"{server.url}/predict/batch", payloads["json_batch"], concurrency=batch_concurrency,
                             seconds=seconds, warmup_requests=2, label=config, rows_per_request=rows)
    if config == "rest_10k_at_32":
        return run_http_load(f"{server.url}/predict", payloads["json"], concurrency=32, seconds=max(seconds, 60.0),
                             max_requests=10_000, label=config)
    payload = payloads["tutorial"] if config.startswith("tutorial") else payloads["json"]
    return run_http_load(f"{server.url}/predict", payload, concurrency=concurrency, seconds=seconds, label=config,
                         rate=rate)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def bench_command(args: Any) -> int:
    """The ``lifecycle bench serving`` command (see :mod:`lifecycle.cli`)."""
    from lifecycle.config import load_settings

    settings = load_settings()
    result = run_serving_benchmark(seconds=float(getattr(args, "seconds", 3.0)),
                                   concurrency=int(getattr(args, "concurrency", 16)),
                                   rounds=int(getattr(args, "rounds", 3)),
                                   model_uri=getattr(args, "model", None), settings=settings)
    out = getattr(args, "out", None) or settings.root / "benchmarks" / "results" / "serving.json"
    print(format_report(result))
    print(f"wrote {write_results(result, out)}")
    return 0
