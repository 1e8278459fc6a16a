"""Running one grader's copy of a notebook headless: papermill in a kernel of its own, with its own
environment and working folder, over Unix sockets, within a time limit for the whole notebook.

papermill and nbclient are driven through one extension point, checked with papermill 2.7.0,
nbclient 0.11.0 and jupyter_client 8: an engine registered as :data:`ENGINE` that starts the kernel
with its own environment and working folder (papermill's own ``cwd`` changes the folder of the whole
grading process, which the grading threads share). After a timeout, nbclient's pending output reader
is cancelled by hand.

Taught nowhere: instructors use it through ``lifecycle grade`` (README, "For instructors").
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.course.exercises._checking import GRADING_ENV

ENGINE = "lifecycle-grading"
TIMED_OUT, KERNEL_DIED = "timed out", "kernel died"
ERROR_MARKER = "papermill-error-cell-tag"  # papermill's banner cells in a notebook that raised


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
    return [cell for cell in notebook.cells if ERROR_MARKER not in cell.metadata.get("tags", [])]


def describe_cell(cells: list, index: int) -> str:
    """``cell 9 (`def gate(stable, canary):`)``: the cell's index, as nbformat counts from 0, and its first line."""
    lines = [line for line in cells[index].source.splitlines() if line.strip()]
    first = lines[0].strip() if lines else ""
    if first.startswith("from lifecycle.course.exercises import") and len(lines) > 1:
        first = lines[1].strip()  # the grader's own import line in a check cell
    return f"cell {index} (`{first[:60]}`)"


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
                                             log=_quiet_log(), log_output=False, **kwargs)
            # Passed on to KernelManager.start_kernel and from there to the kernel's Popen.
            return client.execute(**kernel_options)

    return GradingEngine


@functools.cache
def _quiet_log() -> logging.Logger:
    """nbclient's log, kept to itself: it reports a timeout as an error, which the gradebook says instead.
    A logger of its own, not registered with ``logging``, so no one else's logging changes."""
    log = logging.Logger("lifecycle.grade")
    log.addHandler(logging.NullHandler())
    return log
