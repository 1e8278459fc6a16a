"""Exercise checkers: every solution notebook passes its checks, every untouched exercise fails them with a
message that names a case and gives a hint, and the usual wrong answers get their specific message.

The notebooks' code cells run in this process (fast); one untouched exercise notebook also runs for real
under papermill, to prove a failing check does not stop a headless run.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

import lifecycle.course.exercises as exercises
from lifecycle.course.exercises import (
    CheckResult,
    check_choose_run,
    check_diagnose,
    check_point_in_time_feature,
    check_rollout_gate,
    check_should_retrain,
    drift,
    point_in_time,
    promotion,
    rollout,
)

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["02_point_in_time_feature", "03_promote_the_right_run", "06_rollout_gate", "07_drift_or_concept"]
CHECKS = [check_point_in_time_feature, check_choose_run, check_rollout_gate, check_diagnose, check_should_retrain]
CHECK_CALL = re.compile(r"^(\w+) = (check_\w+)\((\w+)\)$")


def run_notebook_code(path: Path) -> dict[str, CheckResult]:
    """Execute a notebook's code cells in order, in one namespace; returns each check cell's result by the
    name of the function it checked."""
    namespace: dict = {}
    results = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, f"{path.name}:cell", "exec"), namespace)  # noqa: S102 - the notebook is ours
        if "check" in cell.metadata.get("tags", []):
            variable, _, function = CHECK_CALL.match(cell.source.strip()).groups()
            results[function] = namespace[variable]
    return results


def test_public_api():
    assert exercises.__all__ == ["CaseResult", "CheckResult", "check_choose_run", "check_diagnose",
                                 "check_point_in_time_feature", "check_rollout_gate", "check_should_retrain"]


@pytest.mark.parametrize("name", NAMES)
def test_every_solution_passes_its_checks(name, capsys):
    results = run_notebook_code(ROOT / "exercises" / "solutions" / f"{name}.ipynb")
    printed = capsys.readouterr().out
    assert results, f"{name}: no check cell found"
    for function, result in results.items():
        assert result.passed, f"{name}: the solution's {function} fails:\n{result.message}"
        assert result.message == f"All {len(result.cases)} cases pass."
        assert result.message + "\n" in printed


@pytest.mark.parametrize("name", NAMES)
def test_every_untouched_exercise_fails_naming_a_case_and_a_hint(name, capsys):
    results = run_notebook_code(ROOT / "exercises" / f"{name}.ipynb")
    printed = capsys.readouterr().out
    for function, result in results.items():
        assert not result.passed
        total = len(result.cases)
        assert result.message.startswith(f"case 1 of {total} ({result.cases[0].name}) failed: expected ")
        assert f"got an error: NotImplementedError: TODO: write {function}" in result.message
        assert "Hint: this is still the exercise's stub" in result.message
        assert f"0 of {total} cases pass." in result.message
        assert result.message in printed


@pytest.mark.parametrize("name", NAMES)
def test_exercise_and_solution_notebooks_differ_only_in_the_todo_cells(name):
    learner = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "exercises" / "solutions" / f"{name}.ipynb", as_version=4)

    def shared_code(nb):
        return [c.source for c in nb.cells if c.cell_type == "code" and "exercise" not in c.metadata.get("tags", [])]

    assert shared_code(learner) == shared_code(solution)
    todo = [c.source for c in learner.cells if "exercise" in c.metadata.get("tags", [])]
    assert todo and all("raise NotImplementedError(\"TODO: " in source for source in todo)
    checked = [c for c in solution.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked and all(c.outputs[0]["text"].startswith("All ") for c in checked)
    assert not any("nbval-check-output" in c.metadata.get("tags", []) for c in learner.cells)


# ---- 02: the wrong answers learners write, and what they are told ----

def leaky_groupby(transactions):
    return transactions.groupby("user_id")["amount"].transform("count")


def _rolling(transactions, **window):
    ordered = transactions.sort_values(["user_id", "timestamp"], kind="stable")
    counts = ordered.set_index("timestamp").assign(one=1.0).groupby("user_id")["one"].rolling("24h", **window)
    return pd.Series(counts.count().to_numpy(), index=ordered.index)


def rolling_closed_left_filled(transactions):
    return _rolling(transactions, closed="left").fillna(0)


def test_pandas_rolling_closed_left_is_a_second_correct_answer():
    """An independent implementation agrees with the hidden reference on every case."""
    assert check_point_in_time_feature(rolling_closed_left_filled, show=False).passed


@pytest.mark.parametrize("function, first_line, hint", [
    (leaky_groupby, "case 1 of 8 (one user, three transactions an hour apart) failed: expected [0, 1, 2], "
                    "got [3, 3, 3].", "your feature sees the future: it counts every transaction of the user"),
    (lambda t: _rolling(t), "expected [0, 1, 2], got [1, 2, 3].", "your feature sees the row itself"),
    (lambda t: _rolling(t, closed="left"), "expected [0, 1, 2], got [nan, 1, 2].",
     "your feature is NaN where nothing came before"),
    (lambda t: t.groupby("user_id").cumcount(), "case 4 of 8 (a gap of more than 24 hours) failed: expected "
     "[0, 1, 0, 1], got [0, 1, 2, 3].", "not only those of the last 24 hours"),
    (lambda t: rolling_closed_left_filled(t.sort_values("timestamp")).sort_index().to_numpy(),
     "case 7 of 8 (rows not in time order) failed", "your numbers are right but in time order"),
    (lambda t: rolling_closed_left_filled(t).sort_index().reset_index(drop=True),
     "case 7 of 8 (rows not in time order) failed: expected a Series of 6 counts, got a Series whose index",
     "in time order, not in the input's row order"),
    (lambda t: None, "got None: your function returned nothing", "return a pandas Series"),
])
def test_point_in_time_mistakes_get_their_message(function, first_line, hint):
    message = check_point_in_time_feature(function, show=False).message
    assert first_line in message.splitlines()[0]
    assert message.splitlines()[1].startswith("Hint: ") and hint in message.splitlines()[1]


def test_a_wrong_row_of_the_large_case_is_named():
    def off_by_one_on_busy_rows(transactions):
        counts = rolling_closed_left_filled(transactions)
        return counts + (counts > 3) if len(transactions) > 100 else counts

    message = check_point_in_time_feature(off_by_one_on_busy_rows, show=False).message
    assert re.match(r"case 8 of 8 \(a realistic table.*\) failed: expected \d+ for the row labelled \d+ "
                    r"\(user u\d+ at 2026-.*\), got \d+ \(\d+ of 400 rows differ\)\.", message)


# ---- 03 ----

COMPLETE = ["metrics.pr_auc", "metrics.precision", "metrics.p99_latency_ms"]


def highest_pr_auc(runs, champion):
    return runs.sort_values("metrics.pr_auc", ascending=False).iloc[0]["run_id"]


def no_status_check(runs, champion):
    keep = runs[~(runs["metrics.p99_latency_ms"] > promotion.LATENCY_BUDGET_MS)
                & (runs["metrics.precision"] >= promotion.PRECISION_FLOOR)]
    if keep.empty:
        return None
    best = keep.sort_values("metrics.pr_auc", ascending=False).iloc[0]
    if champion is not None and best["metrics.pr_auc"] < champion["pr_auc"] + promotion.MIN_GAIN:
        return None
    return best["run_id"]


def no_margin(runs, champion):
    keep = runs[(runs["status"] == "FINISHED") & runs[COMPLETE].notna().all(axis=1)
                & (runs["metrics.p99_latency_ms"] <= promotion.LATENCY_BUDGET_MS)
                & (runs["metrics.precision"] >= promotion.PRECISION_FLOOR)]
    best = keep.sort_values(["metrics.pr_auc", "metrics.p99_latency_ms"], ascending=[False, True])
    return None if best.empty else best.iloc[0]["run_id"]


@pytest.mark.parametrize("function, first_line, hint", [
    (highest_pr_auc, "case 2 of 9 (the best PR-AUC is over the latency budget) failed: expected run 'hgb-300'",
     "run 'gbc-tutorial' has p99 latency 95 ms, over the 50 ms budget."),
    (no_status_check, "case 4 of 9 (a failed run logged the best PR-AUC before it crashed)",
     "run 'mlp-big' has status FAILED"),
    (lambda runs, champion: no_status_check(runs[runs["status"] == "FINISHED"], champion),
     "case 5 of 9 (a finished run that never measured its latency (NaN))",
     "run 'hgb-unbenchmarked' has no p99_latency_ms (NaN)"),
    (no_margin, "case 7 of 9 (the best qualifying run does not beat the champion by the margin) failed: "
     "expected None, got run 'hgb-300'", "run 'hgb-300' qualifies, but its PR-AUC 0.805 does not beat the "
     "champion's 0.8 by 0.01"),
    (lambda runs, champion: runs["metrics.pr_auc"].idxmax(), "got 0, a row label", "that is the row's index label"),
    (lambda runs, champion: "hgb-300", "got 'hgb-300'", "that is the run's name (tags.mlflow.runName)"),
    (lambda runs, champion: None, "expected run 'hgb-300'", "run 'hgb-300'"),
])
def test_promotion_mistakes_get_their_message(function, first_line, hint):
    message = check_choose_run(function, show=False).message
    assert first_line in message.splitlines()[0]
    assert message.splitlines()[1].startswith("Hint: ") and hint in message.splitlines()[1]


# ---- 06 ----

def ratio_of_error_rates(stable, canary):
    if canary["requests"] < rollout.MIN_REQUESTS:
        return "hold", "too few requests"
    ratio = (canary["errors"] / canary["requests"]) / (stable["errors"] / stable["requests"])
    return ("rollback", "errors") if ratio > 2 else ("advance", "fine")


def precision_without_none_check(stable, canary):
    if canary["requests"] < rollout.MIN_REQUESTS:
        return "hold", "too few requests"
    if canary["precision"] < stable["precision"] - rollout.PRECISION_DROP:
        return "rollback", "precision"
    return "advance", "fine"


@pytest.mark.parametrize("function, first_line, hint", [
    (ratio_of_error_rates, "case 5 of 11 (stable has no errors, the canary one in 400) failed: expected ('advance', "
     "a reason), got an error: ZeroDivisionError", "a count in this case's input is 0"),
    (lambda s, c: ratio_of_error_rates(s, c) if s["errors"] else ("advance", "ok"),
     "case 7 of 11 (a latency regression) failed: expected 'rollback', got 'advance' (reason: 'fine').",
     "p99 45 ms against stable's 20 ms is over 1.5 times"),
    (precision_without_none_check, "case 4 of 11 (the canary's error rate is too high) failed: expected "
     "('rollback', a reason), got an error: TypeError", "a value in this case's input is None"),
    (lambda s, c: (c["requests"] >= 200, "ok"), "got (True, 'ok')", "a True/False cannot say 'hold'"),
    (lambda s, c: ("advance", "ok"), "case 2 of 11 (too few canary requests) failed: expected 'hold', "
     "got 'advance' (reason: 'ok').", "under 200 requests there is not enough evidence"),
    (lambda s, c: ("hold", ""), "case 1 of 11 (a healthy canary)", "say why in the reason"),
    (lambda s, c: "advance", "got 'advance'", "return a tuple (decision, reason)"),
])
def test_gate_mistakes_get_their_message(function, first_line, hint):
    message = check_rollout_gate(function, show=False).message
    assert first_line in message.splitlines()[0]
    assert message.splitlines()[1].startswith("Hint: ") and hint in message.splitlines()[1]


def test_a_ratio_of_error_rates_trips_on_a_stable_version_without_errors():
    result = check_rollout_gate(ratio_of_error_rates, show=False)
    case = result.cases[4]
    assert not case.passed and "ZeroDivisionError" in case.got
    assert case.hint.startswith("a count in this case's input is 0")
    assert "compare error rates by difference" in case.hint


def test_every_gate_case_expects_what_the_rule_says():
    for case in rollout._cases():
        assert rollout.reference_gate(*case.args) == case.expected, case.name


# ---- 07 ----

def test_drift_mistakes_get_their_message():
    def significance_only(window):
        if any(test["p_value"] < drift.FEATURE_LEVEL for test in window["feature_drift"].values()):
            return "data_drift"
        return drift.reference_diagnose(window)

    message = check_diagnose(significance_only, show=False).message
    assert message.startswith("case 7 of 9 (a significant test but a tiny distance) failed: expected 'none', "
                              "got 'data_drift'.")
    assert "the distance says whether the move matters" in message

    message = check_should_retrain(lambda w: drift.reference_diagnose(w) != "none", show=False).message
    assert message.startswith("case 3 of 9 (inputs drifted, precision holds) failed: expected False, got True.")
    assert "input drift alone is an alert, not a retrain" in message

    def counts_labelled_rows(window):  # the mistake the issue found: rows, where precision needs flags
        if window["labelled_rows"] >= drift.MIN_LABELLED_FLAGS and drift.precision_fell(window):
            return True
        return drift.reference_should_retrain(window)

    message = check_should_retrain(counts_labelled_rows, show=False).message
    assert drift.precision_fell(drift._WINDOWS[7][1])  # the test alone would say so: the count is the guard
    assert message.startswith("case 8 of 9 (precision fell, but on only 12 labelled flags (of 2,400 labelled rows)) "
                              "failed: expected False, got True.")
    assert "use labelled_flags, not labelled_rows" in message


def test_the_tutorials_story_is_concept_drift_and_a_retrain():
    story = next(summary for name, summary, _, _ in drift._WINDOWS if name.startswith("the tutorial's story"))
    assert (story["reference_true_flags"] / story["reference_flags"], story["true_flags"] / story["labelled_flags"]) \
        == (0.95, 0.78)
    assert drift.reference_diagnose(story) == "concept_drift" and drift.reference_should_retrain(story)


def test_the_exercise_uses_the_lessons_numbers():
    from lifecycle.monitoring import MONITORED_FEATURES, Policy

    assert drift.FEATURES == MONITORED_FEATURES
    assert drift.FEATURE_LEVEL == Policy(looks=12).feature_level(len(MONITORED_FEATURES))
    assert drift.MIN_LABELLED_FLAGS == Policy().min_labelled_flags


# ---- every check ----

WEIRD_ANSWERS = [None, 1, "x", [], np.array([1, 2]), pd.DataFrame({"a": [1]}), pd.Series([1.0]), {"a": 1},
                 object(), float("nan"), ("advance",), (np.array([1]), "r")]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("answer", WEIRD_ANSWERS, ids=lambda a: type(a).__name__)
def test_a_check_never_raises_on_a_wrong_answer(check, answer):
    result = check(lambda *args: answer, show=False)
    assert not result.passed
    assert re.match(r"case \d+ of \d+ \(.+\) failed: expected .+, got .+\.\nHint: .+", result.message)
    assert " at 0x" not in result.message


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_a_check_given_something_else_than_a_function_says_so(check):
    result = check(42, show=False)
    assert not result.passed and "got 42 instead of a function" in result.message
    assert f"`{check.__name__}(" in result.message


def test_messages_are_deterministic_and_printed(capsys):
    first = check_point_in_time_feature(leaky_groupby)
    second = check_point_in_time_feature(leaky_groupby)
    assert first.message == second.message
    assert capsys.readouterr().out == first.message + "\n" + second.message + "\n"
    assert repr(first) == "CheckResult('02 point-in-time feature': 0 of 8 cases pass)"
    assert str(first) == first.message


def test_a_learner_error_is_reported_by_the_last_line_of_its_traceback():
    source = "def gate(stable, canary):\n    rate = canary['errors'] / stable['oops']\n"
    namespace: dict = {}
    exec(compile(source, "<learner cell>", "exec"), namespace)  # noqa: S102
    case = check_rollout_gate(namespace["gate"], show=False).cases[0]
    assert case.got == "an error: KeyError: 'oops'"  # a notebook also shows the line (see the papermill test)
    assert case.hint.startswith("the input has no such key or column")


def test_learner_functions_get_copies_of_the_inputs():
    def sorts_in_place(transactions):
        transactions.sort_values("timestamp", inplace=True, ascending=False)
        transactions.drop(columns="amount", inplace=True)
        return rolling_closed_left_filled(transactions)

    assert check_point_in_time_feature(sorts_in_place, show=False).passed


def test_example_inputs_are_seeded():
    assert promotion.example_runs(1)[0].equals(promotion.example_runs(1)[0])
    assert rollout.example_step(1) == rollout.example_step(1) != rollout.example_step(2)
    assert drift.example_window(1) == drift.example_window(1)
    assert point_in_time.reference_count_24h(point_in_time._rows(("u", "2026-01-01"))).tolist() == [0.0]


@pytest.mark.slow
def test_an_untouched_exercise_notebook_runs_headless_to_the_end(tmp_path):
    import papermill

    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(ROOT / "exercises" / "06_rollout_gate.ipynb"), str(out),
                               cwd=str(ROOT / "exercises"), kernel_name="python3", progress_bar=False,
                               execution_timeout=120)
    cells = nbformat.read(out, as_version=4).cells
    check_cell = next(c for c in cells if "check" in c.metadata.get("tags", []))
    text = "".join(o.get("text", "") for o in check_cell.outputs)
    assert text.startswith("case 1 of 11 (a healthy canary) failed: expected ('advance', a reason), got an error: "
                           "NotImplementedError: TODO: write gate (in gate, at `raise NotImplementedError(")
    assert "\nHint: this is still the exercise's stub" in text
    assert cells[-1].cell_type == "markdown" and all(o.get("output_type") != "error" for c in cells if
                                                      c.cell_type == "code" for o in c.outputs)
