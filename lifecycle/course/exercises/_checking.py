"""The machinery every exercise check shares: run the learner's function on hidden cases, judge each
answer, and say in plain words which case failed, what was expected, what came back, and a hint.

A check never raises because an answer is wrong: the notebook must still run to the end, headless
(CI runs the untouched exercise notebooks too). It returns a :class:`CheckResult` and prints its
message.

Under the grader (``lifecycle grade``, which sets :data:`GRADING_ENV` in the kernel's environment) a
check also publishes its result as a display of the :data:`RESULT_MIMETYPE` kind, so the grader reads
every case from the executed notebook. Without that variable nothing changes: the learner sees only
the printed message, and nbval compares only that.
"""

from __future__ import annotations

import copy
import math
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STUB_HINT = ("this is still the exercise's stub: replace the `raise NotImplementedError(...)` line with your code, "
             "run that cell, then run this check again.")
# What an error usually means in these exercises, by type (the case's own hint follows).
ERROR_HINTS: dict[type, str] = {
    ZeroDivisionError: "a count in this case's input is 0: check it before dividing by it.",
    KeyError: "the input has no such key or column: print the input to see its names.",
}
GRADING_ENV = "LIFECYCLE_GRADING"
RESULT_MIMETYPE = "application/vnd.lifecycle.check-result+json"
_LISTED = 8  # longer answers are shown by their first values and their length
NONE_HINT = ("a value in this case's input is None (not measured, or not there yet): test `is not None` before you "
             "compare or compute with it.")


@dataclass(frozen=True)
class Case:
    """One hidden case: a readable name, the arguments the learner's function gets, the right answer,
    and a hint that fits a wrong answer to this case."""

    name: str
    args: tuple
    expected: Any
    hint: str
    shown: str = ""  # the expected answer as the learner reads it (default: describe(expected))


@dataclass(frozen=True)
class Verdict:
    """What a judge decided about one answer: right or wrong, both answers as text, and a hint."""

    passed: bool
    expected: str = ""
    got: str = ""
    hint: str = ""


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one hidden case (``number`` counts from 1)."""

    number: int
    name: str
    passed: bool
    expected: str = ""
    got: str = ""
    hint: str = ""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check: one :class:`CaseResult` per hidden case.

    Attributes:
        exercise: the exercise's name, e.g. ``"02 point-in-time feature"``.
        cases: the case results, in the order they ran.
    """

    exercise: str
    cases: tuple[CaseResult, ...]

    @property
    def passed(self) -> bool:
        """True when every case passed."""
        return all(case.passed for case in self.cases)

    @property
    def failed(self) -> list[CaseResult]:
        """The cases that failed, in order."""
        return [case for case in self.cases if not case.passed]

    @property
    def message(self) -> str:
        """What the learner reads: ``All N cases pass.``, or the first failed case in full (expected,
        got, hint) and which other cases fail. Deterministic for the same answers."""
        total = len(self.cases)
        if self.passed:
            return f"All {total} cases pass."
        first, *others = self.failed
        lines = [f"case {first.number} of {total} ({first.name}) failed: expected {first.expected}, got {first.got}.",
                 f"Hint: {first.hint}",
                 f"{total - len(self.failed)} of {total} cases pass."]
        if len(others) > 3:
            lines.append("Also failing: cases " + ", ".join(str(case.number) for case in others) + ".")
        elif others:
            lines.append("Also failing: " + ", ".join(f"case {c.number} ({c.name})" for c in others) + ".")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (what the grader reads; :meth:`from_dict` reads it back)."""
        return {"exercise": self.exercise, "cases": [vars(case).copy() for case in self.cases]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Read back what :meth:`as_dict` wrote.

        Raises:
            KeyError, TypeError: ``data`` is not such a dict.
        """
        return cls(str(data["exercise"]), tuple(CaseResult(**case) for case in data["cases"]))

    def __repr__(self) -> str:
        passing = len(self.cases) - len(self.failed)
        return f"CheckResult({self.exercise!r}: {passing} of {len(self.cases)} cases pass)"


Judge = Callable[[Case, Any], Verdict]


