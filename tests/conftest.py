"""Shared fixtures. Every test gets its own workspace and build folder, so tests never touch
the learner's ``workspace/`` and can run in any order."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch):
    """Point the kit's workspace and build folders at a temporary directory."""
    monkeypatch.setenv("LIFECYCLE_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("LIFECYCLE_BUILD", str(tmp_path / "build"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("LIFECYCLE_RECORD_FILE", raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    return tmp_path

