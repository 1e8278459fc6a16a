"""The backends a team runs, one real server process each, on 127.0.0.1: how each starts and answers.

* **object store**: moto's standalone server speaks the S3 API over HTTP. It starts open, gets one
  user with an access key, a policy and the bucket, and then checks every request's signature, as a
  real bucket does: wrong keys are refused (``InvalidAccessKeyId``, ``SignatureDoesNotMatch``).
  It keeps everything in memory.
* **tracking server**: ``mlflow server`` with a SQLite backend store and its artifacts in the bucket
  (``--artifacts-destination s3://…``): clients upload and download through the server (proxied
  artifact access) and need only ``MLFLOW_TRACKING_URI``; the server alone holds the bucket's keys.
* **orchestration server**: ``prefect server start`` (API and UI).
* **worker**: ``prefect worker start`` on a ``process`` work pool (created by the worker if missing):
  it polls the pool and runs each flow run of a deployment as a process on this machine.

Checked against moto 5.2, mlflow 3.17 and prefect 3.9.

Taught in README.md ("Point it at production backends") and notebooks/04_orchestration.ipynb
(the deployment run by the worker).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from lifecycle._shell import find_command
from lifecycle.errors import CommandError, ConfigError
from lifecycle.services.objectstore import REGION, s3_client
from lifecycle.services.processes import group_members

BUCKET = "lifecycle"
DVC_REMOTE = f"s3://{BUCKET}/dvc"
ARTIFACTS = f"s3://{BUCKET}/mlflow"
USER = "lifecycle-team"
WORK_POOL = "lifecycle-pool"
WORKER = "lifecycle-worker"
# Quiet, offline servers: no usage reports, no job runner in the MLflow server (start-up ~1 min → ~12 s).
QUIET = {"DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1",
         "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
         "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def command(name: str) -> str:
    """A console script installed with the kit (``moto_server``, ``mlflow``, ``prefect``).

    Raises:
        CommandError: it is not installed.
    """
    found = find_command(name)
    if found is None:
        raise CommandError(f"the {name!r} command was not found beside this Python ({sys.executable}) or on "
                           "PATH; run 'make setup' (or pip install -e .) in the kit's folder")
    return found


def object_store_argv(port: int) -> list[str]:
    return [command("moto_server"), "-H", "127.0.0.1", "-p", str(port)]


def bootstrap_object_store(endpoint: str) -> tuple[str, str]:
    """Give the fresh store a user with full S3 rights, an access key and the bucket, then make it check
    every request's signature. Returns the access key id and secret."""
    bootstrap = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "bootstrap",
                 "aws_secret_access_key": "bootstrap"}
    import boto3

    iam = boto3.client("iam", **bootstrap)
    iam.create_user(UserName=USER)
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName=USER, PolicyName="s3-full-access", PolicyDocument=json.dumps(policy))
    s3_client(endpoint, "bootstrap", "bootstrap").create_bucket(Bucket=BUCKET)
    # From here on moto authenticates every request against its IAM users, as S3 does.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
    return key["AccessKeyId"], key["SecretAccessKey"]


def mlflow_argv(port: int, folder: Path) -> list[str]:
    return [command("mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", ARTIFACTS, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def mlflow_environment(endpoint: str, key_id: str, secret: str) -> dict[str, str]:
    """The server's own access to the bucket (clients never see these keys)."""
    return {"MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": REGION}


def artifact_bucket_url(proxied_uri: str) -> str:
    """Where the tracking server keeps a proxied artifact: ``mlflow-artifacts:/1/models/m-…/artifacts`` →
    ``s3://lifecycle/mlflow/1/models/m-…/artifacts`` (clients see only the first, the server writes the second).

    Raises:
        ConfigError: not a proxied (``mlflow-artifacts:``) URI.
    """
    if not proxied_uri.startswith("mlflow-artifacts:"):
        raise ConfigError(f"{proxied_uri!r} is not a proxied artifact URI (mlflow-artifacts:/…): a tracking server "
                          "started with --artifacts-destination gives those; a local store keeps files on disk")
    return f"{ARTIFACTS}/{proxied_uri.removeprefix('mlflow-artifacts:').strip('/')}"


def prefect_server_argv(port: int) -> list[str]:
    return [command("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]


def prefect_worker_argv() -> list[str]:
    return [command("prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process", "--name", WORKER]


def http_ok(url: str, method: str = "GET", body: bytes | None = None) -> bytes | None:
    """The body of a 2xx answer from ``url``, or None if nothing (or an error) answers."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.read() if 200 <= response.status < 300 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def object_store_answers(endpoint: str) -> bool:
    return http_ok(f"{endpoint}/moto-api/") is not None


def mlflow_answers(url: str) -> bool:
    return http_ok(f"{url}/health") is not None


def prefect_answers(api_url: str) -> bool:
    return http_ok(f"{api_url}/health") is not None


def worker_online(api_url: str, pool: str = WORK_POOL, name: str = WORKER) -> bool:
    """Whether the worker has registered with the pool and its heartbeat is current."""
    body = http_ok(f"{api_url}/work_pools/{pool}/workers/filter", "POST", b"{}")
    return bool(body) and any(w.get("name") == name and w.get("status") == "ONLINE" for w in json.loads(body))


def wait_until(ready: Callable[[], bool], what: str, group: int, log_file: Path, timeout: float) -> float:
    """Poll ``ready`` until it holds; returns the seconds waited.

    Raises:
        CommandError: the process group exited, or ``timeout`` passed; the message ends with its log.
    """
    clock = time.monotonic()
    while not ready():
        alive = bool(group_members(group))
        if not alive or time.monotonic() - clock > timeout:
            problem = "exited" if not alive else f"did not answer within {timeout:.0f} s"
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-12:]) if log_file.is_file() else ""
            raise CommandError(f"{what} {problem}; its log ({log_file}) ends:\n{tail}\nhint: run 'lifecycle "
                               "services up' again (a busy machine may need --timeout 300)", [], None, tail)
        time.sleep(0.2)
    return time.monotonic() - clock
