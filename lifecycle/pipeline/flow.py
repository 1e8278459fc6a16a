"""The pipeline's stages as a Prefect flow: the engine that scales out.

:func:`prefect_flow` makes the same stage functions Prefect 3 tasks, retried on transient errors
and cached by :func:`stage_fingerprint` (what DVC hashes: input bytes, parameters, code).
:func:`run_prefect_flow` runs it here: with no ``PREFECT_API_URL`` set, Prefect starts a temporary
local server by itself, or :func:`~lifecycle.pipeline.prefect_server.start_prefect_server` starts that
server beforehand, in the background, so its start-up overlaps other work. Prefect is optional (``pip install -e
'.[orchestration]'``); :func:`~lifecycle.pipeline.prefect_server.require_prefect` says so when it is
missing. A deployment names the flow as ``lifecycle.pipeline.flow.fraud_training_flow``.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.pipeline._prefect import state_result
from lifecycle.pipeline.prefect_server import configure_prefect, drain_prefect_workers
from lifecycle.pipeline.stages import SOURCE, STAGE_NAMES, get_stage, run_stage

PREFECT_FOLDER = "prefect-pipeline"  # under the workspace: where the flow's stages write their files
TRANSIENT_ERRORS = (ConnectionError, TimeoutError)  # worth a retry; any other error fails the task at once


def stage_fingerprint(name: str, folder: str | Path, params: dict[str, Any], source: str | Path | None = None,
                      extra: tuple[str, ...] = ()) -> str:
    """What a stage's result depends on, hashed as DVC hashes it: the bytes of its input files, its
    parameters, its code and its packages' versions, plus the folder its outputs go to (and ``extra``).
    Same fingerprint, same result: Prefect's cache key."""
    stage = get_stage(name)
    digest = hashlib.sha256(f"{name}\n{Path(folder).resolve()}".encode())
    for dep in stage.deps:
        path = Path(source) if (dep == SOURCE and source) else Path(folder) / dep
        digest.update(hashlib.md5(path.read_bytes()).digest() if path.is_file() else f"missing {dep}".encode())
    digest.update(json.dumps({key: params.get(key) for key in stage.params}, sort_keys=True, default=str).encode())
    for code in stage.code_files():
        digest.update(code.read_bytes())
    for package in stage.packages:
        digest.update(f"{package}=={metadata.version(package)}".encode())
    for value in extra:
        digest.update(value.encode())
    return digest.hexdigest()


