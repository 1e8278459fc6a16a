"""One handed-in exercise notebook, graded: read it, put the kit's check cells back, and, once
:mod:`lifecycle.course.grade_run` has run it, read every check's result back from the executed copy.

The exercises are the kit's own notebooks (``exercises/NN_*.ipynb``); a cell tagged ``check`` there
is a check the grader expects. The checkers publish their results as ``RESULT_MIMETYPE`` data when
the grader runs them (see :mod:`lifecycle.course.exercises._checking`).

Taught nowhere: instructors use it through ``lifecycle grade`` (README, "For instructors").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.course.exercises._checking import RESULT_MIMETYPE, CheckResult
from lifecycle.course.grade_run import Run, describe_cell, executed_cells
from lifecycle.errors import ConfigError

CHECK_CALL = re.compile(r"\b(check_\w+)\(")
GRADE_KEY = "lifecycle_grade"  # cell metadata the grader adds to its copy: which check a cell runs


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


def _error_text(output: Any) -> str:
    """``SyntaxError: expected ':' (line 3 of the cell)``: an error output's name and first line, without
    colour codes or the kernel's temporary file name for the cell."""
    value = re.sub(r"\x1b\[[0-9;]*m", "", str(output.get("evalue", ""))).strip().splitlines()
    text = f"{output.get('ename', 'Error')}: {value[0] if value else ''}".rstrip(": ")
    return re.sub(r"\((?:\d+\.py|<[^>]+>), line (\d+)\)", r"(line \1 of the cell)", text)


