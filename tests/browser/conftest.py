"""What the JupyterLab browser tests share: Debian's Chromium for Playwright, and JupyterLab itself on a
folder of notebooks (settings that turn off news and autosave, its own process group, stopped with its
kernels).

Needs Debian's `chromium` (`apt-get install chromium`); Playwright drives it through `executable_path`
(Playwright's own browser download does not work offline). Without Chromium a test skips and says so,
except under CI=true, where `.ci/run` installs it and it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen) -> None:
    """Stop a server and everything it started (its kernels), politely then firmly."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running_jupyterlab(folder: Path, scratch: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """JupyterLab serving ``folder`` (its settings and logs in ``scratch``); yields its base URL."""
    settings = scratch / "lab-settings"
    for plugin, values in {"apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                                  "checkForUpdates": False},
                           "docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
                           # every cell in the page, not only those scrolled into view: a test finds any widget
                           "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}}.items():
        path = settings / "@jupyterlab" / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = free_port()
    environment = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
                   "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "lab-workspaces"),
                   "JUPYTER_CONFIG_DIR": str(scratch / "jupyter-config"), **(env or {})}
    log_path = scratch / "jupyterlab.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={folder}", "--IdentityProvider.token=", "--ServerApp.password=",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None", "--allow-root"],
        cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.3)  # polling a server that is starting, not waiting for a result
        yield url
    finally:
        stop_group(server)
        log.close()


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
