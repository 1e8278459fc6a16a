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
