"""``lifecycle services up|down|status``: the team's backends on this machine, and the environment to use them.

``up`` starts the object store, the MLflow tracking server, the Prefect server and a worker (see
:mod:`lifecycle.services.backends`), each in its own process group, and returns once all answer. They
outlive the command, as a team's servers do: ``workspace/services/state.json`` records their process
groups, so that ``down`` stops them and ``status`` tells which still answer. ``up`` also writes what a
learner would export to use them, ``workspace/services.env``; ``lifecycle run --backends services``
reads it for every lesson. If any backend fails to come up, ``up`` stops the ones it started.

The object store keeps its bucket in memory, so every ``up`` starts all backends empty (a tracking
server whose artifacts were lost would be worse than an empty one).

Taught in README.md ("Point it at production backends").
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lifecycle._proc import free_port
from lifecycle.config import Settings, load_settings
from lifecycle.errors import CommandError, ConfigError
from lifecycle.services import backends
from lifecycle.services.objectstore import REGION, check_bucket
from lifecycle.services.processes import group_members, start_group, stop_group

FOLDER = "services"  # under the workspace: the servers' stores, logs and the state file
ENV_FILE = "services.env"  # under the workspace: what a client exports
STATE_FILE = "state.json"
# Stopped in this order (the worker before the server it reports to, the store last). The worker ignores
# its first SIGTERM (it waits for its flow runs): SIGINT stops it.
STOP_ORDER = ("prefect-worker", "prefect-server", "mlflow", "object-store")
STOP_SIGNAL = {"prefect-worker": signal.SIGINT}
DESCRIPTION = {"object-store": "S3 object store (moto)", "mlflow": "MLflow tracking server",
               "prefect-server": "Prefect server", "prefect-worker": "Prefect worker"}


@dataclass
class Services:
    """The running backends: their URLs, process groups, how long each took, and the clients' environment."""

    folder: Path
    env: dict[str, str]
    urls: dict[str, str] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    ready_after: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    already_running: bool = False

    def save(self) -> None:
        """Write the state file (private: the environment holds the store's access key)."""
        state = {k: v for k, v in asdict(self).items() if k not in ("folder", "already_running")}
        _write(self.folder / STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n", private=True)


def services_folder(settings: Settings) -> Path:
    return settings.workspace / FOLDER


def env_file(settings: Settings) -> Path:
    """``workspace/services.env``: the environment ``lifecycle services up`` writes for clients."""
    return settings.workspace / ENV_FILE


def start_services(settings: Settings | None = None, timeout: float = 180.0) -> Services:
    """Start the four backends (or find them running) and write ``workspace/services.env``.

    Args:
        settings: whose workspace holds the services' folder and the environment file.
        timeout: seconds each backend may take to answer.

    Returns:
        The running :class:`Services`.

    Raises:
        CommandError: a command is missing, or a backend did not come up (those started are stopped).
    """
    settings = (settings or load_settings()).ensure_dirs()
    running = read_state(settings)
    if running and all(group_members(group) for group in running.groups.values()):
        running.already_running = True
        return running
    if running:
        stop_services(settings)  # some died: start all afresh
    folder = _fresh_folder(settings)
    clock = time.monotonic()
    services = Services(folder, {})
    try:
        _start_all(services, settings, timeout, clock)
    except BaseException:
        stop_services(settings)  # a failed (or interrupted) start leaves nothing running
        raise
    services.seconds = round(time.monotonic() - clock, 2)
    services.save()
    lines = ["# The backends 'lifecycle services up' started on this machine; 'lifecycle services down' stops them",
             "# (the object store keeps its bucket in memory: after 'down' it is gone). Use them from a shell:",
             "#   source workspace/services.env",
             "# 'lifecycle run --backends services' reads this file for every lesson. It holds an access key:",
             "# keep it private (mode 600)."]
    _write(env_file(settings), "\n".join([*lines, *(f"export {k}={shlex.quote(v)}" for k, v in services.env.items())])
           + "\n", private=True)
    return services


def _start_all(services: Services, settings: Settings, timeout: float, clock: float) -> None:
    folder, base = services.folder, {**os.environ, **backends.QUIET}
    base.pop("PREFECT_API_URL", None)  # a learner's own setting must not point our servers elsewhere
    ports = {name: free_port() for name in ("object-store", "mlflow", "prefect-server")}
    endpoint = f"http://127.0.0.1:{ports['object-store']}"
    api_url = f"http://127.0.0.1:{ports['prefect-server']}/api"
    mlflow_url = f"http://127.0.0.1:{ports['mlflow']}"
    services.urls = {"object-store": endpoint, "mlflow": mlflow_url, "prefect-server": api_url,
                     "prefect-worker": f"{api_url}/work_pools/{backends.WORK_POOL}"}

    def start(name: str, argv: list[str], env: dict[str, str]) -> None:
        services.groups[name] = start_group(argv, env, folder / "logs" / f"{name}.log", folder)
        services.save()  # at once: even if this command is killed, `down` finds what it started

    def ready(name: str, check) -> None:
        backends.wait_until(check, DESCRIPTION[name], services.groups[name], folder / "logs" / f"{name}.log", timeout)
        services.ready_after[name] = round(time.monotonic() - clock, 2)

    # The store and the Prefect server start at once; MLflow needs the store's keys, the worker the server.
    start("object-store", backends.object_store_argv(ports["object-store"]), base)
    start("prefect-server", backends.prefect_server_argv(ports["prefect-server"]),
          {**base, "PREFECT_HOME": str(folder / "prefect-server"),
           # Block types (credentials, storage) are not used by the kit: registering them cost ~2 s of CPU.
           "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false"})
    ready("object-store", lambda: backends.object_store_answers(endpoint))
    key_id, secret = backends.bootstrap_object_store(endpoint)
    start("mlflow", backends.mlflow_argv(ports["mlflow"], folder),
          {**base, **backends.mlflow_environment(endpoint, key_id, secret)})
    services.env = {
        "LIFECYCLE_DVC_REMOTE": backends.DVC_REMOTE, "LIFECYCLE_DVC_REMOTE_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_TRACKING_URI": mlflow_url,
        # moto checks signatures in headers but not presigned URLs: clients download through the server.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        "PREFECT_API_URL": api_url, "LIFECYCLE_PREFECT_WORK_POOL": backends.WORK_POOL,
    }
    ready("prefect-server", lambda: backends.prefect_answers(api_url))
    start("prefect-worker", backends.prefect_worker_argv(),
          {**base, **services.env, "PREFECT_HOME": str(folder / "prefect-worker"),
           "PREFECT_WORKER_QUERY_SECONDS": "2", "LIFECYCLE_WORKSPACE": str(settings.workspace)})
    ready("mlflow", lambda: backends.mlflow_answers(mlflow_url))
    ready("prefect-worker", lambda: backends.worker_online(api_url))


def _fresh_folder(settings: Settings) -> Path:
    folder = services_folder(settings)
    for old in ("mlflow.db", "prefect-server", "prefect-worker", "logs", STATE_FILE):
        path = folder / old
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    env_file(settings).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read_state(settings: Settings) -> Services | None:
    """The services ``up`` recorded (running or not), or None when there is no state file."""
    path = services_folder(settings) / STATE_FILE
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    return Services(services_folder(settings), **{k: v for k, v in state.items() if k in Services.__annotations__})


def stop_services(settings: Settings | None = None) -> dict[str, float]:
    """Stop every backend ``up`` recorded; returns the seconds each took (nothing if none were recorded)."""
    settings = settings or load_settings()
    state = read_state(settings)
    stopped: dict[str, float] = {}
    if state:
        for name in STOP_ORDER:
            if name in state.groups:
                stopped[name] = round(stop_group(state.groups[name], STOP_SIGNAL.get(name, signal.SIGTERM)), 2)
        (state.folder / STATE_FILE).unlink(missing_ok=True)
    env_file(settings).unlink(missing_ok=True)
    return stopped


def read_services_env(settings: Settings | None = None) -> dict[str, str]:
    """The environment in ``workspace/services.env`` (``export KEY=value`` lines).

    Raises:
        ConfigError: there is no such file (the services were never started, or were stopped).
    """
    path = env_file(settings or load_settings())
    if not path.is_file():
        raise ConfigError(f"no {path.name} in {path.parent}: the services are not running; start them with "
                          "'lifecycle services up' (or 'make services'), or run without --backends services")
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key.strip()] = shlex.split(value)[0] if value else ""
    return env


