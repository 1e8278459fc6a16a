"""Running the pipeline's stages with an engine: DVC on one machine, Prefect to scale out.

* **DVC pipeline.** :func:`write_pipeline` writes ``dvc.yaml`` (generated from
  :data:`lifecycle.pipeline.STAGES`) and ``params.yaml`` into the lesson 01 sandbox;
  :func:`reproduce` runs ``dvc repro`` there and reports which stages ran and which were skipped.
* **Prefect flow.** :func:`prefect_flow` makes the same stage functions Prefect 3 tasks, retried on
  transient errors and cached by :func:`stage_fingerprint` (what DVC hashes: input bytes,
  parameters, code). :func:`run_prefect_flow` runs it here: with no ``PREFECT_API_URL`` set,
  Prefect starts a temporary local server by itself, or :func:`start_prefect_server` starts that
  server beforehand, in the background, so its start-up overlaps other work. Prefect is optional
  (``pip install -e '.[orchestration]'``); :func:`require_prefect` says so when it is missing.
  A deployment names the flow as ``lifecycle.orchestration.fraud_training_flow``.

Taught in notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.errors import CommandError, ConfigError
from lifecycle.pipeline import (
    DEFAULT_PARAMS,
    METRICS,
    PARAMS_FILE,
    SOURCE,
    STAGE_NAMES,
    STAGES,
    get_stage,
    read_params,
    run_stage,
)
from lifecycle.versioning import DATA_FILE, DataRepo, file_md5

PIPELINE_FILES = ("dvc.yaml", "dvc.lock", PARAMS_FILE, METRICS)
PREFECT_INSTALL_HINT = ("Prefect is not installed here: it is the optional 'orchestration' extra. Install it "
                        "with pip install -e '.[orchestration]' in the kit's folder (make setup does), then "
                        "restart the kernel.")
PREFECT_FOLDER = "prefect-pipeline"  # under the workspace: where the flow's stages write their files
TRANSIENT_ERRORS = (ConnectionError, TimeoutError)  # worth a retry; any other error fails the task at once
# The server starts beside the lesson's own work: at a lower CPU priority, so that on a busy machine it
# takes idle time rather than slowing (and distorting the timings of) the dvc repro runs.
BACKGROUND_NICENESS = 10
_STARTED: dict[str, PrefectServer] = {}  # the server start_prefect_server started in this process, if any


# ---------------------------------------------------------------- DVC pipeline


def pipeline_definition(params: dict[str, Any], python: str | None = None) -> dict[str, Any]:
    """The ``dvc.yaml`` of :data:`~lifecycle.pipeline.STAGES`: each stage's command (``python -m
    lifecycle.pipeline NAME``, with this kit's Python by path: the sandbox is not the kit's folder),
    its deps (input files and the library code it runs), its params (leaf keys), outs and metrics."""
    stages = {}
    for stage in STAGES:
        entry: dict[str, Any] = {"cmd": f"{shlex.quote(python or sys.executable)} -m lifecycle.pipeline {stage.name}",
                                 "deps": [*stage.deps, *map(str, stage.code_files())]}
        if stage.params:
            entry["params"] = [leaf for key in stage.params for leaf in _leaf_keys(params, key)]
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
    """Write ``params.yaml`` and ``dvc.yaml`` into the sandbox; returns the path of ``dvc.yaml``."""
    import yaml

    params = params or DEFAULT_PARAMS
    write_params(repo.path, params)
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


def parse_repro_output(output: str) -> dict[str, list[str]]:
    """The stages a ``dvc repro`` output says it ``ran``, ``skipped`` and ``restored``, in order."""
    found: dict[str, list[str]] = {"ran": [], "skipped": [], "restored": []}
    for line in output.splitlines():
        name = line.split("'")[1] if line.count("'") >= 2 else ""
        if line.startswith("Running stage '"):
            found["ran"].append(name)
        elif line.startswith("Stage '") and "didn't change, skipping" in line:
            found["skipped"].append(name)
        elif line.startswith("Stage '") and "is cached - skipping run" in line:
            found["restored"].append(name)
    return found


def stage_environment(settings: Settings) -> dict[str, str]:
    """What the stage commands must know of this session: the kit and workspace folders, and the
    MLflow store the register stage writes to (``MLFLOW_TRACKING_URI``)."""
    return {"LIFECYCLE_ROOT": str(settings.root), "LIFECYCLE_WORKSPACE": str(settings.workspace),
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
    """Run ``dvc repro ARGS`` in the sandbox, its register stage logging to the settings' MLflow store.

    Raises:
        CommandError: a stage failed; the message ends with what it printed.
    """
    settings = settings or load_settings()
    with _environment(stage_environment(settings)):
        done = repo.dvc("repro", *args, hint="the failing stage's error is above; fix it and run dvc repro again")
    return ReproRun(done.seconds, **parse_repro_output(done.output), output=done.output)


def commit_pipeline(repo: DataRepo, message: str) -> None:
    """Commit ``dvc.yaml``, ``dvc.lock``, params and metrics (DVC put the cached outputs in ``.gitignore``)."""
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "-m", message)


# ---------------------------------------------------------------- Prefect flow


def prefect_installed() -> bool:
    """Whether Prefect, the optional ``orchestration`` extra, is installed."""
    return importlib.util.find_spec("prefect") is not None


def require_prefect() -> None:
    """Raise :class:`~lifecycle.errors.ConfigError` saying how to install Prefect, if it is missing."""
    if not prefect_installed():
        raise ConfigError(PREFECT_INSTALL_HINT)


def configure_prefect(settings: Settings | None = None) -> dict[str, str]:
    """Keep Prefect's files in the workspace and its telemetry off. Call it before Prefect is imported:
    Prefect reads its settings once, at import.

    ``PREFECT_HOME`` (database, results) defaults to ``workspace/prefect``; one set already is kept,
    and so is ``PREFECT_API_URL`` (a Prefect server or Prefect Cloud: then no local server starts).

    Returns:
        The Prefect settings in effect: ``home``, ``results`` and ``api``.

    Raises:
        ConfigError: Prefect is not installed.
    """
    _set_prefect_environment(settings)
    from prefect.settings import get_current_settings

    current = get_current_settings()
    return {"home": str(current.home), "results": str(current.results.local_storage_path),
            "api": str(current.api.url or "a temporary local server, started on first use")}


def _set_prefect_environment(settings: Settings | None = None) -> None:
    """What :func:`configure_prefect` sets, without importing Prefect (a server can start meanwhile)."""
    require_prefect()
    settings = settings or load_settings()
    os.environ.setdefault("PREFECT_HOME", str(settings.workspace / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The first start creates the server's database; on a busy 2-core machine that outlasts the 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@dataclass
class PrefectServer:
    """Prefect's temporary API server, started in the background by :func:`start_prefect_server`."""

    api_url: str
    process: subprocess.Popen
    log_file: Path
    started: float  # time.monotonic() at the start
    ready_after: float | None = None  # seconds from the start to its first healthy answer
    _answered: threading.Event = field(default_factory=threading.Event, repr=False)

    def _watch(self) -> None:
        """Poll ``/health`` (in a thread) until the server answers or exits, so ``ready_after`` is the
        start-up time even when nobody waits for it."""
        while self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        self.ready_after = time.monotonic() - self.started
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.1)
        self._answered.set()

    def wait_until_ready(self, timeout: float = 180.0) -> float:
        """Wait until the server answers; returns the seconds this call waited (0 if it was up already).

        Raises:
            CommandError: it exited, or did not answer within ``timeout`` (it is then stopped).
        """
        clock = time.monotonic()
        self._answered.wait(timeout)
        if self.ready_after is not None:
            _set_niceness(self.process.pid, 0)  # from now on it serves the flow runs
            return time.monotonic() - clock
        problem = (f"exited with status {self.process.returncode}" if self.process.poll() is not None
                   else f"did not answer {self.api_url}/health within {timeout:.0f} s")
        self.stop()
        log = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
        raise CommandError(f"Prefect's server {problem}; its log ({self.log_file}) ends:\n{log}\nRun the cell "
                           "again, or unset PREFECT_API_URL and let Prefect start its own server",
                           list(self.process.args), self.process.returncode, log)

    def stop(self, drain: bool = True) -> None:
        """Send Prefect's pending logs and events (``drain``), stop the server, and point Prefect back
        at its own temporary server (no ``PREFECT_API_URL``)."""
        atexit.unregister(self._stop_at_exit)
        if drain and self.ready_after is not None and self.process.poll() is None:
            _drain_prefect_workers()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.environ.get("PREFECT_API_URL") == self.api_url:
            del os.environ["PREFECT_API_URL"]
            _refresh_prefect_settings()

    def _stop_at_exit(self) -> None:
        self.stop(drain=False)  # Prefect's own exit handlers, registered later, ran first and drained


