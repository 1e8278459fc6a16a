"""Benchmark: `lifecycle services up` until every backend answers, and lessons 01, 03, 04 on the services
against the embedded defaults, side by side.

    .venv/bin/python benchmarks/services.py [--rounds 2] [--only 01,03,04]

Targets on 2 cores: the services up and healthy in <= 30 s; the backed lessons' total within 1.5x the
embedded defaults' total. Each round starts the services from nothing in a fresh workspace, then runs
the lessons once on each backend, the order alternating between rounds (a busy machine slows whatever
runs later otherwise); every run starts from a clean workspace, as a new learner's would. The ratio is
computed per round (the two runs of a round are next to each other in time) and its median is kept.
Writes benchmarks/results/services.json with the load average before and after.
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "services.json"
TARGETS = {"up_seconds": 30.0, "ratio": 1.5}
# Backends a shell may have exported: the embedded run must not see them, the services run takes its own.
OUTSIDE = ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "LIFECYCLE_DVC_REMOTE", "LIFECYCLE_DVC_REMOTE_ENDPOINT",
           "LIFECYCLE_PREFECT_WORK_POOL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PREFECT_HOME")


def lifecycle(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lifecycle.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)


def run_lessons(env: dict[str, str], only: str, backends: str) -> dict:
    clock = time.perf_counter()
    done = lifecycle(env, "run", "--only", only, "--backends", backends, "--no-progress")
    wall = time.perf_counter() - clock
    summary_file = Path(env["LIFECYCLE_BUILD"]) / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {"notebooks": {}}
    notebooks = {name: run["seconds"] for name, run in summary["notebooks"].items()}
    return {"exit_code": done.returncode, "wall_seconds": round(wall, 1),
            "notebook_seconds_total": round(sum(notebooks.values()), 1), "notebooks": notebooks,
            "error": done.stderr.strip().splitlines()[-1] if done.returncode else ""}


def run_round(index: int, only: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    with tempfile.TemporaryDirectory(prefix="services-bench-") as tmp:
        services, embedded = ({**base, "LIFECYCLE_WORKSPACE": f"{tmp}/{name}/workspace",
                               "LIFECYCLE_BUILD": f"{tmp}/{name}/build"} for name in ("services", "embedded"))
        clock = time.perf_counter()
        up = lifecycle(services, "services", "up")
        up_seconds = time.perf_counter() - clock
        state_file = Path(services["LIFECYCLE_WORKSPACE"]) / "services" / "state.json"
        ready_after = json.loads(state_file.read_text())["ready_after"] if state_file.is_file() else {}
        try:
            if up.returncode != 0:
                return {"up_exit_code": up.returncode, "error": up.stderr.strip()[-2000:]}
            order = ("embedded", "services") if index % 2 == 0 else ("services", "embedded")
            runs = {name: run_lessons(services if name == "services" else embedded, only, name) for name in order}
        finally:
            lifecycle(services, "services", "down")
    ratio = runs["services"]["notebook_seconds_total"] / max(runs["embedded"]["notebook_seconds_total"], 1e-9)
    return {"order": list(order), "up_seconds": round(up_seconds, 1), "ready_after": ready_after,
            "runs": runs, "ratio": round(ratio, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="01,03,04")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rounds = [run_round(index, args.only) for index in range(args.rounds)]
    good = [r for r in rounds if "ratio" in r and all(run["exit_code"] == 0 for run in r["runs"].values())]
    summary = {}
    if good:
        summary = {"up_seconds_median": statistics.median(r["up_seconds"] for r in good),
                   "ratio_median": statistics.median(r["ratio"] for r in good)}
        summary["within_target"] = (summary["up_seconds_median"] <= TARGETS["up_seconds"]
                                    and summary["ratio_median"] <= TARGETS["ratio"])
    results = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                           "load_average_before": [round(x, 2) for x in load_before],
                           "load_average_after": [round(x, 2) for x in os.getloadavg()]},
               "lessons": args.only, "targets": TARGETS, "summary": summary, "rounds": rounds}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for index, result in enumerate(rounds, start=1):
        if "ratio" not in result:
            print(f"round {index}: services did not come up: {result['error']}")
            continue
        runs = result["runs"]
        seconds = {name: run["notebook_seconds_total"] for name, run in runs.items()}
        print(f"round {index}: up in {result['up_seconds']} s; lessons {args.only}: embedded {seconds['embedded']} s, "
              f"services {seconds['services']} s (x{result['ratio']}), order {' then '.join(result['order'])}")
    print(f"median: {summary or 'no complete round'}; load average before {load_before[0]:.1f}, "
          f"after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
