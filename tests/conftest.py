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



@pytest.fixture(scope="session")
def monitored_rows():
    """``monitored_rows(rows, shift, seed)``: seeded random rows of the monitored features (their means
    shifted by ``shift``; the categorical ones 0–2) and a ``score``, as the dashboard stores them."""
    import numpy as np
    import pandas as pd

    from lifecycle.monitoring import CATEGORICAL_FEATURES, MONITORED_FEATURES

    def make(rows: int, shift: float, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame({name: rng.normal(shift, 1, rows) for name in MONITORED_FEATURES})
        for name in CATEGORICAL_FEATURES:
            frame[name] = rng.integers(0, 3, rows).astype(float)
        return frame.assign(score=rng.beta(0.5, 8, rows))

    return make
