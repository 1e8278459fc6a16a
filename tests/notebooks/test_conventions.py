"""The notebooks' own conventions (see README, Contributing): checked on the committed files.

Executing them is nbval's job (`pytest --nbval-lax notebooks exercises`, run by `make test`).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALL = NOTEBOOKS + sorted((ROOT / "exercises").rglob("*.ipynb"))


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_lessons_exist_in_order():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_first_code_cell_is_tagged_parameters_with_small_defaults(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert "parameters" in _tags(code[0]), f"{path.name}: the first code cell must be tagged 'parameters'"
    assert "seed = " in code[0].source, f"{path.name}: the parameters cell must define seed"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_only_checked_cells_are_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert "papermill" not in nb.metadata, f"{path.name}: strip papermill metadata (scripts/refresh_notebook.py)"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert "injected-parameters" not in _tags(cell), f"{path.name}: cell {index} is papermill's injected cell"
        if "nbval-check-output" not in _tags(cell):
            assert not cell.outputs, (f"{path.name}: cell {index} has outputs but is not tagged nbval-check-output; "
                                      "run scripts/refresh_notebook.py on it")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_lesson_records_results_and_starts_with_why(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: start with markdown that says why"
    assert any("record(" in cell.source for cell in nb.cells if cell.cell_type == "code"), (
        f"{path.name}: record the lesson's key results with lifecycle.record(...)")
