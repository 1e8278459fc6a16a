"""Data versioning with DVC and git, in a sandbox repository under the workspace: lesson 01's stage.

Modules: :mod:`~lifecycle.versioning.repo` (the sandbox and the git and DVC commands run in it, each
printed as the shell line a learner would type), :mod:`~lifecycle.versioning.remote` (the DVC remote:
its URL, an S3-compatible store's endpoint, a check that it answers), :mod:`~lifecycle.versioning.versions`
(the course's data versions for the lessons after 01: the sandbox as lesson 01 leaves it, a version's
table with its lineage).

Taught in notebooks/01_data_versioning.ipynb.
"""

from __future__ import annotations

from lifecycle._lineage import DataLineage, data_lineage
from lifecycle._shell import CommandRun, run_command
from lifecycle.versioning.remote import (
    ENDPOINT_ENV,
    REMOTE_NAME,
    check_remote,
    remote_config,
    remote_endpoint,
    resolve_remote_url,
)
from lifecycle.versioning.repo import (
    DATA_FILE,
    MARKER,
    SANDBOX_NAME,
    DataRepo,
    clear_cache,
    clone_sandbox,
    commit_version,
    diff_versions,
    file_md5,
    init_sandbox,
    pull_data,
    push_data,
    restore_version,
    track_data,
    version_data,
)
from lifecycle.versioning.versions import DATA_VERSIONS, ensure_sandbox, read_data_version, version_frame

__all__ = [
    "DATA_FILE", "DATA_VERSIONS", "ENDPOINT_ENV", "MARKER", "REMOTE_NAME", "SANDBOX_NAME", "CommandRun", "DataLineage",
    "DataRepo", "check_remote", "clear_cache", "clone_sandbox", "commit_version", "data_lineage", "diff_versions",
    "ensure_sandbox", "file_md5", "init_sandbox", "pull_data", "push_data", "read_data_version", "remote_config",
    "remote_endpoint", "resolve_remote_url", "restore_version", "run_command", "track_data", "version_data",
    "version_frame",
]
