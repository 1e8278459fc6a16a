"""The team's backends on this machine: environment file, process groups, clear errors, a real S3 store.

The slow tests start moto's real S3 server (under a second) with signature checks on, and push with DVC
to it: right keys, wrong keys, no keys, and the store gone. The whole stack (MLflow, Prefect, worker) is
started once, by tests/notebooks/test_backends.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifecycle._proc import free_port
from lifecycle.cli import build_parser
from lifecycle.config import load_settings
from lifecycle.course.runner import _backend_environment
from lifecycle.errors import CommandError, ConfigError
from lifecycle.services import (
    artifact_bucket_url,
    backends,
    check_backends,
    check_bucket,
    read_services_env,
    split_s3_url,
)
from lifecycle.services.processes import group_members, start_group, stop_group
from lifecycle.services.stack import ENV_FILE
from lifecycle.versioning import init_sandbox, push_data, remote_endpoint, version_data, version_frame

ROOT = Path(__file__).resolve().parents[2]


def test_services_env_is_read_as_a_shell_would_export_it(tmp_path):
    settings = load_settings(workspace=tmp_path)
    (tmp_path / ENV_FILE).write_text("# comment\nexport MLFLOW_TRACKING_URI=http://127.0.0.1:5000\n"
                                     "export AWS_SECRET_ACCESS_KEY='a b$c'\nPREFECT_API_URL=http://h/api\n")
    assert read_services_env(settings) == {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
                                           "AWS_SECRET_ACCESS_KEY": "a b$c", "PREFECT_API_URL": "http://h/api"}
    done = subprocess.run(["bash", "-c", f"source {tmp_path / ENV_FILE} && echo \"$AWS_SECRET_ACCESS_KEY\""],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "a b$c"


def test_no_services_env_says_how_to_start_them(tmp_path):
    with pytest.raises(ConfigError, match="lifecycle services up"):
        read_services_env(load_settings(workspace=tmp_path))
    with pytest.raises(ConfigError, match="lifecycle services up"):
        _backend_environment("services", load_settings(workspace=tmp_path))
    with pytest.raises(ConfigError, match="embedded, services"):
        _backend_environment("cloud", load_settings(workspace=tmp_path))
    assert _backend_environment("embedded", load_settings(workspace=tmp_path)) == {}


def test_backends_not_running_are_named_with_the_fix():
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=rf"MLflow tracking server at {nobody} is not answering.*services up"):
        check_backends({"MLFLOW_TRACKING_URI": nobody})
    with pytest.raises(CommandError, match=rf"Prefect server at {nobody}/api is not answering.*services up"):
        check_backends({"PREFECT_API_URL": f"{nobody}/api"})


def test_an_object_store_that_is_down_is_named_with_the_fix(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=rf"object store at {nobody} is not answering.*s3://lifecycle/dvc.*"
                                           "services up") as caught:
        check_bucket("s3://lifecycle/dvc", nobody)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no botocore traceback


def test_urls_and_endpoints_are_checked():
    assert split_s3_url("s3://lifecycle/dvc/") == ("lifecycle", "dvc")
    with pytest.raises(ConfigError, match="not an S3 URL"):
        split_s3_url("/tmp/remote")
    with pytest.raises(ConfigError, match="not an s3:// URL"):
        remote_endpoint("/tmp/remote", "http://127.0.0.1:9000")
    assert remote_endpoint("s3://b/p", "http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    assert artifact_bucket_url("mlflow-artifacts:/1/models/m-1/artifacts") == "s3://lifecycle/mlflow/1/models/m-1/artifacts"
    with pytest.raises(ConfigError, match="not a proxied artifact URI"):
        artifact_bucket_url("file:///tmp/mlartifacts/1")


def test_the_cli_knows_services_and_backends():
    parser = build_parser()
    assert parser.parse_args(["services", "up", "--timeout", "60"]).timeout == 60
    assert parser.parse_args(["services", "status", "--json"]).json
    assert parser.parse_args(["run", "--backends", "services"]).backends == "services"
    assert parser.parse_args(["run"]).backends == "embedded"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--backends", "cloud"])


def _python(tmp_path: Path, code: str) -> int:
    return start_group([sys.executable, "-c", code], dict(os.environ), tmp_path / "child.log", tmp_path)


def _wait_for(condition, timeout: float = 30.0) -> None:
    """Poll until ``condition()`` holds (an event), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the child process did not get there in time"
        time.sleep(0.02)


