"""A learner's view of the four "Try it" playgrounds, in JupyterLab in a real headless Chromium.

One small notebook builds the playgrounds of lessons 02, 03, 06 and 07 from small data
(tests/browser/playground_lab.py, which this test imports too). For each: change one control as a learner
does, wait for the numbers on the page to become what the library function returns for the new settings
(computed here, in the test's own process, shown through ``format_value``), and press *Reset* to get the
defaults back. The 03 *Run* and the 07 *Log this setting* each add a run that ``mlflow.search_runs`` finds.
Every wait is for an event on the page (a text appearing), never a sleep.

Chromium, JupyterLab and running a notebook come from tests/browser/conftest.py.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
SHOTS = ROOT / "build" / "browser"


def _lab_module():
    spec = importlib.util.spec_from_file_location("playground_lab", HERE / "playground_lab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("playground_lab", module)
    spec.loader.exec_module(module)
    return module


lab = _lab_module()


@pytest.fixture(scope="module")
def lab_folder(tmp_path_factory):
    """The notebook and its helper in a folder, and the workspace (MLflow store) its kernel uses."""
    import nbformat

    scratch = tmp_path_factory.mktemp("playgrounds")
    folder = scratch / "lab"
    folder.mkdir()
    shutil.copy(HERE / "playground_lab.py", folder)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in lab.NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "playgrounds.ipynb")
    return scratch, folder


@pytest.fixture(scope="module")
def page(lab_folder, chromium, chromium_args, start_jupyterlab, run_all_cells):
    """The notebook open in JupyterLab with all four playgrounds shown (one browser for the module)."""
    from playwright.sync_api import expect, sync_playwright

    scratch, folder = lab_folder
    env = {"LIFECYCLE_WORKSPACE": str(scratch / "workspace"), "LIFECYCLE_BUILD": str(scratch / "build"),
           "MLFLOW_TRACKING_URI": "", "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    SHOTS.mkdir(parents=True, exist_ok=True)
    with start_jupyterlab(folder, scratch, env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=chromium_args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            run_all_cells(page, f"{url}/lab/tree/playgrounds.ipynb")
            expect(page.locator(".lifecycle-playground-monitoring .lifecycle-playground-value").first).to_be_visible(
                timeout=240_000)
            yield page
        except Exception:
            page.screenshot(path=str(SHOTS / "playgrounds-failure.png"), full_page=True)
            raise
        finally:
            browser.close()


@pytest.fixture(scope="module")
def settings(lab_folder):
    """The kit's settings pointed at the kernel's workspace (so at its MLflow store)."""
    from lifecycle.config import load_settings

    scratch, _ = lab_folder
    return load_settings(workspace=scratch / "workspace", build=scratch / "build", mlflow_tracking_uri=(
        f"sqlite:///{scratch / 'workspace' / 'mlflow.db'}"))


@pytest.fixture(scope="module")
def windows():
    lab.one_thread()
    return lab.windows()


def shown(box) -> dict[str, str]:
    """The numbers a playground shows, by name, as the page has them now."""
    return box.locator(".lifecycle-playground-value").evaluate_all(
        "spans => Object.fromEntries(spans.map(span => [span.dataset.name, span.textContent]))")


def expect_numbers(box, values: dict, labels: dict, timeout: float = 60_000) -> None:
    """Wait until every shown number is the library's value for it (as ``format_value`` writes it)."""
    from playwright.sync_api import expect

    from lifecycle.course.playgrounds import format_value

    for name in labels:
        expect(box.locator(f".lifecycle-playground-value[data-name='{name}']")).to_have_text(
            format_value(values[name]), timeout=timeout)


def expect_shown(box, numbers: dict[str, str], timeout: float = 60_000) -> None:
    from playwright.sync_api import expect

    for name, text in numbers.items():
        expect(box.locator(f".lifecycle-playground-value[data-name='{name}']")).to_have_text(text, timeout=timeout)


def runs_tagged(settings, lesson: str):
    import mlflow

    from lifecycle.tracking.runs import EXPERIMENT, use_experiment

    use_experiment(settings)
    return mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=f"tags.playground = '{lesson}'")


