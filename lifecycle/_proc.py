"""One managed server process, for every server the kit starts (REST, gRPC, the tutorial's, MLflow,
Prefect, JupyterLab in the browser test), and loopback-only targets.

:func:`launch` starts a command as a :class:`ManagedProcess`:

* in a process group of its own (a new session), so :meth:`~ManagedProcess.stop` and
  :meth:`~ManagedProcess.kill` reach its workers and helpers too;
* tied to the process that started it: a watchdog in the group (a ``/bin/sh`` loop, no Python)
  reads a pipe whose only writer is the parent. However the parent ends (exit, crash, SIGKILL), the
  kernel closes that pipe, the read returns, and the watchdog SIGKILLs the whole group. The pipe
  also covers the race of a parent dying before its child has started: the child then finds the
  pipe already closed. (Linux's parent-death signal would reach only the direct child, not its
  workers, and fires when the *thread* that started it ends.);
* on a port that cannot race: :class:`ReservedPort` binds port 0 and keeps that socket bound, not
  listening, until the server answers. No other ``bind`` to port 0 gets that port meanwhile, while
  the server, binding it with ``SO_REUSEADDR`` or ``SO_REUSEPORT`` (uvicorn, tornado and grpc all
  do), can. A server in this process gets the bound socket itself (:meth:`ReservedPort.socket`);
* with health polling (:meth:`~ManagedProcess.wait_until_ready`) and CPU and memory (RSS) readings of
  the whole group, read from ``/proc`` (Linux), the watchdog left out.

Taught in notebooks/05_serving.ipynb (servers as processes; what a crash leaves behind).
One module over 300 lines on purpose: a process's group, its watchdog, its port and its /proc readings
are one lifecycle (start, ready, stop, kill, clean-up), and every server the kit starts shares it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.errors import CommandError, ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
PROC = Path("/proc")
# The watchdog: fd 3 is the lifeline (its only writer is the parent); the server is exec'd in the
# shell's place, so the shell's pid is the server's pid and the group's id. The loop ignores SIGTERM,
# so a graceful stop of the group leaves it watching until the parent closes the lifeline.
WATCHDOG = ('exec 3<&0 </dev/null; trap "" TERM INT HUP; '
            '{ while read -r _ <&3; do :; done; kill -KILL 0; } & '
            'trap - TERM INT HUP; exec 3<&- "$@"')
_WATCHDOG_CMDLINE = f"/bin/sh\0-c\0{WATCHDOG}\0".encode()


def check_loopback(host: str) -> None:
    """Refuse any target that is not this machine (load tests never leave 127.0.0.1).

    Raises:
        ConfigError: ``host`` is not a loopback address.
    """
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ConfigError(f"load tests only target this machine; got host {host!r}, use 127.0.0.1")


class ReservedPort:
    """A TCP port on ``host`` held for a server that has not bound it yet.

    The socket is bound (port 0: the kernel picks a free port) with ``SO_REUSEADDR`` and
    ``SO_REUSEPORT`` but never listens, so the server can bind the same port while no one else's
    ``bind(port 0)`` is given it. Release it once the server listens (:func:`launch` does).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket: socket.socket | None = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._socket.bind((host.strip("[]"), 0))
        self.host, self.port = host, self._socket.getsockname()[1]

    def socket(self) -> socket.socket:
        """Hand the bound socket over (to a server in this process, e.g. uvicorn's ``sockets=``)."""
        if self._socket is None:
            raise ConfigError(f"port {self.port} was released already; reserve another")
        handed, self._socket = self._socket, None
        if hasattr(socket, "SO_REUSEPORT"):  # it is the server's now: no one else may join its port
            handed.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
        return handed

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now. Racy (another process may bind it
    before the caller does): servers use :class:`ReservedPort`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness probe: ``GET url`` answers 200."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    return probe