def start_prefect_server(settings: Settings | None = None) -> PrefectServer | None:
    """Start the temporary server Prefect would start on first use, but now and in the background, so
    its start-up (importing the server, creating its database: 10–15 s on an idle 2-core machine) overlaps
    other work.

    It is the command Prefect runs (uvicorn serving ``prefect.server.api.server:create_app``) with the
    same settings, minus block-type registration, which a flow with local results does not use. Its
    output goes to ``PREFECT_HOME/server.log``; ``PREFECT_API_URL`` points Prefect at it. It stops
    with :meth:`PrefectServer.stop`, or when Python exits. Call it before Prefect is imported.

    Returns:
        The server (wait for it with :meth:`PrefectServer.wait_until_ready`), or None when
        ``PREFECT_API_URL`` already names a server (then nothing is started).

    Raises:
        ConfigError: Prefect is not installed.
    """
    from lifecycle.tracking_server import free_port

    _set_prefect_environment(settings)
    running = _STARTED.get("server")
    if running and running.process.poll() is None and os.environ.get("PREFECT_API_URL") == running.api_url:
        return running  # started earlier in this process (a notebook cell run twice)
    if os.environ.get("PREFECT_API_URL"):
        return None
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]
    environment = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                   "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false"}
    with open(home / "server.log", "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=environment)
    _set_niceness(process.pid, BACKGROUND_NICENESS)  # the lesson's own work, and its timings, come first
    server = PrefectServer(f"http://127.0.0.1:{port}/api", process, home / "server.log", time.monotonic())
    atexit.register(server._stop_at_exit)  # a kernel that fails mid-lesson must not leave a server behind
    threading.Thread(target=server._watch, name="prefect-server-health", daemon=True).start()
    os.environ["PREFECT_API_URL"] = server.api_url
    _refresh_prefect_settings()
    _STARTED["server"] = server
    return server


def _set_niceness(pid: int, niceness: int) -> None:
    """Set a process's CPU priority, all its threads' on Linux (POSIX only). Raising it back may need
    privileges: then it stays low."""
    if not hasattr(os, "setpriority"):
        return
    threads = Path(f"/proc/{pid}/task")
    for thread in [int(path.name) for path in threads.iterdir()] if threads.is_dir() else [pid]:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, niceness)
        except (PermissionError, ProcessLookupError):
            pass  # not allowed here, or it already ended: its priority does not matter then


