"""pytest hooks for the whole kit (tests/ and the notebooks nbval executes)."""

from __future__ import annotations


def pytest_configure(config):
    """nbval runs the notebooks in kernels that inherit this environment: give them a
    workspace of their own, so `make test` never changes the learner's workspace/."""
    import os
    import tempfile

    if "LIFECYCLE_WORKSPACE" not in os.environ:
        scratch = tempfile.mkdtemp(prefix="lifecycle-test-")
        config.lifecycle_scratch = scratch
        os.environ["LIFECYCLE_WORKSPACE"] = os.path.join(scratch, "workspace")
        os.environ["LIFECYCLE_BUILD"] = os.path.join(scratch, "build")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def pytest_unconfigure(config):
    """Remove the scratch workspace made by :func:`pytest_configure`."""
    import shutil

    scratch = getattr(config, "lifecycle_scratch", None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
