"""pytest hooks for the whole kit (tests/ and the notebooks nbval executes).

* nbval's kernels get a scratch workspace and build folder of their own, so ``make test`` never changes
  the learner's ``workspace/``, and the lessons run there from nothing, as ``lifecycle run`` does (the
  session-scoped fixtures of tests/ use another scratch workspace);
* each lesson nbval executes records (``lifecycle.record``) into a file of its own, so the records of
  nbval's run can be compared with those of ``lifecycle run`` (tests/notebooks/test_course_rerun.py);
* tests marked ``after_notebooks`` run last, once nbval has executed the notebooks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

RECORD_ENV = "LIFECYCLE_RECORD_FILE"  # lifecycle.course.runner.RECORD_ENV (not imported: keep start-up light)


def pytest_configure(config):
    """Give nbval's kernels (they inherit this environment) a workspace of their own."""
    import tempfile

    config.addinivalue_line("markers", "after_notebooks: runs after nbval has executed the notebooks "
                                       "(it reads what their run recorded)")
    config.nbval_folders = {}  # what nbval's kernels get (set as the first notebook starts); none: the caller's
    if "LIFECYCLE_WORKSPACE" not in os.environ:
        scratch = Path(tempfile.mkdtemp(prefix="lifecycle-test-"))
        config.lifecycle_scratch = scratch
        os.environ["LIFECYCLE_WORKSPACE"] = str(scratch / "workspace")
        os.environ["LIFECYCLE_BUILD"] = str(scratch / "build")
        # A clean workspace for the lessons, as `lifecycle run` has; the session fixtures of tests/ write
        # into the other one before nbval starts.
        config.nbval_folders = {"LIFECYCLE_WORKSPACE": str(scratch / "nbval" / "workspace"),
                                "LIFECYCLE_BUILD": str(scratch / "nbval" / "build")}
    build = config.nbval_folders.get("LIFECYCLE_BUILD", os.environ["LIFECYCLE_BUILD"])
    config.nbval_records = Path(build) / "nbval-records"
    config.nbval_lessons = []  # the lessons nbval collected in this session, in order
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # The environment before any test ran. Tests leave variables behind (mlflow.set_tracking_uri sets
    # MLFLOW_TRACKING_URI, Prefect's configuration PREFECT_HOME); the lessons must not inherit them.
    config.clean_environ = dict(os.environ)


def _notebook_of(item) -> Path | None:
    """The notebook an nbval cell belongs to (None for any other test)."""
    if type(item).__name__ != "IPyNbCell":
        return None
    return Path(str(item.parent.fspath))


def pytest_collection_modifyitems(session, config, items):
    """Note which lessons nbval will execute; run the ``after_notebooks`` tests last."""
    lessons = {path.stem for item in items if (path := _notebook_of(item)) and path.parent.name == "notebooks"}
    config.nbval_lessons = sorted(lessons)
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)  # a stable sort


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel as its first cell is set up: give that kernel the environment of
    before the tests, with the lessons' own workspace, and point its ``record()`` at
    ``<build>/nbval-records/<folder>/<notebook>.json``."""
    path = _notebook_of(item)
    if path is not None:
        os.environ.clear()
        os.environ.update({**item.config.clean_environ, **item.config.nbval_folders})
        record_file = item.config.nbval_records / path.parent.name / f"{path.stem}.json"
        record_file.parent.mkdir(parents=True, exist_ok=True)
        os.environ[RECORD_ENV] = str(record_file)


def pytest_unconfigure(config):
    """Remove the scratch workspace made by :func:`pytest_configure`."""
    import shutil

    scratch = getattr(config, "lifecycle_scratch", None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
