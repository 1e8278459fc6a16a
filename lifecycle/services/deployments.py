"""Lesson 04's flow as a Prefect deployment: registered with the server, run by a worker of the work pool.

A deployment names the flow by where its code lives and its entrypoint
(``lifecycle/pipeline/flow.py:fraud_training_flow``), plus the parameters it runs with. Here the code
is this kit's folder (``flow.from_source(folder, entrypoint)``); on several machines it is the kit's git
repository, cloned by each worker. Deploying needs no image: a ``process`` work pool runs each flow run
as a process of the worker, on the worker's machine.

Checked against prefect 3.9.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.errors import CommandError, ConfigError

ENTRYPOINT = "lifecycle/pipeline/flow.py:fraud_training_flow"  # relative to the folder holding `lifecycle/`
DEPLOYMENT = "fraud-training"
DEPLOYMENT_FOLDER = "prefect-deployment"  # under the workspace: where the worker's flow runs write


@dataclass
class DeploymentRun:
    """One flow run of a deployment, as the Prefect server recorded it."""

    deployment: str
    state: str
    seconds: float  # from asking for the run to its final state
    flow_run_id: str
    folder: Path
    message: str = ""
    tasks: list[dict[str, Any]] = field(default_factory=list)  # stage, state, attempts, history
    retries: int = 0

    @property
    def metrics(self) -> dict[str, Any]:
        """The evaluate stage's metrics, as the worker's run wrote them."""
        from lifecycle.pipeline.stages import METRICS

        path = self.folder / METRICS
        return json.loads(path.read_text()) if path.is_file() else {}


def kit_source() -> Path:
    """The folder that holds the ``lifecycle`` package: the deployment's source."""
    import lifecycle

    return Path(lifecycle.__file__).resolve().parent.parent


def deploy_training_flow(source: str | Path, params: dict[str, Any], settings: Settings | None = None,
                         ingest_blips: int = 0, name: str = DEPLOYMENT) -> str:
    """Register the training flow with the Prefect server as a deployment on the settings' work pool.

    The deployment carries the parameters of every run: the raw data, the pipeline parameters, the
    MLflow store and where the stages write (``workspace/prefect-deployment``); each run computes every
    task afresh (``refresh_cache``), since the worker's result cache is not the notebook's.

    Args:
        source: the raw transactions (the sandbox's DVC-tracked file), as the worker will read them.
        params: the pipeline parameters (the sandbox's ``params.yaml``).
        settings: the work pool (``settings.prefect_work_pool``), MLflow store and workspace.
        ingest_blips: simulated network errors of the ingest task before it succeeds.
        name: the deployment's name.

    Returns:
        The deployment's full name, ``fraud-training-pipeline/<name>``.

    Raises:
        ConfigError: no work pool is configured, or Prefect is not installed.
    """
    from lifecycle.pipeline.prefect_server import configure_prefect

    settings = settings or load_settings()
    if not settings.prefect_work_pool:
        raise ConfigError("no Prefect work pool is configured (settings.prefect_work_pool is empty): start the "
                          "services with 'lifecycle services up' and run with 'lifecycle run --backends services', "
                          "or set LIFECYCLE_PREFECT_WORK_POOL to a pool that has a worker")
    configure_prefect(settings)
    from prefect.flows import Flow

    flow = Flow.from_source(source=str(kit_source()), entrypoint=ENTRYPOINT, _sync=True)
    parameters = {"source": str(Path(source).resolve()), "folder": str(settings.workspace / DEPLOYMENT_FOLDER),
                  "params": params, "tracking_uri": settings.mlflow_tracking_uri,
                  "registered_model": settings.registered_model, "ingest_blips": ingest_blips, "refresh_cache": True}
    # `flow.deploy(...)` is `to_deployment(...).apply()` plus a table and a progress bar printed for a terminal
    # (in a notebook, a widget): the same two calls, quietly.
    deployment = flow.to_deployment(name=name, work_pool_name=settings.prefect_work_pool, parameters=parameters,
                                    _sync=True)
    deployment.apply(work_pool_name=settings.prefect_work_pool, _sync=True)
    return f"{flow.name}/{name}"


def run_training_deployment(deployment: str, settings: Settings | None = None, timeout: float = 600.0) -> DeploymentRun:
    """Ask the server for a run of ``deployment``, wait for a worker to pick it up and finish it, and read
    back what its tasks did.

    Raises:
        CommandError: the run did not reach a final state within ``timeout`` seconds (no worker polls the pool?).
    """
    from prefect.deployments import run_deployment

    from lifecycle.pipeline.flow import _task_runs  # the same read-back as the notebook's own flow runs
    from lifecycle.pipeline.stages import STAGE_NAMES

    settings = settings or load_settings()
    clock = time.perf_counter()
    flow_run = run_deployment(deployment, timeout=timeout, poll_interval=1, _sync=True)
    seconds = time.perf_counter() - clock
    state = flow_run.state
    if state is None or not state.is_final():
        raise CommandError(f"the run of deployment {deployment!r} is still {state.name if state else 'unknown'} "
                           f"after {timeout:.0f} s: is a worker polling the work pool {settings.prefect_work_pool!r}? "
                           "'lifecycle services status' tells")
    run = DeploymentRun(deployment, state.name, seconds, str(flow_run.id), settings.workspace / DEPLOYMENT_FOLDER,
                        state.message or "")
    run.tasks = _task_runs(run.flow_run_id, expected=len(STAGE_NAMES) if state.is_completed() else 1)
    run.retries = sum(max(task["attempts"] - 1, 0) for task in run.tasks)
    return run
