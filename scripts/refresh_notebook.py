"""Re-execute lesson notebooks and keep only the outputs that nbval checks.

The convention (see README, "Contributing"): notebooks are committed without outputs, except
cells tagged ``nbval-check-output``, whose outputs are the lesson's deterministic key results
(hashes, counts, rounded metrics for the default seed) and are compared by nbval on every test
run. This script runs each given notebook with its default parameters, then strips every other
output and all execution metadata, and writes the notebook back in place.

    .venv/bin/python scripts/refresh_notebook.py notebooks/01_data_versioning.ipynb [...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

CHECKED = "nbval-check-output"


def strip(nb: nbformat.NotebookNode, keep_checked: bool = True) -> nbformat.NotebookNode:
    """Remove outputs (except checked cells') and execution metadata."""
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # widget state carries random model ids: churn, not content
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        if keep_checked and CHECKED in tags:
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream" or o.get("name") != "stderr"]
            cell.execution_count = 1
        else:
            cell.outputs, cell.execution_count = [], None
        if "injected-parameters" in tags:
            raise SystemExit("refusing to keep papermill's injected-parameters cell")
    return nb


def refresh(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / path.name
        papermill.execute_notebook(str(path), str(executed), cwd=str(path.parent), kernel_name="python3",
                                   execution_timeout=300, progress_bar=False)
        nb = nbformat.read(executed, as_version=4)
    nbformat.write(strip(nb), path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        refresh(Path(name))
