"""Starting and stopping the backends' server processes: the one place that does it.

Each backend runs in a process group of its own (a new session), so that stopping it stops its
helpers too (``mlflow server``'s uvicorn worker, the Prefect worker's flow runs). Unlike the servers a
lesson starts, these must outlive the command that started them (``lifecycle services up`` returns
and they keep serving), so nothing here ties them to their parent: the state file records their
groups and ``lifecycle services down`` stops them.

When ``lifecycle._proc`` grows its managed-process helper, :func:`start_group` and :func:`stop_group`
are the two functions to point at it.

Taught (as what ``make services`` does) in README.md, "Point it at production backends".
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def start_group(argv: list[str], env: dict[str, str], log_file: Path, cwd: Path) -> int:
    """Start ``argv`` in a new process group, its output appended to ``log_file``.

    SIGINT is the group's default action even when this process ignores it (as a shell's background job
    does, ``make services &`` or ``nohup``): :func:`stop_group` stops the Prefect worker with SIGINT, and
    a Python child that inherits SIGINT ignored installs no KeyboardInterrupt handler.

    Returns:
        The process id, which is also the group's id.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    with open(log_file, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=cwd, env=env, start_new_session=True,
                                   preexec_fn=_default_sigint if ignored else None)
    return process.pid


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def group_members(group: int) -> list[int]:
    """The live processes of a process group (zombies, already dead, do not count).

    Without ``/proc`` (macOS), the leader's pid while anything of the group can be signalled.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [group]
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):  # the process ended while we looked
            continue
        if int(pgrp) == group and state != "Z":
            members.append(int(stat.parent.name))
    return sorted(members)


def stop_group(group: int, first: signal.Signals = signal.SIGTERM, grace: float = 10.0) -> float:
    """Stop a process group: ``first`` (SIGTERM, or SIGINT for a process that ignores SIGTERM), then
    SIGKILL for whatever still runs after ``grace`` seconds. Returns the seconds it took."""
    clock = time.monotonic()
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while group_members(group) and time.monotonic() < deadline:
            _reap(group)
            time.sleep(0.05)
        if not group_members(group):
            break
    _reap(group)
    return time.monotonic() - clock


def _reap(pid: int) -> None:
    """Collect the exit status of a child of this process (when ``up`` and ``down`` run in one)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its parent (or init) reaps it
