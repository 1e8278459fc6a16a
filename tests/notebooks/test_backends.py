"""Production is configuration: lessons 01 and 04 against the team's backends on this machine.

One ``lifecycle services up`` for the module (S3 store, MLflow server, Prefect server and worker), one
``lifecycle run --only 01,04 --backends services`` on it, compared with the embedded defaults' smoke run
(the shared ``smoke_course``), timings aside. Lesson 01 versions the data in the S3 store; lesson 04's
pipeline reads it, tracks and registers its model on the MLflow server (artifacts in the store) and runs
as a deployment on the Prefect worker: every backend is used (lesson 03 would add only more runs on the
same server). Then what the backends hold: the DVC objects in the bucket (a fresh clone of the sandbox
pulls v1 byte-identical from it), the registered model's files, the deployment's completed run. Last, a
backend that is down stops the run with its URL and the fix, and ``lifecycle services down`` leaves
nothing running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lifecycle.config import load_settings
from lifecycle.services import list_objects
from lifecycle.services.processes import group_members, stop_group
from lifecycle.services.stack import read_services_env, read_state
from lifecycle.versioning import file_md5

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ("01_data_versioning", "04_orchestration")
# The results of these lessons that time something on this machine (the VOLATILE ones of test_course_rerun).
TIMINGS = {"repro_first_seconds", "repro_cached_seconds"}
# What a learner's shell might have exported: the run must take its backends from services.env alone.
OUTSIDE = ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "LIFECYCLE_DVC_REMOTE", "LIFECYCLE_DVC_REMOTE_ENDPOINT",
           "LIFECYCLE_PREFECT_WORK_POOL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PREFECT_HOME")


def lifecycle(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lifecycle.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """The services, up for the module in a workspace of their own: (workspace, environment of the commands)."""
    folder = tmp_path_factory.mktemp("backends")
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    env.update(LIFECYCLE_WORKSPACE=str(folder / "workspace"), LIFECYCLE_BUILD=str(folder / "build"))
    up = lifecycle(env, "services", "up", timeout=600)
    settings = load_settings(workspace=folder / "workspace", build=folder / "build")
    try:
        assert up.returncode == 0, f"lifecycle services up failed:\n{up.stdout}\n{up.stderr[-3000:]}"
        yield settings, env
    finally:
        state = read_state(settings)
        down = lifecycle(env, "services", "down", timeout=300)
        assert down.returncode == 0, down.stderr
        assert state is None or not any(group_members(group) for group in state.groups.values())


@pytest.fixture(scope="module")
def backed_run(backends):
    """``lifecycle run --only 01,04 --backends services``, once: its summary."""
    settings, env = backends
    done = lifecycle(env, "run", "--only", "01,04", "--backends", "services", "--no-progress", timeout=1_500)
    assert done.returncode == 0, f"the course failed on the services:\n{done.stderr[-3000:]}"
    return json.loads((settings.build / "summary.json").read_text())


@pytest.mark.slow
def test_the_services_answer_and_their_environment_is_private(backends):
    settings, env = backends
    status = lifecycle(env, "services", "status", "--json", timeout=120)
    assert status.returncode == 0 and all(row["answers"] for row in json.loads(status.stdout)), status.stdout
    assert (settings.workspace / "services.env").stat().st_mode & 0o777 == 0o600
    again = lifecycle(env, "services", "up", timeout=120)
    assert again.returncode == 0 and "already running" in again.stdout


@pytest.mark.slow
@pytest.mark.timeout(1_800)
def test_the_lessons_on_the_services_record_what_the_embedded_defaults_record(backed_run, smoke_course):
    assert backed_run["backends"] == "services"
    for lesson in LESSONS:
        backed, embedded = backed_run["notebooks"][lesson], smoke_course.summary["notebooks"][lesson]
        assert backed["status"] == "ok", f"{lesson}: {backed['error']}"
        same = {k: v for k, v in embedded["results"].items() if k not in TIMINGS}
        assert {k: v for k, v in backed["results"].items() if k not in TIMINGS} == same, lesson


@pytest.mark.slow
def test_the_backends_hold_the_data_the_models_and_the_deployed_run(backends, backed_run, tmp_path, monkeypatch):
    settings, env = backends
    client = read_services_env(settings)
    endpoint = client["LIFECYCLE_DVC_REMOTE_ENDPOINT"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, client[name])
    results = backed_run["notebooks"]["01_data_versioning"]["results"]
    stored = list_objects(client["LIFECYCLE_DVC_REMOTE"], endpoint)
    for md5 in (results["data_v1_md5"], results["data_v2_md5"]):
        assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in stored, sorted(stored)
    assert any(key.endswith("/model.pkl") for key in list_objects("s3://lifecycle/mlflow", endpoint))

    # A new colleague: clone the sandbox, check out v1, pull its bytes from the bucket.
    clone = tmp_path / "clone"
    git = {**env, **client, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    subprocess.run(["git", "clone", "--quiet", str(settings.workspace / "data-repo"), str(clone)], env=git, check=True)
    subprocess.run(["git", "checkout", "--quiet", "data-v1"], cwd=clone, env=git, check=True)
    pulled = subprocess.run([str(Path(sys.executable).parent / "dvc"), "pull"], cwd=clone, env=git,
                            capture_output=True, text=True, timeout=300)
    assert pulled.returncode == 0, pulled.stderr
    assert file_md5(clone / "data" / "transactions.csv") == results["data_v1_md5"]

    # Lesson 04's deployment: a completed flow run, picked up and run by the worker.
    api = client["PREFECT_API_URL"]
    with urllib.request.urlopen(f"{api}/deployments/name/fraud-training-pipeline/fraud-training") as answer:
        deployment = json.loads(answer.read())
    query = json.dumps({"deployments": {"id": {"any_": [deployment["id"]]}}}).encode()
    request = urllib.request.Request(f"{api}/flow_runs/filter", data=query, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        runs = json.loads(answer.read())
    assert [run["state_type"] for run in runs] == ["COMPLETED"]
    assert runs[0]["work_pool_name"] == client["LIFECYCLE_PREFECT_WORK_POOL"]


@pytest.mark.slow
def test_a_backend_that_is_down_stops_the_run_with_its_url_and_the_fix(backends, backed_run):
    settings, env = backends
    state = read_state(settings)
    stop_group(state.groups["mlflow"])
    status = lifecycle(env, "services", "status", timeout=120)
    assert status.returncode == 1 and "MLflow tracking server   stopped" in status.stdout, status.stdout
    run = lifecycle(env, "run", "--only", "03", "--backends", "services", timeout=120)
    assert run.returncode == 2
    assert f"the MLflow tracking server at {state.urls['mlflow']} is not answering" in run.stderr
    assert "lifecycle services up" in run.stderr and "Traceback" not in run.stderr
