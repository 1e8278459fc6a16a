"""Quizzes: question banks as data, checked on load, shown as widgets that explain every option.

A bank is ``quizzes/<lesson>.yaml`` (the lesson notebook's stem) holding ``lesson`` and a list of
``questions``. Each question has an ``id``, the ``question`` and its ``options``; every option has
a ``text`` and an ``explanation`` (why it is right or wrong), and the right ones say
``correct: true``. One correct option makes a radio-button question, several make checkboxes.

:func:`show_quiz` displays a lesson's questions as ipywidgets. The same display carries a plain-text
version of the quiz, which is what papermill stores, nbval compares and a console prints; with
``reveal=True`` the answer key (the right options and why each option is right or wrong) is
printed as well, so a course run with ``-p reveal_answers=true`` doubles as an answer key.
Answers given in the widgets are kept per learner by :mod:`lifecycle.course.progress`.

Taught in notebooks/00_start_here.ipynb (how quizzes work); every lesson ends with its quiz.
"""

from __future__ import annotations

import html
import re
import string
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from lifecycle.config import Settings, load_settings
from lifecycle.errors import ConfigError, LifecycleError, SchemaError

BANK_FIELDS = ("lesson", "questions")
QUESTION_FIELDS = ("id", "question", "options")
OPTION_FIELDS = ("text", "explanation", "correct")
QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TEXT_WIDTH = 96
LETTERS = string.ascii_lowercase  # options are a), b), ... in the text version
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
# Widget labels and HTML are one 28px line high by default (cut with an ellipsis); options here are sentences.
_STYLE = "<style>" + " ".join((
    ".lifecycle-quiz .widget-html-content, .lifecycle-quiz .jupyter-widget-html-content {line-height: 1.45}",
    ".lifecycle-quiz-options label, .lifecycle-quiz-options .widget-checkbox, .lifecycle-quiz-options "
    ".jupyter-widget-checkbox {height: auto; line-height: 1.45; white-space: normal; overflow: visible}",
    ".lifecycle-quiz-options label {display: flex; align-items: flex-start; margin-bottom: 5px}",
    ".lifecycle-quiz-options input {float: none; flex-shrink: 0; margin-top: 3px}",
    # A radio's label holds its text, then its input: reverse them to put the button on the left.
    ".lifecycle-quiz-options .widget-radio-box label {flex-direction: row-reverse; justify-content: flex-end}",
    ".lifecycle-quiz-correct p:first-child {color: #1e7b34} .lifecycle-quiz-wrong p:first-child {color: #b03a2e}",
)) + "</style>"


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


def _wrap(text: str, indent: str, hanging: str | None = None) -> str:
    return textwrap.fill(text, TEXT_WIDTH, initial_indent=indent, subsequent_indent=hanging or indent,
                         break_long_words=False, break_on_hyphens=False)


def question_text(question: Question, number: int, reveal: bool = False) -> str:
    """A readable plain-text version of one question; with ``reveal``, its answer and every
    option's explanation. Deterministic: the same bank gives the same text."""
    hint = "choose all that apply" if question.multiple else "choose one"
    lines = [_wrap(f"{number}. {question.question} ({hint})", "", "   ")]
    lines += [_wrap(f"{LETTERS[i]}) {o.text}", "   ", "      ") for i, o in enumerate(question.options)]
    if reveal:
        answer = ", ".join(LETTERS[i] for i in question.correct)
        lines.append(f"   Answer: {answer}")
        for i, option in enumerate(question.options):
            verdict = "right" if option.correct else "wrong"
            lines.append(_wrap(f"{LETTERS[i]}) {verdict}: {option.explanation}", "     ", "        "))
    return "\n".join(lines)


def quiz_text(lesson: str, questions: list[Question], reveal: bool = False) -> str:
    """The plain-text version of a lesson's quiz (the answer key when ``reveal`` is true)."""
    title = f"Answer key: {lesson}" if reveal else f"Quiz: {lesson}"
    body = [question_text(q, n, reveal) for n, q in enumerate(questions, start=1)]
    return "\n\n".join([f"{title} ({len(questions)} questions)", *body])


