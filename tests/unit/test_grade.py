"""The grader: reading hand-ins, restoring check cells, reading results back, the gradebook's files, and
(slow) a real class graded with papermill: a correct learner, a partly correct one, and broken hand-ins
of every kind, plus a learner whose code writes outside its folder."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lifecycle.course.exercises import check_rollout_gate
from lifecycle.course.exercises._checking import GRADING_ENV, RESULT_MIMETYPE, CheckResult
from lifecycle.course.grade import find_learners, find_notebook, grade_class
from lifecycle.course.grade_demo import hand_in, write_class
from lifecycle.course.grade_notebook import (
    GRADE_KEY,
    SubmissionError,
    load_exercises,
    prepare,
    read_results,
    read_submission,
)
from lifecycle.course.grade_run import TIMED_OUT, Run
from lifecycle.course.gradebook import CaseGrade, Gradebook, NotebookGrade
from lifecycle.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ["02_point_in_time_feature", "03_promote_the_right_run", "06_rollout_gate", "07_drift_or_concept"]


@pytest.fixture(scope="module")
def exercises():
    return {exercise.name: exercise for exercise in load_exercises(ROOT / "exercises")}


def test_the_kits_exercises_and_their_checks(exercises):
    assert list(exercises) == EXERCISES
    assert [check.function for check in exercises["07_drift_or_concept"].checks] == ["check_diagnose",
                                                                                       "check_should_retrain"]
    gate = exercises["06_rollout_gate"].checks[0]
    assert gate.cases == tuple(case.name for case in check_rollout_gate(lambda s, c: None, show=False).cases)


def test_a_check_result_round_trips_and_is_published_only_under_the_grader(monkeypatch, capsys):
    result = check_rollout_gate(lambda stable, canary: ("advance", "fine"))
    assert CheckResult.from_dict(json.loads(json.dumps(result.as_dict()))) == result
    assert capsys.readouterr().out == result.message + "\n"  # outside a kernel: the message, nothing more
    monkeypatch.setenv(GRADING_ENV, "1")
    check_rollout_gate(lambda stable, canary: ("advance", "fine"))
    assert capsys.readouterr().out == result.message + "\n"  # no IPython shell to publish to: unchanged


def test_hand_ins_that_are_not_notebooks_say_why(tmp_path):
    broken = tmp_path / "06_rollout_gate.ipynb"
    broken.write_text(hand_in(ROOT, "06_rollout_gate", "not_json"))
    with pytest.raises(SubmissionError, match=r"not a notebook: 06_rollout_gate.ipynb is not valid JSON \(.* line \d+"):
        read_submission(broken)
    broken.write_text(json.dumps({"answer": 42}))
    with pytest.raises(SubmissionError, match="JSON but has no 'cells' list"):
        read_submission(broken)
    broken.write_text(hand_in(ROOT, "06_rollout_gate", "correct"))
    assert read_submission(broken).cells


def test_prepare_restores_the_kits_check_cell_and_clears_old_outputs(tmp_path, exercises):
    notebook = nbformat.reads(hand_in(ROOT, "06_rollout_gate", "correct"), as_version=4)
    check = next(cell for cell in notebook.cells if "check" in cell.metadata.get("tags", []))
    check.source = "result = check_rollout_gate(lambda s, c: ('advance', 'faked'))"
    check.outputs = [nbformat.v4.new_output("display_data", data={RESULT_MIMETYPE: {"faked": True}})]
    prepared, missing = prepare(notebook, exercises["06_rollout_gate"])
    graded = [cell for cell in prepared.cells if GRADE_KEY in cell.metadata]
    assert missing == {} and len(graded) == 1
    assert graded[0].source == ("from lifecycle.course.exercises import check_rollout_gate\n"
                                "result = check_rollout_gate(gate)")
    assert all(not cell.get("outputs") for cell in prepared.cells if cell.cell_type == "code")

    deleted = nbformat.reads(hand_in(ROOT, "06_rollout_gate", "deleted_check"), as_version=4)
    _, missing = prepare(deleted, exercises["06_rollout_gate"])
    assert "was deleted: copy it back from exercises/06_rollout_gate.ipynb" in missing["check_rollout_gate"]


def _executed(cells: list) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=cells)
    for index, cell in enumerate(notebook.cells):
        cell.metadata.setdefault("papermill", {})["start_time"] = "2026-12-01T10:00:00" if index < 3 else None
    return notebook


def test_read_results_names_the_first_error_and_where_a_run_stopped(tmp_path):
    passed = check_rollout_gate(lambda stable, canary: ("hold", "wait"), show=False)
    broken_def = nbformat.v4.new_code_cell("def diagnose(window)\n    return 'none'", outputs=[
        nbformat.v4.new_output("error", ename="SyntaxError", evalue="expected ':' (3854016560.py, line 1)",
                               traceback=[])])
    raised = nbformat.v4.new_code_cell("from lifecycle.course.exercises import check_diagnose\n"
                                       "diagnose_result = check_diagnose(diagnose)", outputs=[
        nbformat.v4.new_output("error", ename="NameError", evalue="name 'diagnose' is not defined", traceback=[])])
    raised.metadata[GRADE_KEY] = {"check": "check_diagnose"}
    published = nbformat.v4.new_code_cell("result = check_rollout_gate(gate)", outputs=[
        nbformat.v4.new_output("display_data", data={RESULT_MIMETYPE: passed.as_dict(), "text/plain": "…"})])
    published.metadata[GRADE_KEY] = {"check": "check_rollout_gate"}
    never = nbformat.v4.new_code_cell("retrain_result = check_should_retrain(should_retrain)")
    never.metadata[GRADE_KEY] = {"check": "check_should_retrain"}
    path = tmp_path / "executed.ipynb"
    nbformat.write(_executed([broken_def, raised, published, never]), path)
    results = read_results(path, Run(TIMED_OUT, cell=2, timeout=5))
    assert results["check_rollout_gate"] == passed
    assert results["check_diagnose"] == (
        "the check could not run: cell 0 (`def diagnose(window)`) raised SyntaxError: expected ':' (line 1 of the "
        "cell), then the check cell raised NameError: name 'diagnose' is not defined")
    assert results["check_should_retrain"] == ("the check did not run: the notebook timed out after 5 s in cell 2 "
                                               "(`result = check_rollout_gate(gate)`)")


def test_learners_and_their_notebooks_are_found(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        find_learners(tmp_path / "nowhere")
    (tmp_path / "06_rollout_gate.ipynb").write_text("{}")
    with pytest.raises(ConfigError, match=r"no learner folders .*holds 06_rollout_gate.ipynb itself"):
        find_learners(tmp_path)
    (tmp_path / "bo" / "exercises").mkdir(parents=True)
    (tmp_path / "bo" / "exercises" / "06_rollout_gate.ipynb").write_text("{}")
    (tmp_path / "bo" / "07_drift_or_concept (1).ipynb").write_text("{}")
    (tmp_path / "bo" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "bo" / ".ipynb_checkpoints" / "02_point_in_time_feature.ipynb").write_text("{}")
    (tmp_path / ".hidden").mkdir()
    assert find_learners(tmp_path) == [("bo", tmp_path / "bo")]
    folder = tmp_path / "bo"
    assert find_notebook(folder, "06_rollout_gate") == folder / "exercises" / "06_rollout_gate.ipynb"
    assert find_notebook(folder, "07_drift_or_concept") == folder / "07_drift_or_concept (1).ipynb"
    assert find_notebook(folder, "02_point_in_time_feature") is None  # only a checkpoint copy


def test_the_gradebook_files_say_who_passed_and_what_failed_most(tmp_path):
    def grade(learner, statuses, problem=""):
        cases = tuple(CaseGrade(learner, "06_rollout_gate", "check_rollout_gate", number, f"case {number}", status,
                                "" if status == "passed" else f"{status}: reason {number}")
                      for number, status in enumerate(statuses, start=1))
        return NotebookGrade(learner, "06_rollout_gate", cases, problem)

    book = Gradebook([grade("ada", ["passed"] * 3), grade("bo", ["passed", "failed", "failed"]),
                      grade("cy", ["failed", "failed", "passed"]),
                      grade("di", ["error"] * 3, problem="the notebook timed out after 5 s")])
    written = book.write(tmp_path / "class.csv")
    assert [p.name for p in written] == ["class.csv", "class.html", "class-06_rollout_gate.html"]
    rows = list(csv.DictReader((tmp_path / "class.csv").open()))
    assert len(rows) == 12
    assert rows[4] == {"learner": "bo", "exercise": "06_rollout_gate", "check": "check_rollout_gate", "case": "2",
                       "case_name": "case 2", "status": "failed", "detail": "failed: reason 2"}
    assert [line.split() for line in book.table().splitlines()] == [
        ["learner", "06"], ["ada", "3/3"], ["bo", "1/3"], ["cy", "1/3"], ["di", "error"]]
    page = (tmp_path / "class-06_rollout_gate.html").read_text()
    assert "1 of 4 learner(s) pass every case" in page
    most = page.index("Most common failing cases")
    assert page.index("check_rollout_gate case 2: case 2", most) < page.index("check_rollout_gate case 1: case 1",
                                                                               most)
    assert "<td>di</td><td>the notebook timed out after 5 s</td>" in page
    overview = (tmp_path / "class.html").read_text()
    assert 'href="class-06_rollout_gate.html"' in overview and '<td class="pass" title="">3/3</td>' in overview
    assert "<td>di</td><td>06_rollout_gate</td><td>the notebook timed out after 5 s</td>" in overview


def test_grade_command_needs_a_folder_or_solutions():
    done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "grade"], capture_output=True, text=True)
    assert done.returncode == 2 and "give SUBMISSIONS_DIR (one folder per learner) or --solutions" in done.stderr


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


STRAY = """from pathlib import Path
import os
Path("scratch.txt").write_text("written where the kernel works")
Path("../params.yaml").write_text("a learner's code writing where the kit's params.yaml would be")
Path(os.environ["LIFECYCLE_WORKSPACE"], "mine.txt").write_text("in my workspace")
"""


@pytest.mark.slow
def test_a_class_is_graded_and_the_gradebook_says_the_right_thing_for_each(tmp_path):
    submissions = write_class(tmp_path / "hand-ins", {
        "ada": dict.fromkeys(EXERCISES, "correct"),
        "bo": {"06_rollout_gate": "partial", "07_drift_or_concept": "correct"},
        "cy": {"02_point_in_time_feature": "syntax_error"},
        "di": {"07_drift_or_concept": "infinite_loop"},
        "ed": {"03_promote_the_right_run": "deleted_check"},
        "fay": {"06_rollout_gate": "not_json"},
        "gus": {"06_rollout_gate": "correct"},
        "hal": {"06_rollout_gate": "correct"},
    }, ROOT)
    for learner, code in (("gus", STRAY), ("hal", "import os\nos._exit(3)")):
        path = submissions / learner / "06_rollout_gate.ipynb"
        notebook = nbformat.read(path, as_version=4)
        notebook.cells.insert(4, nbformat.v4.new_code_cell(code))
        nbformat.write(notebook, path)
    handed_in, kit = _digest(submissions), _digest(ROOT / "exercises")
    params = (ROOT / "params.yaml").read_bytes()

    book, written = grade_class(submissions, tmp_path / "out" / "class.csv", timeout=20, echo=None)
    assert [line.split() for line in book.table().splitlines()] == [
        ["learner", "02", "03", "06", "07"],
        ["ada", "8/8", "13/13", "10/10", "18/18"],
        ["bo", "missing", "missing", "2/10", "18/18"],
        ["cy", "error", "missing", "missing", "missing"],
        ["di", "missing", "missing", "missing", "9/18"],
        ["ed", "missing", "error", "missing", "missing"],
        ["fay", "missing", "missing", "error", "missing"],
        ["gus", "missing", "missing", "10/10", "missing"],
        ["hal", "missing", "missing", "error", "missing"]]
    rows = {(r.learner, r.exercise, r.check): r for r in book.rows}  # the last case of each check
    assert rows["bo", "06_rollout_gate", "check_rollout_gate"].status in ("passed", "failed")
    failed = [r for r in book.rows if r.learner == "bo" and r.status == "failed"]
    assert failed and all(r.detail.startswith("expected ") and "Hint: " in r.detail for r in failed)
    syntax = rows["cy", "02_point_in_time_feature", "check_point_in_time_feature"]
    assert syntax.status == "error" and "raised SyntaxError: expected ':'" in syntax.detail
    assert all(r.status == "passed" for r in book.rows if r.learner == "di" and r.check == "check_diagnose")
    loop = rows["di", "07_drift_or_concept", "check_should_retrain"]
    assert loop.status == "error"
    assert loop.detail.startswith("the check did not finish: the notebook timed out after 20 s")
    assert "was deleted" in rows["ed", "03_promote_the_right_run", "check_choose_run"].detail
    assert "is not valid JSON" in rows["fay", "06_rollout_gate", "check_rollout_gate"].detail
    assert rows["hal", "06_rollout_gate", "check_rollout_gate"].detail == (
        "the check did not run: the kernel died in cell 4 (`import os`): did the code exit Python, or run out of "
        "memory?")
    assert rows["fay", "02_point_in_time_feature", "check_point_in_time_feature"].detail == \
        "no 02_point_in_time_feature.ipynb handed in"
    # Nothing outside the learner's own copy changed: not the hand-ins, not the kit.
    assert _digest(submissions) == handed_in and _digest(ROOT / "exercises") == kit
    assert (ROOT / "params.yaml").read_bytes() == params
    work = tmp_path / "out" / "class-work" / "gus"
    assert (work / "submission" / "scratch.txt").is_file() and (work / "params.yaml").is_file()
    assert (work / "06_rollout_gate" / "workspace" / "mine.txt").is_file()
    assert [p.name for p in written[:2]] == ["class.csv", "class.html"]
    assert "timed out after 20 s" in (tmp_path / "out" / "class-07_drift_or_concept.html").read_text()


@pytest.mark.slow
def test_grade_solutions_passes_every_case(tmp_path):
    out = tmp_path / "solutions.csv"
    done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "grade", "--solutions", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "every solution passes all of its" in done.stdout
    rows = list(csv.DictReader(out.open()))
    assert {r["exercise"] for r in rows} == set(EXERCISES) and {r["status"] for r in rows} == {"passed"}


def test_bad_options_and_a_foreign_work_folder_are_refused_before_anything_runs(tmp_path):
    (tmp_path / "hand-ins" / "ada").mkdir(parents=True)
    with pytest.raises(ConfigError, match="--timeout must be positive and --jobs at least 1, got 0 and 2"):
        grade_class(tmp_path / "hand-ins", tmp_path / "class.csv", timeout=0)
    with pytest.raises(ConfigError, match=r"--out must name the gradebook.s .csv file \(or a folder\), got .*txt"):
        grade_class(tmp_path / "hand-ins", tmp_path / "class.txt")
    (tmp_path / "class-work").mkdir()
    (tmp_path / "class-work" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="class-work exists and was not made by 'lifecycle grade'"):
        grade_class(tmp_path / "hand-ins", tmp_path / "class.csv", echo=None)
    assert (tmp_path / "class-work" / "notes.txt").read_text() == "mine"
    book, _ = grade_class(tmp_path / "hand-ins", tmp_path / "again.csv", echo=None)  # ada handed in nothing
    assert {row.status for row in book.rows} == {"missing"}
    book, _ = grade_class(tmp_path / "hand-ins", tmp_path / "again.csv", echo=None)  # its own folder: rebuilt
    assert len(book.rows) == sum(len(check.cases) for e in load_exercises(ROOT / "exercises") for check in e.checks)
