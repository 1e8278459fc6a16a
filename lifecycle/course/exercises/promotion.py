"""Exercise 03: choose the challenger from a runs table, then decide on a holdout whether it may replace
the champion, by lesson 03's rule; both checked.

Part 1, ``choose_run(runs)``, on the **test window's** metrics (constants below; the notebook states them):

1. Only runs with status ``FINISHED`` and all of ``metrics.pr_auc``, ``metrics.precision`` and
   ``metrics.p99_latency_ms`` present count: a failed run may have logged a great PR-AUC before it
   crashed, and a run with no latency measured cannot prove it meets the budget.
2. A run qualifies when its p99 latency is at most :data:`LATENCY_BUDGET_MS` and its precision at
   least :data:`PRECISION_FLOOR`.
3. The qualifying run with the highest PR-AUC is the challenger; on a tie, the one with the lower p99
   latency. No qualifying run: ``None``.

Part 2, ``decide(labels, challenger_scores, champion_scores)``, on the **holdout** (the test window chose
the challenger, so its test score flatters it): lesson 03's promotion rule
(:func:`lifecycle.tracking.promotion.should_promote`), the same :data:`ALPHA` and :data:`MIN_GAIN`.
``"promote"`` when there is no champion (``champion_scores`` is None), or when fewer than ``ALPHA`` of
:data:`ROUNDS` paired bootstrap resamples of the holdout rows show a PR-AUC gain of ``MIN_GAIN`` or
less; otherwise ``"hold"``.

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
from lifecycle.tracking.promotion import BOOTSTRAP_ROUNDS, PROMOTION_ALPHA

ALPHA = PROMOTION_ALPHA  # lesson 03's error rate
# Fewer resamples than the registry's BOOTSTRAP_ROUNDS: a plain loop calls scikit-learn's
# average_precision_score twice a resample (about a millisecond each), and every hidden case lies far
# from the rule's boundary, where this many resamples decide as the registry's do (a test checks it).
ROUNDS = 200

LATENCY_BUDGET_MS = 50.0
PRECISION_FLOOR = 0.80
MIN_GAIN = 0.0  # lesson 03's default: any gain the test can see beyond the noise
METRICS = ("metrics.pr_auc", "metrics.precision", "metrics.p99_latency_ms")
DECISIONS = ("promote", "hold")


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


def reference_choose_run(runs: pd.DataFrame) -> str | None:
    """The answer of part 1: the challenger's run_id, or None when no run qualifies."""
    qualifying = _qualifying(runs)
    if qualifying.empty:
        return None
    best = qualifying.sort_values(["metrics.pr_auc", "metrics.p99_latency_ms"], ascending=[False, True]).iloc[0]
    return str(best["run_id"])


def _qualifying(runs: pd.DataFrame) -> pd.DataFrame:
    complete = (runs["status"] == "FINISHED") & runs[list(METRICS)].notna().all(axis=1)
    return runs[complete & (runs["metrics.p99_latency_ms"] <= LATENCY_BUDGET_MS)
                & (runs["metrics.precision"] >= PRECISION_FLOOR)]


def example_runs(seed: int = 42) -> pd.DataFrame:
    """A runs table to try ``choose_run`` on (not one of the hidden cases)."""
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
    return runs_table(runs, tag=f"example-{seed}")


def _cases() -> list[Case]:
    f, x = "FINISHED", "FAILED"
    hgb = ("hgb-300", "hgb", f, 0.84, 0.86, 0.66, 12.0, 3.1)
    gbc = ("gbc-tutorial", "gbc", f, 0.87, 0.88, 0.67, 95.0, 270.0)  # the tutorial's model: accurate, slow
    logreg = ("logreg", "logreg", f, 0.74, 0.81, 0.52, 2.0, 1.2)
    rf = ("rf-100", "random_forest", f, 0.82, 0.85, 0.61, 31.0, 22.0)
    specs = [
        ("the best run qualifies", [hgb, logreg, rf], "the qualifying run with the highest PR-AUC is the challenger."),
        ("the best PR-AUC is over the latency budget", [gbc, hgb, ("mlp", "mlp", f, 0.79, 0.82, 0.60, 6.0, 9.0)],
         f"a run whose p99 latency is over {LATENCY_BUDGET_MS:g} ms cannot serve: skip it, however good."),
        ("the best PR-AUC misses the precision floor",
         [("hgb-deep", "hgb", f, 0.86, 0.71, 0.80, 14.0, 4.0), ("hgb-300", "hgb", f, 0.83, 0.85, 0.65, 12.0, 3.1),
          logreg],
         f"a run with precision under {PRECISION_FLOOR:g} floods analysts with false alarms: skip it."),
        ("a failed run logged the best PR-AUC before it crashed", [("mlp-big", "mlp", x, 0.91, 0.90, 0.70, 8.0, 40.0),
                                                                  hgb, rf],
         "only runs with status FINISHED count: filter on runs['status'] == 'FINISHED'."),
        ("a finished run that never measured its latency (NaN)",
         [("hgb-unbenchmarked", "hgb", f, 0.88, 0.87, 0.69, None, 3.3), hgb, logreg],
         "a run with no p99 latency cannot prove it meets the budget: skip runs with a NaN metric "
         "(every comparison with NaN is False, so `~(p99 > budget)` lets it through; `p99 <= budget` does not)."),
        ("two runs tie on PR-AUC", [("rf-100", "random_forest", f, 0.85, 0.86, 0.62, 33.0, 25.0),
                                    ("hgb-300", "hgb", f, 0.85, 0.84, 0.66, 12.0, 3.1), logreg],
         "on a PR-AUC tie the rule picks the lower p99 latency."),
        ("no run qualifies", [gbc, ("hgb-deep", "hgb", f, 0.86, 0.71, 0.80, 14.0, 4.0),
                              ("mlp-big", "mlp", x, 0.91, None, None, None, 40.0)],
         "when no run qualifies, return None: there is no challenger, and the champion stays."),
    ]
    cases = []
    for number, (name, runs, hint) in enumerate(specs, start=1):
        table = runs_table(runs, tag=f"case-{number}")
        expected = reference_choose_run(table)
        cases.append(Case(name, (table,), expected, hint, _label(table, expected)))
    return cases


