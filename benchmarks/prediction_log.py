"""Prediction-log benchmark (issue 15): what commit-before-answer costs, and what it promises.

    .venv/bin/python benchmarks/prediction_log.py [--seconds 3] [--rounds 3] [--batch-in-flight 4]
        [--crash-runs 3] [--overload-seconds 30] [--out benchmarks/results/prediction_log.json]

Three measurements, all on 127.0.0.1 against real REST servers of the registry's champion (trained
and registered first if there is none):

* **throughput**: the same server with ``--prediction-log off``, with the durable log
  (``synchronous=normal``, the default) and with ``synchronous=full``, started together and loaded in
  interleaved rounds (median kept): single requests (32 in flight) and ``/predict/batch`` (1,000
  rows a request, 2 in flight). Every request carries new transaction ids, so the log inserts every
  row (a repeated id would cost the log only a lookup). Also the server's CPU time per row, which
  other programs on the machine do not change.
* **crash**: ``lifecycle.course.durability.crash_test`` runs: 32 requests in flight, SIGKILL after
  a few seconds, each answered 200 looked up in the log.
* **overload**: 30 s of more load than the log can take: 64 single and 32 batch requests in flight
  (over 32,000 rows, more than the writer admits) while another process holds the log's write lock
  0.8 s of every second (a backup or a long analytics transaction would), so the log can commit a
  fifth of the time. Resident memory of the server is sampled against its idle size; every 200 is
  looked up in the log.

REST load comes from aiohttp in this process (``lifecycle.serving.loadgen``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "prediction_log.json"
TARGETS = {"single_vs_off": 0.85, "batch_vs_off": 0.85, "answered_but_unlogged": 0, "overload_rss_vs_idle": 2.0}
CONFIGS = ("off", "normal", "full")


CYCLE = timedelta(days=31)  # the templates span 30 days; each pass over them is a month later


def bodies(templates: list[dict], prefix: str, count: int, rows: int = 1, first_cycle: int = 0) -> list[bytes]:
    """``count`` request bodies of ``rows`` transactions each, every transaction id new and every
    timestamp later than the one before: a server's traffic arrives in time order, and the log keeps
    its rows in time order (traffic that went back a month at every pass would cost the log inserts
    in the middle of its table, which no production server sees)."""
    stamps = [datetime.fromisoformat(template["timestamp"]) for template in templates]
    out = []
    for i in range(count):
        batch = []
        for j in range(rows):
            n = i * rows + j
            cycle, k = divmod(n, len(templates))
            stamp = stamps[k] + (first_cycle + cycle) * CYCLE
            batch.append({**templates[k], "transaction_id": f"{prefix}-{n}", "timestamp": stamp.isoformat()})
        out.append(json.dumps(batch[0] if rows == 1 else {"transactions": batch}).encode())
    return out


def throughput(settings: Any, templates: list[dict], folder: Path, seconds: float, rounds: int,
               batch_in_flight: int) -> dict[str, Any]:
    from lifecycle.serving.loadgen import run_http_load
    from lifecycle.serving.log_writer import SYNC_ENV
    from lifecycle.serving.process import start_server

    options = {"off": {}, "normal": {"prediction_log": folder / "normal.sqlite"},
               "full": {"prediction_log": folder / "full.sqlite", "env": {SYNC_ENV: "full"}}}
    servers = {name: start_server("rest", settings=settings, **options[name]) for name in CONFIGS}
    runs: dict[str, dict[str, list[dict]]] = {name: {"single": [], "batch": []} for name in CONFIGS}
    try:
        for round_ in range(rounds):
            order = CONFIGS[round_ % 3:] + CONFIGS[:round_ % 3]  # no configuration always goes first
            for name in order:
                server = servers[name]
                for kind, path, rows, concurrency, count, first in (
                        ("single", "/predict", 1, 32, 80_000, 30 * round_),
                        ("batch", "/predict/batch", 1_000, batch_in_flight, 500, 30 * round_ + 5)):
                    payload = bodies(templates, f"{name}-{kind}-{round_}", count, rows, first)
                    before = server.cpu_seconds()
                    result = run_http_load(f"{server.url}{path}", payload, concurrency=concurrency, seconds=seconds,
                                           warmup_requests=4 if rows > 1 else 50, rows_per_request=rows,
                                           label=f"{name} {kind}")
                    cpu = server.cpu_seconds() - before
                    summary = result.summary()
                    summary["server_cpu_us_per_row"] = round(cpu / max(result.requests * rows, 1) * 1e6, 2)
                    summary["ids_repeated"] = result.requests + result.warmup_requests > count
                    runs[name][kind].append(summary)
                    print(f"round {round_ + 1}: {name:6s} {kind:6s} {summary['rows_per_second']:>10,.0f} rows/s "
                          f"{summary['server_cpu_us_per_row']:>7.1f} us CPU/row {summary['status_counts']}",
                          flush=True)
    finally:
        for server in servers.values():
            server.stop()
    medians = {name: {kind: _median(runs[name][kind]) for kind in ("single", "batch")} for name in CONFIGS}
    return {"runs": runs, "median": medians}


def paired_ratios(runs: dict[str, dict[str, list[dict]]]) -> dict[str, list[float]]:
    """Log vs off within each round (the two ran seconds apart): on a shared machine the spread of
    these says more than a ratio of medians taken from different moments."""
    return {f"{kind}_vs_off_by_round": [round(log["rows_per_second"] / off["rows_per_second"], 3)
                                        for log, off in zip(runs["normal"][kind], runs["off"][kind], strict=True)]
            for kind in ("single", "batch")}


def _median(summaries: list[dict]) -> dict[str, float]:
    return {key: round(statistics.median(s[key] for s in summaries), 2)
            for key in ("rps", "rows_per_second", "p50_ms", "p99_ms", "server_cpu_us_per_row")}


def overload(settings: Any, templates: list[dict], folder: Path, seconds: float) -> dict[str, Any]:
    """Load a logging server past what its log can take for ``seconds``; its memory against its idle size."""
    from lifecycle.course.durability import send_tracked
    from lifecycle.serving.prediction_log import PredictionLog
    from lifecycle.serving.process import start_server

    path = folder / "overload.sqlite"
    server = start_server("rest", settings=settings, prediction_log=path)
    try:
        send_tracked(f"{server.url}/predict/batch", [json.loads(b) for b in bodies(templates, "warm", 20, 1_000)],
                     concurrency=2)  # warm: connections, the predictor's large-batch path, the log's pages
        idle = _rss_bytes(server.process.pid)
        stop = threading.Event()
        samples: list[int] = []
        hog = threading.Thread(target=_hold_the_lock, args=(path, stop), daemon=True)
        sampler = threading.Thread(target=_sample_rss, args=(server.process.pid, stop, samples), daemon=True)
        hog.start()
        sampler.start()
        statuses = _mixed_load(server.url, templates, seconds)
        stop.set()
        hog.join()
        sampler.join()
        rss_after = _rss_bytes(server.process.pid)
    finally:
        server.stop()
    answered = {tid for tid, status in statuses.items() if status == 200}
    unlogged = answered - PredictionLog(path).transaction_ids()
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[str(status)] = counts.get(str(status), 0) + 1
    return {"seconds": seconds, "in_flight": {"single": 64, "batch_of_1000": 32}, "lock_held": "0.8 s of every 1 s",
            "idle_rss_mb": round(idle / 2**20, 1), "max_rss_mb": round(max(samples) / 2**20, 1),
            "rss_after_mb": round(rss_after / 2**20, 1), "max_rss_vs_idle": round(max(samples) / idle, 3),
            "transactions_by_status": counts, "answered_but_unlogged": len(unlogged)}


def _mixed_load(url: str, templates: list[dict], seconds: float) -> dict[str, int]:
    """64 single and 32 batch requests in flight for ``seconds``; each transaction id's status."""
    import aiohttp

    statuses: dict[str, int] = {}

    async def main() -> None:
        deadline = time.monotonic() + seconds
        counter = iter(range(10**9))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128),
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:
            async def worker(rows: int) -> None:
                while time.monotonic() < deadline:
                    start = next(counter) * 1_000
                    batch = [_later(templates, start + j, f"over-{start + j}") for j in range(rows)]
                    path, body = ("/predict", batch[0]) if rows == 1 else ("/predict/batch", {"transactions": batch})
                    try:
                        async with session.post(f"{url}{path}", json=body) as response:
                            await response.read()
                            status = response.status
                    except (aiohttp.ClientError, TimeoutError):
                        status = 0
                    for transaction in batch:
                        statuses[transaction["transaction_id"]] = status

            await asyncio.gather(*(worker(1) for _ in range(64)), *(worker(1_000) for _ in range(32)))

    thread = threading.Thread(target=lambda: asyncio.run(main()))
    thread.start()
    thread.join()
    return statuses


