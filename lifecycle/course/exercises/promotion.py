"""Exercise 03: pick the run to promote from a runs table, by a stated rule, and have it checked.

The rule (constants below; the notebook states it in words):

1. Only runs with status ``FINISHED`` and all of ``metrics.pr_auc``, ``metrics.precision`` and
   ``metrics.p99_latency_ms`` present count: a failed run may have logged a great PR-AUC before it
   crashed, and a run with no latency measured cannot prove it meets the budget.
2. A run qualifies when its p99 latency is at most :data:`LATENCY_BUDGET_MS` and its precision at
   least :data:`PRECISION_FLOOR`.
3. The qualifying run with the highest PR-AUC wins; on a tie, the one with the lower p99 latency.
4. The winner is promoted when there is no champion, or when its PR-AUC is at least the champion's
   plus :data:`MIN_GAIN`. Otherwise nothing is promoted (``None``): the champion stays.

Taught in exercises/03_promote_the_right_run.ipynb (lesson: notebooks/03_experiment_tracking.ipynb).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.course.exercises._checking import Case, CheckResult, Verdict, describe, run_check

LATENCY_BUDGET_MS = 50.0
PRECISION_FLOOR = 0.80
MIN_GAIN = 0.01
METRICS = ("metrics.pr_auc", "metrics.precision", "metrics.p99_latency_ms")


def runs_table(runs: list[tuple], tag: str = "") -> pd.DataFrame:
    """A table shaped like ``mlflow.search_runs()`` from ``(name, kind, status, pr_auc, precision, recall,
    p99_latency_ms, fit_seconds)`` tuples; ``None`` for a metric the run never logged."""
    rows = []
    for name, kind, status, pr_auc, precision, recall, p99, fit_seconds in runs:
        rows.append({"run_id": hashlib.md5(f"{tag}/{name}".encode()).hexdigest(), "status": status,
                     "params.kind": kind, "metrics.pr_auc": pr_auc, "metrics.precision": precision,
                     "metrics.recall": recall, "metrics.p99_latency_ms": p99, "metrics.fit_seconds": fit_seconds,
                     "tags.mlflow.runName": name})
    columns = ["run_id", "status", "params.kind", *METRICS[:2], "metrics.recall", METRICS[2],
               "metrics.fit_seconds", "tags.mlflow.runName"]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({c: float for c in columns if c.startswith("metrics.")})


def reference_choose_run(runs: pd.DataFrame, champion: dict[str, float] | None) -> str | None:
    """The answer: the run_id the rule promotes, or None."""
    qualifying = _qualifying(runs)
    if qualifying.empty:
        return None
    best = qualifying.sort_values(["metrics.pr_auc", "metrics.p99_latency_ms"], ascending=[False, True]).iloc[0]
    if champion is not None and not best["metrics.pr_auc"] >= champion["pr_auc"] + MIN_GAIN:
        return None
    return str(best["run_id"])


def _qualifying(runs: pd.DataFrame) -> pd.DataFrame:
    complete = (runs["status"] == "FINISHED") & runs[list(METRICS)].notna().all(axis=1)
    return runs[complete & (runs["metrics.p99_latency_ms"] <= LATENCY_BUDGET_MS)
                & (runs["metrics.precision"] >= PRECISION_FLOOR)]


def example_runs(seed: int = 42) -> tuple[pd.DataFrame, dict[str, float]]:
    """A runs table and a champion to try ``choose_run`` on (not one of the hidden cases)."""
    rng = np.random.default_rng(seed)
    kinds = ["gbc", "hgb", "hgb", "random_forest", "logreg", "mlp"]
    runs = []
    for number, kind in enumerate(kinds):
        slow = kind in ("gbc", "random_forest")
        runs.append((f"{kind}-{number}", kind, "FINISHED", round(rng.uniform(0.72, 0.86), 3),
                     round(rng.uniform(0.74, 0.92), 3), round(rng.uniform(0.55, 0.75), 3),
                     round(rng.uniform(60, 140) if slow else rng.uniform(4, 40), 1),
                     round(rng.uniform(40, 300) if slow else rng.uniform(1, 20), 1)))
    runs.append(("mlp-crashed", "mlp", "FAILED", round(rng.uniform(0.85, 0.9), 3), None, None, None, None))
    return runs_table(runs, tag=f"example-{seed}"), {"version": "3", "pr_auc": 0.78, "precision": 0.83,
                                                       "p99_latency_ms": 18.0}


def _cases() -> list[Case]:
    champion = {"version": "3", "pr_auc": 0.80, "precision": 0.84, "p99_latency_ms": 15.0}
    f, x = "FINISHED", "FAILED"
    hgb = ("hgb-300", "hgb", f, 0.84, 0.86, 0.66, 12.0, 3.1)
    gbc = ("gbc-tutorial", "gbc", f, 0.87, 0.88, 0.67, 95.0, 270.0)  # the tutorial's model: accurate, slow
    logreg = ("logreg", "logreg", f, 0.74, 0.81, 0.52, 2.0, 1.2)
    specs = [
        ("the best run qualifies and beats the champion", champion, [
            hgb, logreg,
            ("rf-200", "random_forest", f, 0.82, 0.85, 0.61, 31.0, 22.0)],
         "the qualifying run with the highest PR-AUC wins when it beats the champion by the margin."),
        ("the best PR-AUC is over the latency budget", champion, [
            gbc, hgb,
            ("mlp", "mlp", f, 0.79, 0.82, 0.60, 6.0, 9.0)],
         f"a run whose p99 latency is over {LATENCY_BUDGET_MS:g} ms cannot serve: skip it, however good."),
        ("the best PR-AUC misses the precision floor", champion, [
            ("hgb-deep", "hgb", f, 0.86, 0.71, 0.80, 14.0, 4.0), ("hgb-300", "hgb", f, 0.83, 0.85, 0.65, 12.0, 3.1),
            logreg],
         f"a run with precision under {PRECISION_FLOOR:g} floods analysts with false alarms: skip it."),
        ("a failed run logged the best PR-AUC before it crashed", champion, [
            ("mlp-big", "mlp", x, 0.91, 0.90, 0.70, 8.0, 40.0), hgb,
            ("rf-200", "random_forest", f, 0.82, 0.85, 0.61, 31.0, 22.0)],
         "only runs with status FINISHED count: filter on runs['status'] == 'FINISHED'."),
        ("a finished run that never measured its latency (NaN)", champion, [
            ("hgb-unbenchmarked", "hgb", f, 0.88, 0.87, 0.69, None, 3.3), hgb,
            logreg],
         "a run with no p99 latency cannot prove it meets the budget: skip runs with a NaN metric "
         "(every comparison with NaN is False, so `~(p99 > budget)` lets it through; `p99 <= budget` does not)."),
        ("two runs tie on PR-AUC", champion, [
            ("rf-200", "random_forest", f, 0.85, 0.86, 0.62, 33.0, 25.0),
            ("hgb-300", "hgb", f, 0.85, 0.84, 0.66, 12.0, 3.1), logreg],
         "on a PR-AUC tie the rule picks the lower p99 latency."),
        ("the best qualifying run does not beat the champion by the margin", champion, [
            ("hgb-300", "hgb", f, 0.805, 0.86, 0.66, 12.0, 3.1), gbc,
            logreg],
         f"promote only when PR-AUC >= the champion's + {MIN_GAIN:g}; otherwise return None and keep the champion."),
        ("no champion yet", None, [
            logreg, ("hgb-300", "hgb", f, 0.78, 0.83, 0.60, 12.0, 3.1)],
         "with no champion (champion is None) the best qualifying run is promoted, whatever its PR-AUC."),
        ("no run qualifies", champion, [
            gbc, ("hgb-deep", "hgb", f, 0.86, 0.71, 0.80, 14.0, 4.0),
            ("mlp-big", "mlp", x, 0.91, None, None, None, 40.0)],
         "when no run qualifies, return None: the champion stays."),
    ]
    cases = []
    for number, (name, champ, runs, hint) in enumerate(specs, start=1):
        table = runs_table(runs, tag=f"case-{number}")
        expected = reference_choose_run(table, champ)
        cases.append(Case(name, (table, champ), expected, hint, _label(table, expected)))
    return cases


def _label(runs: pd.DataFrame, run_id: Any) -> str:
    if run_id is None:
        return "None"
    name = runs.loc[runs["run_id"] == run_id, "tags.mlflow.runName"].iloc[0]
    return f"run '{name}' ({str(run_id)[:8]}…)"


def _why_not(runs: pd.DataFrame, run_id: str, expected: str | None, champion: dict | None) -> str:
    """Which part of the rule the learner's (wrong) choice breaks."""
    row = runs[runs["run_id"] == run_id].iloc[0]
    name, pr_auc, p99 = row["tags.mlflow.runName"], row["metrics.pr_auc"], row["metrics.p99_latency_ms"]
    if row["status"] != "FINISHED":
        return f"run '{name}' has status {row['status']}: a failed run is never promoted, whatever it logged."
    missing = [m.removeprefix("metrics.") for m in METRICS if math.isnan(row[m])]
    if missing:
        return (f"run '{name}' has no {', '.join(missing)} (NaN): it cannot prove it meets the rule. Every comparison "
                "with NaN is False, so `~(p99 > budget)` lets it through; `p99 <= budget` keeps it out.")
    if p99 > LATENCY_BUDGET_MS:
        return f"run '{name}' has p99 latency {p99:g} ms, over the {LATENCY_BUDGET_MS:g} ms budget."
    if row["metrics.precision"] < PRECISION_FLOOR:
        return f"run '{name}' has precision {row['metrics.precision']:g}, under the floor of {PRECISION_FLOOR:g}."
    if expected is None:
        if champion is None:
            return "no run qualifies, so nothing is promoted."
        return (f"run '{name}' qualifies, but its PR-AUC {pr_auc:g} does not beat the champion's "
                f"{champion['pr_auc']:g} by {MIN_GAIN:g} (it needs {champion['pr_auc'] + MIN_GAIN:.3g}): return None.")
    best = runs[runs["run_id"] == expected].iloc[0]
    if best["metrics.pr_auc"] == pr_auc:
        return (f"runs '{name}' and '{best['tags.mlflow.runName']}' tie on PR-AUC {pr_auc:g}: the rule picks the "
                f"lower p99 latency, {best['metrics.p99_latency_ms']:g} ms against {p99:g} ms.")
    return (f"run '{best['tags.mlflow.runName']}' also qualifies and has a higher PR-AUC "
            f"({best['metrics.pr_auc']:g} > {pr_auc:g}).")