def _html(text: str) -> str:
    """Escape text for HTML, showing `backticked` words as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


AnswerHandler = Callable[[Question, list[int], bool], None]


class QuizWidget:
    """One question as a widget: its options (radio buttons, or checkboxes when several are right),
    a Check button, and feedback: right or wrong, and the chosen options' explanations.

    The parts are attributes, so tests drive them without a browser: ``choices`` (``RadioButtons``
    whose value is the option index, or a list of ``Checkbox``), ``options`` (the widget holding
    them), ``check``, ``feedback`` (``HTML``) and ``box``, with the CSS classes ``lifecycle-quiz-options``,
    ``-check``, ``-feedback`` (plus ``-correct``/``-wrong`` after a check) and ``lifecycle-quiz``.

    Args:
        question: the question to show.
        number: its number in the lesson's quiz.
        on_answer: called as ``on_answer(question, chosen_indices, correct)`` after each check,
            e.g. :meth:`lifecycle.course.progress.ProgressStore.record_answer`.
    """

    def __init__(self, question: Question, number: int = 1, on_answer: AnswerHandler | None = None) -> None:
        import ipywidgets as widgets

        self.question, self.number, self.on_answer = question, number, on_answer
        hint = "Choose all that apply." if question.multiple else "Choose one."
        prompt = widgets.HTML(f"{_STYLE}<b>{number}. {_html(question.question)}</b> <i>{hint}</i>",
                              layout=widgets.Layout(width="100%"))
        full_width = widgets.Layout(width="100%")
        if question.multiple:
            self.choices: Any = [widgets.Checkbox(value=False, description=o.text, indent=False, layout=full_width)
                                 for o in question.options]
            self.options = widgets.VBox(self.choices, layout=full_width)
        else:
            self.choices = widgets.RadioButtons(options=[(o.text, i) for i, o in enumerate(question.options)],
                                                value=None, layout=full_width)
            self.options = self.choices
        self.options.add_class("lifecycle-quiz-options")
        self.check = widgets.Button(description="Check", button_style="primary", tooltip="check your answer")
        self.check.add_class("lifecycle-quiz-check")
        self.check.on_click(self._check_clicked)
        self.feedback = widgets.HTML("")
        self.feedback.add_class("lifecycle-quiz-feedback")
        self.box = widgets.VBox([prompt, self.options, self.check, self.feedback])
        self.box.add_class("lifecycle-quiz")

    def chosen(self) -> list[int]:
        """The indices of the options currently selected."""
        if isinstance(self.choices, list):
            return [i for i, box in enumerate(self.choices) if box.value]
        return [] if self.choices.value is None else [int(self.choices.value)]

    def _check_clicked(self, _button: Any = None) -> None:
        chosen = self.chosen()
        self.feedback.remove_class("lifecycle-quiz-correct")
        self.feedback.remove_class("lifecycle-quiz-wrong")
        if not chosen:
            self.feedback.value = "Choose an option first, then press Check."
            return
        correct = self.question.grade(chosen)
        self.feedback.add_class("lifecycle-quiz-correct" if correct else "lifecycle-quiz-wrong")
        self.feedback.value = feedback_html(self.question, chosen, correct)
        if self.on_answer is not None:
            try:
                self.on_answer(self.question, chosen, correct)
            except (LifecycleError, OSError) as err:  # a click handler's error would only reach the log
                self.feedback.value += f"<p><b>Your answer was not saved:</b> {html.escape(str(err))}</p>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return {WIDGET_MIMETYPE: self.box._repr_mimebundle_()[WIDGET_MIMETYPE],
                "text/plain": question_text(self.question, self.number)}


def feedback_html(question: Question, chosen: list[int], correct: bool) -> str:
    """What the learner reads after pressing Check: the verdict and the chosen options' explanations."""
    verdict = "✔ Correct." if correct else "✘ Not quite."
    parts = [f"<p><b>{verdict}</b></p>"]
    for index in chosen:
        option = question.options[index]
        mark = ("✔ " if option.correct else "✘ ") if question.multiple else ""
        parts.append(f"<p>{mark}<b>{_html(option.text)}</b><br>{_html(option.explanation)}</p>")
    missed = len(set(question.correct) - set(chosen))
    if not correct and missed and question.multiple:
        parts.append(f"<p>{missed} right option(s) not chosen yet.</p>")
    if not correct:
        parts.append("<p>Try again.</p>")
    return "".join(parts)


