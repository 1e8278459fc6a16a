"""Checkers for the course's exercises: they run the learner's function on cases the learner does not
see and say which case failed, what was expected, what came back, and a hint.

Each exercise notebook in ``exercises/`` ends its task with one call, e.g.::

    from lifecycle.course.exercises import check_point_in_time_feature
    result = check_point_in_time_feature(user_txn_count_24h)

which prints ``All 8 cases pass.`` or, for instance::

    case 1 of 8 (one user, three transactions an hour apart) failed: expected [0, 1, 2], got [nan, 1, 2].
    Hint: your feature is NaN where nothing came before. A count of nothing is 0, …
    0 of 8 cases pass.

A check never raises because an answer is wrong (or because the learner's code raised): the notebook
runs to its end headless either way, and the returned :class:`CheckResult` says ``passed``.

| exercise | learner writes | check |
|---|---|---|
| 02 | ``user_txn_count_24h(transactions)`` | :func:`check_point_in_time_feature` |
| 03 | ``choose_run(runs)``, ``decide(labels, challenger, champion)`` | :func:`check_choose_run`, :func:`check_decide` |
| 06 | ``gate(stable, canary)`` | :func:`check_rollout_gate` |
| 07 | ``diagnose(window)``, ``should_retrain(window)`` | :func:`check_diagnose`, :func:`check_should_retrain` |

The rules' numbers (latency budget, gate margins, drift thresholds) are constants of the exercise
modules (:mod:`.promotion`, :mod:`.rollout`, :mod:`.drift`), imported by the notebooks that state them.
"""

from __future__ import annotations

from lifecycle.course.exercises._checking import CaseResult, CheckResult
from lifecycle.course.exercises.drift import check_diagnose, check_should_retrain
from lifecycle.course.exercises.point_in_time import check_point_in_time_feature
from lifecycle.course.exercises.promotion import check_choose_run, check_decide
from lifecycle.course.exercises.rollout import check_rollout_gate

__all__ = ["CaseResult", "CheckResult", "check_choose_run", "check_decide", "check_diagnose",
           "check_point_in_time_feature", "check_rollout_gate", "check_should_retrain"]
