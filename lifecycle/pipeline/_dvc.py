"""What a ``dvc repro`` did, read from what it printed: DVC's one internal the pipeline relies on.

Checked against DVC :data:`CHECKED_WITH` (``tests/unit/test_packaging.py`` fails when the installed DVC
is another minor version, or when its messages below have changed: check them again then).

Why its output and not its Python API: the lesson runs ``dvc repro`` as a learner would, in the
sandbox, and shows what it printed. ``dvc.repo.Repo(...).status()`` (public) says which stages are
out of date *before* a run, but not, after it, which stages ran and which DVC restored from its
run-cache instead of running; only these log lines (``dvc/stage/run.py``, ``dvc/stage/__init__.py``,
``dvc/stage/cache.py``) say that.

Taught in notebooks/04_orchestration.ipynb (through :func:`lifecycle.pipeline.dvc.reproduce`).
"""

from __future__ import annotations

CHECKED_WITH = "3.67.1"  # the DVC version whose messages these are
# What DVC logs, per outcome, with %s for the stage's name (as in DVC's own logger calls).
MESSAGES = {"ran": "Running stage '%s':", "skipped": "Stage '%s' didn't change, skipping",
            "restored": "Stage '%s' is cached - skipping run, checking out outputs"}


def parse_repro_output(output: str) -> dict[str, list[str]]:
    """The stages a ``dvc repro`` output says it ``ran``, ``skipped`` (unchanged) and ``restored``
    (from the run-cache), in order."""
    found: dict[str, list[str]] = {outcome: [] for outcome in MESSAGES}
    prefixes = {outcome: message.split("%s")[0] for outcome, message in MESSAGES.items()}
    suffixes = {outcome: message.split("%s")[1] for outcome, message in MESSAGES.items()}
    for line in output.splitlines():
        for outcome in MESSAGES:
            start, end = prefixes[outcome], suffixes[outcome]
            if line.startswith(start) and end in line[len(start):]:
                found[outcome].append(line[len(start):line.index(end, len(start))])
                break
    return found