def test_a_process_group_is_stopped_whole(tmp_path):
    # The parent starts a child in its own group: stopping the group must stop both.
    group = _python(tmp_path, "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
                              "'import time; time.sleep(60)']); time.sleep(60)")
    _wait_for(lambda: len(group_members(group)) == 2)
    stop_group(group, grace=5)
    assert group_members(group) == []


@pytest.mark.parametrize("parent_ignores_sigint", [False, True], ids=["foreground", "background-job"])
def test_a_process_that_ignores_sigterm_is_stopped_with_sigint(tmp_path, parent_ignores_sigint):
    # Like the Prefect worker: it ignores its first SIGTERM; SIGINT ends it (its handler runs: not the SIGKILL
    # after the grace period). Also when the starting process ignores SIGINT, as a shell's background job does.
    ready, interrupted = tmp_path / "ready", tmp_path / "interrupted"
    code = (f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"pathlib.Path({str(ready)!r}).touch()\n"
            f"try:\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    pathlib.Path({str(interrupted)!r}).touch()")
    before = signal.signal(signal.SIGINT, signal.SIG_IGN if parent_ignores_sigint else signal.default_int_handler)
    try:
        group = _python(tmp_path, code)
    finally:
        signal.signal(signal.SIGINT, before)
    _wait_for(ready.exists)
    stop_group(group, first=signal.SIGINT, grace=30)
    assert group_members(group) == [] and interrupted.exists()


@pytest.fixture(scope="module")
def object_store(tmp_path_factory):
    """moto's real S3 server with signature checks on: (endpoint, key id, secret); stopped afterwards."""
    folder = tmp_path_factory.mktemp("object-store")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    group = start_group(backends.object_store_argv(port), dict(os.environ), folder / "moto.log", folder)
    try:
        backends.wait_until(lambda: backends.object_store_answers(endpoint), "moto", group, folder / "moto.log", 60)
        yield endpoint, *backends.bootstrap_object_store(endpoint), group
    finally:
        stop_group(group)


@pytest.mark.slow
def test_the_store_checks_credentials(object_store, monkeypatch):
    endpoint, key_id, secret, _ = object_store
    check_bucket(backends.DVC_REMOTE, endpoint, key_id, secret)
    with pytest.raises(ConfigError, match=rf"object store at {endpoint} refused the credentials for "
                                          rf"s3://lifecycle/dvc \(access key id {key_id}: SignatureDoesNotMatch\)"):
        check_bucket(backends.DVC_REMOTE, endpoint, key_id, "not-the-secret")
    with pytest.raises(ConfigError, match="refused the credentials.*InvalidAccessKeyId"):
        check_bucket(backends.DVC_REMOTE, endpoint, "AKIANOBODYKNOWS00000", secret)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    with pytest.raises(ConfigError, match=r"no credentials for s3://lifecycle/nothing-here.*AWS_ACCESS_KEY_ID"):
        check_bucket("s3://lifecycle/nothing-here", endpoint)
    with pytest.raises(ConfigError, match="has no bucket 'elsewhere'"):
        check_bucket("s3://elsewhere/dvc", endpoint, key_id, secret)


@pytest.mark.slow
def test_dvc_pushes_to_the_store_and_refuses_wrong_keys_clearly(object_store, tmp_path, monkeypatch):
    endpoint, key_id, secret, _ = object_store
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    repo = init_sandbox(tmp_path / "repo", "s3://lifecycle/unit", echo=False, endpoint=endpoint)
    assert any("endpointurl" in run.shell for run in repo.history)
    with pytest.raises(ConfigError, match=rf"object store at {endpoint} refused the credentials for s3://lifecycle/unit"):
        version_data(repo, version_frame("data-v1", 1_000, 3), "data-v1", "v1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert "1 file pushed" in push_data(repo).stdout
    from lifecycle.services import list_objects

    assert len(list_objects("s3://lifecycle/unit", endpoint)) == 1


def _processes_with(variable: str, value: str) -> list[int]:
    """Live processes whose environment holds ``variable=value`` (every process the services start does)."""
    wanted, found = f"{variable}={value}".encode(), []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if wanted in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # ended while we looked, or not ours to read
            continue
    return found


@pytest.mark.slow
def test_a_start_that_fails_leaves_nothing_running(tmp_path):
    env = {**os.environ, "LIFECYCLE_WORKSPACE": str(tmp_path / "workspace")}
    done = subprocess.run([sys.executable, "-m", "lifecycle.cli", "services", "up", "--timeout", "0.01"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "did not answer within 0 s" in done.stderr, done.stderr
    assert _processes_with("LIFECYCLE_WORKSPACE", str(tmp_path / "workspace")) == []
    assert not (tmp_path / "workspace" / ENV_FILE).exists()
