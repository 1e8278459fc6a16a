"""MLflow's internals the kit relies on, in one place: skipping a requirement check MLflow offers no switch for.

Checked against MLflow :data:`CHECKED_WITH` (``tests/unit/test_packaging.py`` fails when another minor
version is installed, or when the function below has moved: read it again then).

MLflow checks a model's requirements against the installed packages on every ``log_model`` (and again
when it validates the input example by loading the model back), whatever ``pip_requirements`` says. The
first check in a process maps every installed package to its modules (importlib's
``packages_distributions`` reads ~300 RECORD files): 1–3 s per kernel or pipeline stage that logs a model
(benchmarks/README.md, *Course*). The kit's pins are read from the installed packages
(:data:`lifecycle.tracking.runs.MODEL_REQUIREMENTS` through ``importlib.metadata``), so the check cannot
find a mismatch. The per-requirement check is looked up by name at each call, so replacing it for the
length of one ``with`` block is enough.

Used by :func:`lifecycle.tracking.runs.log_fraud_model` (taught in notebooks/03_experiment_tracking.ipynb).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

CHECKED_WITH = "3.17.2"  # the MLflow version whose requirements_utils this was read in
REQUIREMENT_CHECK = ("mlflow.utils.requirements_utils", "_check_requirement_satisfied")


@contextmanager
def pins_of_installed_packages() -> Iterator[None]:
    """Skip MLflow's check of a model's requirements against the installed packages while a model whose
    requirements are the installed packages is logged. Only for the ``with`` block (one thread logs at a
    time in the kit); in an MLflow without that function nothing changes (the check just runs)."""
    from importlib import import_module

    module = import_module(REQUIREMENT_CHECK[0])
    check = getattr(module, REQUIREMENT_CHECK[1], None)
    if check is None:
        yield
        return
    setattr(module, REQUIREMENT_CHECK[1], lambda requirement: None)
    try:
        yield
    finally:
        setattr(module, REQUIREMENT_CHECK[1], check)
