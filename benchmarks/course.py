"""Benchmark: the whole course with `lifecycle run`, each lesson against its floor, per profile.

    .venv/bin/python benchmarks/course.py [--profiles smoke full] [--rounds N] [--top 5]

The floor is eight notebooks, one per lesson: the lesson's `parameters` cell and the imports of its
import cell (its first code cell after `parameters`), nothing else. A floor notebook starts a kernel
and pays for what the lesson imports; the rest of a lesson's time is its own work. The floor and each
profile run back to back in every round, each with `lifecycle run` (the same command, papermill
settings and environment a learner's `make run` uses) from a clean temporary workspace, as a new
learner's first run would. The load average is recorded before and after each run: on a shared
machine compare the ratios, not the seconds.

Targets on 2 cores (issue 19): smoke <= 90 s and <= 2.5 x the floor, full <= 180 s, each lesson
<= 30 s in smoke and <= 45 s in full. Writes benchmarks/results/course.json (per round, and the
median over rounds) with each lesson's slowest cells, read from papermill's per-cell durations.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "course.json"
TARGETS = {"smoke": {"total": 90.0, "lesson": 30.0, "floor_multiple": 2.5},
           "full": {"total": 180.0, "lesson": 45.0}}
ENVIRONMENT = {"DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
               "OMP_NUM_THREADS": "1"}  # the Makefile's, as `make run` sets them


def import_cell(lesson: Path) -> tuple[nbformat.NotebookNode, str]:
    """A lesson's ``parameters`` cell and the import statements of its next code cell."""
    code = [cell for cell in nbformat.read(lesson, as_version=4).cells if cell.cell_type == "code"]
    at = next(i for i, cell in enumerate(code) if "parameters" in cell.metadata.get("tags", []))
    source = code[at + 1].source
    imports = [ast.get_source_segment(source, node) for node in ast.parse(source).body
               if isinstance(node, ast.Import | ast.ImportFrom)]
    return code[at], "\n".join(imports)


def write_floor(folder: Path) -> Path:
    """A copy of the kit's root whose notebooks are the floor's, for ``LIFECYCLE_ROOT``."""
    (folder / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
    for lesson in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        parameters, imports = import_cell(lesson)
        floor = nbformat.v4.new_notebook(metadata=nbformat.read(lesson, as_version=4).metadata)
        floor.cells = [nbformat.v4.new_code_cell(parameters.source, metadata={"tags": ["parameters"]}),
                       nbformat.v4.new_code_cell(imports)]
        nbformat.write(floor, folder / "notebooks" / lesson.name)
    return folder


def slowest_cells(executed: Path, top: int) -> list[dict]:
    """The ``top`` slowest cells of an executed notebook (papermill's ``metadata.papermill.duration``),
    numbered as in the source notebook (papermill's injected parameters cell not counted)."""
    cells = [cell for cell in nbformat.read(executed, as_version=4).cells
             if "injected-parameters" not in cell.metadata.get("tags", [])]
    timed = [{"cell": index, "seconds": round(cell.metadata.get("papermill", {}).get("duration") or 0.0, 2),
              "first_line": (cell.source.strip().splitlines() or [""])[0][:70]}
             for index, cell in enumerate(cells) if cell.cell_type == "code"]
    return sorted(timed, key=lambda c: -c["seconds"])[:top]


def run_course(profile: str, root: Path | None, top: int, keep: Path | None = None) -> dict:
    """One ``lifecycle run --profile PROFILE`` from a clean workspace (of the floor's root if given);
    ``keep`` receives a copy of its build folder (executed notebooks and ``summary.json``)."""
    with tempfile.TemporaryDirectory(prefix=f"course-{profile}-") as tmp:
        env = {**os.environ, **ENVIRONMENT, "LIFECYCLE_WORKSPACE": f"{tmp}/workspace",
               "LIFECYCLE_BUILD": f"{tmp}/build"}
        if root:
            env["LIFECYCLE_ROOT"] = str(root)
        load_before = os.getloadavg()[0]
        clock = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "run", "--profile", profile],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - clock
        summary_file = Path(tmp) / "build" / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {"notebooks": {}}
        lessons = {name: {"status": run["status"], "seconds": run["seconds"],
                          "slowest_cells": slowest_cells(Path(run["executed"]), top) if not root else []}
                   for name, run in summary["notebooks"].items()}
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(Path(tmp) / "build", keep)
    return {"exit_code": done.returncode, "wall_seconds": round(wall, 2), "seconds": summary.get("seconds", 0.0),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "lessons": lessons, "error": done.stderr.strip().splitlines()[-1] if done.returncode else ""}


