"""The dashboard's background writer: a forked copy writes the snapshots; the parent gets the count or the error."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from lifecycle.errors import CommandError
from lifecycle.monitoring import CATEGORICAL_FEATURES, MONITORED_FEATURES, MonitoringDashboard

pytestmark = pytest.mark.timeout(180)


def _weeks(rows, count: int) -> list[tuple]:
    return [(rows(300, 0.3 * week, week + 1), datetime(2026, 2, 8) + timedelta(days=7 * week),
             {"drift_share": week / 9, "estimated_precision": 0.8, "realised_precision": float("nan"),
              "reference_precision": 0.82}, ["none"]) for week in range(count)]


def test_the_background_writer_stores_every_week_and_the_parent_sees_the_projects(tmp_path, monitored_rows):
    dashboard = MonitoringDashboard(tmp_path / "monitoring", MONITORED_FEATURES, CATEGORICAL_FEATURES)
    dashboard.reset(["a", "b"])
    writing = dashboard.add_weeks_in_background({"a": (monitored_rows(500, 0, 0), _weeks(monitored_rows, 2)),
                                                 "b": (monitored_rows(500, 0, 9), _weeks(monitored_rows, 1))})
    assert writing.result(timeout=150) == 3
    assert sorted(dashboard.project_names()) == ["a", "b"]
    workspace = dashboard.workspace
    snapshots = {name: len(workspace.list_runs(workspace.search_project(name)[0].id)) for name in "ab"}
    assert snapshots == {"a": 2, "b": 1}


def test_a_failure_in_the_writer_reaches_the_parent_with_its_traceback(tmp_path, monitored_rows):
    dashboard = MonitoringDashboard(tmp_path / "monitoring", MONITORED_FEATURES, CATEGORICAL_FEATURES)
    broken = monitored_rows(500, 0, 0).drop(columns=[MONITORED_FEATURES[0]])
    writing = dashboard.add_weeks_in_background({"a": (broken, _weeks(monitored_rows, 1))})
    with pytest.raises(CommandError, match=f"(?s)snapshots failed.*KeyError.*{MONITORED_FEATURES[0]}"):
        writing.result(timeout=150)
