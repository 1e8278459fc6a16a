"""The serving benchmark: the same model and the same requests through several servers.

Configurations (each bounded in time, all on 127.0.0.1):

* ``constant``: FastAPI returning a constant, the framework's own ceiling;
* ``tutorial``: the tutorial's server as written (client-computed features, ``def`` endpoint,
  scikit-learn per request, default thread pools);
* ``tutorial_one_thread``: the same with ``OMP_NUM_THREADS=1`` (what one setting is worth);
* ``rest_sklearn``: our REST server calling scikit-learn once per request (no compiled
  predictor, no micro-batching): the web-side changes alone;
* ``rest`` and ``grpc``: our servers as shipped (compiled predictor, micro-batching);
* ``batch``: ``/predict/batch`` with many transactions per request (rows/s);
* ``rest_10k_at_32``: 10,000 requests at 32 in flight, counting errors.

:func:`time_stages` measures, inside one process, what each step of a prediction costs.

Taught in notebooks/05_serving.ipynb; run by ``benchmarks/serving.py`` and ``lifecycle bench serving``.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.serving.schema import request_bodies

CONFIGS = ("constant", "tutorial", "tutorial_one_thread", "rest_sklearn", "rest", "grpc", "batch", "rest_10k_at_32")
QUICK_CONFIGS = ("constant", "tutorial", "rest", "grpc", "batch")
# (server kind, start_server options) of each configuration; batch and the 10k run reuse "rest".
_SERVERS = {"constant": ("constant", {}), "tutorial": ("tutorial", {}),
            "tutorial_one_thread": ("tutorial", {"env": {"OMP_NUM_THREADS": "1"}}),
            "rest_sklearn": ("rest", {"predictor": "sklearn", "micro_batching": False}),
            "rest": ("rest", {}), "grpc": ("grpc", {})}
TARGETS = {"rest_vs_tutorial": 20.0, "rest_vs_constant": 0.5, "grpc_vs_rest": 1.0, "batch_rows_per_s": 50_000.0}
_PACKAGES = ("fastapi", "uvicorn", "pydantic", "grpcio", "treelite", "scikit-learn", "aiohttp", "numpy")


def benchmark_transactions(history: pd.DataFrame, rows: int = 20_000, seed: int = 42) -> pd.DataFrame:
    """Transactions of the month after ``history`` (the same customers, later), in time order."""
    from lifecycle.data import generate_transactions

    start = (pd.Timestamp(history["timestamp"].max()).normalize() + pd.Timedelta(days=1)).date()
    return generate_transactions(rows, seed, start=str(start), days=30).sort_values("timestamp", kind="stable")


def time_stages(served: Any, transactions: pd.DataFrame, rows: int = 1_000) -> dict[str, float]:
    """CPU microseconds per transaction of each step of a prediction, measured in this process.

    CPU time, not wall-clock time: it stays put when other programs compete for the cores.

    Args:
        served: a ``ServedModel``.
        transactions: later transactions to score (the first ``rows`` are used).
        rows: how many to time.

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
    sklearn, compiled = compile_predictor(served.model, "sklearn"), compile_predictor(served.model, "auto")
    calls = min(200, len(matrix))
    with threadpool_limits(limits=1):  # as in a server worker (OMP_NUM_THREADS=1)
        stages.update(_time_predictors(matrix, sklearn, compiled, calls))
    return stages


def _time_predictors(matrix: np.ndarray, sklearn: Any, compiled: Any, calls: int) -> dict[str, float]:
    stages = {}
    for name, predictor in (("model: scikit-learn, 1 row a call", sklearn), (f"model: {compiled.name}, 1 row a call",
                                                                               compiled)):
        predictor.predict_proba(matrix[:1])
        clock = time.process_time()
        for i in range(calls):
            predictor.predict_proba(matrix[i:i + 1])
        stages[name] = _per(clock, calls)
    clock = time.process_time()
    for start in range(0, len(matrix), 16):
        compiled.predict_proba(matrix[start:start + 16])
    stages[f"model: {compiled.name}, 16 rows a call"] = _per(clock, len(matrix))
    sklearn.predict_proba(matrix[:300])  # the first large call pays one-time set-up
    clock = time.process_time()
    sklearn.predict_proba(matrix)
    stages[f"model: scikit-learn, {len(matrix)} rows a call"] = _per(clock, len(matrix))
    return stages


def _per(clock: float, count: int) -> float:
    return round((time.process_time() - clock) / max(count, 1) * 1e6, 2)