def _later(templates: list[dict], n: int, transaction_id: str) -> dict:
    """The ``n``-th transaction of a time-ordered stream that cycles through ``templates`` a month later each pass."""
    cycle, k = divmod(n, len(templates))
    stamp = datetime.fromisoformat(templates[k]["timestamp"]) + (100 + cycle) * CYCLE
    return {**templates[k], "transaction_id": transaction_id, "timestamp": stamp.isoformat()}


def _hold_the_lock(path: Path, stop: threading.Event) -> None:
    """Hold the log's write lock 0.8 s of every second until ``stop`` is set."""
    hog = sqlite3.connect(path, isolation_level=None, timeout=30)
    while not stop.is_set():
        hog.execute("BEGIN IMMEDIATE")
        stop.wait(0.8)
        hog.execute("COMMIT")
        stop.wait(0.2)
    hog.close()


def _sample_rss(pid: int, stop: threading.Event, samples: list[int]) -> None:
    while not stop.wait(0.25):
        samples.append(_rss_bytes(pid))


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load time per configuration and round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is kept (default 3)")
    parser.add_argument("--batch-in-flight", type=int, default=4, help="batch requests in flight (default 4)")
    parser.add_argument("--crash-runs", type=int, default=3, help="SIGKILL runs (default 3)")
    parser.add_argument("--overload-seconds", type=float, default=30.0, help="overload duration (default 30)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from lifecycle.config import load_settings
    from lifecycle.course.durability import crash_test
    from lifecycle.data import generate_transactions
    from lifecycle.serving.schema import request_bodies
    from lifecycle.tracking import ensure_champion

    settings = load_settings().ensure_dirs()
    ensure_champion(settings)
    folder = settings.workspace / "bench-prediction-log"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.sqlite*"):
        old.unlink()
    templates = request_bodies(generate_transactions(20_000, 11, start="2026-02-01", days=30)
                               .sort_values("timestamp", kind="stable"))
    load_before = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, Any] = {
        "benchmark": "prediction_log", "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(),
                    "load_average_before": load_before},
        "versions": {name: metadata.version(name) for name in ("fastapi", "uvicorn", "aiohttp", "scikit-learn")}
        | {"sqlite": sqlite3.sqlite_version},
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "single_in_flight": 32,
                     "batch_rows": 1_000, "batch_in_flight": args.batch_in_flight, "host": "127.0.0.1"},
    }
    result["throughput"] = throughput(settings, templates, folder, args.seconds, args.rounds, args.batch_in_flight)
    crashes = [crash_test(settings, folder / f"crash-{i}.sqlite", seconds=3.0, concurrency=32)
               for i in range(args.crash_runs)]
    result["crash"] = [{"answered": c.answered, "answered_but_unlogged": len(c.unlogged), "cut_off": c.cut_off,
                        "logged_unanswered": c.logged_unanswered, "other_statuses": c.other_statuses}
                       for c in crashes]
    result["overload"] = overload(settings, templates, folder, args.overload_seconds)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    median = result["throughput"]["median"]
    def ratio(config: str, kind: str) -> float:
        return round(median[config][kind]["rows_per_second"] / median["off"][kind]["rows_per_second"], 3)

    figures: dict[str, Any] = {f"{kind}_vs_off": ratio("normal", kind) for kind in ("single", "batch")}
    figures.update({f"{kind}_full_vs_off": ratio("full", kind) for kind in ("single", "batch")})
    figures.update({f"{kind}_log_cpu_us_per_row": round(median["normal"][kind]["server_cpu_us_per_row"]
                                                       - median["off"][kind]["server_cpu_us_per_row"], 2)
                    for kind in ("single", "batch")})
    figures.update(paired_ratios(result["throughput"]["runs"]))
    figures["answered_but_unlogged"] = max(run["answered_but_unlogged"] for run in result["crash"])
    figures["overload_rss_vs_idle"] = result["overload"]["max_rss_vs_idle"]
    result["figures"] = figures
    result["targets"] = {name: {"target": target, "measured": figures[name],
                                "met": figures[name] <= target if name in ("answered_but_unlogged",
                                                                           "overload_rss_vs_idle")
                                else figures[name] >= target}
                         for name, target in TARGETS.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, target in result["targets"].items():
        print(f"{name:24s} target {target['target']:<6} measured {target['measured']:<8} "
              f"{'met' if target['met'] else 'NOT MET'}")
    print(f"crash runs: {[run['answered'] for run in result['crash']]} answered, "
          f"{[run['answered_but_unlogged'] for run in result['crash']]} unlogged")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
