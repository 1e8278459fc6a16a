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
CHECKS = [check_point_in_time_feature, check_choose_run, promotion.check_decide, check_rollout_gate, check_diagnose,
          check_should_retrain]
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
    assert exercises.__all__ == ["CaseResult", "CheckResult", "check_choose_run", "check_decide", "check_diagnose",
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


def highest_pr_auc(runs):
    return runs.sort_values("metrics.pr_auc", ascending=False).iloc[0]["run_id"]


def no_status_check(runs):
    keep = runs[~(runs["metrics.p99_latency_ms"] > promotion.LATENCY_BUDGET_MS)
                & (runs["metrics.precision"] >= promotion.PRECISION_FLOOR)]
    return None if keep.empty else keep.sort_values("metrics.pr_auc", ascending=False).iloc[0]["run_id"]


@pytest.mark.parametrize("function, first_line, hint", [
    (highest_pr_auc, "case 2 of 7 (the best PR-AUC is over the latency budget) failed: expected run 'hgb-300'",
     "run 'gbc-tutorial' has p99 latency 95 ms, over the 50 ms budget."),
    (no_status_check, "case 4 of 7 (a failed run logged the best PR-AUC before it crashed)",
     "run 'mlp-big' has status FAILED"),
    (lambda runs: no_status_check(runs[runs["status"] == "FINISHED"]),
     "case 5 of 7 (a finished run that never measured its latency (NaN))",
     "run 'hgb-unbenchmarked' has no p99_latency_ms (NaN)"),
    (lambda runs: runs["metrics.pr_auc"].idxmax(), "got 0, a row label", "that is the row's index label"),
    (lambda runs: "hgb-300", "got 'hgb-300'", "that is the run's name (tags.mlflow.runName)"),
    (lambda runs: None, "expected run 'hgb-300'", "run 'hgb-300'"),
])
def test_choosing_mistakes_get_their_message(function, first_line, hint):
    message = check_choose_run(function, show=False).message
    assert first_line in message.splitlines()[0]
    assert message.splitlines()[1].startswith("Hint: ") and hint in message.splitlines()[1]


def bootstrap_gains(labels, challenger, champion, paired=True, rounds=promotion.ROUNDS):
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    gains = []
    for _ in range(rounds):
        rows = rng.integers(0, len(labels), len(labels))
        other = rows if paired else rng.integers(0, len(labels), len(labels))
        gains.append(average_precision_score(labels[rows], challenger[rows])
                     - average_precision_score(labels[other], champion[other]))
    return np.array(gains)


def point_estimate(labels, challenger, champion):
    from sklearn.metrics import average_precision_score

    if champion is None:
        return "promote"
    better = average_precision_score(labels, challenger) > average_precision_score(labels, champion)
    return "promote" if better else "hold"


def unpaired(labels, challenger, champion):
    if champion is None:
        return "promote"
    no_gain = np.mean(bootstrap_gains(labels, challenger, champion, paired=False, rounds=100) <= promotion.MIN_GAIN)
    return "promote" if no_gain < promotion.ALPHA else "hold"


@pytest.mark.parametrize("function, first_line, hint", [
    (point_estimate, "case 3 of 6 (the test window's winner, no better on the holdout) failed: expected 'hold', "
     "got 'promote'.", "Promoting on the point estimate (gain > 0) would swap equally good models"),
    (lambda labels, challenger, champion: "promote" if champion is None else point_estimate(
        labels, challenger, champion) if challenger is not champion else "hold",
     "case 3 of 6", "many resamples show no gain: that is noise, not evidence"),
    (unpaired, "case 6 of 6 (a small gain that is the same on almost every row) failed: expected 'promote', "
     "got 'hold'.", "Draw one set of row indices per resample and use it for both models."),
    (lambda labels, challenger, champion: "hold", "case 1 of 6 (no champion yet) failed: expected 'promote'",
     "there is nothing to hold on to"),
    (lambda labels, challenger, champion: champion is None, "got True", 'return the decision as a word'),
])
def test_promotion_decision_mistakes_get_their_message(function, first_line, hint):
    message = promotion.check_decide(function, show=False).message
    assert first_line in message.splitlines()[0]
    assert message.splitlines()[1].startswith("Hint: ") and hint in message.splitlines()[1]


def test_every_decision_case_is_far_from_the_rules_boundary_and_is_what_the_registry_decides():
    from lifecycle.tracking.promotion import should_promote
    from lifecycle.training import pr_auc_gain

    for case in promotion._decide_cases():
        labels, challenger, champion = case.args
        if champion is None:
            assert case.expected == "promote" and should_promote(None)
            continue
        for rounds, seed in ((promotion.ROUNDS, 1), (promotion.ROUNDS, 2), (promotion.BOOTSTRAP_ROUNDS, 0)):
            p_value = pr_auc_gain(labels, challenger, champion, rounds=rounds, seed=seed).p_value(promotion.MIN_GAIN)
            assert p_value < promotion.ALPHA / 4 or p_value > 4 * promotion.ALPHA, (case.name, rounds, p_value)
            assert case.expected == ("promote" if p_value < promotion.ALPHA else "hold"), case.name
    assert (promotion.ALPHA, promotion.MIN_GAIN) == (0.05, 0.0), "the exercise's thresholds are lesson 03's"


# ---- 06 ----

def _llr(stable, canary, ratio, weigh_by_users=True):
    import math

    n_c, n_s = (canary["users"], stable["users"]) if weigh_by_users else (1, 1)
    if not n_c or not n_s:
        return 0.0
    as_often, with_ratio = n_c / (n_c + n_s), ratio * n_c / (ratio * n_c + n_s)
    return (canary["flagged_users"] * math.log(with_ratio / as_often)
            + stable["flagged_users"] * math.log((1 - with_ratio) / (1 - as_often)))


def kit_rules(weigh_by_users=True, judge_precision_without_labels=False):
    """The solution's rules, with one of the usual mistakes switched on."""
    import math

    from lifecycle.canary.stats import precision_drop_pvalue

    def gate(stable, canary):
        high = _llr(stable, canary, rollout.FLAG_HIGH, weigh_by_users)
        low = _llr(stable, canary, rollout.FLAG_LOW, weigh_by_users)
        if max(high, low) >= math.log(2 / rollout.FLAG_ALPHA):
            return "rollback", "flag rate"
        judged = min(stable["labelled_flags"], canary["labelled_flags"]) >= rollout.MIN_LABELLED_FLAGS
        if judged and precision_drop_pvalue(canary["confirmed"], canary["labelled_flags"], stable["confirmed"],
                                            stable["labelled_flags"], rollout.PRECISION_MAX_DROP) < \
                rollout.PRECISION_ALPHA_PER_LOOK:
            return "rollback", "precision"
        if max(high, low) <= math.log(rollout.FLAG_BETA) and (judged or judge_precision_without_labels):
            return "advance", "fine"
        return "hold", "not yet"
    return gate


def ratio_of_flag_rates(stable, canary):
    ratio = (canary["flagged_users"] / canary["users"]) / (stable["flagged_users"] / stable["users"])
    return ("rollback", "flags") if not 0.1 < ratio < 10 else ("advance", "fine")


def no_flags_is_broken(stable, canary):
    if canary["flagged_users"] == 0 and stable["flagged_users"] > 0:
        return "rollback", "the canary flags nobody"
    return kit_rules()(stable, canary)


@pytest.mark.parametrize("function, first_line, hint", [
    (kit_rules(judge_precision_without_labels=True), "case 6 of 10 (flag rates alike, but only a few labelled flags) "
     "failed: expected 'hold', got 'advance' (reason: 'fine').", "a hold is not a pass"),
    (kit_rules(weigh_by_users=False), "case 10 of 10 (a 5% step: the canary flags 6 of its 60 users) failed: "
     "expected 'rollback', got 'hold'", "weigh each arm by its users"),
    (no_flags_is_broken, "case 2 of 10 (a 5% step's first look: 18 users, none flagged) failed: expected 'hold', "
     "got 'rollback' (reason: 'the canary flags nobody').", "Thin evidence is a hold"),
    (ratio_of_flag_rates, "case 2 of 10 (a 5% step's first look: 18 users, none flagged) failed: expected 'hold', "
     "got 'rollback'", "Thin evidence is a hold"),
    (lambda s, c: (c["users"] >= 200, "ok"), "got (True, 'ok')", "a True/False cannot say 'hold'"),
    (lambda s, c: ("advance", "ok"), "case 2 of 10 (a 5% step's first look: 18 users, none flagged) failed: "
     "expected 'hold', got 'advance' (reason: 'ok').", "never a rollback or a pass"),
    (lambda s, c: ("hold", ""), "case 1 of 10 (a healthy canary in shadow)", "say why in the reason"),
    (lambda s, c: "advance", "got 'advance'", "return a tuple (decision, reason)"),
])
def test_gate_mistakes_get_their_message(function, first_line, hint):
    message = check_rollout_gate(function, show=False).message
    assert first_line in message.splitlines()[0]
    assert message.splitlines()[1].startswith("Hint: ") and hint in message.splitlines()[1]


def test_a_ratio_of_flag_rates_trips_on_a_stable_arm_that_flagged_nobody():
    result = check_rollout_gate(ratio_of_flag_rates, show=False)
    case = result.cases[4]
    assert case.name == "nobody flagged on either arm yet"
    assert not case.passed and "ZeroDivisionError" in case.got
    assert case.hint.startswith("a count in this case's input is 0")
    assert "never divide by stable's flag count" in case.hint


def test_the_weighed_by_users_rule_passes_every_case():
    assert check_rollout_gate(kit_rules(), show=False).passed


def test_every_gate_case_expects_what_the_kits_gates_decide():
    for case in rollout._cases():
        assert rollout.reference_gate(*case.args) == case.expected, case.name


def test_the_exercise_reads_its_thresholds_from_the_kits_gates():
    from lifecycle.canary import FlagRateGate, PrecisionGate, RolloutPlan, default_gates

    flags = next(g for g in default_gates() if isinstance(g, FlagRateGate))
    precision = next(g for g in default_gates() if isinstance(g, PrecisionGate))
    assert (rollout.FLAG_HIGH, rollout.FLAG_LOW, rollout.FLAG_ALPHA, rollout.FLAG_BETA) == \
        (flags.high, flags.low, flags.alpha, flags.beta)
    assert (rollout.MIN_LABELLED_FLAGS, rollout.PRECISION_MAX_DROP) == (precision.min_flags, precision.max_drop)
    assert rollout.PRECISION_ALPHA_PER_LOOK == precision.alpha / RolloutPlan().max_looks
    assert rollout.DECISIONS == ("advance", "hold", "rollback")


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
    source = "def gate(stable, canary):\n    rate = canary['users'] / stable['oops']\n"
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
    assert promotion.example_runs(1).equals(promotion.example_runs(1))
    assert all(np.array_equal(a, b) for a, b in zip(promotion.example_holdout(1), promotion.example_holdout(1),
                                                    strict=True))
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
    assert text.startswith("case 1 of 10 (a healthy canary in shadow) failed: expected ('advance', a reason), got an "
                           "error: NotImplementedError: TODO: write gate (in gate, at `raise NotImplementedError(")
    assert "\nHint: this is still the exercise's stub" in text
    assert cells[-1].cell_type == "markdown" and all(o.get("output_type") != "error" for c in cells if
                                                      c.cell_type == "code" for o in c.outputs)
