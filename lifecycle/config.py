"""Settings: one frozen object, built by one function.

Layers, later ones win: built-in defaults → ``params.yaml`` (its ``settings:`` section) →
environment (``LIFECYCLE_*``, ``MLFLOW_TRACKING_URI``) → keyword overrides. ``lifecycle services up``
writes such an environment for its backends (``workspace/services.env``). Importing this
module does nothing; :func:`load_settings` reads files and the environment when called and
never creates a directory (callers that write use :meth:`Settings.ensure_dirs`).

Taught in notebooks/00_start_here.ipynb.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.errors import ConfigError

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class Settings:
    """Where the course reads and writes, and which backends it talks to.

    Attributes:
        root: the kit's folder (holds ``params.yaml``, ``notebooks/``, ``quizzes/``).
        workspace: what running the course creates: sandbox repos, the MLflow store, logs.
        build: executed notebooks and ``summary.json`` of a course run.
        seed: the default random seed of every lesson.
        mlflow_tracking_uri: MLflow store; a sqlite file in the workspace unless overridden.
        dvc_remote_url: DVC default remote; a local folder unless overridden (``s3://…`` works).
        dvc_remote_endpoint: the S3 endpoint of an ``s3://`` remote that is not AWS itself (an
            S3-compatible store such as ``lifecycle services up`` starts); empty for AWS.
        registered_model: the MLflow registered model name served and promoted by the lessons.
        prefect_work_pool: a Prefect work pool with a worker, where lesson 04 deploys its flow;
            empty when there is none (then the flow runs in the notebook only).
    """

    root: Path
    workspace: Path
    build: Path
    seed: int = 42
    mlflow_tracking_uri: str = ""
    dvc_remote_url: str = ""
    dvc_remote_endpoint: str = ""
    registered_model: str = "fraud-detector"
    prefect_work_pool: str = ""

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def quizzes(self) -> Path:
        return self.root / "quizzes"

    def ensure_dirs(self) -> Settings:
        """Create the workspace and build folders (only code that writes calls this)."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.build.mkdir(parents=True, exist_ok=True)
        return self


# Environment variable → field. MLFLOW_TRACKING_URI is MLflow's own name, honoured as users expect.
_ENV = {
    "LIFECYCLE_ROOT": "root",
    "LIFECYCLE_WORKSPACE": "workspace",
    "LIFECYCLE_BUILD": "build",
    "LIFECYCLE_SEED": "seed",
    "MLFLOW_TRACKING_URI": "mlflow_tracking_uri",
    "LIFECYCLE_DVC_REMOTE": "dvc_remote_url",
    "LIFECYCLE_DVC_REMOTE_ENDPOINT": "dvc_remote_endpoint",
    "LIFECYCLE_REGISTERED_MODEL": "registered_model",
    "LIFECYCLE_PREFECT_WORK_POOL": "prefect_work_pool",
}
_FIELDS = {f.name for f in dataclasses.fields(Settings)}


def find_root(start: Path | None = None) -> Path:
    """Find the kit's folder: the nearest folder at or above ``start`` holding ``params.yaml``
    and ``notebooks/``; else the folder this package was installed from (editable install);
    else ``start`` itself.
    """
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / PARAMS_FILE).is_file() and (folder / "notebooks").is_dir():
            return folder
    source = Path(__file__).resolve().parent.parent
    if (source / PARAMS_FILE).is_file():
        return source
    return start


def read_params(root: Path) -> dict[str, Any]:
    """Read ``params.yaml`` under ``root`` (an empty mapping if there is none)."""
    path = Path(root) / PARAMS_FILE
    if not path.is_file():
        return {}
    import yaml

    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}; fix the file or restore it from git") from err
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level, got {type(params).__name__}")
    return params


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from defaults, ``params.yaml``, the environment and ``overrides``.

    Args:
        **overrides: field values that win over every other layer (e.g. ``workspace=tmp_path``).

    Returns:
        The frozen :class:`Settings`.

    Raises:
        ConfigError: an unknown setting name, or a value of the wrong type.
    """
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known settings: {sorted(_FIELDS)}")
    env = {field: os.environ[name] for name, field in _ENV.items() if os.environ.get(name)}
    root = Path(overrides.get("root") or env.get("root") or find_root()).resolve()

    values: dict[str, Any] = {}
    file_settings = read_params(root).get("settings") or {}
    unknown = set(file_settings) - _FIELDS
    if unknown:
        raise ConfigError(f"{root / PARAMS_FILE}: unknown setting(s) {sorted(unknown)} under 'settings:'; "
                          f"known settings: {sorted(_FIELDS)}")
    values.update(file_settings)
    values.update(env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["root"] = root

    def folder(name: str, default: str) -> Path:
        path = Path(values.get(name) or default).expanduser()
        return path if path.is_absolute() else (root / path).resolve()

    values["workspace"] = folder("workspace", "workspace")
    values["build"] = folder("build", "build")
    try:
        values["seed"] = int(values.get("seed", 42))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"seed must be an integer, got {values.get('seed')!r}; "
                          "set LIFECYCLE_SEED or params.yaml settings.seed to a whole number") from err
    if not values.get("mlflow_tracking_uri"):
        values["mlflow_tracking_uri"] = f"sqlite:///{values['workspace'] / 'mlflow.db'}"
    if not values.get("dvc_remote_url"):
        values["dvc_remote_url"] = str(values["workspace"] / "dvc-remote")
    return Settings(**values)
