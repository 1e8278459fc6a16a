"""What the JupyterLab browser tests share: Debian's Chromium for Playwright, and JupyterLab itself on a
folder of notebooks (settings that turn off news and autosave; a managed process of ``lifecycle._proc``,
stopped with its kernels).

Needs Debian's `chromium` (`apt-get install chromium`); Playwright drives it through `executable_path`
(Playwright's own browser download does not work offline). Without Chromium a test skips and says so,
except under CI=true, where `.ci/run` installs it and it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's Chromium (skips, or fails under CI=true, when it is not installed)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "no Chromium: install Debian's package with 'apt-get install chromium' to run the browser test"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: .ci/run must install it)")
    pytest.skip(message)


@contextmanager
def running_jupyterlab(folder: Path, scratch: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """JupyterLab serving ``folder`` (its settings and log in ``scratch``), a managed process stopped with its
    kernels; yields its base URL."""
    from lifecycle._proc import ReservedPort, http_ready, launch

    settings = scratch / "lab-settings"
    for plugin, values in {"apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                                  "checkForUpdates": False},
                           "docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
                           # every cell in the page, not only those scrolled into view: a test finds any widget
                           "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}}.items():
        path = settings / "@jupyterlab" / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    environment = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
                   "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "lab-workspaces"),
                   "JUPYTER_CONFIG_DIR": str(scratch / "jupyter-config"), **(env or {})}
    reserved = ReservedPort()
    server = launch(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={reserved.port}",
         "--ip=127.0.0.1", f"--ServerApp.root_dir={folder}", "--IdentityProvider.token=", "--ServerApp.password=",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None", "--allow-root"],
        "JupyterLab", scratch / "jupyterlab.log", env=environment, cwd=folder, reserved=reserved)
    url = f"http://127.0.0.1:{server.port}"
    with server:  # stopped with its kernels: JupyterLab shuts them down, and they watch it
        server.wait_until_ready(http_ready(f"{url}/api/status"), timeout=60, interval=0.3)
        yield url


def open_and_run_all(page, url: str) -> None:
    """Open a notebook in JupyterLab and run all its cells once the kernel is attached."""
    from playwright.sync_api import expect

    page.goto(url)
    # The toolbar says idle before the kernel is attached; the status bar is the reliable signal.
    expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle")).to_be_visible(timeout=90_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


@pytest.fixture(scope="session")
def chromium_args() -> list[str]:
    """Chromium's flags for a headless, offline, sandbox-free run."""
    return list(CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def start_jupyterlab():
    """``start_jupyterlab(folder, scratch, env)``: a context manager, JupyterLab on ``folder``; yields its URL."""
    return running_jupyterlab


@pytest.fixture(scope="session")
def run_all_cells():
    """``run_all_cells(page, url)``: open a notebook in JupyterLab and run all its cells."""
    return open_and_run_all