def _judge(case: Case, answer: Any) -> Verdict:
    runs, champion = case.args
    expected = case.expected
    if isinstance(answer, np.str_):
        answer = str(answer)
    if (answer is None or isinstance(answer, str)) and answer == expected:
        return Verdict(True)
    expected_text = _label(runs, expected)
    if answer is None:
        best = runs[runs["run_id"] == expected].iloc[0]
        why = ("there is no champion yet (champion is None): the best qualifying run is promoted." if champion is None
               else f"it qualifies and beats the champion: {best['metrics.pr_auc']:g} >= "
                    f"{champion['pr_auc']:g} + {MIN_GAIN:g}.")
        return Verdict(False, expected_text, "None", f"{_label(runs, expected)} should be promoted: {why}")
    if isinstance(answer, int | np.integer) and answer in runs.index:
        return Verdict(False, expected_text, f"{describe(answer)}, a row label",
                       "that is the row's index label (what idxmax returns), not the run: return "
                       "runs.loc[label, 'run_id'].")
    if not isinstance(answer, str):
        return Verdict(False, expected_text, describe(answer),
                       "return the winning run's run_id as a string (e.g. best['run_id']), or None.")
    if answer not in set(runs["run_id"]):
        named = runs.loc[runs["tags.mlflow.runName"] == answer, "run_id"]
        where = "that is the run's name (tags.mlflow.runName), not its run_id" if len(named) else \
            "it is not a run_id of the table"
        return Verdict(False, expected_text, repr(answer), f"{where}: return the value of the run_id column.")
    return Verdict(False, expected_text, _label(runs, answer), _why_not(runs, answer, expected, champion))


def check_choose_run(function: Callable[[pd.DataFrame, dict | None], str | None], show: bool = True) -> CheckResult:
    """Check the learner's ``choose_run(runs, champion) -> run_id | None`` on hidden cases.

    Args:
        function: the learner's function; it gets a runs table shaped like ``mlflow.search_runs()``
            (see :func:`runs_table`) and the champion's holdout metrics (a dict with ``pr_auc``), or
            None when there is no champion.
        show: print the result's message.

    Returns:
        The :class:`~lifecycle.course.exercises.CheckResult`; never raises because an answer is wrong.

    Taught in exercises/03_promote_the_right_run.ipynb.
    """
    return run_check("03 promote the right run", "check_choose_run", function, "choose_run", _cases(), _judge, show)
