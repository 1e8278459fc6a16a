"""A learner's view: JupyterLab in a real headless Chromium runs a lesson and answers its quiz.

Needs Debian's `chromium` (`apt-get install chromium`); Playwright drives it through
`executable_path` (Playwright's own browser download does not work offline). Without Chromium
the test skips and says so, except under CI=true, where `.ci/run` installs it and it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from lifecycle._proc import ReservedPort, http_ready, launch

ROOT = Path(__file__).resolve().parents[2]
LESSON = "00_start_here"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "no Chromium: install Debian's package with 'apt-get install chromium' to run the browser test"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: .ci/run must install it)")
    pytest.skip(message)


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on a copy of the lesson in a temporary folder; stopped with its kernels."""
    folder = tmp_path / "lab"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / f"{LESSON}.ipynb", folder)
    settings = tmp_path / "lab-settings"
    for plugin, values in {"apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                                  "checkForUpdates": False},
                           "docmanager-extension/plugin.jupyterlab-settings": {"autosave": False}}.items():
        path = settings / "@jupyterlab" / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "LIFECYCLE_LEARNER": "browser-test"}
    reserved = ReservedPort()
    server = launch(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={reserved.port}",
         "--ip=127.0.0.1", f"--ServerApp.root_dir={folder}", "--IdentityProvider.token=", "--ServerApp.password=",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None", "--allow-root"],
        "JupyterLab", tmp_path / "jupyterlab.log", env=env, cwd=folder, reserved=reserved)
    url = f"http://127.0.0.1:{server.port}"
    with server:  # stopped with its kernels: JupyterLab shuts them down, and they watch it
        server.wait_until_ready(http_ready(f"{url}/api/status"), timeout=60, interval=0.3)
        yield f"{url}/lab/tree/{LESSON}.ipynb"


def _first_question() -> tuple[str, str, str]:
    """The first question of the lesson's bank: its text, a wrong option and the right one."""
    from lifecycle.course.quiz import load_bank

    question = load_bank(ROOT / "quizzes" / f"{LESSON}.yaml")[0]
    right = next(o for o in question.options if o.correct)
    wrong = next(o for o in question.options if not o.correct)
    return question.question, wrong.text, right.text


def test_learner_answers_quiz_wrong_then_right_in_jupyterlab(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    _, wrong, right = _first_question()
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(jupyterlab)
            # The toolbar says idle before the kernel is attached; the status bar is the reliable signal.
            expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle")).to_be_visible(timeout=90_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()
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
