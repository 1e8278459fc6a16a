"""Fixtures the library's unit tests share: one OpenMP thread per fit, and an empty MLflow store made once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_thread_per_fit():
    """HistGradientBoosting uses every core through OpenMP; with 2 cores shared by parallel test
    runs that oversubscribes the CPU and a 0.3 s fit takes 5 s. One thread each keeps it steady.
    A module that fits models uses it: ``pytestmark = pytest.mark.usefixtures("one_thread_per_fit")``."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP first: threadpoolctl limits only what is loaded)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory):
    """An empty MLflow sqlite database, made once: creating its tables takes seconds, copying it none."""
    from lifecycle.config import load_settings
    from lifecycle.tracking.runs import mlflow_client

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow_client(load_settings(mlflow_tracking_uri=f"sqlite:///{path}")).search_experiments()
    return path
