"""A learner's view: JupyterLab in a real headless Chromium runs a lesson and answers its quiz.

Chromium, JupyterLab and running a notebook in it come from tests/browser/conftest.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSON = "00_start_here"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def jupyterlab(tmp_path, start_jupyterlab):
    """JupyterLab on a copy of the lesson in a temporary folder; stopped with its kernels."""
    folder = tmp_path / "lab"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / f"{LESSON}.ipynb", folder)
    with start_jupyterlab(folder, tmp_path, {"LIFECYCLE_LEARNER": "browser-test"}) as url:
        yield f"{url}/lab/tree/{LESSON}.ipynb"


def _first_question() -> tuple[str, str, str]:
    """The first question of the lesson's bank: its text, a wrong option and the right one."""
    from lifecycle.course.quiz import load_bank

    question = load_bank(ROOT / "quizzes" / f"{LESSON}.yaml")[0]
    right = next(o for o in question.options if o.correct)
    wrong = next(o for o in question.options if not o.correct)
    return question.question, wrong.text, right.text


def test_learner_answers_quiz_wrong_then_right_in_jupyterlab(jupyterlab, chromium, chromium_args, run_all_cells):
    from playwright.sync_api import expect, sync_playwright

    _, wrong, right = _first_question()
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=chromium_args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            run_all_cells(page, jupyterlab)
            quiz = page.locator(".lifecycle-quiz").first
            expect(quiz).to_be_visible(timeout=120_000)
            quiz.scroll_into_view_if_needed()
            options, check = quiz.locator(".lifecycle-quiz-options"), quiz.locator(".lifecycle-quiz-check")
            feedback = quiz.locator(".lifecycle-quiz-feedback")

            options.get_by_text(wrong, exact=True).click()
            check.click()
            expect(feedback).to_contain_text("Not quite", timeout=20_000)
            wrong_feedback = feedback.inner_text()

            options.get_by_text(right, exact=True).click()
            check.click()
            expect(feedback).to_contain_text("Correct", timeout=20_000)
            right_feedback = feedback.inner_text()
            quiz.screenshot(path=str(shots / "quiz.png"))
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert wrong_feedback != right_feedback
    assert (shots / "quiz.png").stat().st_size > 0
