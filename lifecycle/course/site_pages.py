"""One lesson page of the course site: an executed notebook made readable without a kernel.

The changes, and only these: quiz widgets become static questions with the answer and every option's
explanation folded in a ``<details>`` (a widget needs a live kernel, and its loader comes from a CDN);
any other widget becomes a note to open the notebook in JupyterLab; the notebook's widget state goes;
a banner after the title says when and how the lesson ran; files an output links to (an Evidently
report in the workspace) are copied beside the page; Markdown links to another lesson's notebook
point to its page; and code in headings is written as HTML, so the
page's table of contents and its headings agree on their anchors (mkdocs-jupyter 0.26 drops the code
from the table of contents' anchors, not from the headings').

Taught nowhere: see :mod:`lifecycle.course.site`.
"""

from __future__ import annotations

import copy
import html
import re
import shutil
from pathlib import Path
from typing import Any

from lifecycle.config import Settings
from lifecycle.course.quiz import LETTERS, WIDGET_MIMETYPE, Question, load_bank
from lifecycle.course.quiz import _html as inline_html

QUIZ_CALL = re.compile(r"""show_quiz\(\s*["']([\w-]+)["']""")
HEADING = re.compile(r"^(#{1,6}\s.*)$", re.MULTILINE)
LESSON_LINK = re.compile(r"\]\((\d\d_[\w-]+)\.ipynb(#[^)\s]*)?\)")
LOCAL_LINK = re.compile(r"""\b(href|src)=(["'])(?![a-zA-Z][\w+.-]*:|#|/)([^"'#?]+)\2""")
FILES = "files"  # the site folder where linked files of the lessons' outputs are copied


def source(cell: dict[str, Any]) -> str:
    """A cell's source as one text (nbformat allows a list of lines on disk)."""
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def static_notebook(notebook: dict[str, Any], settings: Settings, docs: Path, name: str,
                    banner: str = "", lessons: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The page of one executed notebook, which needs no kernel (see the module's docstring).

    Args:
        notebook: the executed notebook, as JSON data.
        settings: where the quizzes are.
        docs: the site's source folder; linked files go to ``docs/files/<name>/``.
        name: the lesson's name.
        banner: HTML put after the title cell.
        lessons: the site's lessons: a Markdown link to ``<lesson>.ipynb`` becomes a link to its page.
    """
    page = copy.deepcopy(notebook)
    page.get("metadata", {}).pop("widgets", None)
    ran_in = _run_folder(notebook, settings)
    for cell in page.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = HEADING.sub(lambda m: re.sub(r"`([^`]+)`", r"<code>\1</code>", m.group(1)), source(cell))
            cell["source"] = LESSON_LINK.sub(
                lambda m: f"]({m[1]}.html{m[2] or ''})" if m[1] in lessons else m[0], text)
        if cell.get("cell_type") != "code":
            continue
        quiz = QUIZ_CALL.search(source(cell))
        if quiz:
            # The answer key a run printed with reveal_answers=true would show the answers unfolded.
            cell["outputs"] = [html_output(quiz_html(quiz.group(1), load_bank(quiz.group(1), settings)))]
            continue
        cell["outputs"] = [_linked_files_kept(_without_widget(out), ran_in, docs, name)
                           for out in cell.get("outputs", [])]
    if banner:
        cells = page.setdefault("cells", [])
        cells.insert(1 if cells and cells[0].get("cell_type") == "markdown" else 0,
                     {"cell_type": "markdown", "metadata": {}, "source": banner})
    return page


def _run_folder(notebook: dict[str, Any], settings: Settings) -> Path:
    """The folder the lesson ran in, which its outputs' relative links start from: the runner runs each
    notebook in its own folder, which papermill's metadata names."""
    input_path = notebook.get("metadata", {}).get("papermill", {}).get("input_path") or ""
    return Path(input_path).parent if Path(input_path).is_absolute() else settings.notebooks


def html_output(text: str) -> dict[str, Any]:
    """A notebook output showing ``text`` as HTML."""
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": text}}


def _without_widget(output: dict[str, Any]) -> dict[str, Any]:
    if WIDGET_MIMETYPE not in output.get("data", {}):
        return output
    text = output["data"].get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    shown = f"<pre>{html.escape(text)}</pre>" if text.strip() else ""
    return html_output(f'<div class="lifecycle-widget-note"><p>An interactive widget was here: open this '
                       f'notebook in JupyterLab (<code>make lab</code>) to use it.</p>{shown}</div>')


def _linked_files_kept(output: dict[str, Any], ran_in: Path, docs: Path, name: str) -> dict[str, Any]:
    """Copy the local files an HTML output links to into the site, and point the links at the copies.
    A link to a file that is gone stays as it is (the site check reports it)."""
    data = output.get("data", {})
    if "text/html" not in data:
        return output
    text = data["text/html"]
    text = "".join(text) if isinstance(text, list) else text

    def keep(match: re.Match) -> str:
        attribute, quote, target = match.groups()
        linked = (ran_in / html.unescape(target)).resolve()
        if not linked.is_file():
            return match.group(0)
        copied = docs / FILES / name / linked.name
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(linked, copied)
        return f"{attribute}={quote}../{FILES}/{name}/{html.escape(linked.name)}{quote}"

    kept = LOCAL_LINK.sub(keep, text)
    if kept == text:
        return output
    output = copy.deepcopy(output)
    output["data"]["text/html"] = kept
    return output


def quiz_html(lesson: str, questions: list[Question]) -> str:
    """A lesson's quiz as static HTML: each question with its options, and the answer with every option's
    explanation folded in a ``<details>`` (class ``lifecycle-quiz-answer``) the reader opens."""
    parts = [f'<div class="lifecycle-static-quiz" data-lesson="{html.escape(lesson)}">',
             f"<p><b>Quiz</b> ({len(questions)} questions). Think of your answer, then open it below.</p>"]
    for number, question in enumerate(questions, start=1):
        hint = "Choose all that apply." if question.multiple else "Choose one."
        options = "".join(f"<li>{inline_html(option.text)}</li>" for option in question.options)
        answer = ", ".join(LETTERS[i] for i in question.correct)
        why = "".join(f"<li><b>{LETTERS[i]}) {'right' if option.correct else 'wrong'}:</b> "
                      f"{inline_html(option.explanation)}</li>" for i, option in enumerate(question.options))
        parts.append(f'<div class="lifecycle-quiz-question" id="quiz-{html.escape(question.id)}">'
                     f"<p><b>{number}. {inline_html(question.question)}</b> <i>{hint}</i></p>"
                     f'<ol type="a">{options}</ol>'
                     f'<details class="lifecycle-quiz-answer"><summary>Show the answer</summary>'
                     f"<p><b>Answer: {answer}</b></p><ul>{why}</ul></details></div>")
    return "".join(parts) + "</div>"
