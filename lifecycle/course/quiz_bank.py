"""Quiz banks as data: ``quizzes/<lesson>.yaml``, read and checked on load.

A bank holds ``lesson`` (the lesson notebook's stem) and a list of ``questions``. Each question has
an ``id``, the ``question`` and its ``options``; every option has a ``text`` and an ``explanation``
(why it is right or wrong), and the right ones say ``correct: true``. One correct option makes a
radio-button question, several make checkboxes. A malformed bank fails with the file, the question id
and the field at fault.

Read by :mod:`lifecycle.course.quiz` (the widgets) and :mod:`lifecycle.course.progress` (the scores).

Taught in notebooks/00_start_here.ipynb (how quizzes work).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError, SchemaError

BANK_FIELDS = ("lesson", "questions")
QUESTION_FIELDS = ("id", "question", "options")
OPTION_FIELDS = ("text", "explanation", "correct")
QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
LETTERS = string.ascii_lowercase  # options are a), b), ... in the text version


@dataclass(frozen=True)
class Option:
    """One answer a learner can choose, and why it is right or wrong."""

    text: str
    explanation: str
    correct: bool = False


@dataclass(frozen=True)
class Question:
    """One question of a lesson's bank."""

    id: str
    question: str
    options: tuple[Option, ...]
    lesson: str = ""

    @property
    def correct(self) -> tuple[int, ...]:
        """Indices of the correct options."""
        return tuple(i for i, option in enumerate(self.options) if option.correct)

    @property
    def multiple(self) -> bool:
        """Whether the learner must choose several options (checkboxes rather than radio buttons)."""
        return len(self.correct) > 1

    def grade(self, chosen: Iterable[int]) -> bool:
        """Whether ``chosen`` (option indices) is exactly the set of correct options."""
        return set(chosen) == set(self.correct)


def list_lessons(settings: Settings | None = None) -> list[str]:
    """The lessons that have a question bank, in course order (``quizzes/*.yaml`` stems)."""
    settings = settings or load_settings()
    return sorted(path.stem for path in settings.quizzes.glob("*.yaml"))


def load_bank(lesson: str | Path, settings: Settings | None = None) -> list[Question]:
    """Read and check one question bank.

    Args:
        lesson: a lesson name (``"06_canary_release"``, read from the settings' ``quizzes/``)
            or the path of a bank file.
        settings: where the banks are (default: :func:`~lifecycle.config.load_settings`).

    Returns:
        The questions in file order.

    Raises:
        ConfigError: there is no bank for that lesson.
        SchemaError: the bank is malformed; the message names the file, the question id and the field.
    """
    import yaml

    path = Path(lesson) if str(lesson).endswith((".yaml", ".yml")) else \
        (settings or load_settings()).quizzes / f"{lesson}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(path.parent.glob("*.yaml"))) or "none"
        raise ConfigError(f"no question bank for {str(lesson)!r}: {path} does not exist; "
                          f"the banks in {path.parent} are: {known}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SchemaError(f"{path}: not valid YAML: {err}; fix the indentation or quoting it points at") from err
    return _parse_bank(path, data)


def _fail(path: Path, where: str, field: str, problem: str) -> NoReturn:
    raise SchemaError(f"{path}: {where}, field '{field}': {problem}")


def _unknown_fields(path: Path, where: str, raw: dict, allowed: tuple[str, ...], prefix: str = "") -> None:
    for key in raw:
        if key not in allowed:
            _fail(path, where, f"{prefix}{key}", f"unknown field; allowed fields are {', '.join(allowed)}")


def _text(path: Path, where: str, raw: dict, field: str, prefix: str = "") -> str:
    value = raw.get(field)
    if value is None:
        _fail(path, where, prefix + field, "missing; it must be a non-empty text")
    if not isinstance(value, str) or not value.strip():
        _fail(path, where, prefix + field, f"must be a non-empty text, got {value!r} "
              "(quote it in the YAML if it reads as a number, yes/no or a date)")
    return " ".join(value.split())


def _parse_bank(path: Path, data: Any) -> list[Question]:
    where = "top level"
    if not isinstance(data, dict):
        _fail(path, where, "lesson", f"the file must hold a mapping with {', '.join(BANK_FIELDS)}, "
              f"got {type(data).__name__}")
    _unknown_fields(path, where, data, BANK_FIELDS)
    if data.get("lesson") != path.stem:
        _fail(path, where, "lesson", f"got {data.get('lesson')!r}; it must be the file's (and the lesson "
              f"notebook's) name, {path.stem!r}")
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        _fail(path, where, "questions", f"must be a non-empty list of questions, got {raw_questions!r}")
    questions: list[Question] = []
    for number, raw in enumerate(raw_questions, start=1):
        question = _parse_question(path, number, raw)
        if any(q.id == question.id for q in questions):
            _fail(path, f"question {question.id!r}", "id", "used twice in this bank; ids must be unique "
                  "(progress is kept by id)")
        questions.append(question)
    return questions


def _parse_question(path: Path, number: int, raw: Any) -> Question:
    where = f"question #{number} (no id)"
    if not isinstance(raw, dict):
        _fail(path, where, "id", f"each question must be a mapping with {', '.join(QUESTION_FIELDS)}, got {raw!r}")
    qid = raw.get("id")
    if not isinstance(qid, str) or not QUESTION_ID.match(qid):
        _fail(path, where, "id", f"got {qid!r}; use lower-case letters, digits and dashes, e.g. 'canary-purpose'")
    where = f"question {qid!r}"
    _unknown_fields(path, where, raw, QUESTION_FIELDS)
    text = _text(path, where, raw, "question")
    raw_options = raw.get("options")
    if not isinstance(raw_options, list) or not 2 <= len(raw_options) <= len(LETTERS):
        _fail(path, where, "options", f"must be a list of 2 to {len(LETTERS)} options, got {raw_options!r}")
    options = []
    for index, raw_option in enumerate(raw_options):
        prefix = f"options[{index}]."
        if not isinstance(raw_option, dict):
            _fail(path, where, f"options[{index}]", f"each option must be a mapping with "
                  f"{', '.join(OPTION_FIELDS)}, got {raw_option!r}")
        _unknown_fields(path, where, raw_option, OPTION_FIELDS, prefix)
        correct = raw_option.get("correct", False)
        if not isinstance(correct, bool):
            _fail(path, where, prefix + "correct", f"must be true or false, got {correct!r}")
        option = Option(_text(path, where, raw_option, "text", prefix),
                        _text(path, where, raw_option, "explanation", prefix), correct)
        if any(o.text == option.text for o in options):
            _fail(path, where, prefix + "text", f"{option.text!r} appears twice; options must differ")
        options.append(option)
    if not any(o.correct for o in options):
        _fail(path, where, "options", "no option is marked 'correct: true'; mark the right one(s)")
    return Question(qid, text, tuple(options), path.stem)
