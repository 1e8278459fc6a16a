"""What a pipeline run depends on beyond its files: the kit's code and packages, and the data version.

* :func:`write_code_params` writes ``lifecycle_code.yaml`` beside ``params.yaml``: the md5 of every
  library module a stage runs and the version of every package it names. ``dvc.yaml`` declares those
  keys as each stage's parameters (``modules.training``, ``packages.scikit_learn``), so a change to the
  kit reruns exactly the stages that run the changed code, while ``dvc.yaml`` and ``dvc.lock`` name
  nothing outside the repository: a clone on another machine reproduces.
* :func:`ingested_lineage`: the git tag, commit and DVC hashes of the data the pipeline ingested, which
  the register stage records on the MLflow run.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle.pipeline.stages import CODE_PARAMS_FILE, SOURCE, STAGES, Stage

if TYPE_CHECKING:
    from lifecycle._lineage import DataLineage


def stage_code_params(stage: Stage) -> list[str]:
    """A stage's keys in :data:`CODE_PARAMS_FILE`: ``modules.pipeline.stages``, ``packages.scikit_learn``, …"""
    return [f"modules.{module.replace('/', '.')}" for module in stage.modules] + \
        [f"packages.{package.replace('-', '_')}" for package in stage.packages]


def code_params() -> dict[str, Any]:
    """What :data:`CODE_PARAMS_FILE` holds: the kit's version, the md5 of every module a stage runs
    (nested by package: ``modules.tracking.runs``) and the version of every package a stage names."""
    from importlib import metadata

    modules: dict[str, Any] = {}
    for stage in STAGES:
        for module, path in zip(stage.modules, stage.code_files(), strict=True):
            *packages, name = module.split("/")
            holder = modules
            for package in packages:
                holder = holder.setdefault(package, {})
            holder[name] = hashlib.md5(path.read_bytes()).hexdigest()
    packages = {name.replace("-", "_"): metadata.version(name) for stage in STAGES for name in stage.packages}
    return {"lifecycle": metadata.version("lifecycle"), "modules": modules, "packages": dict(sorted(packages.items()))}


def write_code_params(folder: str | Path) -> Path:
    """Write :func:`code_params` as ``folder/lifecycle_code.yaml`` (unchanged bytes when nothing changed).

    It is to the kit what a lock file is to packages: DVC compares it with ``dvc.lock`` like any
    parameters file, so refresh it before ``dvc repro`` (:func:`~lifecycle.pipeline.dvc.reproduce` does;
    in a terminal, ``python -m lifecycle.pipeline code``) to rerun the stages whose code changed.
    """
    import yaml

    path = Path(folder) / CODE_PARAMS_FILE
    text = ("# The lifecycle kit's code the pipeline's stages run: the md5 of each module and the versions of the\n"
            "# packages they use. Written by `python -m lifecycle.pipeline code`; dvc.yaml reads it as parameters.\n"
            + yaml.safe_dump(code_params(), sort_keys=False))
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path



def ingested_lineage(source: Path, ingested: Path) -> DataLineage | None:
    """The data version the pipeline ingested: the lineage of ``source`` when it is the ``data/transactions.csv``
    of a git repository that tracks it with DVC, and ``ingested`` (the pipeline's copy) holds its bytes."""
    from lifecycle._lineage import data_lineage
    from lifecycle.versioning import file_md5

    source = Path(source).resolve()
    if not source.as_posix().endswith(f"/{SOURCE}") or not Path(ingested).is_file():
        return None
    lineage = data_lineage(source.parents[len(Path(SOURCE).parts) - 1], relative=SOURCE)
    return lineage if lineage is not None and lineage.data_md5 == file_md5(ingested) else None