class LessonQuiz:
    """All questions of one lesson, displayable: widgets in a live notebook, text elsewhere.

    Attributes:
        lesson: the lesson's name.
        questions: one :class:`QuizWidget` per question, in bank order.
        box: the widget holding them (CSS class ``lifecycle-quiz-lesson``).
    """

    def __init__(self, lesson: str, questions: list[Question], on_answer: AnswerHandler | None = None,
                 reveal: bool = False) -> None:
        import ipywidgets as widgets

        self.lesson, self.reveal = lesson, reveal
        self.questions = [QuizWidget(q, n, on_answer) for n, q in enumerate(questions, start=1)]
        self.box = widgets.VBox([q.box for q in self.questions])
        self.box.add_class("lifecycle-quiz-lesson")

    def text(self, reveal: bool = False) -> str:
        """The plain-text quiz; with ``reveal``, the answer key."""
        return quiz_text(self.lesson, [w.question for w in self.questions], reveal)

    def __str__(self) -> str:
        """What text-only outputs show (papermill, nbval, consoles): the questions, or, when the
        answer key is printed after them, a pointer to it."""
        if self.reveal:
            return f"Quiz: {self.lesson} ({len(self.questions)} questions); the answer key is printed below."
        return self.text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # JupyterLab renders the widget view; papermill, nbval and consoles keep text/plain.
        return {WIDGET_MIMETYPE: self.box._repr_mimebundle_()[WIDGET_MIMETYPE], "text/plain": str(self)}


def _as_flag(value: bool | str | int, name: str) -> bool:
    """A yes/no parameter as a bool; papermill passes ``-p reveal_answers false`` as the text 'false'."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "on"}:
        return True
    if text in {"false", "no", "0", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def build_quiz(lesson: str, reveal: bool = False, learner: str | None = None,
               settings: Settings | None = None) -> LessonQuiz:
    """A lesson's quiz whose answers are saved to the learner's progress file.

    Args:
        lesson: the lesson notebook's stem, e.g. ``"06_canary_release"``.
        reveal: build the answer key's text too.
        learner: whose progress (default: ``$LIFECYCLE_LEARNER``, else the user name).
        settings: the settings (default: :func:`~lifecycle.config.load_settings`).

    Raises:
        ConfigError: no bank for ``lesson``, or a bad learner name.
        SchemaError: the bank is malformed.
    """
    from lifecycle.course.progress import ProgressStore  # progress reads the banks: import it late

    settings = settings or load_settings()
    store = ProgressStore(learner, settings)
    return LessonQuiz(lesson, load_bank(lesson, settings), store.record_answer, _as_flag(reveal, "reveal"))


def show_quiz(lesson: str, reveal: bool | str = False, learner: str | None = None) -> None:
    """Display a lesson's quiz: widgets in JupyterLab, readable text headless.

    Args:
        lesson: the lesson notebook's stem; the bank is ``quizzes/<lesson>.yaml``.
        reveal: also print the answer key (pass the notebook's ``reveal_answers`` parameter).
        learner: whose progress the answers go to (default: ``$LIFECYCLE_LEARNER``, else the user name).

    Raises:
        ConfigError: no bank for ``lesson``, a bad learner name, or ``reveal`` not true/false.
        SchemaError: the bank is malformed.
    """
    from IPython.display import display

    quiz = build_quiz(lesson, reveal, learner)
    display(quiz)
    if quiz.reveal:
        # Printed, not put in the widget's text: a saved notebook shows widgets in JupyterLab, and
        # the answer key must be readable there too.
        print(quiz.text(True))