def _refresh_prefect_settings() -> None:
    """Prefect reads the environment once, at import: make an imported Prefect read it again."""
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def _drain_prefect_workers() -> None:
    """Send the logs and events Prefect still queues to its server (before the server stops)."""
    if "prefect.events.worker" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for worker in (APILogWorker, EventsWorker):
            result = worker.drain_all(timeout=10)
            if inspect.isawaitable(result):  # in a Jupyter kernel, whose event loop is running
                await result

    run_coro_as_sync(drain())


def start_prefect_api(settings: Settings | None = None) -> float:
    """Connect to Prefect's API, starting the temporary local server if no ``PREFECT_API_URL`` is set;
    returns the seconds it took. The server stops when Python exits."""
    configure_prefect(settings)
    from prefect.client.orchestration import get_client

    clock = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.api_healthcheck()
    return time.perf_counter() - clock


def stage_fingerprint(name: str, folder: str | Path, params: dict[str, Any], source: str | Path | None = None,
                      extra: tuple[str, ...] = ()) -> str:
    """What a stage's result depends on, hashed as DVC hashes it: the bytes of its input files, its
    parameters and its code, plus the folder its outputs go to (and ``extra``). Same fingerprint, same
    result: Prefect's cache key."""
    stage = get_stage(name)
    digest = hashlib.sha256(f"{name}\n{Path(folder).resolve()}".encode())
    for dep in stage.deps:
        path = Path(source) if (dep == SOURCE and source) else Path(folder) / dep
        digest.update(hashlib.md5(path.read_bytes()).digest() if path.is_file() else f"missing {dep}".encode())
    digest.update(json.dumps({key: params.get(key) for key in stage.params}, sort_keys=True, default=str).encode())
    for code in stage.code_files():
        digest.update(code.read_bytes())
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
    """A stage as a Prefect task: :func:`~lifecycle.pipeline.run_stage`, after ``blips`` simulated network
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
                    name, folder, params, source if name == "ingest" else None, tracking_uri, registered_model,
                    ingest_blips if name == "ingest" else 0)
                for name in STAGE_NAMES}

    return fraud_training_flow


def __getattr__(name: str) -> Any:
    # The entrypoint a deployment names, `lifecycle.orchestration.fraud_training_flow`, is built on first use:
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
        run.reports = state.result(_sync=True)  # in a Jupyter kernel (a running event loop) it would be awaitable
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

    _drain_prefect_workers()
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