def run_check(exercise: str, check_name: str, function: Any, function_name: str, cases: Sequence[Case],
              judge: Judge, show: bool = True) -> CheckResult:
    """Call ``function`` on every case (with copies of the arguments) and judge each answer.

    Args:
        exercise: the exercise's name, for the result.
        check_name: the check's own name, for the hint when ``function`` is not a function.
        function: the learner's function.
        function_name: the name the exercise asks for (used when ``function`` is not callable).
        cases: the hidden cases.
        judge: compares an answer with the case's expected one; only called when the function returned.
        show: print the result's message.

    Returns:
        The :class:`CheckResult`.
    """
    results = []
    for number, case in enumerate(cases, start=1):
        expected = case.shown or describe(case.expected)
        if not callable(function):
            verdict = Verdict(False, expected, f"{short_repr(function)} instead of a function",
                              f"pass the function itself, not what it returns: `{check_name}({function_name})`, "
                              f"with no parentheses after {function_name}.")
        else:
            answer, error = call_learner(function, case.args)
            verdict = judge(case, answer) if error is None else \
                Verdict(False, expected, f"an error: {describe_error(error, function)}", _error_hint(error, case))
        results.append(CaseResult(number, case.name, verdict.passed, verdict.expected, verdict.got, verdict.hint))
    result = CheckResult(exercise, tuple(results))
    if show:
        print(result.message)
    if os.environ.get(GRADING_ENV):
        publish_result(result)
    return result


def publish_result(result: CheckResult) -> None:
    """Display ``result`` as :data:`RESULT_MIMETYPE` data, for the grader to read from the executed notebook.

    Only the grader's kernels call this (see :data:`GRADING_ENV`); outside IPython it does nothing.
    """
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is None:
        return
    passing = len(result.cases) - len(result.failed)
    display({RESULT_MIMETYPE: result.as_dict(),
             "text/plain": f"[grader] {result.exercise}: {passing} of {len(result.cases)} cases pass"}, raw=True)


def _error_hint(error: Exception, case: Case) -> str:
    if isinstance(error, NotImplementedError):
        return STUB_HINT
    if isinstance(error, TypeError) and "NoneType" in str(error):
        meaning = NONE_HINT
    else:
        meaning = next((hint for kind, hint in ERROR_HINTS.items() if isinstance(error, kind)),
                       "Python stopped at the line shown; fix what it complains about.")
    return f"{meaning} This case: {case.hint}"


def call_learner(function: Callable, args: tuple) -> tuple[Any, Exception | None]:
    """Call the learner's function on deep copies of ``args``; returns ``(answer, None)``, or
    ``(None, the_error)`` when it raised.

    This is the one catch-all of the kit, on purpose: the learner's code may raise anything
    (``NotImplementedError`` from the stub, a ``KeyError`` from a typo, a ``ZeroDivisionError`` the
    exercise sets a trap for), and reporting it as a failed case *is* the checker's job. Only the
    learner's call is wrapped; ``KeyboardInterrupt`` still stops the check.
    """
    try:
        return function(*copy.deepcopy(args)), None
    except Exception as err:  # noqa: BLE001 - the learner's error becomes a failed case (see docstring)
        return None, err


def describe_error(err: Exception, function: Callable) -> str:
    """The traceback's last line (``KeyError: 'amount'``), plus the learner's line that raised it
    when Python still knows its text (it does in a notebook)."""
    text = traceback.format_exception_only(type(err), err)[-1].strip()
    filename = getattr(getattr(function, "__code__", None), "co_filename", None)
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == filename]
    if frames and frames[-1].line:
        text += f" (in {frames[-1].name}, at `{frames[-1].line.strip()}`)"
    return text


def describe(value: Any) -> str:
    """A short, deterministic text for an answer: numbers as the learner would type them, NaN as nan."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, list | tuple):
        inner = ", ".join(describe(v) for v in value[:_LISTED])
        if len(value) > _LISTED:
            inner += f", … ({len(value)} values)"
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    return short_repr(value)


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters (and no memory addresses, which change every run)."""
    if hasattr(value, "shape") and hasattr(value, "columns"):
        return f"a {type(value).__name__} with columns {list(value.columns)}"
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic):
        return f"a {type(value).__name__} of shape {value.shape}"
    text = repr(value)
    if " at 0x" in text:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 1] + "…"
