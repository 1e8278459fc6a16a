"""The course runner: execute the lesson notebooks in order with papermill, and collect results.

A notebook reports its key results with :func:`record`; the runner gathers them per notebook
into ``build/summary.json`` beside the executed notebooks (``build/notebooks/``).

Taught in notebooks/00_start_here.ipynb.
One module a little over 300 lines: ``lifecycle run`` from its parameters to its summary, read top to bottom.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings, read_params
from lifecycle.errors import ConfigError, NotebookError

RECORD_ENV = "LIFECYCLE_RECORD_FILE"
PROFILES = ("smoke", "full")
DEFAULT_CELL_TIMEOUT = 300
BACKENDS = ("embedded", "services")  # embedded defaults, or the servers `lifecycle services up` started
# The kernel's own log (its stderr is the runner's terminal) at ERROR: ipykernel 7 warns at start-up of
# every kernel that it "is running over TCP without encryption", which on 127.0.0.1 with the connection
# file's HMAC key signing every message is no news to an instructor. Errors still show; what the lesson
# prints still goes to the executed notebook. Checked against ipykernel 7.4.0 (traitlets Application.log_level).
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)


def record(**results: Any) -> dict[str, Any]:
    """Record a lesson's key results for the course summary.

    Under ``lifecycle run`` the values land in ``build/summary.json`` under the notebook's
    name; run by hand they go to ``build/records/<notebook>.json``. Calling it again adds
    to (and overwrites keys of) what the notebook recorded before.

    Args:
        **results: JSON-serialisable values (numpy numbers and arrays are converted).

    Returns:
        Everything this notebook has recorded so far.

    Raises:
        ConfigError: a value that cannot be written as JSON.
    """
    path = _record_path()
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    for key, value in results.items():
        try:
            recorded[key] = json.loads(json.dumps(value, default=_to_builtin))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"record({key}=…) got a {type(value).__name__}, which cannot be saved as "
                              "JSON; record numbers, strings, booleans, lists or dicts of them") from err
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return recorded


def _record_path() -> Path:
    if os.environ.get(RECORD_ENV):
        return Path(os.environ[RECORD_ENV])
    # JupyterLab tells the kernel which notebook it serves; elsewhere we cannot know.
    session = os.environ.get("JPY_SESSION_NAME", "")
    name = Path(session).stem if session.endswith(".ipynb") else "interactive"
    return load_settings().build / "records" / f"{name}.json"


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, set | tuple):
        return sorted(value) if isinstance(value, set) else list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


@dataclass
class NotebookRun:
    """What happened to one notebook in a course run."""

    name: str
    status: str = "pending"
    seconds: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)
    executed: str = ""
    error: str = ""
    cell: int | None = None


def list_notebooks(settings: Settings, only: list[str] | None = None) -> list[Path]:
    """The lesson notebooks in order, or those named by ``only`` (``["01", "03"]`` or full names).

    Raises:
        ConfigError: a name in ``only`` matches no notebook.
    """
    notebooks = sorted(settings.notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return notebooks
    chosen = []
    for wanted in only:
        matches = [nb for nb in notebooks if nb.stem == wanted or nb.stem.split("_")[0] == wanted]
        if not matches:
            raise ConfigError(f"--only {wanted!r} matches no notebook; the notebooks are "
                              f"{', '.join(nb.stem for nb in notebooks)}")
        chosen.extend(m for m in matches if m not in chosen)
    return sorted(chosen)


def profile_parameters(settings: Settings, profile: str, notebook: str) -> dict[str, Any]:
    """Parameters of ``profile`` for one notebook: the profile's common values, then the
    notebook's own section (``profiles.<profile>.notebooks.<name>``) from ``params.yaml``."""
    profiles = read_params(settings.root).get("profiles") or {}
    if profile not in profiles:
        raise ConfigError(f"unknown profile {profile!r}; params.yaml defines {sorted(profiles) or 'none'}")
    chosen = dict(profiles[profile] or {})
    per_notebook = chosen.pop("notebooks", None) or {}
    chosen.update(per_notebook.get(notebook) or {})
    return chosen


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["seed=7", "reveal_answers=true"]`` into typed values (YAML rules: 7 → int, true → bool)."""
    import yaml

    overrides = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"-p expects key=value with a Python name as key, got {pair!r} "
                              "(for example -p seed=7)")
        overrides[key] = yaml.safe_load(raw) if raw else ""
    return overrides


def run_course(profile: str = "smoke", only: list[str] | None = None, overrides: dict[str, Any] | None = None,
               out: str | Path | None = None, cell_timeout: int = DEFAULT_CELL_TIMEOUT,
               settings: Settings | None = None, progress: bool = True, backends: str = "embedded") -> dict[str, Any]:
    """Execute the lesson notebooks in order and write ``summary.json``.

    Args:
        profile: the parameter profile from ``params.yaml`` (``smoke`` or ``full``).
        only: notebook numbers or names to run (all when empty).
        overrides: parameters that win over the profile, given to every notebook that declares them.
        out: where executed notebooks and the summary go (default: the build folder).
        cell_timeout: seconds any one cell may run before the notebook fails.
        settings: the settings to use (default: :func:`load_settings`).
        progress: print one line per notebook (its name, then ``ok`` or ``failed`` and its seconds);
            papermill's per-cell progress bar is never shown.
        backends: ``embedded`` (a local DVC remote, sqlite MLflow, Prefect's own temporary server) or
            ``services``: the environment in ``workspace/services.env`` (``lifecycle services up``), set
            in this process, so every kernel inherits it, once every backend it names has answered.

    Returns:
        The summary written to ``<out>/summary.json``.

    Raises:
        ConfigError: unknown profile, notebook, parameter or backends; no services environment.
        CommandError: a backend of ``services`` does not answer.
        NotebookError: a notebook failed; earlier notebooks' outputs and the summary are kept.
    """
    settings = settings or load_settings()
    out = Path(out) if out else settings.build
    notebooks = list_notebooks(settings, only)
    overrides = dict(overrides or {})
    declared = {nb.stem: _declared_parameters(nb) for nb in notebooks}
    unused = [k for k in overrides if not any(k in names for names in declared.values())]
    if unused:
        known = sorted(set().union(*declared.values()))
        raise ConfigError(f"parameter(s) {unused} are declared by none of the notebooks to run; "
                          f"their parameters are {known}")
    # Kernels inherit this: scikit-learn's OpenMP threads thrash on a small machine shared with the
    # servers the lessons start (an HGB fit went from 0.3 s to 8–17 s). A user's own setting wins.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline: no usage reports from the kernels
    os.environ.update(_backend_environment(backends, settings))
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    (out / "records").mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"profile": profile, "backends": backends, "notebooks": {}}
    summary_path = out / "summary.json"
    started = time.perf_counter()
    for index, notebook in enumerate(notebooks, start=1):
        run = NotebookRun(name=notebook.stem, executed=str(out / "notebooks" / notebook.name))
        wanted = {**profile_parameters(settings, profile, notebook.stem), **overrides}
        parameters = {k: v for k, v in wanted.items() if k in declared[notebook.stem]}
        record_file = out / "records" / f"{notebook.stem}.json"
        record_file.unlink(missing_ok=True)
        if progress:
            print(f"[{index}/{len(notebooks)}] {notebook.stem:<28}", end="", flush=True)
        os.environ[RECORD_ENV] = str(record_file)
        clock = time.perf_counter()
        try:
            execute_lesson(notebook, Path(run.executed), parameters, cell_timeout)
            run.status = "ok"
        except Exception as err:  # papermill raises its own error for cells, others for kernels
            run.status = "failed"
            run.cell, run.error = _failure(err, notebook, Path(run.executed))
        finally:
            os.environ.pop(RECORD_ENV, None)
            run.seconds = round(time.perf_counter() - clock, 2)
            run.results = json.loads(record_file.read_text()) if record_file.is_file() else {}
            summary["notebooks"][run.name] = {k: v for k, v in vars(run).items() if k != "name"}
            summary["seconds"] = round(time.perf_counter() - started, 2)
            _write_json(summary_path, summary)
            if progress:
                print(f" {notebook_line(run)}", flush=True)
        if run.status == "failed":
            raise NotebookError(run.name, run.cell, run.error, run.executed)
    return summary


def execute_lesson(notebook: Path, executed: Path, parameters: dict[str, Any],
                   cell_timeout: int = DEFAULT_CELL_TIMEOUT) -> None:
    """Execute one notebook as ``lifecycle run`` does: papermill in a fresh ``python3`` kernel started
    in the notebook's folder, with ``parameters`` injected, no progress bar, and the kernel's own
    start-up warnings off (:data:`KERNEL_ARGUMENTS`); each cell's seconds land in the executed
    notebook's ``cell.metadata.papermill.duration``.

    Raises:
        papermill.PapermillExecutionError: a cell raised (the executed notebook shows where).
    """
    import papermill

    papermill.execute_notebook(
        str(notebook), str(executed), parameters=parameters, cwd=str(notebook.parent),
        kernel_name="python3", progress_bar=False, execution_timeout=cell_timeout,
        log_output=False, stdout_file=None, stderr_file=None, extra_arguments=list(KERNEL_ARGUMENTS))


def notebook_line(run: NotebookRun) -> str:
    """A notebook's status and seconds, as ``lifecycle run`` prints them after its name."""
    return f"{run.status:<7} {run.seconds:>6.1f} s"


def _backend_environment(backends: str, settings: Settings) -> dict[str, str]:
    """What ``backends`` adds to the kernels' environment: nothing for the embedded defaults."""
    if backends not in BACKENDS:
        raise ConfigError(f"unknown backends {backends!r}; choose one of {', '.join(BACKENDS)}")
    if backends == "embedded":
        return {}
    from lifecycle.services import check_backends, read_services_env

    env = read_services_env(settings)
    check_backends(env)
    return env


def _declared_parameters(notebook: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def _failure(err: Exception, source: Path, executed: Path) -> tuple[int | None, str]:
    """The failing cell (its index in the *source* notebook, as a learner counts cells in
    JupyterLab from 0) and a one-line error naming the cell's first line."""
    import nbformat

    index = getattr(err, "cell_index", None)
    name, value = getattr(err, "ename", None), getattr(err, "evalue", None)
    text = f"{name}: {value}" if name else f"{type(err).__name__}: {err}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()  # tracebacks arrive coloured
    text = text.splitlines()[0] if text else type(err).__name__
    if index is None or not executed.is_file():
        return None, text
    # papermill adds an injected-parameters cell and error banners: find the cell whose output
    # is the error, and map it back to the source notebook by its id.
    failed = next((cell for cell in nbformat.read(executed, as_version=4).cells
                   if any(out.get("output_type") == "error" for out in cell.get("outputs", []))), None)
    if failed is None:
        return None, text
    cells = nbformat.read(source, as_version=4).cells
    ids = [cell.get("id") for cell in cells]
    cell = ids.index(failed.get("id")) if failed.get("id") in ids else index
    first_line = failed.source.strip().splitlines()[0] if failed.source.strip() else ""
    return cell, f"{text} (in `{first_line[:60]}`)"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text table of a run: notebook, status, seconds, recorded results."""
    lines = [f"{'notebook':<28} {'status':<7} {'seconds':>8}  results"]
    for name, run in summary["notebooks"].items():
        results = ", ".join(f"{k}={_short(v)}" for k, v in run["results"].items())
        lines.append(f"{name:<28} {run['status']:<7} {run['seconds']:>8.1f}  {results}")
    lines.append(f"{'total':<28} {'':<7} {summary.get('seconds', 0):>8.1f}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def main_run(args: Any) -> int:
    """The ``lifecycle run`` command."""
    only = [part for item in (args.only or []) for part in item.split(",") if part]
    try:
        summary = run_course(args.profile, only, parse_overrides(args.param or []), args.out,
                             args.cell_timeout, progress=not args.no_progress,
                             backends=getattr(args, "backends", "embedded"))
    except NotebookError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        summary_file = Path(args.out or load_settings().build) / "summary.json"
        if summary_file.is_file():
            print(format_summary(json.loads(summary_file.read_text())), file=sys.stderr)
        return 1
    print()
    print(format_summary(summary))
    return 0
