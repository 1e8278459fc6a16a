"""Benchmark: the instructor's two commands, `lifecycle site` on a smoke run and `lifecycle grade` on a class.

    .venv/bin/python benchmarks/instructor.py [--build build/] [--learners 30] [--rounds 3]

Targets on 2 cores: the site of a smoke run <= 30 s; grading 30 learners x 4 exercises <= 300 s. The
site is built `--rounds` times from one smoke run (made first in a temporary folder unless `--build`
names one), the median kept. The class is `lifecycle.course.grade_demo.demo_class`: most learners
correct, a fifth answering constants, one untouched, one handing in half, and one hand-in of each broken
kind (a syntax error, a loop that never ends, which costs the full time limit, a deleted check cell, a
file that is not JSON). Writes benchmarks/results/instructor.json, with the load average before and after
each measurement: on a shared machine, read the figures with it.
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
RESULTS = Path(__file__).parent / "results" / "instructor.json"
TARGETS = {"site_seconds": 30.0, "grade_seconds": 300.0}


def _env(tmp: str) -> dict[str, str]:
    return {**os.environ, "LIFECYCLE_WORKSPACE": f"{tmp}/workspace", "LIFECYCLE_BUILD": f"{tmp}/build",
            "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}


def measure_site(build: Path | None, rounds: int, tmp: str) -> dict:
    env = _env(tmp)
    if build is None:
        done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "run", "--profile", "smoke", "--no-progress"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the smoke run failed: {done.stderr[-2000:]}")
        build = Path(tmp) / "build"
    seconds = []
    for round_ in range(rounds):
        clock = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "site", "--build", str(build), "--out",
                               f"{tmp}/site-{round_}"], cwd=ROOT, env=env, capture_output=True, text=True)
        seconds.append(round(time.perf_counter() - clock, 2))
        if done.returncode:
            raise SystemExit(f"lifecycle site failed: {done.stderr[-2000:]}")
    lessons = len(json.loads((build / "summary.json").read_text())["notebooks"])
    median = statistics.median(seconds)
    return {"lessons": lessons, "rounds_seconds": seconds, "median_seconds": median,
            "target_seconds": TARGETS["site_seconds"], "within_target": median <= TARGETS["site_seconds"]}


def measure_grade(learners: int, jobs: int, timeout: float, tmp: str) -> dict:
    from lifecycle.course.grade import grade_class
    from lifecycle.course.grade_demo import demo_class, write_class
    from lifecycle.course.grade_notebook import load_exercises

    exercises = [exercise.name for exercise in load_exercises(ROOT / "exercises")]
    submissions = write_class(Path(tmp) / "hand-ins", demo_class(exercises, learners), ROOT)
    clock = time.perf_counter()
    book, _ = grade_class(submissions, Path(tmp) / "gradebook" / "class.csv", timeout=timeout, jobs=jobs, echo=None)
    wall = time.perf_counter() - clock
    ran = [n.seconds for n in book.notebooks if n.seconds > 0]
    return {"learners": learners, "exercises": len(exercises), "notebooks_run": len(ran), "jobs": jobs,
            "timeout_seconds": timeout, "wall_seconds": round(wall, 1),
            "notebook_seconds_median": round(statistics.median(ran), 2),
            "notebook_seconds_max": round(max(ran), 2), "notebook_seconds_total": round(sum(ran), 1),
            # Notebook-seconds per second of wall time: how much of the 2 kernels at a time the grader keeps busy.
            "kernels_busy": round(sum(ran) / wall, 2), "cases_graded": len(book.rows),
            "statuses": {s: sum(r.status == s for r in book.rows) for s in ("passed", "failed", "error", "missing")},
            "target_seconds": TARGETS["grade_seconds"], "within_target": wall <= TARGETS["grade_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=None, help="a smoke run's folder (default: run one first)")
    parser.add_argument("--rounds", type=int, default=3, help="site builds, the median kept (default 3)")
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="the grader's limit per notebook (default 60)")
    parser.add_argument("--only", choices=("site", "grade"), default=None)
    args = parser.parse_args()
    results: dict = {"machine": {"cores": os.cpu_count(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory(prefix="bench-instructor-") as tmp:
        for name, measure in (("site", lambda: measure_site(args.build, args.rounds, tmp)),
                              ("grade", lambda: measure_grade(args.learners, args.jobs, args.timeout, tmp))):
            if args.only in (None, name):
                before = [round(x, 2) for x in os.getloadavg()]
                results[name] = {**measure(), "load_average_before": before,
                                 "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    RESULTS.write_text(json.dumps({**old, **results}, indent=2) + "\n")
    if "site" in results:
        site = results["site"]
        print(f"site of a smoke run ({site['lessons']} lessons): {site['median_seconds']} s median of "
              f"{site['rounds_seconds']} (target {site['target_seconds']} s)")
    if "grade" in results:
        grade = results["grade"]
        print(f"grading {grade['learners']} learners x {grade['exercises']} exercises: {grade['wall_seconds']} s "
              f"(target {grade['target_seconds']} s), {grade['notebooks_run']} notebooks run, median "
              f"{grade['notebook_seconds_median']} s each, {grade['kernels_busy']} kernels busy on average")
    for name in ("site", "grade"):
        if name in results:
            print(f"{name}: load average before {results[name]['load_average_before']}, "
                  f"after {results[name]['load_average_after']}")


if __name__ == "__main__":
    main()
