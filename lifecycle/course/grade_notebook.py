"""One handed-in exercise notebook, graded: read it, put the kit's check cells back, run it headless
with papermill in a folder of its own, and read every check's result back from the executed copy.

The exercises are the kit's own notebooks (``exercises/NN_*.ipynb``); a cell tagged ``check`` there
is a check the grader expects. The checkers publish their results as :data:`RESULT_MIMETYPE` data
when the kernel's environment has :data:`GRADING_ENV` (see :mod:`lifecycle.course.exercises._checking`).

papermill and nbclient are driven through one extension point, checked with papermill 2.7.0,
nbclient 0.11.0 and jupyter_client 8: an engine registered as :data:`ENGINE` that starts the kernel
with its own environment and working folder (papermill's own ``cwd`` changes the folder of the whole
grading process, which the grading threads share).

Taught nowhere: instructors use it through ``lifecycle grade`` (README, "For instructors").
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.course.exercises._checking import GRADING_ENV, RESULT_MIMETYPE, CheckResult
from lifecycle.errors import ConfigError

ENGINE = "lifecycle-grading"
CHECK_CALL = re.compile(r"\b(check_\w+)\(")
GRADE_KEY = "lifecycle_grade"  # cell metadata the grader adds to its copy: which check a cell runs
TIMED_OUT, KERNEL_DIED = "timed out", "kernel died"
_ERROR_MARKER = "papermill-error-cell-tag"  # papermill's banner cells in a notebook that raised
_LOG = logging.getLogger("lifecycle.grade")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False  # nbclient logs a timeout as an error: the gradebook says it instead


class SubmissionError(Exception):
    """A handed-in file the grader cannot run; the message is the reason the gradebook shows."""


@dataclass(frozen=True)
class CheckCell:
    """A check of an exercise: the function it calls, its cell in the kit's notebook, its cases' names."""

    function: str
    source: str
    cell_id: str | None
    cases: tuple[str, ...]


@dataclass(frozen=True)
class Exercise:
    """An exercise notebook of the kit and the checks it runs, in notebook order."""

    name: str
    path: Path
    checks: tuple[CheckCell, ...]


@dataclass(frozen=True)
class Run:
    """How the execution of one notebook ended: ``stopped`` is empty when every cell ran, else why it
    stopped at ``cell`` (:data:`TIMED_OUT` or :data:`KERNEL_DIED`)."""

    stopped: str = ""
    cell: int | None = None
    seconds: float = 0.0
    timeout: float = 0.0

    def describe(self, cells: list) -> str:
        """``the notebook timed out after 60 s in cell 9 (`…`)``, or that the kernel died there (and why it
        may have); empty when every cell ran. ``cells`` are the executed notebook's."""
        where = f" in {describe_cell(cells, self.cell)}" if self.cell is not None and self.cell < len(cells) else ""
        if self.stopped == TIMED_OUT:
            return f"the notebook timed out after {self.timeout:g} s{where}"
        if self.stopped == KERNEL_DIED:
            return f"the kernel died{where}: did the code exit Python, or run out of memory?"
        return ""


def load_exercises(folder: Path) -> list[Exercise]:
    """The exercises in ``folder`` (``NN_*.ipynb``) with their check cells and the names of their cases.

    Raises:
        ConfigError: no exercise notebook there, or one without a check cell.
    """
    import nbformat

    import lifecycle.course.exercises as checkers

    exercises = []
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        checks = []
        for cell in nbformat.read(path, as_version=4).cells:
            call = CHECK_CALL.search(cell.source) if cell.cell_type == "code" else None
            if call and "check" in cell.metadata.get("tags", []):
                # The case names come from the checker itself, run on a function that answers nothing.
                result = getattr(checkers, call.group(1))(lambda *args: None, show=False)
                checks.append(CheckCell(call.group(1), cell.source, cell.get("id"),
                                        tuple(case.name for case in result.cases)))
        if not checks:
            raise ConfigError(f"{path} has no cell tagged 'check' calling a check_… function; "
                              "restore it from git")
        exercises.append(Exercise(path.stem, path, tuple(checks)))
    if not exercises:
        raise ConfigError(f"no exercise notebooks (NN_name.ipynb) in {folder}; run from the kit's folder")
    return exercises