def _label(runs: pd.DataFrame, run_id: Any) -> str:
    if run_id is None:
        return "None"
    name = runs.loc[runs["run_id"] == run_id, "tags.mlflow.runName"].iloc[0]
    return f"run '{name}' ({str(run_id)[:8]}…)"


def _why_not(runs: pd.DataFrame, run_id: str, expected: str | None) -> str:
    """Which part of the rule the learner's (wrong) choice breaks."""
    row = runs[runs["run_id"] == run_id].iloc[0]
    name, pr_auc, p99 = row["tags.mlflow.runName"], row["metrics.pr_auc"], row["metrics.p99_latency_ms"]
    if row["status"] != "FINISHED":
        return f"run '{name}' has status {row['status']}: a failed run is never the challenger, whatever it logged."
    missing = [m.removeprefix("metrics.") for m in METRICS if math.isnan(row[m])]
    if missing:
        return (f"run '{name}' has no {', '.join(missing)} (NaN): it cannot prove it meets the rule. Every comparison "
                "with NaN is False, so `~(p99 > budget)` lets it through; `p99 <= budget` keeps it out.")
    if p99 > LATENCY_BUDGET_MS:
        return f"run '{name}' has p99 latency {p99:g} ms, over the {LATENCY_BUDGET_MS:g} ms budget."
    if row["metrics.precision"] < PRECISION_FLOOR:
        return f"run '{name}' has precision {row['metrics.precision']:g}, under the floor of {PRECISION_FLOOR:g}."
    best = runs[runs["run_id"] == expected].iloc[0]
    if best["metrics.pr_auc"] == pr_auc:
        return (f"runs '{name}' and '{best['tags.mlflow.runName']}' tie on PR-AUC {pr_auc:g}: the rule picks the "
                f"lower p99 latency, {best['metrics.p99_latency_ms']:g} ms against {p99:g} ms.")
    return (f"run '{best['tags.mlflow.runName']}' also qualifies and has a higher PR-AUC "
            f"({best['metrics.pr_auc']:g} > {pr_auc:g}).")


def _judge(case: Case, answer: Any) -> Verdict:
    runs, expected = case.args[0], case.expected
    if isinstance(answer, np.str_):
        answer = str(answer)
    if (answer is None or isinstance(answer, str)) and answer == expected:
        return Verdict(True)
    expected_text = _label(runs, expected)
    if answer is None:
        return Verdict(False, expected_text, "None", f"{expected_text} qualifies: it is the challenger.")
    if isinstance(answer, int | np.integer) and answer in runs.index:
        return Verdict(False, expected_text, f"{describe(answer)}, a row label",
                       "that is the row's index label (what idxmax returns), not the run: return "
                       "runs.loc[label, 'run_id'].")
    if not isinstance(answer, str):
        return Verdict(False, expected_text, describe(answer),
                       "return the challenger's run_id as a string (e.g. best['run_id']), or None.")
    if answer not in set(runs["run_id"]):
        named = runs.loc[runs["tags.mlflow.runName"] == answer, "run_id"]
        where = "that is the run's name (tags.mlflow.runName), not its run_id" if len(named) else \
            "it is not a run_id of the table"
        return Verdict(False, expected_text, repr(answer), f"{where}: return the value of the run_id column.")
    if expected is None:
        return Verdict(False, "None", _label(runs, answer), _why_not(runs, answer, None) + " No run qualifies.")
    return Verdict(False, expected_text, _label(runs, answer), _why_not(runs, answer, expected))


def check_choose_run(function: Callable[[pd.DataFrame], str | None], show: bool = True) -> CheckResult:
    """Check the learner's ``choose_run(runs) -> run_id | None`` (part 1) on hidden cases.

    Args:
        function: the learner's function; it gets a runs table shaped like ``mlflow.search_runs()``
            (see :func:`runs_table`), with the test window's metrics.
        show: print the result's message.

    Returns:
        The :class:`~lifecycle.course.exercises.CheckResult`; never raises because an answer is wrong.

    Taught in exercises/03_promote_the_right_run.ipynb.
    """
    return run_check("03 choose the challenger", "check_choose_run", function, "choose_run", _cases(), _judge, show)


