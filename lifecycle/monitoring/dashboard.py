"""The monitoring dashboard: every weekly check as a snapshot in an Evidently workspace, and Evidently's UI over it.

A workspace (a folder, ``workspace/monitoring`` in the course) holds one project per monitored
stream; each weekly check adds a snapshot with the week's timestamp: Evidently's drift score of
every monitored feature and of the model's score (``ValueDrift``, on the rows the check tested),
and the check's own numbers (drift share by the policy, estimated and realised precision, the
reference's precision) as ``MeanValue`` s of columns that carry them. A project's dashboard is
empty until panels say what to draw: :data:`PANELS` defines them in code, so every project gets
the same view (drift share, per-feature drift, estimated vs realised precision, prediction drift).

``lifecycle monitor ui`` (or ``make monitor-ui``) serves Evidently's UI over the workspace on
127.0.0.1 with its usage telemetry off (``DO_NOT_TRACK=1``: Evidently's UI otherwise sends usage
events from its API calls); :func:`start_ui` does the same for a test or a notebook, and stops it.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from lifecycle._proc import die_with_parent
from lifecycle.errors import CommandError
from lifecycle.monitoring import _evidently

SCORE_COLUMN = "score"
# The check's own numbers, carried into a snapshot as columns (the "_" keeps them out of the drift tests).
CHECK_VALUES = {"drift_share": "_drift_share", "estimated_precision": "_estimated_precision",
                "realised_precision": "_realised_precision", "reference_precision": "_reference_precision"}


@dataclass
class UIHandle:
    """A running Evidently UI (see :func:`start_ui`); ``stop()`` ends its whole process group."""

    url: str
    process: subprocess.Popen
    log_file: Path

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the UI's process group, then SIGKILL for whatever is left."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> UIHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class MonitoringDashboard:
    """Projects and weekly snapshots in an Evidently workspace.

    Example:
        >>> dashboard = MonitoringDashboard(settings.workspace / "monitoring")
        >>> dashboard.reset(["fraud · concept drift"])
        >>> dashboard.add_week("fraud · concept drift", reference_rows, week_rows, week_end, check)

    Args:
        path: the workspace folder (created on first use).
        features: the monitored features (one per-feature drift line each).
        categorical: which of them are categories.
    """

    def __init__(self, path: str | Path, features: Sequence[str], categorical: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.features = list(features)
        self.categorical = [c for c in categorical if c in self.features]
        self._workspace = None
        self._projects: dict[str, Any] = {}

    @property
    def workspace(self):
        """Evidently's workspace object (opened on first use)."""
        if self._workspace is None:
            self._workspace = _evidently.open_workspace(self.path)
        return self._workspace

    def reset(self, names: Sequence[str]) -> None:
        """Delete these projects, if present, so that a re-run does not add its weeks twice."""
        for name in names:
            for project in self.workspace.search_project(name):
                self.workspace.delete_project(project.id)
            self._projects.pop(name, None)

    def project(self, name: str, description: str = ""):
        """The project called ``name``; created with the dashboard's panels when new."""
        if name not in self._projects:
            found = self.workspace.search_project(name)
            project = found[0] if found else self.workspace.create_project(name, description=description)
            if not found:
                for panel in self.panels():
                    project.dashboard.add_panel(panel)
            self._projects[name] = project
        return self._projects[name]

    def panels(self) -> list:
        """The dashboard's panels, in order (what a project page shows)."""
        values = lambda key, legend: (("MeanValue", {"column": CHECK_VALUES[key]}, legend, ()),)  # noqa: E731
        return [
            _evidently.panel("counter", "Drift share, last check", values("drift_share", "drift share"),
                             "share of monitored features that drifted (policy: significant and >= 0.1)", "half"),
            _evidently.panel("counter", "Estimated precision, last check", values("estimated_precision", "CBPE"),
                             "from the scores alone (CBPE)", "half"),
            _evidently.panel("line", "Drift share", values("drift_share", "drift share"),
                             "share of monitored features that drifted, by the policy's tests"),
            _evidently.panel("line", "Per-feature drift", [("ValueDrift", {"column": c}, c, ()) for c in self.features],
                             "Evidently's drift score of each feature (a distance: drift from 0.1)"),
            _evidently.panel("line", "Estimated vs realised precision",
                             values("estimated_precision", "estimated (CBPE)")
                             + values("realised_precision", "realised (labels so far)")
                             + values("reference_precision", "reference"),
                             "CBPE needs no labels; realised precision counts the flags whose labels have arrived"),
            _evidently.panel("line", "Prediction drift", [("ValueDrift", {"column": SCORE_COLUMN}, "score", ())],
                             "Evidently's drift score of the model's score"),
        ]

    def add_week(self, project_name: str, reference: pd.DataFrame, current: pd.DataFrame, timestamp: datetime,
                 check: dict[str, float], tags: Sequence[str] = ()) -> None:
        """Store one weekly check as a snapshot.

        Args:
            project_name: the stream's project (created with the panels when new).
            reference: the reference rows the check compared with (features and ``score``).
            current: the week's rows the check tested (features and ``score``).
            timestamp: the check's moment (the week's end): the dashboard's time axis.
            check: the check's ``drift_share``, ``estimated_precision``, ``realised_precision`` (NaN
                when no labels yet) and ``reference_precision``.
            tags: the snapshot's tags (e.g. the decision).
        """
        columns = [*self.features, SCORE_COLUMN]
        week = current[columns].reset_index(drop=True).astype(float)
        base = reference[columns].reset_index(drop=True).astype(float)
        known = {column: float(check[key]) for key, column in CHECK_VALUES.items()
                 if key in check and pd.notna(check[key])}  # no labels yet: no point that week
        for column, value in known.items():
            week[column], base[column] = value, value
        snapshot = _evidently.run_report(base, week, self.categorical,
                                         extra_metrics=[_evidently.mean_value_metric(c) for c in known],
                                         timestamp=timestamp, tags=tags)
        _evidently.add_snapshot(self.workspace, self.project(project_name), snapshot)

    def add_weeks(self, project_name: str, reference: pd.DataFrame,
                  weeks: Sequence[tuple[pd.DataFrame, datetime, dict[str, float], Sequence[str]]]) -> int:
        """:meth:`add_week` for each ``(current, timestamp, check, tags)``; returns how many were stored."""
        for current, timestamp, check, tags in weeks:
            self.add_week(project_name, reference, current, timestamp, check, tags)
        return len(weeks)

    def add_weeks_in_background(self, streams: dict[str, tuple[pd.DataFrame, Sequence[tuple]]]) -> Future:
        """Store several projects' weeks from a forked process at low priority; the caller goes on meanwhile.

        Rendering a snapshot is mostly Python (Evidently's plots). In a thread of the caller's process
        it holds the GIL that the caller's own Python needs (measured in lesson 07: a retrain's fit took
        1.3 s alone, 6.1 s beside such a thread, 1.5 s beside this process). The copy runs at ``nice``
        10, so servers on the same cores keep their latency, and it dies with its parent (or with the
        thread that called this, if that ends first: the future then says the writer was killed). Only the copy
        touches the workspace until the returned future is done; ``future.result()`` gives the snapshots
        stored, or raises :class:`~lifecycle.errors.CommandError` with the copy's traceback.

        Args:
            streams: project name → ``(reference, weeks)`` as :meth:`add_weeks` takes them.
        """
        future: Future = Future()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy: write the snapshots, report, and leave without the parent's exit handlers
            message, status = "", 1
            try:
                os.close(read_end)
                die_with_parent()
                os.nice(10)
                # A kernel's streams go through its threads, which the copy does not have: it says nothing.
                sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the copy's whole life
                stored = sum(self.add_weeks(name, reference, weeks) for name, (reference, weeks) in streams.items())
                message, status = f"ok {stored}", 0
            except BaseException:  # noqa: BLE001 - everything goes back to the parent
                message = traceback.format_exc()
            finally:
                with contextlib.suppress(BaseException):
                    os.write(write_end, message.encode())
                os._exit(status)
        os.close(write_end)

        def collect() -> None:
            with os.fdopen(read_end, "rb") as pipe:
                message = pipe.read().decode(errors="replace")
            os.waitpid(pid, 0)
            self._workspace, self._projects = None, {}  # the copy changed the workspace: reopen it when next used
            if message.startswith("ok "):
                future.set_result(int(message[3:]))
            else:
                reason = message or "the writer was killed"
                future.set_exception(CommandError(f"writing the dashboard's snapshots failed:\n{reason}"))

        threading.Thread(target=collect, name="dashboard", daemon=True).start()
        return future

    def project_names(self) -> list[str]:
        """Names of the workspace's projects, sorted (the workspace lists them in no fixed order)."""
        return sorted(project.name for project in self.workspace.list_projects())


