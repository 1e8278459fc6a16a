"""The one smoke course run that the notebook tests share (a few minutes: run it once per session).

When a collected test needs it, the run starts as soon as collection ends, in the background (a
managed process tied to pytest), so it overlaps the unit tests and nbval instead of adding to them;
the ``smoke_course`` fixture waits for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COURSE_TIMEOUT = 1_500  # seconds: the smoke course takes 3–5 minutes on 2 busy cores


@dataclass(frozen=True)
class CourseRun:
    """What ``lifecycle run --profile smoke`` left behind: executed notebooks and the summary."""

    build: Path
    summary: dict

    @property
    def notebooks(self) -> list[Path]:
        return sorted((self.build / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _command(folder: Path, environ: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """``lifecycle run`` in ``folder``, in ``environ`` (default: this one) with its own workspace and build."""
    env = {**(environ or os.environ), "LIFECYCLE_WORKSPACE": str(folder / "workspace"),
           "LIFECYCLE_BUILD": str(folder / "build")}
    env.pop("LIFECYCLE_RECORD_FILE", None)  # the runner gives each lesson its own
    return [sys.executable, "-m", "lifecycle.cli", "run", "--profile", "smoke", "--no-progress"], env


def _result(folder: Path, returncode: int | None, output: str) -> CourseRun:
    assert returncode == 0, f"lifecycle run failed (exit status {returncode}):\n{output[-3000:]}"
    return CourseRun(folder / "build", json.loads((folder / "build" / "summary.json").read_text()))


def run_smoke_course(folder: Path, environ: dict[str, str] | None = None) -> CourseRun:
    """Run the smoke course from a clean workspace under ``folder``, as ``make run`` does, in ``environ``
    (default: this one; the root conftest keeps the one from before the tests as ``config.clean_environ``)."""
    command, env = _command(folder, environ)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=COURSE_TIMEOUT)
    return _result(folder, done.returncode, done.stderr)


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    """Start the smoke course in the background if a test that will run uses it."""
    if config.option.collectonly or not any("smoke_course" in getattr(item, "fixturenames", ()) for item in items):
        return
    from lifecycle._proc import launch

    folder = Path(tempfile.mkdtemp(prefix="lifecycle-smoke-course-"))
    command, env = _command(folder, getattr(config, "clean_environ", None))
    course = launch(command, "the smoke course", folder / "run.log", env=env, cwd=ROOT, port=None)
    config.smoke_course_started = (folder, course)
    config.add_cleanup(lambda: (course.stop(), shutil.rmtree(folder, ignore_errors=True)))


@pytest.fixture(scope="session")
def smoke_course(request, tmp_path_factory) -> CourseRun:
    """The smoke course, run once for every test that reads its executed notebooks or its summary."""
    started = getattr(request.config, "smoke_course_started", None)
    if started is None:
        return run_smoke_course(tmp_path_factory.mktemp("smoke-course"), getattr(request.config, "clean_environ", None))
    folder, course = started
    try:
        course.process.wait(timeout=COURSE_TIMEOUT)
    except subprocess.TimeoutExpired:
        course.stop()
    return _result(folder, course.process.returncode, course.log_tail(60))


@pytest.fixture(scope="session")
def smoke_course_runner(request):
    """:func:`run_smoke_course`, for a test that needs a second, independent run (in the environment of
    before the tests)."""
    return lambda folder: run_smoke_course(folder, getattr(request.config, "clean_environ", None))
