"""A made-up class of hand-ins, to try the grader on before a real one: learners who solved everything,
learners whose functions answer one constant (partly right), learners who handed in the untouched
exercises, and the broken hand-ins a grader meets (a syntax error, a loop that never ends, a deleted
check cell, a file that is not JSON, a missing notebook).

Every hand-in is made from the kit's own exercises and solutions, so it follows them when they change.
The grader's tests and its benchmark (``benchmarks/grade.py``) grade such a class.

Taught nowhere: see :mod:`lifecycle.course.grade`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lifecycle.errors import ConfigError

# What a partly right learner's function returns: one answer, right for some hidden cases only.
CONSTANT_ANSWERS = {
    "user_txn_count_24h": 'transactions.groupby("user_id").cumcount()',  # every earlier transaction, not 24 h
    "choose_run": "None",
    "gate": '("advance", "looks fine")',
    "diagnose": '"none"',
    "should_retrain": "False",
}
STUB = re.compile(r"^(?P<indent>[ \t]+)raise NotImplementedError\(.*\)\s*$", re.MULTILINE)
BROKEN = ("syntax_error", "infinite_loop", "deleted_check", "not_json")
KINDS = ("correct", "partial", "untouched", *BROKEN)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _cells(notebook: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    return [cell for cell in notebook["cells"] if tag in cell.get("metadata", {}).get("tags", [])]


def _source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def hand_in(kit: Path, exercise: str, kind: str) -> str:
    """The text of one learner's notebook for ``exercise`` (a stem of ``kit/exercises/``), of ``kind``:

    * ``correct``: the instructor solution; ``untouched``: the exercise as handed out;
    * ``partial``: the exercise with every function returning one constant (:data:`CONSTANT_ANSWERS`);
    * ``syntax_error``: the solution with its first function's ``def`` line broken;
    * ``infinite_loop``: the solution with its last function looping forever when called;
    * ``deleted_check``: the solution without its check cells;
    * ``not_json``: the solution's file cut in half, as a failed upload leaves it.

    Raises:
        ConfigError: an unknown kind, or an exercise whose stub is not ``raise NotImplementedError(...)``.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown hand-in kind {kind!r}; the kinds are {', '.join(KINDS)}")
    exercises = kit / "exercises"
    if kind == "untouched":
        return (exercises / f"{exercise}.ipynb").read_text(encoding="utf-8")
    if kind == "partial":
        notebook = _read(exercises / f"{exercise}.ipynb")
        for cell in _cells(notebook, "exercise"):
            name = re.search(r"def (\w+)\(", _source(cell)).group(1)
            if not STUB.search(_source(cell)) or name not in CONSTANT_ANSWERS:
                raise ConfigError(f"{exercise}: cannot make a partial answer for {name}()")
            answer = CONSTANT_ANSWERS[name]
            cell["source"] = STUB.sub(lambda m, answer=answer: f"{m['indent']}return {answer}", _source(cell))
        return json.dumps(notebook, indent=1)
    text = (exercises / "solutions" / f"{exercise}.ipynb").read_text(encoding="utf-8")
    if kind == "not_json":
        return text[: len(text) // 2]
    notebook = json.loads(text)
    functions = _cells(notebook, "exercise")
    if kind == "syntax_error":
        functions[0]["source"] = re.sub(r"^(def .*):[ \t]*$", r"\1", _source(functions[0]), count=1,
                                        flags=re.MULTILINE)  # the colon after the signature is gone
    elif kind == "infinite_loop":
        last = _source(functions[-1])
        body = re.search(r'^(?P<indent>[ \t]+)"""', last, re.MULTILINE)["indent"]
        header = re.search(r"def \w+\(.*?\).*?:\n", last, re.DOTALL).end()
        functions[-1]["source"] = last[:header] + f"{body}while True:  # a loop that never ends\n{body}    pass\n"
    elif kind == "deleted_check":
        notebook["cells"] = [c for c in notebook["cells"] if "check" not in c.get("metadata", {}).get("tags", [])]
    return json.dumps(notebook, indent=1)


def write_class(folder: Path, learners: dict[str, dict[str, str]], kit: Path) -> Path:
    """Write a class's hand-ins: ``learners`` maps a learner's name to ``{exercise: kind}`` (an exercise left
    out is not handed in). Returns ``folder``."""
    for learner, kinds in learners.items():
        (folder / learner).mkdir(parents=True, exist_ok=True)
        for exercise, kind in kinds.items():
            (folder / learner / f"{exercise}.ipynb").write_text(hand_in(kit, exercise, kind), encoding="utf-8")
    return folder


def demo_class(exercises: list[str], size: int = 30) -> dict[str, dict[str, str]]:
    """A class of ``size`` learners as a grader meets it: most solve every exercise, some answer with a
    constant, one hands in the untouched exercises, and one hand-in of each broken kind (in turn over the
    exercises) among otherwise correct work, plus one learner who hands in half of the exercises."""
    learners: dict[str, dict[str, str]] = {}
    partial = max(1, size // 5)
    for number in range(1, size + 1):
        kinds = dict.fromkeys(exercises, "correct")
        if number <= len(BROKEN):
            kinds[exercises[(number - 1) % len(exercises)]] = BROKEN[number - 1]
        elif number <= len(BROKEN) + partial:
            kinds = dict.fromkeys(exercises, "partial")
        elif number == len(BROKEN) + partial + 1:
            kinds = dict.fromkeys(exercises, "untouched")
        elif number == len(BROKEN) + partial + 2:
            kinds = dict.fromkeys(exercises[::2], "correct")
        learners[f"learner{number:02d}"] = kinds
    return learners
