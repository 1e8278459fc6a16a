"""lifecycle._quiet: the libraries' own chatter is switched off at its source, in a fresh process as a kernel is."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import pytest

from lifecycle import _quiet

# A lesson's MLflow work in a fresh process: a first store (its tables are created), an autologged fit
# (MLflow's autolog calls scikit-learn's log_loss with a renamed keyword), a model logged as cloudpickle,
# and the registered version loaded back (its artifacts downloaded).
LESSON = """
import mlflow
from lifecycle.config import load_settings
from lifecycle.data import generate_transactions
from lifecycle.features import build_features, split_by_time
from lifecycle.tracking import load_served_model, log_fraud_model, use_experiment
from lifecycle.training import make_model, train_fraud_model

settings = load_settings()
experiment = use_experiment(settings)
train, test = split_by_time(generate_transactions(2_000, seed=5))
mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
with mlflow.start_run(experiment_id=experiment):
    make_model("logreg", 5).fit(build_features(train), train["is_fraud"])
mlflow.sklearn.autolog(disable=True)
log_fraud_model(train_fraud_model(train, test, "logreg", 5), train, "logreg", settings, alias="champion")
print("served version", load_served_model(settings=settings).version)
"""


@pytest.mark.slow
def test_a_lessons_mlflow_work_prints_only_what_the_lesson_prints(tmp_path):
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_")}
    environment.update(LIFECYCLE_WORKSPACE=str(tmp_path / "workspace"), MLFLOW_DISABLE_TELEMETRY="true",
                       PYTHONWARNINGS="default")  # every warning shown, as a notebook shows a FutureWarning
    done = subprocess.run([sys.executable, "-c", LESSON], capture_output=True, text=True, env=environment,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "served version 1\n"
    assert "cloudpickle" not in done.stderr and "Creating initial MLflow database tables" not in done.stderr
    assert "y_proba" not in done.stderr and "Downloading artifacts" not in done.stderr


def test_settings_keep_what_the_user_chose_and_apply_once(monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # a user who wants the bars keeps them
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    monkeypatch.delenv("PREFECT_LOGGING_COLORS", raising=False)
    saved_filters = warnings.filters[:]
    try:
        _quiet.quiet_mlflow()
        _quiet.quiet_mlflow()
        _quiet.quiet_prefect()
    finally:
        warnings.filters[:] = saved_filters
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
    assert os.environ["PREFECT_LOGGING_COLORS"] == "false"
    sklearn_logger = logging.getLogger(_quiet.MLFLOW_SKLEARN_LOGGER)
    assert len([f for f in sklearn_logger.filters if isinstance(f, _quiet._DropMessage)]) == 1


def test_only_the_cloudpickle_caution_is_dropped():
    drop = _quiet._DropMessage(_quiet.CLOUDPICKLE_CAUTION)

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("mlflow.sklearn", logging.WARNING, __file__, 1, message, None, None)

    assert not drop.filter(record(_quiet.CLOUDPICKLE_CAUTION + " requires exercising caution …"))
    assert drop.filter(record("Model logged without a signature"))
