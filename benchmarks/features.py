"""Benchmark: point-in-time features for 1M transactions (target: <= 5 s), and what the streaming
path (``FeatureState``, what the model server keeps) costs per transaction.

    .venv/bin/python benchmarks/features.py                 # 1M rows, writes benchmarks/results/features.json
    .venv/bin/python benchmarks/features.py --rows 200000 --out /tmp/features.json

The table comes from the course's generator (not timed). ``build_features`` is timed ``--repeat``
times on the whole table; the best run is the figure (the others show the noise of a shared
machine). The streaming part learns ``--history-rows`` transactions with ``FeatureState.fit``,
then scores the next ``--stream-rows`` one at a time, timing ``features`` (the request path)
and ``update`` per call, and checks that the streamed features equal the batch ones.
Taught in notebooks/02_feature_engineering.ipynb.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from lifecycle.data import generate_transactions
from lifecycle.features import FEATURE_COLUMNS, FeatureState, build_features

TARGET_SECONDS = 5.0
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "features.json"


def time_build_features(table: pd.DataFrame, repeat: int) -> dict:
    """Seconds ``build_features`` takes on the whole table, ``repeat`` times."""
    runs = []
    for _ in range(repeat):
        clock = time.perf_counter()
        build_features(table)
        runs.append(time.perf_counter() - clock)
    best = min(runs)
    return {"rows": len(table), "users": int(table["user_id"].nunique()), "seconds_best": round(best, 3),
            "seconds_runs": [round(r, 3) for r in runs], "rows_per_second": round(len(table) / best),
            "target_seconds": TARGET_SECONDS, "meets_target": best <= TARGET_SECONDS}


def time_feature_state(table: pd.DataFrame, history_rows: int, stream_rows: int) -> dict:
    """Fit a ``FeatureState`` on the first rows, then stream the next ones through it one at a time."""
    history, new = table.iloc[:history_rows], table.iloc[history_rows:history_rows + stream_rows]
    clock = time.perf_counter()
    state = FeatureState().fit(history)
    fit_seconds = time.perf_counter() - clock
    features_ns, update_ns, rows = [], [], []
    for txn in new.to_dict("records"):
        start = time.perf_counter_ns()
        row = state.features(txn)
        middle = time.perf_counter_ns()
        state.update(txn)
        features_ns.append(middle - start)
        update_ns.append(time.perf_counter_ns() - middle)
        rows.append(row)
    streamed = pd.DataFrame(rows, index=new.index)[FEATURE_COLUMNS].to_numpy()
    batch = build_features(new, history=history).to_numpy()
    return {"history_rows": len(history), "fit_seconds": round(fit_seconds, 3),
            "fit_rows_per_second": round(len(history) / fit_seconds), "streamed_rows": len(new),
            "features_us": _summary(features_ns), "update_us": _summary(update_ns),
            "score_and_update_us_mean": round((np.mean(features_ns) + np.mean(update_ns)) / 1_000, 1),
            "max_abs_difference_vs_build_features": float(np.max(np.abs(streamed - batch)))}


def _summary(nanoseconds: list[int]) -> dict:
    micro = np.asarray(nanoseconds) / 1_000
    return {"mean": round(float(micro.mean()), 1), "p50": round(float(np.percentile(micro, 50)), 1),
            "p99": round(float(np.percentile(micro, 99)), 1)}


def machine() -> dict:
    """What the numbers were measured on (the course machine is 2 cores, often shared)."""
    return {"cores": os.cpu_count(), "python": platform.python_version(), "pandas": pd.__version__,
            "numpy": np.__version__, "platform": platform.platform(), "processor": platform.machine(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="transactions in the table (default 1M)")
    parser.add_argument("--users", type=int, default=50_000,
                        help="customers (default 50k: about 20 transactions each in the 30 days)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of build_features (best counts)")
    parser.add_argument("--history-rows", type=int, default=200_000, help="rows FeatureState learns first")
    parser.add_argument("--stream-rows", type=int, default=20_000, help="rows then scored one at a time")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the JSON result goes")
    args = parser.parse_args(argv)

    results = {"benchmark": "features", "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": machine()}
    clock = time.perf_counter()
    table = generate_transactions(rows=args.rows, seed=args.seed, users=args.users)
    results["generate_seconds"] = round(time.perf_counter() - clock, 3)
    results["build_features"] = time_build_features(table, args.repeat)
    results["feature_state"] = time_feature_state(table, args.history_rows, args.stream_rows)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    batch, stream = results["build_features"], results["feature_state"]
    print(f"build_features: {batch['rows']:,} rows in {batch['seconds_best']} s (best of {args.repeat}; "
          f"runs {batch['seconds_runs']}), {batch['rows_per_second']:,} rows/s; "
          f"target <= {TARGET_SECONDS} s: {'met' if batch['meets_target'] else 'MISSED'}")
    print(f"FeatureState: fit {stream['history_rows']:,} rows in {stream['fit_seconds']} s; per transaction "
          f"features {stream['features_us']['p50']} µs (p50), {stream['features_us']['p99']} µs (p99), "
          f"update {stream['update_us']['p50']} µs (p50); max |stream - batch| = "
          f"{stream['max_abs_difference_vs_build_features']:.1e}")
    print(f"machine: {results['machine']}; written to {args.out}")
    return 0 if batch["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