# ---- part 2: promote or hold, on the holdout ----

def holdout_scores(seed: int, challenger: float, champion: float | None, shared_noise: bool = False,
                   rows: int = 2_000) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A holdout: labels (2% fraud) and two models' scores, frauds shifted up by each model's strength.

    With ``shared_noise`` the two models rank most rows alike (as two versions of one model do) and
    differ by a small, consistent shift of the frauds: a gain only a *paired* comparison can see.
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.02).astype(int)
    noise = rng.normal(size=rows)
    if champion is None:
        return labels, labels * challenger + noise, None
    if shared_noise:
        return labels, labels * challenger + noise + rng.normal(scale=0.05, size=rows), labels * champion + noise
    return labels, labels * challenger + noise, labels * champion + rng.normal(size=rows)


def reference_decide(labels: np.ndarray, challenger_scores: np.ndarray, champion_scores: np.ndarray | None) -> str:
    """The answer of part 2: lesson 03's rule on the holdout."""
    from lifecycle.tracking.promotion import should_promote
    from lifecycle.training import pr_auc_gain

    if champion_scores is None:
        return "promote"
    gain = pr_auc_gain(labels, challenger_scores, champion_scores, rounds=BOOTSTRAP_ROUNDS)
    return "promote" if should_promote(gain, MIN_GAIN, ALPHA) else "hold"


def example_holdout(seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A holdout to try ``decide`` on: two equally good models (not one of the hidden cases)."""
    return holdout_scores(seed, challenger=1.5, champion=1.5)


def _tie(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, scores, _ = holdout_scores(seed, challenger=1.5, champion=None)
    return labels, scores, scores.copy()


_DECIDE_CASES = [  # name, the holdout, hint; every case lies far from the rule's boundary
    ("no champion yet", lambda: holdout_scores(11, 1.5, None), "with no champion (champion_scores is None) there "
     "is nothing to hold on to: promote, without a test."),
    ("a clearly better challenger", lambda: holdout_scores(1, 3.0, 1.0), "the gain is far beyond the noise: "
     "almost no resample shows a gain of MIN_GAIN or less."),
    ("the test window's winner, no better on the holdout", lambda: holdout_scores(5, 1.5, 1.5),
     "the challenger's holdout PR-AUC is a little higher, but many resamples show no gain: that is noise, not "
     "evidence. Promoting on the point estimate (gain > 0) would swap equally good models back and forth."),
    ("the same model again (a tie)", lambda: _tie(7), "the same scores: every resample shows a gain of 0, which is "
     "MIN_GAIN or less. A tie holds: a change must buy something."),
    ("a worse challenger", lambda: holdout_scores(3, 1.0, 2.5), "the challenger ranks the frauds worse: hold."),
    ("a small gain that is the same on almost every row", lambda: holdout_scores(4, 1.65, 1.5, shared_noise=True),
     "both models rank most rows alike, so the small gain repeats on every resample, if each resample scores "
     "both models on the SAME rows. Draw one set of row indices per resample and use it for both models."),
]


def _decide_cases() -> list[Case]:
    cases = []
    for name, holdout, hint in _DECIDE_CASES:
        labels, challenger, champion = holdout()
        expected = reference_decide(labels, challenger, champion)
        cases.append(Case(name, (labels, challenger, champion), expected, hint, repr(expected)))
    return cases


def _judge_decision(case: Case, answer: Any) -> Verdict:
    if isinstance(answer, np.str_):
        answer = str(answer)
    if isinstance(answer, str) and answer == case.expected:
        return Verdict(True)
    if isinstance(answer, bool | np.bool_):
        return Verdict(False, repr(case.expected), repr(bool(answer)),
                       'return the decision as a word, "promote" or "hold" (a True/False reads the wrong way round '
                       "too easily).")
    if not isinstance(answer, str) or answer not in DECISIONS:
        return Verdict(False, repr(case.expected), describe(answer), 'return "promote" or "hold".')
    return Verdict(False, repr(case.expected), repr(answer), case.hint)


def check_decide(function: Callable[[np.ndarray, np.ndarray, np.ndarray | None], str],
                 show: bool = True) -> CheckResult:
    """Check the learner's ``decide(labels, challenger_scores, champion_scores) -> "promote" | "hold"`` (part 2).

    Args:
        function: the learner's function; it gets a holdout's 0/1 labels and the two models' scores of
            the same rows (``champion_scores`` None when there is no champion).
        show: print the result's message.

    Returns:
        The :class:`~lifecycle.course.exercises.CheckResult`; never raises because an answer is wrong.

    Taught in exercises/03_promote_the_right_run.ipynb.
    """
    return run_check("03 promote or hold", "check_decide", function, "decide", _decide_cases(), _judge_decision, show)