def check_backends(env: dict[str, str]) -> None:
    """Check that every backend named in ``env`` answers, as a client with that environment sees it.

    Raises:
        CommandError: a backend does not answer; the message names its URL and the fix.
        ConfigError: the object store refuses the credentials, or has no bucket.
    """
    fix = "start the services with 'lifecycle services up' (or 'make services'); 'lifecycle services status' " \
          "tells which are up"
    if env.get("LIFECYCLE_DVC_REMOTE", "").startswith("s3://"):
        check_bucket(env["LIFECYCLE_DVC_REMOTE"], env.get("LIFECYCLE_DVC_REMOTE_ENDPOINT", ""),
                     env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"))
    if (url := env.get("MLFLOW_TRACKING_URI", "")).startswith("http") and not backends.mlflow_answers(url):
        raise CommandError(f"the MLflow tracking server at {url} is not answering (GET /health); {fix}")
    if api := env.get("PREFECT_API_URL", ""):
        if not backends.prefect_answers(api):
            raise CommandError(f"the Prefect server at {api} is not answering (GET /health); {fix}")
        pool = env.get("LIFECYCLE_PREFECT_WORK_POOL")
        if pool and not backends.worker_online(api, pool):
            raise CommandError(f"no Prefect worker is online for the work pool {pool!r} at {api}; {fix}")


def service_status(settings: Settings | None = None) -> list[dict[str, object]]:
    """One row per recorded backend: its name, URL, whether its processes run and whether it answers."""
    settings = settings or load_settings()
    state = read_state(settings)
    if state is None:
        return []
    checks = {"object-store": backends.object_store_answers, "mlflow": backends.mlflow_answers,
              "prefect-server": backends.prefect_answers,
              "prefect-worker": lambda url: backends.worker_online(url.rsplit("/work_pools/", 1)[0])}
    rows = []
    for name in reversed(STOP_ORDER):
        url, group = state.urls.get(name, ""), state.groups.get(name)
        alive = bool(group and group_members(group))
        rows.append({"service": name, "what": DESCRIPTION[name], "url": url, "running": alive,
                     "answers": alive and checks[name](url)})
    return rows


def _write(path: Path, text: str, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)
