"""A team's view: Evidently's monitoring UI, started by the kit over a workspace of weekly checks, in a real
headless Chromium, shows the project and the panels the kit defines in code.

Needs Debian's `chromium` (`apt-get install chromium`); without it the test skips and says so, except under
CI=true, where `.ci/run` installs it and it must run.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.monitoring import CATEGORICAL_FEATURES, MONITORED_FEATURES, MonitoringDashboard, start_ui

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "fraud · concept drift"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory, monitored_rows):
    """Three weekly snapshots in a fresh workspace, and Evidently's UI over it (stopped with its group)."""
    workspace = tmp_path_factory.mktemp("monitoring")
    dashboard = MonitoringDashboard(workspace, MONITORED_FEATURES, CATEGORICAL_FEATURES)
    reference = monitored_rows(2_000, 0.0, 0)
    weeks = [(monitored_rows(1_000, 0.2 * week, week + 1), datetime(2026, 2, 8) + timedelta(days=7 * week),
              {"drift_share": week / 9, "estimated_precision": 0.85, "realised_precision": 0.85 - 0.1 * week,
               "reference_precision": 0.86}, ["none"]) for week in range(3)]
    assert dashboard.add_weeks(PROJECT, reference, weeks) == 3
    with start_ui(workspace) as ui:
        projects = json.load(urllib.request.urlopen(f"{ui.url}/api/projects", timeout=10))
        yield ui.url, projects


def test_the_ui_lists_the_project_with_its_snapshots(dashboard_url):
    url, projects = dashboard_url
    assert [p["name"] for p in projects] == [PROJECT]
    snapshots = json.load(urllib.request.urlopen(f"{url}/api/projects/{projects[0]['id']}/snapshots", timeout=10))
    assert sorted(s["timestamp"][:10] for s in snapshots) == ["2026-02-08", "2026-02-15", "2026-02-22"]


def test_the_dashboard_opens_in_chromium_with_the_kits_panels(dashboard_url, chromium, chromium_args):
    from playwright.sync_api import expect, sync_playwright

    url, projects = dashboard_url
    titles = [panel.title for panel in MonitoringDashboard(ROOT, MONITORED_FEATURES).panels()]
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=chromium_args)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        try:
            page.goto(url)
            page.get_by_text(PROJECT, exact=True).first.click(timeout=60_000)
            for title in titles:
                expect(page.get_by_text(title, exact=True).first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("amount", exact=True).first).to_be_visible(timeout=30_000)  # a legend
            page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(shots / "dashboard-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert (shots / "dashboard.png").stat().st_size > 0