def run_serving_benchmark(configs: tuple[str, ...] = CONFIGS, seconds: float = 3.0, concurrency: int = 16,
                          batch_rows: int = 1_000, batch_concurrency: int = 2, model_uri: str | None = None,
                          settings: Any = None, seed: int = 42, rounds: int = 1, stages: bool = True) -> dict[str, Any]:
    """Start the servers (all at once), load each configuration for ``seconds``, stop them; return every number.

    Args:
        configs: which configurations to run (see the module docstring), in this order.
        seconds: how long each configuration is loaded (after a short warm-up).
        concurrency: requests in flight for single-transaction configurations.
        batch_rows: transactions per ``/predict/batch`` request.
        batch_concurrency: batch requests in flight.
        model_uri: registry URI (default: the champion; trained and registered if there is none).
        settings: which workspace and MLflow store.
        seed: seed of the benchmark's transactions.
        rounds: run every configuration this many times, interleaved, and keep the median round
            (other programs may load the machine in bursts).
        stages: also run :func:`time_stages`.

    Returns:
        See :func:`benchmark_servers`.

    Raises:
        ConfigError: an unknown configuration.
        CommandError: a server did not start.
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
        for handle in servers.values():
            handle.stop()


def start_benchmark_servers(configs: tuple[str, ...], model_uri: str, settings: Any = None,
                            wait: bool = True) -> dict[str, Any]:
    """Start (in parallel) every server the configurations need; returns name → ``ServerHandle``."""
    from lifecycle.course.tutorial import start_tutorial_server
    from lifecycle.serving.process import start_server, wait_until_ready

    _check_configs(configs)
    servers: dict[str, Any] = {}
    try:
        for name in dict.fromkeys(_server_of(config) for config in configs):
            kind, options = _SERVERS[name]
            start = start_tutorial_server if kind == "tutorial" else functools.partial(start_server, kind)
            servers[name] = start(model_uri, settings=settings, wait=False, **options)
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

    Returns:
        ``{"runs": {config: summary}, "figures": {...}, "targets": {...}, "stages_us": {...},
        "machine", "versions", "model", "settings"}``; each summary holds req/s, rows/s, p50/p99
        latency, errors, the client used and the server's CPU microseconds per transaction.
    """
    from lifecycle.serving.process import wait_until_ready

    _check_configs(configs)
    for handle in servers.values():
        wait_until_ready(handle)
    later = benchmark_transactions(served.history, rows=20_000, seed=seed)
    payloads = _payloads(later, served.history, batch_rows)
    rounds_of: dict[str, list[dict[str, Any]]] = {}
    for round_number in range(rounds):  # interleaved, so a burst of other work hits every config alike
        for config in configs:
            if config == "rest_10k_at_32" and round_number:
                continue
            handle = servers[_server_of(config)]
            before = handle.cpu_seconds()
            load = _run_one(config, servers, payloads, seconds, concurrency, batch_concurrency)
            after = handle.cpu_seconds()
            summary = load.summary()
            if before is not None and after is not None:
                rows = (load.requests + load.warmup_requests) * load.rows_per_request
                summary["server_cpu_us_per_row"] = round((after - before) / rows * 1e6, 1)
            rounds_of.setdefault(config, []).append(summary)
    runs = {config: _median_round(summaries) for config, summaries in rounds_of.items()}
    result = {"benchmark": "serving", "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(),
                          "load_average": [round(x, 2) for x in os.getloadavg()]},
              "versions": {p: _version(p) for p in _PACKAGES},
              "model": {"uri": served.uri, "version": str(served.version), "class": type(served.model).__name__},
              "settings": {"seconds": seconds, "concurrency": concurrency, "batch_rows": batch_rows,
                           "batch_concurrency": batch_concurrency, "rounds": rounds, "host": "127.0.0.1"},
              "runs": runs}
    result.update(summarise(runs))
    if stages:
        result["stages_us"] = time_stages(served, later)
    return result


def _check_configs(configs: tuple[str, ...]) -> None:
    from lifecycle.errors import ConfigError

    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ConfigError(f"unknown benchmark configuration(s) {unknown}; choose from {list(CONFIGS)}")


def _server_of(config: str) -> str:
    return "rest" if config in ("batch", "rest_10k_at_32") else config