def start_ui(workspace: str | Path, port: int | None = None, host: str = "127.0.0.1", timeout: float = 60.0,
             log_file: str | Path | None = None) -> UIHandle:
    """Start Evidently's UI over a workspace, in its own process group, with telemetry off; wait until it answers.

    Returns:
        The :class:`UIHandle` (``url``, ``stop()``).

    Raises:
        CommandError: the UI exited or did not answer within ``timeout`` seconds (its log's tail is in the message).
    """
    from lifecycle._proc import check_loopback, free_port

    check_loopback(host)
    port = port or free_port()
    log_path = Path(log_file) if log_file else Path(workspace) / "ui.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    with log_path.open("w") as log:
        process = subprocess.Popen(_evidently.ui_command(workspace, host, port), stdout=log, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    handle = UIHandle(f"http://{host}:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{handle.url}/api/version", timeout=2):
                return handle
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                handle.stop()
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                raise CommandError(f"Evidently's UI did not start on {handle.url}; its log ends:\n{tail}") from None
            time.sleep(0.3)


def ui_command(args: Any) -> int:
    """``lifecycle monitor ui``: serve Evidently's UI over the monitoring workspace until Ctrl-C."""
    from lifecycle.config import load_settings

    workspace = Path(args.workspace) if args.workspace else load_settings().workspace / "monitoring"
    if not workspace.is_dir():
        raise CommandError(f"no monitoring workspace at {workspace}; run lesson 07 (lifecycle run --only 07) first, "
                           "or pass --workspace")
    handle = start_ui(workspace, args.port, args.host)
    print(f"Evidently UI on {handle.url} over {workspace} (telemetry off); Ctrl-C stops it", flush=True)
    try:
        handle.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0
