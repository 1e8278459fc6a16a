"""Quizzes shown as widgets that explain every option, and as plain text.

The question banks (``quizzes/<lesson>.yaml``) are read and checked by :mod:`lifecycle.course.quiz_bank`.
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
import textwrap
from collections.abc import Callable
from typing import Any

from lifecycle.config import Settings, load_settings
from lifecycle.course.progress import ProgressStore
from lifecycle.course.quiz_bank import LETTERS, Option, Question, list_lessons, load_bank
from lifecycle.errors import ConfigError, LifecycleError

TEXT_WIDTH = 96
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


# Read from this module by earlier code: the banks' own module is lifecycle.course.quiz_bank.
__all__ = ["LessonQuiz", "Option", "Question", "QuizWidget", "build_quiz", "feedback_html", "list_lessons",
           "load_bank", "question_text", "quiz_text", "show_quiz"]