@dataclass(eq=False)
class ManagedProcess:
    """A server process group started by :func:`launch`; ``stop()`` or ``kill()`` it when done.

    Attributes:
        name: what it is, for messages (``"mlflow server"``).
        process: the group's leader (the server itself; its pid is the group's id). Lessons and
            tests call :meth:`stop` and :meth:`kill`, never a pid.
        log_file: its output.
        host, port: where it listens (``port`` None: not known to the kit).
        started: ``time.monotonic()`` at the start.
        ready_after: seconds from the start to its first healthy answer, once seen.
    """

    name: str
    process: subprocess.Popen
    log_file: Path
    host: str = "127.0.0.1"
    port: int | None = None
    argv: Sequence[str] = ()
    started: float = field(default_factory=time.monotonic)
    ready_after: float | None = None
    leader_lingers: bool = False  # stop: a leader left alone only tears down (mlflow's CLI); kill it then
    _lifeline: int | None = field(default=None, repr=False)
    _reserved: ReservedPort | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Whether the server (the group's leader) still runs."""
        return self.process.poll() is None

    def members(self) -> list[int]:
        """The pids of the group's live processes, the watchdog left out (zombies do not count).
        Without ``/proc``: the leader's pid while it runs."""
        return [pid for pid, watchdog in _group(self.process.pid) if not watchdog]

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the group's processes (all workers, and children they reaped), from
        ``/proc``; None elsewhere or once nothing of it runs.

        Unlike requests/s, it does not change when other programs compete for the cores, so it is the
        steadier measure of what one request costs the server.
        """
        stats = [_stat(pid) for pid in self.members()] if PROC.is_dir() else []
        stats = [fields for fields in stats if fields]
        ticks = os.sysconf("SC_CLK_TCK") if stats else 1
        return sum(sum(int(v) for v in fields[11:15]) for fields in stats) / ticks if stats else None

    def memory_bytes(self) -> int | None:
        """Resident memory (RSS) of the group's processes now, in bytes; None without ``/proc`` or once
        nothing of it runs (pages shared between workers count once per worker)."""
        stats = [_stat(pid) for pid in self.members()] if PROC.is_dir() else []
        pages = [int(fields[21]) for fields in stats if fields]
        return sum(pages) * os.sysconf("SC_PAGE_SIZE") if pages else None

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_ready(self, probe: Callable[[], bool], timeout: float = 120.0, interval: float = 0.2) -> float:
        """Poll ``probe`` until it answers true; returns the seconds since the start.

        Raises:
            CommandError: the server exited, or was not ready within ``timeout`` (it is then stopped);
                the message holds the end of its log.
        """
        deadline = time.monotonic() + timeout
        while self.ready_after is None:
            if not self.running:
                self.stop()
                raise CommandError(f"{self.name} exited with status {self.process.returncode} before it was "
                                   f"ready; its log ({self.log_file}) ends:\n{self.log_tail()}",
                                   list(self.argv), self.process.returncode, self.log_tail())
            if probe():
                self.ready_after = time.monotonic() - self.started
                break
            if time.monotonic() > deadline:
                self.stop()
                raise CommandError(f"{self.name} on port {self.port} was not ready within {timeout:.0f} s; its "
                                   f"log ({self.log_file}) ends:\n{self.log_tail()}", list(self.argv), None,
                                   self.log_tail())
            time.sleep(interval)
        self._release_port()  # it listens: the reservation has done its job
        return self.ready_after

    def kill(self) -> None:
        """Crash the server on purpose: SIGKILL to its whole group, no shutdown, nothing flushed.

        What a lesson uses to show what a crash does (the canary's fallback, the prediction log's promise).
        """
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._finish()

    def stop(self, grace: float = 10.0) -> float:
        """End the whole group: SIGTERM, up to ``grace`` seconds for the server to exit, then SIGKILL
        for whatever is left. Returns the seconds it took."""
        clock = time.monotonic()
        if self.running:
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.running and time.monotonic() < deadline:
                if self.leader_lingers and self.members() == [self.process.pid] and PROC.is_dir():
                    break  # only the leader is left, tearing its Python down: nothing left to save
                time.sleep(0.05)
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._finish()
        return time.monotonic() - clock

    def _at_exit(self) -> None:
        """What Python's exit does with it (registered by :func:`launch`)."""
        self.stop()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)  # a session leader: its pid is the group's id
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already

    def _finish(self) -> None:
        """The leader has exited: close the lifeline (the watchdog SIGKILLs what remains of the group) and
        wait until nothing of the group runs."""
        atexit.unregister(self._at_exit)
        self._release_port()
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        deadline = time.monotonic() + 10
        while _group(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _release_port(self) -> None:
        if self._reserved is not None:
            self._reserved.release()
            self._reserved = None

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def die_with_parent() -> None:
    """For a forked copy of this process (no exec): SIGKILL when the parent ends, however it ends.

    Linux's parent-death signal, which fires when the *thread* that forked ends; right for a copy that
    works briefly for the thread that made it. A server and its workers get the watchdog instead.
    """
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(1)


def launch(argv: Sequence[str], name: str, log_file: Path, *, env: dict[str, str] | None = None,
           cwd: Path | str | None = None, host: str = "127.0.0.1", reserved: ReservedPort | None = None,
           port: int | None = None, append_log: bool = False, cls: type[ManagedProcess] = ManagedProcess,
           **fields: Any) -> ManagedProcess:
    """Start ``argv`` as a managed server: its own group, tied to this process, output to ``log_file``.

    Args:
        argv: the command; it binds ``host`` and the reserved (or given) port.
        name: what it is, for messages.
        log_file: where its stdout and stderr go.
        env: its whole environment (default: this process's).
        cwd: its working folder.
        host: the address it binds.
        reserved: the :class:`ReservedPort` it binds; released once it is ready, or when it stops.
        port: the port, when not reserved (a fixed port the caller chose).
        append_log: append to ``log_file`` rather than start it afresh.
        cls: the :class:`ManagedProcess` subclass to return.
        **fields: more fields of ``cls``.

    Returns:
        The running process (also stopped when this Python process exits).

    Raises:
        CommandError: the command cannot be started (e.g. it is not installed).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    read_end, lifeline = os.pipe()  # not inheritable: only the child below gets the read end, as stdin
    try:
        with open(log_file, "ab" if append_log else "wb") as log:
            process = subprocess.Popen(["/bin/sh", "-c", WATCHDOG, name, *argv], stdin=read_end, stdout=log,
                                       stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    except OSError as err:
        os.close(lifeline)
        raise CommandError(f"cannot start {name}: {err}; run 'make setup'", list(argv)) from err
    finally:
        os.close(read_end)
    managed = cls(name=name, process=process, log_file=log_file, host=host,
                   port=reserved.port if reserved is not None else port, argv=tuple(argv), **fields)
    managed._lifeline, managed._reserved = lifeline, reserved
    atexit.register(managed._at_exit)  # a graceful exit stops it; any other end of this process, the watchdog
    return managed


def _group(group: int) -> list[tuple[int, bool]]:
    """The live processes of a process group: ``(pid, is_the_watchdog)``; zombies do not count."""
    if not PROC.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [(group, False)]
    found = []
    for stat in PROC.glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields and int(fields[2]) == group and fields[0] != "Z":
            found.append((int(stat.parent.name), _is_watchdog(stat.parent)))
    return sorted(found)


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: state, ppid, pgrp, … (None if it just ended)."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _is_watchdog(folder: Path) -> bool:
    try:
        return (folder / "cmdline").read_bytes().startswith(_WATCHDOG_CMDLINE)
    except OSError:
        return False
