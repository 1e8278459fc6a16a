"""The managed server process (lifecycle._proc): its group, its tie to its parent, its port, its readings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lifecycle._proc import ReservedPort, free_port, http_ready, launch
from lifecycle.errors import CommandError


def _tree(tmp_path: Path) -> list[str]:
    """A process tree like a server's: a leader that starts two workers, then waits (it serves nothing).
    Its command line names ``tmp_path``, so this test finds its own processes and no one else's."""
    return [sys.executable, "-c", textwrap.dedent(f"""
        # {tmp_path}
        import subprocess, sys, time
        workers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # {tmp_path}"])
                   for _ in range(2)]
        print("workers", *[w.pid for w in workers], flush=True)
        time.sleep(600)
    """)]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """Wait until none of ``pids`` runs (or ``timeout`` passed); returns those still running."""
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def _workers(log_file: Path, timeout: float = 20.0) -> list[int]:
    """The worker pids the tree's leader printed to its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in (log_file.read_text() if log_file.is_file() else "").splitlines():
            if line.startswith("workers "):
                return [int(pid) for pid in line.split()[1:]]
        time.sleep(0.02)
    raise AssertionError(f"the tree never started its workers; see {log_file}")


def test_a_reserved_port_is_never_handed_out_again_but_its_server_can_bind_it():
    reserved = [ReservedPort() for _ in range(20)]
    ports = {r.port for r in reserved}
    handed = set()
    for _ in range(3_000):  # what free_port and every server binding port 0 would get meanwhile
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            handed.add(other.getsockname()[1])
    assert not ports & handed
    with socket.socket() as server:  # a server binding it as uvicorn and tornado do
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", reserved[0].port))
        server.listen()
        with socket.create_connection(("127.0.0.1", reserved[0].port), timeout=5):
            pass
    for port in reserved:
        port.release()
    assert free_port() > 0


def test_stop_ends_the_whole_group_and_readings_cover_it(tmp_path):
    managed = launch(_tree(tmp_path), "process tree", tmp_path / "tree.log")
    workers = _workers(managed.log_file)
    assert managed.running and sorted(managed.members()) == sorted([managed.process.pid, *workers])
    assert managed.memory_bytes() > 3 * 5_000_000  # three Pythons, each several MB resident
    assert managed.cpu_seconds() > 0
    seconds = managed.stop(grace=5)
    assert not managed.running and managed.members() == [] and not _gone(workers, timeout=0)
    assert managed.cpu_seconds() is None and managed.memory_bytes() is None and seconds < 5


def test_kill_crashes_the_group_at_once(tmp_path):
    managed = launch(_tree(tmp_path), "process tree", tmp_path / "tree.log")
    workers = _workers(managed.log_file)
    managed.kill()
    assert managed.process.returncode == -signal.SIGKILL
    assert not _gone(workers, timeout=0)


@pytest.mark.parametrize("when", ["after its servers started", "at once, before its child could start"])
def test_a_parent_killed_with_sigkill_leaves_no_child_behind(tmp_path, when):
    parent = textwrap.dedent(f"""
        import json, os, signal, sys
        from pathlib import Path
        from lifecycle._proc import launch
        tree = launch({_tree(tmp_path)!r}, "process tree", Path({str(tmp_path / "tree.log")!r}))
        if {when.startswith("at once")!r}:
            os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no cleanup: as a crashed kernel
        print(json.dumps({{"leader": tree.process.pid}}), flush=True)
        sys.stdin.read()  # wait to be killed
    """)
    process = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    if when.startswith("at once"):
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL
        leader = None
    else:
        leader = json.loads(process.stdout.readline())["leader"]
        workers = _workers(tmp_path / "tree.log")
        assert all(_alive(pid) for pid in [leader, *workers])
        process.kill()
        process.wait()
        assert not _gone([leader, *workers]), "a server outlived the process that started it"
    # nothing at all is left of what the parent started: no process whose command line is the tree's
    deadline = time.monotonic() + 20
    while (left := _processes_naming(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"left behind: {left} (leader {leader})"
    process.stdout.close()
    process.stdin.close()


def test_a_forked_copy_that_asked_to_die_with_its_parent_does_when_the_parent_is_killed():
    """What lesson 07's dashboard writer does: the copy runs Python, no exec, and must not outlive the kernel."""
    parent = textwrap.dedent("""
        import os, time
        from lifecycle._proc import die_with_parent
        copy = os.fork()
        if copy == 0:
            die_with_parent()
            time.sleep(600)
            os._exit(0)
        print(copy, flush=True)
        time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    copy = int(process.stdout.readline())
    assert _gone([copy], timeout=0.5) == [copy], "the copy ended before its parent"
    process.kill()
    process.wait()
    process.stdout.close()
    assert not _gone([copy]), "the forked copy outlived its parent"


def _processes_naming(tmp_path: Path) -> list[int]:
    marker = str(tmp_path).encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes() and _alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_readiness_is_polled_and_a_dead_server_says_why(tmp_path):
    reserved = ReservedPort()
    server = launch([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(reserved.port)],
                    "http.server", tmp_path / "http.log", reserved=reserved, cwd=tmp_path)
    try:
        assert server.wait_until_ready(http_ready(f"http://127.0.0.1:{server.port}/"), timeout=60) > 0
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
    finally:
        server.stop()
    with pytest.raises(CommandError, match=r"exited with status 3 before it was ready; its log .* ends:\ngoodbye"):
        broken = launch([sys.executable, "-c", "print('goodbye'); raise SystemExit(3)"], "broken server",
                        tmp_path / "broken.log")
        broken.wait_until_ready(lambda: False, timeout=60)
    assert not broken.running and broken.members() == []


def test_a_missing_program_fails_with_its_log(tmp_path):
    missing = launch(["/nonexistent/server"], "missing server", tmp_path / "missing.log")
    with pytest.raises(CommandError, match="missing server exited with status 127"):
        missing.wait_until_ready(lambda: False, timeout=60)
    assert os.path.getsize(tmp_path / "missing.log") > 0


def _processes_with(variable: str) -> list[int]:
    """Live processes whose environment holds ``variable`` (``NAME=value``)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if variable.encode() in environ.read_bytes().split(b"\0") and _alive(int(environ.parent.name)):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_a_kernel_killed_with_sigkill_leaves_no_server_behind(tmp_path):
    """The issue's case: a lesson's kernel starts model servers, then dies with SIGKILL."""
    from jupyter_client.manager import start_new_kernel

    marker = f"LIFECYCLE_WORKSPACE={tmp_path / 'kernel-workspace'}"
    kernel, client = start_new_kernel(kernel_name="python3", env={**os.environ, marker.split("=")[0]:
                                                                  marker.split("=", 1)[1]})
    try:
        code = ("from lifecycle.serving.process import start_server\n"
                "servers = [start_server('constant', workers=workers) for workers in (1, 2)]\n"
                "print(' '.join(str(server.port) for server in servers))")
        reply = client.execute_interactive(code, timeout=180, output_hook=_collect(outputs := []))
        assert reply["content"]["status"] == "ok", outputs
        ports = [int(port) for port in "".join(outputs).split()]
        for port in ports:  # both answer: the servers run, one of them with two workers
            assert http_ready(f"http://127.0.0.1:{port}/ready")()
        assert len(_processes_with(marker)) >= 5  # the kernel, a server, a supervisor and its two workers
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)  # now: SIGKILL, not a request to the kernel; no atexit handler runs
    deadline = time.monotonic() + 30
    while (left := [pid for pid in _processes_with(marker) if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"still running after the kernel died: {left}"  # so none holds its port either


def _collect(outputs: list[str]):
    def hook(message: dict) -> None:
        if message["msg_type"] == "stream":
            outputs.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            outputs.append("\n".join(message["content"]["traceback"]))
    return hook
