"""Evidently, behind the kit's own small interface: every use of Evidently's internals is in this module.

The kit asks Evidently three things: the drift statistics of a column (:func:`column_tests`), a
report of a window with its plots (:func:`run_report`, :func:`report_drift_table`), and a
workspace of snapshots for its monitoring UI (:mod:`lifecycle.monitoring.dashboard` calls
:func:`open_workspace`, :func:`add_snapshot`, :func:`panel`).

**Public API where there is one.** Reports, datasets, data definitions, metrics, presets, the
workspace and dashboard panels are Evidently 0.7's public API (``evidently``, ``evidently.metrics``,
``evidently.presets``, ``evidently.ui.workspace``, ``evidently.sdk.panels``, ``evidently.sdk.models``).

**Internals, and why.** (1) A weekly check runs two drift statistics per column and week, hundreds
of times per lesson; Evidently's only public route to them is a ``ValueDrift`` metric in a
``Report``, which also draws two plotly figures per column (about two thirds of a report's time).
:func:`column_tests` calls the same statistical tests directly from ``evidently.legacy.calculations.
stattests`` (``get_stattest`` picks Evidently's default test by column type and size, as the
metric does); tests/unit/test_monitoring.py checks that both give the same numbers. (2) A
snapshot's results are read from ``snapshot.dict()``, whose layout (metric ``config.type`` ending in
``:ValueDrift``, tests named ``Value Drift for column …`` with status ``FAIL``) is not a documented
format: :func:`report_drift_table` is the one place that reads it.

Checked against :data:`CHECKED_VERSIONS` (a test pins the installed version to them: when Evidently
moves, re-check this module and update the pin).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.errors import SchemaError

CHECKED_VERSIONS = {"evidently": "0.7.23"}
# The significance tests (p-values: drift when below a threshold) and the size measures (distances:
# drift when at or above one) the kit's policy uses, by column kind.
P_VALUE_TESTS = {"numerical": "ks", "categorical": "chisquare"}
DISTANCES = {"numerical": "wasserstein", "categorical": "jensenshannon"}


def column_tests(reference: pd.DataFrame, current: pd.DataFrame, categorical: Collection[str] = (),
                 method: str | None = None, threshold: float | None = None) -> pd.DataFrame:
    """One Evidently drift test per column of two frames, as a ``ValueDrift`` metric would run it.

    Args:
        reference: the reference window.
        current: the current window, same columns.
        categorical: the columns that hold categories (codes), tested as categories.
        method: an Evidently drift method for every column (``"ks"``, ``"chisquare"``,
            ``"wasserstein"``, ``"psi"``, …); None: Evidently chooses by column type and size.
        threshold: the drift threshold for that method; None: the method's default.

    Returns:
        One row per column, indexed by ``feature``: ``method`` (the test's name), ``drift_score``,
        ``threshold`` and ``drifted``.

    Raises:
        SchemaError: a column has no finite values in one of the windows.
    """
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    rows = {}
    for column in reference.columns:
        kind = ColumnType.Categorical if column in categorical else ColumnType.Numerical
        reference_column, current_column = _finite(reference, column, "reference"), _finite(current, column, "current")
        test = get_stattest(reference_column, current_column, kind, method)
        result = test(reference_column, current_column, kind, threshold)
        rows[column] = {"method": test.display_name, "drift_score": float(result.drift_score),
                        "threshold": float(result.actual_threshold), "drifted": bool(result.drifted)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "feature"
    return table


def significance_and_size(reference: pd.DataFrame, current: pd.DataFrame,
                          categorical: Collection[str] = ()) -> pd.DataFrame:
    """Both drift statistics the kit's policy reads, per column: a p-value and a distance.

    Returns:
        Indexed by ``feature``: ``p_value`` (K-S for numbers, chi-square for categories),
        ``distance`` (Evidently's normed Wasserstein distance, or Jensen-Shannon for categories) and
        ``distance_threshold`` (Evidently's default for it).
    """
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    rows = {}
    for column in reference.columns:
        kind_name = "categorical" if column in categorical else "numerical"
        kind = ColumnType.Categorical if column in categorical else ColumnType.Numerical
        reference_column, current_column = _finite(reference, column, "reference"), _finite(current, column, "current")
        significance = get_stattest(reference_column, current_column, kind, P_VALUE_TESTS[kind_name])
        size = get_stattest(reference_column, current_column, kind, DISTANCES[kind_name])
        distance = size(reference_column, current_column, kind, None)
        rows[column] = {"p_value": float(significance(reference_column, current_column, kind, None).drift_score),
                        "distance": float(distance.drift_score), "distance_threshold": float(distance.actual_threshold)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "feature"
    return table


def run_report(reference: pd.DataFrame, current: pd.DataFrame, categorical: Collection[str] = (),
               method: str | None = None, threshold: float | None = None, preset: bool = False,
               drift_share: float = 0.5, extra_metrics: Sequence[Any] = (), timestamp: datetime | None = None,
               tags: Sequence[str] = (), metadata: dict[str, str] | None = None):
    """An Evidently report of two frames: one ``ValueDrift`` per column, or the ``DataDriftPreset``.

    Args:
        reference, current: the windows (same columns).
        categorical: the columns declared as categorical in the data definition; the others numerical.
        method, threshold: as :func:`column_tests` (for every column).
        preset: run the ``DataDriftPreset`` (with ``drift_share`` for its dataset verdict), whose
            report adds the summary table but computes each column's drift three times.
        extra_metrics: more metrics, made by :func:`mean_value_metric`.
        timestamp, tags, metadata: the snapshot's (the workspace and its dashboard read them).

    Returns:
        The Evidently snapshot (``.dict()``, ``.save_html()``).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = list(current.columns)
    definition = DataDefinition(numerical_columns=[c for c in columns if c not in categorical],
                                categorical_columns=[c for c in columns if c in categorical])
    drift = [c for c in columns if not c.startswith("_")]  # "_"-columns carry extra metrics' values only
    metrics = ([DataDriftPreset(columns=drift, method=method, threshold=threshold, drift_share=drift_share)]
               if preset else [ValueDrift(column=column, method=method, threshold=threshold) for column in drift])
    current_data = Dataset.from_pandas(current, data_definition=definition)
    reference_data = Dataset.from_pandas(reference, data_definition=definition)
    return Report([*metrics, *extra_metrics], include_tests=True).run(
        current_data=current_data, reference_data=reference_data, timestamp=timestamp, tags=list(tags),
        metadata=dict(metadata or {}))


def mean_value_metric(column: str):
    """Evidently's ``MeanValue`` of a column (missing values left out): how a snapshot carries a number
    the kit computed, e.g. the estimated precision as the mean calibrated probability of the flags."""
    from evidently.metrics import MeanValue

    return MeanValue(column=column)


def report_drift_table(snapshot) -> pd.DataFrame:
    """Per-column drift from a snapshot of :func:`run_report`: ``method``, ``drift_score``, ``threshold``
    and ``drifted`` (Evidently's own test verdict), indexed by column."""
    result = snapshot.dict()
    rows = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            rows[config["column"]] = {"method": config["method"], "drift_score": float(metric["value"]),
                                      "threshold": float(config["threshold"])}
    for test in result["tests"]:
        column = test.get("metric_config", {}).get("params", {}).get("column")
        if column in rows and test["name"].startswith("Value Drift"):
            rows[column]["drifted"] = test["status"] == "FAIL"
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "feature"
    return table


def open_workspace(path: str | Path):
    """Evidently's local workspace in ``path`` (created if missing)."""
    from evidently.ui.workspace import Workspace

    Path(path).mkdir(parents=True, exist_ok=True)
    return Workspace.create(str(path))


def panel(kind: str, title: str, values: Sequence[tuple[str, dict[str, str], str, Sequence[str]]],
          description: str = "", size: str = "full"):
    """A dashboard panel: ``kind`` ``"line"``, ``"bar"`` or ``"counter"``; ``values`` are
    ``(metric, labels, legend, tags)`` (e.g. ``("ValueDrift", {"column": "amount"}, "amount", ["data_drift"])``)."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel

    metrics = [PanelMetric(metric=metric, metric_labels=dict(labels), legend=legend, tags=list(tags))
               for metric, labels, legend, tags in values]
    make = {"line": line_plot_panel, "bar": bar_plot_panel, "counter": counter_panel}[kind]
    return make(title=title, values=metrics, description=description or None, size=size)


def add_snapshot(workspace, project, snapshot) -> None:
    """Store a snapshot (without its data) in a project of the workspace."""
    workspace.add_run(project.id, snapshot, include_data=False)


def ui_command(workspace: str | Path, host: str, port: int) -> list[str]:
    """The command line that serves Evidently's UI over a workspace."""
    import shutil
    import sys

    found = shutil.which("evidently") or str(Path(sys.executable).parent / "evidently")
    return [found, "ui", "--workspace", str(workspace), "--host", host, "--port", str(port)]


def installed_version() -> str:
    """The installed Evidently's version (from its package metadata: no import)."""
    from importlib.metadata import version

    return version("evidently")


def _finite(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    # as Evidently's own drift calculation: infinities and missing values are left out
    values = frame[column].replace([-np.inf, np.inf], np.nan).dropna()
    if values.empty:
        raise SchemaError(f"column {column!r} has no finite values in the {name} window; drift needs some")
    return values