def read_submission(path: Path) -> Any:
    """Read a handed-in notebook as nbformat 4.

    Raises:
        SubmissionError: it is not JSON, or not a notebook; the message says which and where.
    """
    import nbformat

    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SubmissionError(f"not a notebook: {path.name} is not valid JSON ({err.msg} at line {err.lineno}, "
                              f"column {err.colno}); was it saved by JupyterLab, or edited by hand?") from err
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
        raise SubmissionError(f"not a notebook: {path.name} is JSON but has no 'cells' list and 'nbformat' "
                              "version; hand in the .ipynb file JupyterLab saves")
    try:
        notebook = nbformat.convert(nbformat.reader.reads(text), 4)  # reads joins each cell's source lines
        nbformat.validate(notebook)
    except (nbformat.ValidationError, nbformat.reader.NotJSONError, ValueError, KeyError, TypeError) as err:
        first = str(getattr(err, "message", err)).splitlines()[0][:200]
        raise SubmissionError(f"not a valid notebook: {path.name}: {first}") from err
    return notebook


def prepare(notebook: Any, exercise: Exercise) -> tuple[Any, dict[str, str]]:
    """The grader's copy of a submission: outputs cleared, and each check cell found (by its cell id, else
    by its call) and reset to the kit's source, so the kit's checker runs whatever the learner changed.

    Returns:
        The copy, and for each check whose cell is gone, why it cannot run.
    """
    import copy

    prepared = copy.deepcopy(notebook)
    for cell in prepared.cells:
        cell.metadata.pop(GRADE_KEY, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    missing = {}
    for check in exercise.checks:
        cell = _find_check_cell(prepared.cells, check)
        if cell is None:
            missing[check.function] = (f"the check cell (`{check.source.strip()}`) was deleted: copy it back from "
                                       f"exercises/{exercise.name}.ipynb, below your function")
            continue
        # Imported again in the cell itself: the check is the kit's, whatever the notebook did to the name.
        cell.source = f"from lifecycle.course.exercises import {check.function}\n{check.source}"
        cell.metadata[GRADE_KEY] = {"check": check.function}
    prepared.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return prepared, missing


def _find_check_cell(cells: list, check: CheckCell) -> Any:
    code = [cell for cell in cells if cell.cell_type == "code" and GRADE_KEY not in cell.metadata]
    by_id = [cell for cell in code if check.cell_id and cell.get("id") == check.cell_id]
    by_call = [cell for cell in code if f"{check.function}(" in cell.source]
    return (by_id or by_call or [None])[0]


def run_notebook(prepared: Path, executed: Path, cwd: Path, env: dict[str, str], timeout: float) -> Run:
    """Execute ``prepared`` into ``executed`` with papermill: every cell runs even after one raises (as
    Restart & Run All would, so a broken first part does not hide a working second one), within
    ``timeout`` seconds for the whole notebook; the kernel gets ``env`` and works in ``cwd``."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    papermill_engines.register(ENGINE, _engine_class())
    started = time.monotonic()
    deadline = started + timeout
    stopped = ""
    # Kernel and grader talk over Unix sockets, not TCP. A socket's path must be short (107 bytes at most),
    # so they live in a folder of their own in the system's temporary folder, not in the learner's.
    sockets = Path(tempfile.mkdtemp(prefix="lifecycle-grade-"))
    try:
        with (executed.parent / f"{executed.stem}.kernel.log").open("w") as kernel_log:
            papermill.execute_notebook(
                str(prepared), str(executed), kernel_name="python3", progress_bar=False, log_output=False,
                engine_name=ENGINE, start_timeout=60, allow_errors=True, shutdown_kernel="immediate",
                kernel_options={"env": env, "cwd": str(cwd), "stdout": kernel_log, "stderr": kernel_log},
                timeout_func=lambda cell: max(1, int(deadline - time.monotonic()) + 1),
                config=Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}}))
    except PapermillExecutionError:
        pass  # a cell raised; with allow_errors every cell still ran, and the outputs say which
    except CellTimeoutError:
        stopped = TIMED_OUT
    except DeadKernelError:
        stopped = KERNEL_DIED
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
        if stopped:
            _cancel_leftover_tasks()
    cell = _last_started(executed) if stopped else None
    return Run(stopped, cell, round(time.monotonic() - started, 2), timeout)


def _cancel_leftover_tasks() -> None:
    """nbclient leaves its output reader pending when a cell times out or the kernel dies: cancel it, or
    this thread's event loop reports a destroyed pending task when the grader exits."""
    import asyncio

    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()  # the thread's loop, which nbclient's calls ran on
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _last_started(executed: Path) -> int | None:

    if not executed.is_file():
        return None
    cells = executed_cells(executed)
    started = [i for i, cell in enumerate(cells) if cell.metadata.get("papermill", {}).get("start_time")]
    return started[-1] if started else None


def executed_cells(executed: Path) -> list:
    """The cells of an executed notebook, without the banner cells papermill adds when a cell raised."""
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    return [cell for cell in notebook.cells if _ERROR_MARKER not in cell.metadata.get("tags", [])]


def read_results(executed: Path, run: Run) -> dict[str, CheckResult | str]:
    """Each check's result from an executed grader's copy: a :class:`CheckResult`, or why there is none
    (the cell raised, naming the first cell that did; or it never ran, naming where the run stopped)."""
    cells = executed_cells(executed)
    first_error = next(((i, out) for i, cell in enumerate(cells) for out in cell.get("outputs", [])
                        if out.output_type == "error"), None)
    results: dict[str, CheckResult | str] = {}
    for index, cell in enumerate(cells):
        check = cell.metadata.get(GRADE_KEY, {}).get("check")
        if not check:
            continue
        published = [out.data[RESULT_MIMETYPE] for out in cell.get("outputs", [])
                     if out.output_type == "display_data" and RESULT_MIMETYPE in out.get("data", {})]
        error = next((out for out in cell.get("outputs", []) if out.output_type == "error"), None)
        if published:
            results[check] = CheckResult.from_dict(published[-1])
        elif error is not None:
            reason = f"the check cell raised {_error_text(error)}"
            if first_error and first_error[0] < index:
                earlier, output = first_error
                reason = (f"the check could not run: {describe_cell(cells, earlier)} raised {_error_text(output)}, "
                          f"then the check cell raised {_error_text(error)}")
            results[check] = reason
        elif run.stopped and (run.cell is None or run.cell <= index):
            verb = "did not finish" if run.cell == index else "did not run"
            results[check] = f"the check {verb}: {run.describe(cells)}"
        else:
            results[check] = f"the check published no result (is {check} the kit's?)"
    return results


def describe_cell(cells: list, index: int) -> str:
    """``cell 9 (`def gate(stable, canary):`)``: the cell's index, as nbformat counts from 0, and its first line."""
    lines = [line for line in cells[index].source.splitlines() if line.strip()]
    first = lines[0].strip() if lines else ""
    if first.startswith("from lifecycle.course.exercises import") and len(lines) > 1:
        first = lines[1].strip()  # the grader's own import line in a check cell
    return f"cell {index} (`{first[:60]}`)"


def _error_text(output: Any) -> str:
    """``SyntaxError: expected ':' (line 3 of the cell)``: an error output's name and first line, without
    colour codes or the kernel's temporary file name for the cell."""
    value = re.sub(r"\x1b\[[0-9;]*m", "", str(output.get("evalue", ""))).strip().splitlines()
    text = f"{output.get('ename', 'Error')}: {value[0] if value else ''}".rstrip(": ")
    return re.sub(r"\((?:\d+\.py|<[^>]+>), line (\d+)\)", r"(line \1 of the cell)", text)


def grading_env(base: dict[str, str], folder: Path) -> dict[str, str]:
    """The kernel's environment: the grader's, with the kit's folders inside ``folder`` and the checks publishing."""
    env = {k: v for k, v in base.items() if k not in ("MLFLOW_TRACKING_URI", "LIFECYCLE_RECORD_FILE",
                                                       "JPY_SESSION_NAME", "LIFECYCLE_DVC_REMOTE")}
    for name in ("workspace", "build", "tmp"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    env.update({"LIFECYCLE_WORKSPACE": str(folder / "workspace"), "LIFECYCLE_BUILD": str(folder / "build"),
                "TMPDIR": str(folder / "tmp"), GRADING_ENV: "1", "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1",
                "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


@functools.cache
def _engine_class() -> type:
    """Built on first use, so that importing this module imports no papermill."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine

    class GradingEngine(NBClientEngine):
        """papermill's nbclient engine, with the kernel's environment and folder passed to the kernel."""

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                     stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                     execution_timeout: int | None = None, **kwargs: Any) -> Any:
            kernel_options = kwargs.pop("kernel_options")
            kwargs.pop("input_path", None)
            client = PapermillNotebookClient(nb_man, kernel_name=kernel_name, startup_timeout=start_timeout,
                                             log=_LOG, log_output=False, **kwargs)
            # Passed on to KernelManager.start_kernel and from there to the kernel's Popen.
            return client.execute(**kernel_options)

    return GradingEngine
