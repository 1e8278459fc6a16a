"""Serving benchmark: the same model and requests through the tutorial's server and ours over REST
and gRPC (same predictor, same micro-batching), each framework's constant-answer floor, batches over
both protocols, and open-loop latency at a fixed rate; on 127.0.0.1, bounded in time.

    .venv/bin/python benchmarks/serving.py [--seconds 3] [--rounds 3] [--out benchmarks/results/serving.json]

(also ``lifecycle bench serving``). Trains and registers a champion first if the registry has none.
REST load comes from aiohttp, gRPC load from grpcio's asyncio client, both in this process; the
results say which. Each server is reported as a share of its own framework's floor (REST of
REST-constant, gRPC of gRPC-constant), gRPC batches against REST batches, with the server CPU per
transaction beside every ratio. Writes the numbers to benchmarks/results/serving.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load time per configuration (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is kept (default 3)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--model", default=None, help="registry URI (default: the champion)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from lifecycle.course.serving_bench import run_serving_benchmark
    from lifecycle.course.serving_report import format_report, write_results

    result = run_serving_benchmark(seconds=args.seconds, rounds=args.rounds, concurrency=args.concurrency,
                                   model_uri=args.model)
    print(format_report(result))
    print(f"wrote {write_results(result, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
