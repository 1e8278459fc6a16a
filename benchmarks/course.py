"""Benchmark: the whole course with `lifecycle run`, per notebook, for both profiles.

    .venv/bin/python benchmarks/course.py [--profiles smoke full]

Targets on 2 cores: smoke <= 90 s, full <= 180 s, each notebook <= 45 s. Each profile runs from a
clean workspace (a temporary one), as a new learner's first run would. Writes
benchmarks/results/course.json and names the lessons over budget.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "course.json"
TARGETS = {"smoke": 90.0, "full": 180.0, "notebook": 45.0}


def run_profile(profile: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"course-{profile}-") as tmp:
        env = {**os.environ, "LIFECYCLE_WORKSPACE": f"{tmp}/workspace", "LIFECYCLE_BUILD": f"{tmp}/build"}
        clock = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "run", "--profile", profile, "--no-progress"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - clock
        summary_file = Path(tmp) / "build" / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {"notebooks": {}}
    notebooks = {name: {"status": run["status"], "seconds": run["seconds"]}
                 for name, run in summary["notebooks"].items()}
    over = [name for name, run in notebooks.items() if run["seconds"] > TARGETS["notebook"]]
    return {"exit_code": done.returncode, "wall_seconds": round(wall, 1),
            "notebook_seconds_total": round(sum(r["seconds"] for r in notebooks.values()), 1),
            "target_seconds": TARGETS[profile], "within_target": wall <= TARGETS[profile] and not over,
            "notebooks_over_45s": over, "notebooks": notebooks,
            "error": done.stderr.strip().splitlines()[-1] if done.returncode else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["smoke", "full"])
    args = parser.parse_args()
    results = {"machine": {"cores": os.cpu_count(), "python": platform.python_version()},
               "profiles": {profile: run_profile(profile) for profile in args.profiles}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for profile, result in results["profiles"].items():
        print(f"{profile}: {result['wall_seconds']} s (target {result['target_seconds']} s), "
              f"over 45 s: {result['notebooks_over_45s'] or 'none'}")
        for name, run in result["notebooks"].items():
            print(f"  {name:<28} {run['status']:<7} {run['seconds']:>6.1f} s")


if __name__ == "__main__":
    main()
