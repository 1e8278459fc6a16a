"""The backends a team runs, on this machine: an S3 object store, an MLflow tracking server, a Prefect
server with a work pool and a worker. ``lifecycle services up`` (``make services``) starts them and
writes the environment that points the course at them; ``lifecycle run --backends services`` uses it.

Modules: :mod:`~lifecycle.services.stack` (up, down, status, the state and environment files),
:mod:`~lifecycle.services.backends` (each server's command, start-up and health check),
:mod:`~lifecycle.services.objectstore` (a bucket as a client sees it, and clear errors for boto's),
:mod:`~lifecycle.services.deployments` (lesson 04's flow as a deployment run by the worker),
:mod:`~lifecycle.services.processes` (the process groups). Importing this package starts nothing.

Taught in README.md ("Point it at production backends") and notebooks/04_orchestration.ipynb.
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

_EXPORTS = {
    **{name: "lifecycle.services.stack" for name in (
        "Services", "start_services", "stop_services", "service_status", "read_services_env", "check_backends",
        "env_file", "services_folder")},
    **{name: "lifecycle.services.objectstore" for name in (
        "check_bucket", "list_objects", "split_s3_url", "translate_s3_error")},
    **{name: "lifecycle.services.backends" for name in (
        "BUCKET", "DVC_REMOTE", "ARTIFACTS", "WORK_POOL", "artifact_bucket_url")},
    **{name: "lifecycle.services.deployments" for name in (
        "ENTRYPOINT", "DeploymentRun", "deploy_training_flow", "run_training_deployment")},
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.services", _EXPORTS, globals())