def compare(profile: str, run: dict, floor: dict) -> dict:
    """A profile's run beside the floor of the same round: each lesson as seconds, as a multiple of
    its own floor notebook and as a multiple of the floor's total."""
    floor_total = floor["seconds"]
    lessons = {}
    for name, lesson in run["lessons"].items():
        own = floor["lessons"].get(name, {}).get("seconds") or float("nan")
        lessons[name] = {**lesson, "floor_seconds": own, "x_own_floor": round(lesson["seconds"] / own, 2),
                         "x_floor_total": round(lesson["seconds"] / floor_total, 2)}
    return {**run, "lessons": lessons, "floor_seconds": floor_total,
            "x_floor": round(run["seconds"] / floor_total, 2)}


def median_profile(profile: str, rounds: list[dict]) -> dict:
    """The median over rounds of a profile's total, its ratio to the floor and each lesson's seconds."""
    names = list(rounds[-1]["lessons"])
    lessons = {name: {key: statistics.median(r["lessons"][name][key] for r in rounds if name in r["lessons"])
                      for key in ("seconds", "floor_seconds", "x_own_floor", "x_floor_total")}
               for name in names}
    total = statistics.median(r["seconds"] for r in rounds)
    target = TARGETS.get(profile, {})
    over = {name: lesson["seconds"] for name, lesson in lessons.items()
            if lesson["seconds"] > target.get("lesson", float("inf"))}
    x_floor = statistics.median(r["x_floor"] for r in rounds)
    met = (all(r["exit_code"] == 0 for r in rounds) and total <= target.get("total", float("inf"))
           and x_floor <= target.get("floor_multiple", float("inf")) and not over)
    return {"seconds": total, "x_floor": x_floor, "targets": target, "within_targets": met,
            "lessons_over": over, "lessons": lessons,
            "slowest_cells": {name: rounds[-1]["lessons"][name]["slowest_cells"] for name in names}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["smoke"], choices=sorted(TARGETS))
    parser.add_argument("--rounds", type=int, default=1, help="floor and profiles, back to back, this many times")
    parser.add_argument("--top", type=int, default=5, help="slowest cells kept per lesson")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy each profile's last build (summary.json, executed notebooks) to KEEP/PROFILE")
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="course-floor-") as tmp:
        floor_root = write_floor(Path(tmp) / "kit")
        for number in range(1, args.rounds + 1):
            print(f"round {number}/{args.rounds}: floor", flush=True)
            floor = run_course("smoke", floor_root, args.top)
            this = {"floor": floor, "profiles": {}}
            for profile in args.profiles:
                print(f"round {number}/{args.rounds}: {profile}", flush=True)
                keep = args.keep / profile if args.keep and number == args.rounds else None
                this["profiles"][profile] = compare(profile, run_course(profile, None, args.top, keep), floor)
            rounds.append(this)
    floor_lessons = {name: statistics.median(r["floor"]["lessons"][name]["seconds"] for r in rounds)
                     for name in rounds[-1]["floor"]["lessons"]}
    results = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average": {"before": rounds[0]["floor"]["load_before"],
                                     "after": rounds[-1]["profiles"][args.profiles[-1]]["load_after"]}},
        "rounds": args.rounds,
        "floor": {"seconds": statistics.median(r["floor"]["seconds"] for r in rounds), "lessons": floor_lessons},
        "profiles": {p: median_profile(p, [r["profiles"][p] for r in rounds]) for p in args.profiles},
        "per_round": rounds,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"load average {results['machine']['load_average']['before']} before, "
          f"{results['machine']['load_average']['after']} after; median of {args.rounds} round(s)")
    print(f"floor: {results['floor']['seconds']:.1f} s")
    for profile, result in results["profiles"].items():
        print(f"{profile}: {result['seconds']:.1f} s = {result['x_floor']:.2f} x the floor "
              f"(targets {result['targets']}), lessons over: {result['lessons_over'] or 'none'}")
        for name, lesson in result["lessons"].items():
            slowest = result["slowest_cells"][name][0] if result["slowest_cells"][name] else {}
            print(f"  {name:<24} {lesson['seconds']:>6.1f} s  {lesson['x_own_floor']:>5.2f} x own floor "
                  f"({lesson['floor_seconds']:.1f} s)  {lesson['x_floor_total']:.2f} x floor total"
                  f"   slowest: cell {slowest.get('cell')} {slowest.get('seconds')} s `{slowest.get('first_line')}`")


if __name__ == "__main__":
    main()
