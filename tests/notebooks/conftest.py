"""The one smoke course run that the notebook tests share (a few minutes: run it once per session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CourseRun:
    """What ``lifecycle run --profile smoke`` left behind: executed notebooks and the summary."""

    build: Path
    summary: dict

    @property
    def notebooks(self) -> list[Path]:
        return sorted((self.build / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run_smoke_course(folder: Path) -> CourseRun:
    """Run the smoke course from a clean workspace under ``folder``, as ``make run`` does."""
    env = {**os.environ, "LIFECYCLE_WORKSPACE": str(folder / "workspace"), "LIFECYCLE_BUILD": str(folder / "build")}
    done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "run", "--profile", "smoke", "--no-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1_000)
    assert done.returncode == 0, f"lifecycle run failed:\n{done.stderr[-3000:]}"
    return CourseRun(folder / "build", json.loads((folder / "build" / "summary.json").read_text()))


@pytest.fixture(scope="session")
def smoke_course(tmp_path_factory) -> CourseRun:
    """The smoke course, run once for every test that reads its executed notebooks or its summary."""
    return run_smoke_course(tmp_path_factory.mktemp("smoke-course"))


@pytest.fixture(scope="session")
def smoke_course_runner():
    """:func:`run_smoke_course` itself, for a test that needs a second, independent run."""
    return run_smoke_course