def test_02_a_feature_group_toggle_shows_the_functions_numbers_and_reset_restores(page, windows):
    from lifecycle.course.playgrounds import evaluate_setting, fit_feature_scores
    from lifecycle.course.playgrounds.features import LABELS

    box = page.locator(".lifecycle-playground-features")
    defaults = shown(box)
    scores = fit_feature_scores(windows.train, windows.test, lab.SEED)
    expect_numbers(box, evaluate_setting(scores, scores.groups, 0.5, 20.0, 0.0), LABELS)
    box.locator(".lifecycle-playground-control-groups select").select_option(label="velocity")
    after = evaluate_setting(scores, ("velocity",), 0.5, 20.0, 0.0)
    expect_numbers(box, after, LABELS)
    assert shown(box) != defaults
    box.locator(".lifecycle-playground-reset").click()
    expect_shown(box, defaults)


def test_03_run_adds_a_run_that_mlflow_finds_and_reset_restores(page, settings):
    from playwright.sync_api import expect

    from lifecycle.course.playgrounds import format_value

    box = page.locator(".lifecycle-playground-tracking")
    box.locator(".lifecycle-playground-kind select").select_option(label="logreg")
    expect(box.locator(".lifecycle-playground-knob-C")).to_be_visible()
    box.locator(".lifecycle-playground-run").click()
    expect(box.locator(".lifecycle-playground-runs")).to_contain_text("logreg-C=1-", timeout=60_000)
    runs = runs_tagged(settings, "03")
    assert len(runs) == 1 and runs["params.kind"].iloc[0] == "logreg" and runs["tags.session"].iloc[0] == "browser-test"
    expect_shown(box, {"pr_auc": format_value(float(runs["metrics.pr_auc"].iloc[0])), "runs_in_session": "1"})
    box.locator(".lifecycle-playground-reset").click()
    expect(box.locator(".lifecycle-playground-knob-max-iter")).to_be_visible()


def test_06_a_failure_choice_shows_the_simulators_numbers_and_reset_restores(page):
    from lifecycle.canary.simulate import KINDS
    from lifecycle.course.playgrounds import evaluate_policy
    from lifecycle.course.playgrounds.canary import LABELS

    box = page.locator(".lifecycle-playground-canary")
    defaults = shown(box)
    box.locator(".lifecycle-playground-control-failure select").select_option(label=KINDS["errors_4x"][0])
    after = evaluate_policy("errors_4x", KINDS["errors_4x"][1], 0.05, "shadow → 5 → 25 → 50 → 100", lab.ROLLOUTS, 0)
    expect_numbers(box, after, LABELS)
    assert shown(box) != defaults
    box.locator(".lifecycle-playground-reset").click()
    expect_shown(box, defaults)


def test_07_a_new_drift_shows_the_monitors_numbers_is_logged_and_reset_restores(page, settings):
    from playwright.sync_api import expect

    from lifecycle.course.playgrounds import drift_worlds, evaluate_drift
    from lifecycle.course.playgrounds.monitoring import LABELS, SCENARIOS

    lab.one_thread()
    m = lab.monitored()
    state = drift_worlds(m.model, m.reference, m.january, m.start, m.weeks, m.drift_day, m.rows, lab.SEED)
    box = page.locator(".lifecycle-playground-monitoring")
    defaults = shown(box)
    expect_numbers(box, evaluate_drift(state, "concept_drift"), LABELS)
    box.locator(".lifecycle-playground-control-scenario select").select_option(label=SCENARIOS["data_drift"])
    after = evaluate_drift(state, "data_drift")  # a drift the kernel has not scored: it scores it once
    expect_numbers(box, after, LABELS)
    assert shown(box) != defaults
    box.locator(".lifecycle-playground-log").click()
    expect(box.locator(".lifecycle-playground-logged")).to_contain_text("playground = '07'", timeout=30_000)
    runs = runs_tagged(settings, "07")
    assert len(runs) == 1 and runs["params.scenario"].iloc[0] == "data_drift"
    box.locator(".lifecycle-playground-reset").click()
    expect_shown(box, defaults)
    box.screenshot(path=str(SHOTS / "playground-07.png"))
