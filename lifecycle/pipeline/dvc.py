"""The training pipeline as a DVC pipeline: ``dvc.yaml`` from the stage list, ``dvc repro`` in the sandbox.

:func:`write_pipeline` writes ``dvc.yaml`` (generated from :data:`lifecycle.pipeline.stages.STAGES`) and
``params.yaml`` into the lesson 01 sandbox; :func:`reproduce` runs ``dvc repro`` there and reports
which stages ran, which were skipped (unchanged) and which were restored from DVC's run-cache.
:mod:`lifecycle.pipeline.flow` runs the same stages as a Prefect flow.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError
from lifecycle.pipeline._dvc import parse_repro_output
from lifecycle.pipeline.provenance import stage_code_params, write_code_params
from lifecycle.pipeline.stages import CODE_PARAMS_FILE, DEFAULT_PARAMS, METRICS, STAGES, read_params
from lifecycle.pipeline.steps import PARAMS_FILE
from lifecycle.versioning import DATA_FILE, DataRepo, file_md5

PIPELINE_FILES = ("dvc.yaml", "dvc.lock", PARAMS_FILE, CODE_PARAMS_FILE, METRICS)


def pipeline_definition(params: dict[str, Any], python: str = "python") -> dict[str, Any]:
    """The ``dvc.yaml`` of :data:`~lifecycle.pipeline.STAGES`, naming nothing outside the repository: each
    stage's command (``python -m lifecycle.pipeline NAME``: the ``python`` first on ``PATH``, the kit's when
    :func:`reproduce` runs it, or in a terminal with the kit's venv activated), its deps (input files), its
    params (leaf keys of ``params.yaml``, and in ``lifecycle_code.yaml`` the md5 of each library module and
    the version of each package it runs), outs and metrics."""
    stages = {}
    for stage in STAGES:
        entry: dict[str, Any] = {"cmd": f"{shlex.quote(python)} -m lifecycle.pipeline {stage.name}",
                                 "deps": list(stage.deps)}
        entry["params"] = [leaf for key in stage.params for leaf in _leaf_keys(params, key)]
        entry["params"].append({CODE_PARAMS_FILE: stage_code_params(stage)})
        if stage.outs or stage.records:
            entry["outs"] = [*stage.outs, *({record: {"cache": False}} for record in stage.records)]
        if stage.metrics:
            entry["metrics"] = [{metric: {"cache": False}} for metric in stage.metrics]
        stages[stage.name] = entry
    return {"stages": stages}


def _leaf_keys(params: dict[str, Any], key: str) -> list[str]:
    if key not in params:
        raise ConfigError(f"the pipeline needs parameter {key!r}, which params lacks; it has {sorted(params)}")
    return [f"{key}.{name}" for name in params[key]] if isinstance(params[key], dict) else [key]


def write_pipeline(repo: DataRepo, params: dict[str, Any] | None = None) -> Path:
    """Write ``params.yaml``, ``lifecycle_code.yaml`` and ``dvc.yaml`` into the sandbox; returns the path of
    ``dvc.yaml``."""
    import yaml

    params = params or DEFAULT_PARAMS
    write_params(repo.path, params)
    write_code_params(repo.path)
    path = repo.path / "dvc.yaml"
    path.write_text(yaml.safe_dump(pipeline_definition(params), sort_keys=False, width=120))
    return path


def write_params(folder: str | Path, params: dict[str, Any]) -> Path:
    """Write ``params`` as ``folder/params.yaml``, in the order given."""
    import yaml

    path = Path(folder) / PARAMS_FILE
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def set_param(folder: str | Path, key: str, value: Any) -> Any:
    """Change one parameter in ``folder/params.yaml`` (``"train.learning_rate"``); returns its old value.

    Raises:
        ConfigError: no such parameter (a typo would otherwise add one that nothing reads).
    """
    params = read_params(folder)
    *sections, name = key.split(".")
    holder: Any = params
    for section in sections:
        holder = holder.get(section) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or name not in holder:
        raise ConfigError(f"{Path(folder) / PARAMS_FILE} has no parameter {key!r}; its sections are "
                          f"{sorted(params)}: check the spelling")
    previous, holder[name] = holder[name], value
    write_params(folder, params)
    return previous


def reset_pipeline(repo: DataRepo, base: str = "data-v2") -> None:
    """Put the sandbox back as lesson 01 left it: git at ``base``, the data file matching its pointer,
    no ``dvc.yaml``, lock file or outputs, and an empty DVC run-cache.

    The run-cache remembers every stage run's outputs; left in place, the first ``dvc repro`` after
    an earlier run of the lesson would restore outputs instead of running the stages.
    """
    repo.git("reset", "--quiet", "--hard", base, hint=f"no tag {base!r} in the sandbox: rebuild it with ensure_sandbox")
    for name in PIPELINE_FILES:
        (repo.path / name).unlink(missing_ok=True)
    for folder in (repo.path / "pipeline", repo.path / ".dvc" / "cache" / "runs"):
        shutil.rmtree(folder, ignore_errors=True)
    if not repo.data_file.is_file() or file_md5(repo.data_file) not in (repo.path / f"{DATA_FILE}.dvc").read_text():
        repo.dvc("pull", f"{DATA_FILE}.dvc")  # fetches only what the cache lacks, then checks the file out


@dataclass(frozen=True)
class ReproRun:
    """One ``dvc repro``: seconds, stages it ran, skipped (unchanged) or restored (run-cache), its output."""

    seconds: float
    ran: list[str]
    skipped: list[str]
    restored: list[str]
    output: str


def stage_environment(settings: Settings) -> dict[str, str]:
    """What the stage commands must know of this session: this Python's folder first on ``PATH`` (the
    ``python`` of ``dvc.yaml`` is the kit's), the kit and workspace folders, and the MLflow store the
    register stage writes to (``MLFLOW_TRACKING_URI``)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {"PATH": path, "LIFECYCLE_ROOT": str(settings.root), "LIFECYCLE_WORKSPACE": str(settings.workspace),
            "LIFECYCLE_BUILD": str(settings.build), "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "LIFECYCLE_REGISTERED_MODEL": settings.registered_model}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the commands started inside the block; restore them after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reproduce(repo: DataRepo, settings: Settings | None = None, *args: str) -> ReproRun:
    """Refresh ``lifecycle_code.yaml`` (so that a change to the kit's code is seen), then run ``dvc repro ARGS``
    in the sandbox, its register stage logging to the settings' MLflow store.

    Raises:
        CommandError: a stage failed; the message ends with what it printed.
    """
    settings = settings or load_settings()
    write_code_params(repo.path)
    with _environment(stage_environment(settings)):
        done = repo.dvc("repro", *args, hint="the failing stage's error is above; fix it and run dvc repro again")
    return ReproRun(done.seconds, **parse_repro_output(done.output), output=done.output)


def commit_pipeline(repo: DataRepo, message: str) -> None:
    """Commit ``dvc.yaml``, ``dvc.lock``, params and metrics (DVC put the cached outputs in ``.gitignore``)."""
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "-m", message)
