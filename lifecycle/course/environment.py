"""Lesson 00's environment check and lifecycle map.

Taught in notebooks/00_start_here.ipynb.
"""

from __future__ import annotations

import importlib
import subprocess
import time
from typing import Any

from lifecycle._shell import find_command

# The stages of the course: (notebook, stage, what it is for, the real tool it uses).
STAGES = (
    ("01", "data versioning", "know exactly which data trained which model", "DVC + git"),
    ("02", "feature engineering", "turn raw transactions into signals, without leaking the future", "pandas"),
    ("03", "experiment tracking", "never lose a run; promote models by alias", "MLflow"),
    ("04", "orchestration", "the pipeline as code: cached, reproducible, schedulable", "DVC pipelines, Prefect"),
    ("05", "serving", "answer requests fast and safely", "FastAPI + uvicorn, gRPC"),
    ("06", "canary release", "ship a new model to a few users first; roll back on bad signs", "canary router"),
    ("07", "monitoring", "notice drift, and retrain when it matters", "Evidently"),
)

# The tools the course drives for real: import name → distribution name.
TOOLS = {
    "pandas": "pandas", "sklearn": "scikit-learn", "mlflow": "mlflow", "dvc": "dvc",
    "fastapi": "fastapi", "uvicorn": "uvicorn", "grpc": "grpcio", "evidently": "evidently",
    "papermill": "papermill", "ipywidgets": "ipywidgets", "matplotlib": "matplotlib",
}


def check_environment(import_modules: bool = True) -> list[dict[str, Any]]:
    """Check that each real tool of the course is installed, and how long it takes to import.

    Args:
        import_modules: import each tool (slow, ~20 s in all) rather than only reading its version.

    Returns:
        One row per tool: ``tool``, ``version`` (None if missing), ``import_seconds``, ``ok``,
        and ``fix`` (what to run when it is missing).
    """
    from importlib import metadata

    rows = []
    for module, dist in TOOLS.items():
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = None
        seconds = None
        if version and import_modules:
            clock = time.perf_counter()
            importlib.import_module(module)
            seconds = round(time.perf_counter() - clock, 2)
        rows.append({"tool": dist, "version": version, "import_seconds": seconds, "ok": version is not None,
                     "fix": "" if version else "run 'make setup' (or pip install -e .)"})
    for command in ("git", "dvc"):
        path = find_command(command)
        version = None
        if path:
            text = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout
            version = text.strip().split()[-1] if text.strip() else None
        rows.append({"tool": f"{command} (command)", "version": version, "import_seconds": None,
                     "ok": version is not None,
                     "fix": "" if version else f"install {command} or activate .venv"})
    return rows


def one_thread_per_pool(threads: int = 1) -> Any:
    """Cap this process's native thread pools (scikit-learn's OpenMP, BLAS) at ``threads``.

    Lessons 03, 06 and 07 start servers that share the machine's cores with the kernel; every server
    runs with ``OMP_NUM_THREADS=1`` (lesson 05), and so does a kernel started by ``lifecycle run``.
    A kernel opened in JupyterLab may not be: this gives it the same limit. scikit-learn's OpenMP
    runtime is loaded first, because threadpoolctl can only limit the pools already loaded.

    Returns:
        threadpoolctl's limiter (``.restore_original_limits()`` undoes it).
    """
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime the tree models use)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads)


def draw_lifecycle_map():
    """Draw the seven stages as a loop: data → … → monitoring → (retrain) → data, each arrow running from
    the edge of one stage's box to the edge of the next (matplotlib clips it to the two boxes).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4.2))
    angles = np.linspace(np.pi, -np.pi, len(STAGES), endpoint=False)
    points = np.c_[np.cos(angles) * 3.2, np.sin(angles) * 1.5]
    boxes = [ax.text(x, y, f"{number} {stage}\n{tool}", ha="center", va="center", fontsize=9,
                     bbox={"boxstyle": "round,pad=0.4", "fc": "#e8f1fb", "ec": "#3b6ea5"})
             for (number, stage, _, tool), (x, y) in zip(STAGES, points, strict=True)]
    for i, box in enumerate(boxes):
        following = boxes[(i + 1) % len(boxes)]
        colour = "#c0392b" if i == len(STAGES) - 1 else "#555555"
        # Centre to centre, clipped where the line leaves one box and enters the next: it touches both.
        ax.annotate("", xy=following.get_position(), xytext=box.get_position(),
                    arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5, "shrinkA": 0, "shrinkB": 0,
                                "patchA": box.get_bbox_patch(), "patchB": following.get_bbox_patch()})
    ax.text(0, 0, "drift detected →\nretrain on fresh data", ha="center", va="center", color="#c0392b", fontsize=9)
    ax.set_xlim(-4.3, 4.3)
    ax.set_ylim(-2.1, 2.1)
    ax.axis("off")
    ax.set_title("The production ML lifecycle this course walks, one notebook per stage")
    fig.tight_layout()
    return fig
