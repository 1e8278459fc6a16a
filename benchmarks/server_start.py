"""Model servers' start: from the call to a ready server, REST and gRPC, loading from a local export
(this tree) side by side with loading through MLflow in the server (``--before``, a checkout of the
commit before the export, e.g. ``git archive <commit> | tar -x -C /tmp/base``).

Each round starts, in turn, each kind from each tree on the same registered champion of a fresh
workspace, and measures the wall seconds from the call to the first healthy answer and the server
process's CPU seconds (its own accounting, steadier than wall time on a shared machine). The "after"
side is ``start_server`` as the lessons call it (the export is resolved in this process, which has
MLflow imported, as a lesson's kernel has); the "before" side is the older tree's
``python -m lifecycle.serving KIND --model URI`` started through the same launcher.

Run: ``.venv/bin/python benchmarks/server_start.py --before /tmp/base --rounds 6``; writes
``results/server_start.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "server_start.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout whose servers load through MLflow")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    os.environ.update(OMP_NUM_THREADS="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(LIFECYCLE_WORKSPACE=f"{folder}/workspace", LIFECYCLE_BUILD=f"{folder}/build")
        result = measure(args.before.resolve(), args.rounds)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for row, figures in result["summary"].items():
        print(f"{row:>12}: ready {figures['ready_seconds_median']:.2f} s, "
              f"server CPU {figures['cpu_seconds_median']:.2f} s")
    print(f"after/before, ready (median of pairs): {result['ratios']}")


def measure(before: Path, rounds: int) -> dict:
    from lifecycle.config import load_settings
    from lifecycle.serving.process import launch_server, start_server
    from lifecycle.tracking import ensure_champion

    settings = load_settings().ensure_dirs()
    ensure_champion(settings, seed=42)
    uri = f"models:/{settings.registered_model}@champion"
    start_server("rest", settings=settings).stop()  # the first export (written once per version), not timed
    load_before = [load_average()]
    runs: dict[str, list[dict]] = {f"{side}_{kind}": [] for kind in ("rest", "grpc") for side in ("before", "after")}
    for _ in range(rounds):
        for kind in ("rest", "grpc"):
            for side in ("before", "after"):
                began = time.perf_counter()
                if side == "after":
                    server = start_server(kind, settings=settings)
                else:
                    from lifecycle._proc import ReservedPort

                    reserved = ReservedPort("127.0.0.1")
                    command = [sys.executable, "-P", "-m", "lifecycle.serving", kind, "--port", str(reserved.port),
                               "--model", uri, "--prediction-log", "off"]
                    server = launch_server(command, kind, "127.0.0.1", reserved.port, settings=settings,
                                           env={"PYTHONPATH": str(before)}, reserved=reserved)  # -P: not the cwd's tree
                ready = time.perf_counter() - began
                cpu = server.cpu_seconds()
                server.stop()
                runs[f"{side}_{kind}"].append({"ready_seconds": round(ready, 3), "cpu_seconds": round(cpu, 3)})
        load_before.append(load_average())
    summary = {name: {"ready_seconds_median": statistics.median(r["ready_seconds"] for r in rows),
                      "cpu_seconds_median": statistics.median(r["cpu_seconds"] for r in rows)}
               for name, rows in runs.items()}
    ratios = {kind: {figure: round(statistics.median(
        a[figure] / b[figure] for a, b in zip(runs[f"after_{kind}"], runs[f"before_{kind}"], strict=True)), 3)
        for figure in ("ready_seconds", "cpu_seconds")} for kind in ("rest", "grpc")}
    return {"what": "model server start: call to ready, and the server's CPU seconds; after = local export, "
                    "before = MLflow in the server", "before_tree": str(before),
            "before_commit": git_commit(before), "after_commit": git_commit(Path(__file__).parent.parent),
            "rounds": rounds, "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
            "load_average_per_round": load_before, "runs": runs, "summary": summary, "ratios": ratios}


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def git_commit(tree: Path) -> str | None:
    stamp = tree / "COMMIT"
    if stamp.is_file():
        return stamp.read_text().strip()
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


if __name__ == "__main__":
    main()
