"""Grading a class's exercises: ``lifecycle grade SUBMISSIONS_DIR`` runs every learner's exercise
notebooks headless and writes a gradebook (see :mod:`lifecycle.course.gradebook`).

``SUBMISSIONS_DIR`` holds one folder per learner (its name is the learner's name) with that learner's
notebooks, named as in ``exercises/`` (``06_rollout_gate.ipynb``; a copy named ``06_….ipynb`` is
taken when it is the only one). Each notebook runs with papermill in a kernel of its own, two at a
time, within a time limit for the whole notebook, and every check's result is read back per case.
``lifecycle grade --solutions`` grades ``exercises/solutions/``: every case must pass.

What the isolation is, and is not. Each learner's folder is copied, and the kernel works in the copy,
so relative paths never reach the hand-in folder, another learner's folder or the kit; each notebook
gets its own workspace, build and temporary folders (``LIFECYCLE_WORKSPACE``, ``LIFECYCLE_BUILD``,
``TMPDIR``), a kernel that talks to the grader over Unix sockets (no TCP port), and a time limit
after which the kernel is killed. Nothing is downloaded. It is **not** a sandbox against malicious
code: the learner's code runs as the grader's user, and can read or write any file that user can
(absolute paths), open network connections, or fake a checker's result. Grade untrusted hand-ins in a
throw-away container or VM without network (README, "For instructors").

Taught nowhere: instructors use it (README, "For instructors").
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.course.exercises._checking import CheckResult
from lifecycle.course.grade_notebook import (
    Exercise,
    SubmissionError,
    load_exercises,
    prepare,
    read_results,
    read_submission,
)
from lifecycle.course.grade_run import Run, executed_cells, grading_env, run_notebook
from lifecycle.course.gradebook import CaseGrade, Gradebook, NotebookGrade
from lifecycle.errors import ConfigError

DEFAULT_TIMEOUT = 60.0
DEFAULT_JOBS = 2  # kernels at once: one per core of a small machine
_SKIPPED = (".ipynb_checkpoints", "__pycache__", ".git")
_MARK = ".lifecycle-grade"


def find_learners(submissions: Path) -> list[tuple[str, Path]]:
    """The learners' folders in ``submissions``, by name.

    Raises:
        ConfigError: ``submissions`` is not a folder, has no learner folder, or holds notebooks itself.
    """
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise ConfigError(f"SUBMISSIONS_DIR {str(submissions)!r} is not a folder; give the folder that holds one "
                          "folder per learner")
    learners = [(path.name, path) for path in sorted(submissions.iterdir())
                if path.is_dir() and not path.name.startswith(".") and path.name not in _SKIPPED]
    if not learners:
        loose = sorted(path.name for path in submissions.glob("*.ipynb"))
        hint = f" (it holds {', '.join(loose[:3])} itself)" if loose else ""
        raise ConfigError(f"no learner folders in {submissions}{hint}: put each learner's notebooks in a folder "
                          f"of their own, {submissions}/<learner>/06_rollout_gate.ipynb")
    return learners


def find_notebook(folder: Path, exercise: str) -> Path | None:
    """A learner's notebook for ``exercise``: ``<exercise>.ipynb`` anywhere in the folder (the shallowest),
    else the only ``NN_*.ipynb`` with the exercise's number."""
    def candidates(pattern: str) -> list[Path]:
        found = [p for p in folder.rglob(pattern) if not any(part in _SKIPPED for part in p.parts)]
        return sorted(found, key=lambda p: (len(p.parts), str(p)))

    exact = candidates(f"{exercise}.ipynb")
    if exact:
        return exact[0]
    numbered = candidates(f"{exercise.split('_')[0]}_*.ipynb")
    return numbered[0] if len(numbered) == 1 else None


def grade_class(submissions: Path | None = None, out: Path | None = None, timeout: float = DEFAULT_TIMEOUT,
                jobs: int = DEFAULT_JOBS, settings: Settings | None = None, solutions: bool = False,
                echo: Callable[[str], None] | None = print) -> tuple[Gradebook, list[Path]]:
    """Grade every learner's exercise notebooks and write the gradebook.

    Args:
        submissions: one folder per learner (not needed with ``solutions``).
        out: the gradebook CSV (default ``<build>/gradebook/gradebook.csv``, or ``solutions.csv``); the HTML
            summaries go beside it, and ``<name>-work/`` holds each learner's copy and executed notebooks.
        timeout: seconds one notebook may run, all its cells together.
        jobs: notebooks graded at once (each in its own kernel).
        settings: where the kit's exercises are (default: :func:`~lifecycle.config.load_settings`).
        solutions: grade the kit's ``exercises/solutions/`` as one learner, ``solutions``.
        echo: called with a line for every notebook graded (None: quiet).

    Returns:
        The gradebook, and the files written (the CSV first, then the HTML overview).

    Raises:
        ConfigError: a bad folder, timeout or number of jobs.
    """
    if timeout <= 0 or jobs < 1:
        raise ConfigError(f"--timeout must be positive and --jobs at least 1, got {timeout:g} and {jobs}")
    settings = settings or load_settings()
    exercises = load_exercises(settings.root / "exercises")
    learners = [("solutions", settings.root / "exercises" / "solutions")] if solutions else \
        find_learners(Path(submissions or "."))
    out = Path(out or settings.build / "gradebook" / ("solutions.csv" if solutions else "gradebook.csv"))
    if out.is_dir():
        out = out / ("solutions.csv" if solutions else "gradebook.csv")
    if out.suffix != ".csv":
        raise ConfigError(f"--out must name the gradebook's .csv file (or a folder), got {str(out)!r}")
    work = out.parent / f"{out.stem}-work"
    if work.exists():
        if not (work / _MARK).is_file():  # only ever delete a folder an earlier grading made
            raise ConfigError(f"{work} exists and was not made by 'lifecycle grade'; move it, or choose another "
                              "--out")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / _MARK).write_text("made by lifecycle grade: learners' copies and executed notebooks; rebuilt each run\n")
    tasks = []
    for learner, folder in learners:
        copy = work / learner / "submission"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(*_SKIPPED))
        tasks += [(learner, copy, exercise) for exercise in exercises]

    def grade(task: tuple[str, Path, Exercise]) -> NotebookGrade:
        grade = _grade_safely(*task, work / task[0], timeout)
        if echo:
            why = f": {grade.why}" if grade.why else ""
            echo(f"{grade.learner} {grade.exercise}: {grade.verdict} ({grade.seconds:.1f} s){why}")
        return grade

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        gradebook = Gradebook(list(pool.map(grade, tasks)))
    return gradebook, gradebook.write(out)


