"""Benchmark: generate 1M transactions (target <= 5 s, <= 2 GB) and write them as CSV.

    .venv/bin/python benchmarks/data.py [--rows 1000000]

Writes benchmarks/results/data.json. Peak memory is the process's max RSS (Linux ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from lifecycle.data import generate_transactions, write_transactions

RESULTS = Path(__file__).parent / "results" / "data.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    generate, write = [], []
    for _ in range(args.repeats):
        clock = time.perf_counter()
        frame = generate_transactions(rows=args.rows, seed=1)
        generate.append(time.perf_counter() - clock)
        with tempfile.TemporaryDirectory() as tmp:
            clock = time.perf_counter()
            write_transactions(frame, Path(tmp) / "t.csv")
            write.append(time.perf_counter() - clock)
    result = {
        "rows": args.rows,
        "generate_seconds_best": round(min(generate), 3),
        "write_csv_seconds_best": round(min(write), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": {"generate_seconds": 5.0, "peak_rss_mb": 2048},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