def _median_round(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median requests/s, with every round's requests/s beside it."""
    ordered = sorted(summaries, key=lambda summary: summary["rps"])
    return {**ordered[(len(ordered) - 1) // 2], "rps_rounds": [summary["rps"] for summary in summaries]}


def _payloads(later: pd.DataFrame, history: pd.DataFrame, batch_rows: int) -> dict[str, list]:
    """The same transactions as each server wants them: JSON bodies, the tutorial's client-computed
    feature dicts, gRPC messages, and batches of ``batch_rows``."""
    from lifecycle.features import build_features
    from lifecycle.proto import fraud_pb2

    records = request_bodies(later)
    features = build_features(later, history=history).to_dict("records")
    return {"json": [json.dumps(record).encode() for record in records],
            "tutorial": [json.dumps(row).encode() for row in features],
            "grpc": [fraud_pb2.Transaction(**record) for record in records],
            "batch": [json.dumps({"transactions": records[i:i + batch_rows]}).encode()
                      for i in range(0, len(records) - batch_rows + 1, batch_rows)]}


def _run_one(config: str, servers: dict, payloads: dict[str, list], seconds: float, concurrency: int,
             batch_concurrency: int) -> Any:
    from lifecycle.serving.loadgen import run_grpc_load, run_http_load

    if config == "grpc":
        return run_grpc_load(servers["grpc"].url, payloads["grpc"], concurrency=concurrency, seconds=seconds,
                             label=config)
    if config == "batch":
        rows = len(json.loads(payloads["batch"][0])["transactions"])
        return run_http_load(f"{servers['rest'].url}/predict/batch", payloads["batch"], concurrency=batch_concurrency,
                             seconds=seconds, warmup_requests=2, label=config, rows_per_request=rows)
    if config == "rest_10k_at_32":
        return run_http_load(f"{servers['rest'].url}/predict", payloads["json"], concurrency=32,
                             seconds=max(seconds, 60.0), max_requests=10_000, label=config)
    payload = payloads["tutorial"] if config.startswith("tutorial") else payloads["json"]
    return run_http_load(f"{servers[config].url}/predict", payload, concurrency=concurrency, seconds=seconds,
                         label=config)


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The headline figures (the names lessons record) and whether each target was reached."""
    def rps(name: str) -> float | None:
        return runs[name]["rps"] if name in runs else None

    figures: dict[str, Any] = {
        "tutorial_rps": rps("tutorial"), "rest_rps": rps("rest"), "grpc_rps": rps("grpc"),
        "constant_rps": rps("constant"),
        "rest_p50_ms": runs.get("rest", {}).get("p50_ms"), "grpc_p50_ms": runs.get("grpc", {}).get("p50_ms"),
        "batch_rows_per_s": runs.get("batch", {}).get("rows_per_second"),
    }
    ratios = {"rest_vs_tutorial": ("rest", "tutorial"), "rest_vs_constant": ("rest", "constant"),
              "grpc_vs_rest": ("grpc", "rest")}
    for name, (top, bottom) in ratios.items():
        if top in runs and bottom in runs:
            figures[name] = round(runs[top]["rps"] / runs[bottom]["rps"], 3)
            # The same comparison in server CPU per request: steadier when other programs share the cores.
            cpu_top, cpu_bottom = runs[top].get("server_cpu_us_per_row"), runs[bottom].get("server_cpu_us_per_row")
            if cpu_top and cpu_bottom:
                figures[f"{name}_by_cpu"] = round(cpu_bottom / cpu_top, 3)
    targets = {name: {"target": goal, "measured": figures.get(name), "met": figures.get(name) is not None
                      and figures[name] >= goal} for name, goal in TARGETS.items()}
    return {"figures": figures, "targets": targets}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def write_results(result: dict[str, Any], path: str | Path) -> Path:
    """Write a benchmark result as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


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


def format_report(result: dict[str, Any]) -> str:
    """A plain-text table of a benchmark result."""
    lines = [f"{'configuration':<22}{'req/s':>10}{'rows/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
             f"{'server CPU µs/row':>19}  client"]
    for name, run in result["runs"].items():
        cpu = run.get("server_cpu_us_per_row")
        cpu_text = "" if cpu is None else f"{cpu:,.0f}"
        lines.append(f"{name:<22}{run['rps']:>10,.0f}{run['rows_per_second']:>11,.0f}{run['p50_ms']:>9.2f}"
                     f"{run['p99_ms']:>9.2f}{run['errors']:>8}{cpu_text:>19}  {run['client']}")
    for name, target in result["targets"].items():
        measured = target["measured"]
        shown = "not run" if measured is None else f"{measured:,.2f}"
        lines.append(f"target {name} >= {target['target']:,}: {shown} -> {'met' if target['met'] else 'NOT met'}")
    return "\n".join(lines)