def _grade_safely(learner: str, copy: Path, exercise: Exercise, work: Path, timeout: float) -> NotebookGrade:
    try:
        return grade_notebook(learner, copy, exercise, work, timeout)
    except Exception as err:  # noqa: BLE001 - one submission must never stop the grading of the class
        reason = f"the grader could not run this notebook: {type(err).__name__}: {err}"
        return _everything(learner, exercise, "error", reason, problem=reason)


def grade_notebook(learner: str, copy: Path, exercise: Exercise, work: Path, timeout: float) -> NotebookGrade:
    """Grade one learner's notebook for ``exercise``, found in ``copy`` (their copied folder); the grader's
    files go to ``work`` (``<exercise>/`` for its workspace, ``executed/<exercise>.ipynb``)."""
    import nbformat

    path = find_notebook(copy, exercise.name)
    if path is None:
        return _everything(learner, exercise, "missing", f"no {exercise.name}.ipynb handed in")
    try:
        notebook = read_submission(path)
    except SubmissionError as err:
        return _everything(learner, exercise, "error", str(err), problem=str(err))
    prepared, missing = prepare(notebook, exercise)
    folder = work / exercise.name
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(prepared, folder / "prepared.ipynb")
    executed = work / "executed" / f"{exercise.name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    run = run_notebook(folder / "prepared.ipynb", executed, path.parent, grading_env(dict(os.environ), folder),
                       timeout)
    results: dict[str, CheckResult | str] = read_results(executed, run) if executed.is_file() else {}
    problem = _problem(run, executed)
    cases: list[CaseGrade] = []
    for check in exercise.checks:
        outcome = missing.get(check.function) or results.get(check.function) or \
            f"the check did not run: {problem or 'the notebook produced no output'}"
        if isinstance(outcome, CheckResult):
            cases += [CaseGrade(learner, exercise.name, check.function, case.number, case.name,
                                "passed" if case.passed else "failed",
                                "" if case.passed else f"expected {case.expected}, got {case.got}. Hint: {case.hint}")
                      for case in outcome.cases]
        else:
            cases += [CaseGrade(learner, exercise.name, check.function, number, name, "error", outcome)
                      for number, name in enumerate(check.cases, start=1)]
    return NotebookGrade(learner, exercise.name, tuple(cases), problem, run.seconds, str(executed))


def _problem(run: Run, executed: Path) -> str:
    return run.describe(executed_cells(executed) if run.stopped and executed.is_file() else [])


def _everything(learner: str, exercise: Exercise, status: str, detail: str, problem: str = "") -> NotebookGrade:
    """Every case of the exercise with the same status: the notebook is missing or could not run."""
    cases = tuple(CaseGrade(learner, exercise.name, check.function, number, name, status, detail)
                  for check in exercise.checks for number, name in enumerate(check.cases, start=1))
    return NotebookGrade(learner, exercise.name, cases, problem)


def grade_command(args: Any) -> int:
    """The ``lifecycle grade`` command; with ``--solutions``, exit status 1 unless every case passes."""
    if bool(args.submissions) == bool(args.solutions):
        raise ConfigError("give SUBMISSIONS_DIR (one folder per learner) or --solutions, not "
                          + ("both" if args.solutions else "neither"))
    gradebook, written = grade_class(Path(args.submissions) if args.submissions else None,
                                     Path(args.out) if args.out else None, args.timeout, args.jobs,
                                     solutions=args.solutions)
    print()
    print(gradebook.table())
    print(f"\ngradebook: {written[0]}\nsummary:   {written[1]}")
    if not args.solutions:
        return 0
    failing = [row for row in gradebook.rows if row.status != "passed"]
    if not failing:
        print(f"every solution passes all of its {len(gradebook.rows)} cases")
        return 0
    for row in failing:
        print(f"{row.exercise} {row.check} case {row.case} ({row.case_name}): {row.status}: {row.detail}",
              file=sys.stderr)
    return 1
