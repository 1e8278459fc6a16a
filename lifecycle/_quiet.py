"""Library settings that keep what a learner reads free of the libraries' own chatter.

Each function sets, for this process (and the processes it starts, which inherit the environment),
the libraries' own switches: logging levels, their documented environment variables, one targeted
logging filter and one targeted warnings filter. Nothing is filtered out of an output after the fact,
and nothing happens on import: the stages call these explicitly before they use the library
(:func:`lifecycle.tracking.runs.use_experiment` and :func:`~lifecycle.tracking.runs.mlflow_client`
call :func:`quiet_mlflow`; :func:`lifecycle.pipeline.prefect_server.configure_prefect` calls
:func:`quiet_prefect`). Every function is idempotent and keeps a value the user has set already.

Checked against mlflow 3.17.2, prefect 3.9.1 and scikit-learn 1.9.1 (DVC's banner is silenced by
``dvc init --quiet`` in :mod:`lifecycle.versioning`, dvc 3.67.1).
"""

from __future__ import annotations

import logging
import os
import warnings

# MLflow's documented switches, read each time they are used (so setting them late still works).
MLFLOW_ENVIRONMENT = {
    # "🏃 View run … at http://…" and "🧪 View experiment at …", printed after every run on a tracking server.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # tqdm bars ("Downloading artifacts: 100%|…") for every artifact download: a model load, a history file.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# Logged at INFO the first time a sqlite store is opened ("Creating initial MLflow database tables…").
MLFLOW_DB_LOGGER = "mlflow.store.db.utils"
# MLflow warns on every log_model in the cloudpickle format, which the kit chooses deliberately (see
# lifecycle.tracking.runs.log_fraud_model); only that record is dropped, every other warning still shows.
MLFLOW_SKLEARN_LOGGER = "mlflow.sklearn"
CLOUDPICKLE_CAUTION = "Saving scikit-learn models in the pickle or cloudpickle format"
# MLflow's sklearn autolog computes log_loss with the keyword scikit-learn 1.9 renamed (y_pred → y_proba):
# a FutureWarning for MLflow's maintainers, raised from inside scikit-learn on every autologged fit.
AUTOLOG_LOG_LOSS_WARNING = r"`y_pred` was renamed to `y_proba`"

# Prefect's documented overrides of its logging.yml (PREFECT_LOGGING_[PATH]_[KEY]) and settings.
PREFECT_ENVIRONMENT = {
    # No colour codes in what Prefect prints (a notebook shows them as raw escapes in text outputs).
    "PREFECT_LOGGING_COLORS": "false",
    # The console shows warnings and errors only. Flow and task runs still send every record, INFO
    # included, to Prefect's API (its own handler), where the run's history is read back.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
}


class _DropMessage(logging.Filter):
    """Drop the log records whose message starts with ``prefix``; let every other record through."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quiet_mlflow() -> None:
    """Silence MLflow's run links, artifact progress bars, first-use database message and the
    cloudpickle caution the kit has already answered, in this process and the ones it starts."""
    for name, value in MLFLOW_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    database = logging.getLogger(MLFLOW_DB_LOGGER)
    if database.level == logging.NOTSET:  # a level someone chose for it is kept
        database.setLevel(logging.WARNING)
    sklearn_logger = logging.getLogger(MLFLOW_SKLEARN_LOGGER)
    if not any(isinstance(f, _DropMessage) and f.prefix == CLOUDPICKLE_CAUTION for f in sklearn_logger.filters):
        sklearn_logger.addFilter(_DropMessage(CLOUDPICKLE_CAUTION))
    warnings.filterwarnings("ignore", message=AUTOLOG_LOG_LOSS_WARNING, category=FutureWarning,
                            module=r"sklearn\.metrics\._classification")


def quiet_prefect() -> None:
    """Uncoloured Prefect logs, warnings and errors only on the console. Call it before Prefect is
    imported: Prefect reads its logging settings once, when it configures logging at import."""
    for name, value in PREFECT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