def _retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: retry network-like errors; bad data or a bug fails at once."""
    from prefect.states import get_state_exception

    return isinstance(get_state_exception(state), TRANSIENT_ERRORS)


def _cache_key(context: Any, arguments: dict[str, Any]) -> str:
    extra = (arguments["tracking_uri"], arguments["registered_model"]) if arguments["name"] == "register" else ()
    return stage_fingerprint(arguments["name"], arguments["folder"], arguments["params"], arguments["source"], extra)


def run_stage_task(name: str, folder: str, params: dict[str, Any], source: str | None, tracking_uri: str,
                   registered_model: str, blips: int = 0) -> dict[str, Any]:
    """A stage as a Prefect task: :func:`~lifecycle.pipeline.stages.run_stage`, after ``blips`` simulated network
    failures (attempts 1 to ``blips`` raise :class:`ConnectionError`, as a flaky download would)."""
    from prefect.runtime import task_run

    if task_run.run_count <= blips:
        raise ConnectionError(f"simulated network blip in {name!r} on attempt {task_run.run_count}")
    settings = load_settings(mlflow_tracking_uri=tracking_uri, registered_model=registered_model)
    return run_stage(name, folder, params, source, settings, run_name="prefect-pipeline")


@functools.cache
def prefect_flow():
    """The pipeline as a Prefect flow: a task per stage, in order, each retried twice (at once) on a
    transient error and cached by :func:`stage_fingerprint`.

    Raises:
        ConfigError: Prefect is not installed.
    """
    configure_prefect()
    from prefect import flow, task

    tasks = {name: task(run_stage_task, name=name, retries=2, retry_delay_seconds=0, cache_key_fn=_cache_key,
                        retry_condition_fn=_retry_transient, persist_result=True)
             for name in STAGE_NAMES}

    @flow(name="fraud-training-pipeline")
    def fraud_training_flow(source: str, folder: str, params: dict, tracking_uri: str, registered_model: str,
                            ingest_blips: int = 0, refresh_cache: bool = False) -> dict:
        """Ingest (after ``ingest_blips`` simulated network errors), validate, features, train, evaluate,
        register; ``refresh_cache`` runs every task even when a cached result exists."""
        return {name: tasks[name].with_options(refresh_cache=refresh_cache)(
                    name, folder, params, source if name in ("ingest", "register") else None, tracking_uri,
                    registered_model,
                    ingest_blips if name == "ingest" else 0)
                for name in STAGE_NAMES}

    return fraud_training_flow


def __getattr__(name: str) -> Any:
    # The entrypoint a deployment names, `lifecycle.pipeline.flow.fraud_training_flow`, is built on first use:
    # importing this module must not import Prefect (optional, and its import configures logging).
    if name == "fraud_training_flow":
        return prefect_flow()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class PrefectRun:
    """One flow run: its final state, its task runs as Prefect's API recorded them, the stages' reports."""

    state: str
    seconds: float
    flow_run_id: str
    message: str = ""
    reports: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)  # stage, state, attempts, history
    retries: int = 0  # attempts beyond each task's first, over all tasks

    @property
    def metrics(self) -> dict[str, Any]:
        return self.reports.get("evaluate", {})


def run_prefect_flow(source: str | Path, params: dict[str, Any], settings: Settings | None = None,
                     ingest_blips: int = 1, refresh_cache: bool = False,
                     folder: str | Path | None = None) -> PrefectRun:
    """Run :func:`prefect_flow` here and read back from Prefect's API what happened to each task.

    Args:
        source: the raw transactions (the sandbox's DVC-tracked file).
        params: the pipeline parameters (the sandbox's ``params.yaml``: the same model as ``dvc repro``).
        settings: which workspace and MLflow store.
        ingest_blips: how many times the ingest task fails with a simulated network error first.
        refresh_cache: run every task, even those with a cached result (Prefect's ``dvc repro --force``).
        folder: where the stages write (default ``workspace/prefect-pipeline``).

    Returns:
        The :class:`PrefectRun`; ``state`` is ``Completed``, or ``message`` says what failed.

    Raises:
        ConfigError: Prefect is not installed.
    """
    settings = settings or load_settings()
    configure_prefect(settings)
    folder = Path(folder or settings.workspace / PREFECT_FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    flow = prefect_flow()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    clock = time.perf_counter()
    # Heartbeats tell a server that a run on a remote worker is still alive; a run in this process needs none,
    # and stopping their thread cost up to 1 s at the end of every run (measured).
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = flow(str(source), str(folder), params, settings.mlflow_tracking_uri, settings.registered_model,
                     ingest_blips, refresh_cache, return_state=True)
    run = PrefectRun(state.name, time.perf_counter() - clock, str(state.state_details.flow_run_id),
                     state.message or "")
    if state.is_completed():
        run.reports = state_result(state)  # synchronously, even in a Jupyter kernel (whose event loop runs)
    run.tasks = _task_runs(run.flow_run_id, expected=len(STAGE_NAMES) if state.is_completed() else 1)
    run.retries = sum(max(task["attempts"] - 1, 0) for task in run.tasks)
    return run


def _task_runs(flow_run_id: str, expected: int = 0, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The flow run's task runs as the API recorded them, in stage order, each with its state history.

    The server records task runs from the events Prefect's client sends in the background: they are
    sent first, then read until there are at least ``expected`` task runs, all in a final state and
    unchanged between two reads (or until ``timeout`` seconds have passed).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    drain_prefect_workers()
    deadline, previous = time.monotonic() + timeout, None
    with get_client(sync_client=True) as client:
        while True:
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            seen = sorted((str(task_run.id), task_run.state_name) for task_run in task_runs)
            final = len(task_runs) >= expected and all(task_run.state and task_run.state.is_final()
                                                       for task_run in task_runs)
            if (final and seen == previous) or time.monotonic() > deadline:
                break
            previous = seen
            time.sleep(0.05)
        rows = []
        for task_run in task_runs:
            history = sorted(client.read_task_run_states(task_run.id), key=lambda state: state.timestamp)
            rows.append({"stage": task_run.name.rsplit("-", 1)[0], "state": task_run.state_name,
                         "attempts": task_run.run_count, "history": " → ".join(state.name for state in history)})
    order = {name: index for index, name in enumerate(STAGE_NAMES)}
    return sorted(rows, key=lambda row: order.get(row["stage"], len(order)))
