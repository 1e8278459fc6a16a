"""lifecycle.course.environment: the kernel's thread limit for lessons that share the cores with servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json
from lifecycle.course.environment import one_thread_per_pool
one_thread_per_pool()
from threadpoolctl import threadpool_info
print(json.dumps([(pool["user_api"], pool["num_threads"]) for pool in threadpool_info()]))
"""


def test_one_thread_per_pool_reaches_scikit_learns_openmp_in_a_fresh_kernel():
    """A fresh process, as a JupyterLab kernel: nothing has loaded scikit-learn, and no OMP_NUM_THREADS
    says one thread. The limit must still reach the OpenMP pool the tree models use."""
    environment = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    output = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                            env=environment, timeout=120).stdout
    pools = json.loads(output.strip().splitlines()[-1])
    assert any(api == "openmp" for api, _ in pools), pools
    assert all(threads == 1 for _, threads in pools), pools


def test_each_arrow_of_the_lifecycle_map_touches_the_two_boxes_it_joins():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.patches import FancyArrowPatch

    from lifecycle.course.environment import STAGES, draw_lifecycle_map

    fig = draw_lifecycle_map()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [text.get_bbox_patch().get_window_extent(renderer) for text in ax.texts if text.get_bbox_patch()]
    arrows = [patch for patch in ax.patches if isinstance(patch, FancyArrowPatch)]
    arrows += [child.arrow_patch for child in ax.get_children() if getattr(child, "arrow_patch", None)]
    assert len(boxes) == len(STAGES) == len(arrows)
    for i, arrow in enumerate(arrows):
        start, end = boxes[i], boxes[(i + 1) % len(boxes)]
        reach = arrow.get_window_extent(renderer)
        for box in (start, end):  # no gap beyond a line width (the old arrows stopped 10–30 px short)
            gap_x = max(box.x0 - reach.x1, reach.x0 - box.x1, 0)
            gap_y = max(box.y0 - reach.y1, reach.y0 - box.y1, 0)
            assert max(gap_x, gap_y) <= 4, f"arrow {i} stops {max(gap_x, gap_y):.1f} px short of a box"
