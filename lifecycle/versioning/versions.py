"""The data versions of the course, for every lesson after 01: the sandbox as lesson 01 leaves it, and
a version's table with its lineage.

Lineage: :func:`~lifecycle._lineage.data_lineage` says which version of the data a file is (its git tag and
commit, the md5 of its ``.dvc`` pointer and of its bytes); :func:`read_data_version` gives lessons 03–07 their
history from lesson 01's versioned data when it is there, generated from the seed (saying so) when not,
with that lineage, which :func:`lifecycle.tracking.log_fraud_model` records on the training run.

Taught in notebooks/01_data_versioning.ipynb; :func:`ensure_sandbox` gives later lessons
(notebooks/04_orchestration.ipynb) the sandbox as lesson 01 leaves it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle._lineage import DataLineage, data_lineage
from lifecycle.config import Settings
from lifecycle.data import generate_transactions, read_transactions, write_transactions
from lifecycle.errors import ConfigError
from lifecycle.versioning.remote import remote_config, remote_endpoint, resolve_remote_url
from lifecycle.versioning.repo import DATA_FILE, MARKER, SANDBOX_NAME, DataRepo, init_sandbox, version_data

if TYPE_CHECKING:
    import pandas as pd

# Tag → first day of the 30 days of transactions it holds (the same customers, a month apart).
DATA_VERSIONS = {"data-v1": "2026-01-01", "data-v2": "2026-02-01"}


def version_frame(tag: str, rows: int, seed: int) -> pd.DataFrame:
    """The transactions of data version ``tag``: 30 days from ``DATA_VERSIONS[tag]``.

    Raises:
        ConfigError: an unknown tag.
    """
    if tag not in DATA_VERSIONS:
        raise ConfigError(f"unknown data version {tag!r}; the versions are {sorted(DATA_VERSIONS)}")
    return generate_transactions(rows=rows, seed=seed, start=DATA_VERSIONS[tag])


def ensure_sandbox(settings: Settings, rows: int = 20_000, seed: int | None = None,
                   remote_url: str = "", echo: bool = False) -> DataRepo:
    """The data sandbox as notebook 01 leaves it: reused if it is there, else built.

    Reused when it was made by :func:`init_sandbox`, its default remote is ``remote_url`` and its
    ``data-v1``/``data-v2`` tags hold exactly the data of ``rows`` and ``seed``; otherwise rebuilt
    fresh: both versions committed, tagged and pushed, ``data-v2`` (HEAD) in the working copy.

    Args:
        settings: the sandbox is ``settings.workspace / 'data-repo'``.
        rows: transactions per version.
        seed: the data seed (default ``settings.seed``).
        remote_url: the DVC remote (default ``settings.dvc_remote_url``).
        echo: print the commands that run.

    Raises:
        ConfigError: the sandbox folder holds files this module did not create.
        CommandError: git or dvc failed.
    """
    seed = settings.seed if seed is None else seed
    remote_url = resolve_remote_url(remote_url or settings.dvc_remote_url)
    endpoint = remote_endpoint(remote_url, settings.dvc_remote_endpoint if remote_url.startswith("s3://") else "")
    path = settings.ensure_dirs().workspace / SANDBOX_NAME
    frames = {tag: version_frame(tag, rows, seed) for tag in DATA_VERSIONS}
    if _sandbox_matches(path, remote_url, endpoint, frames):
        return DataRepo(path, remote_url, echo)
    repo = init_sandbox(path, remote_url, echo, endpoint)
    for tag, frame in frames.items():
        version_data(repo, frame, tag, f"Data {tag}: transactions from {DATA_VERSIONS[tag]}")
    return repo


def _sandbox_matches(path: Path, remote_url: str, endpoint: str, frames: dict[str, pd.DataFrame]) -> bool:
    if not (path / ".git" / MARKER).is_file():
        return False
    if remote_config(path).get("endpointurl", "") != endpoint:
        return False
    for tag, frame in frames.items():
        lineage = data_lineage(path, DATA_FILE, rev=tag)  # None for a missing tag: an interrupted run
        if lineage is None or lineage.remote != remote_url or lineage.data_md5 != hashlib.md5(_csv(frame)).hexdigest():
            return False
    return True


def _csv(frame: pd.DataFrame) -> bytes:
    """The bytes :func:`~lifecycle.data.write_transactions` writes for ``frame`` (what DVC hashes)."""
    with tempfile.TemporaryDirectory() as scratch:
        return write_transactions(frame, Path(scratch) / "transactions.csv").read_bytes()


def read_data_version(settings: Settings, tag: str = "data-v1", rows: int = 20_000, seed: int | None = None,
                      echo: bool = True) -> tuple[pd.DataFrame, DataLineage]:
    """Data version ``tag`` of lesson 01: read from its DVC repository (as it is at ``tag``, through
    ``dvc.api``: cache or remote) when that holds exactly the bytes :func:`version_frame` makes of ``rows``
    and ``seed``; else generated from the seed (lesson 01 has not run, or ran with other parameters).

    Args:
        settings: whose workspace holds the sandbox.
        tag: a data version of :data:`DATA_VERSIONS`.
        rows: transactions in the version.
        seed: the data seed (default ``settings.seed``).
        echo: print one line saying where the data came from.

    Returns:
        ``(transactions, lineage)``: the same table either way, with the dtypes of
        :func:`~lifecycle.data.generate_transactions`; give the lineage to :func:`lifecycle.tracking.log_fraud_model`.

    Raises:
        ConfigError: an unknown tag.

    Used by notebooks 03, 05, 06 and 07 (taught in notebooks/01_data_versioning.ipynb).
    """
    seed = settings.seed if seed is None else seed
    expected = version_frame(tag, rows, seed)
    made = _csv(expected)
    repo = settings.workspace / SANDBOX_NAME
    lineage = data_lineage(repo, DATA_FILE, rev=tag) if (repo / ".git" / MARKER).is_file() else None
    if lineage is not None and lineage.data_md5 == hashlib.md5(made).hexdigest():
        import dvc.api

        data, note = dvc.api.read(DATA_FILE, repo=str(repo), rev=tag, mode="rb"), f"read {lineage}"
    else:
        why = ("lesson 01's data repository is not in the workspace" if lineage is None
               else f"lesson 01's {tag} holds other data than rows={rows}, seed={seed}")
        data, lineage = made, DataLineage("generated", hashlib.md5(made).hexdigest(),
                                          generator=f"version_frame({tag!r}, rows={rows}, seed={seed})")
        note = f"generated {tag} from the seed: {why}; run notebooks/01_data_versioning.ipynb to read it from DVC"
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "transactions.csv").write_bytes(data)
        frame = read_transactions(Path(scratch) / "transactions.csv")
    if echo:
        print(note)
    return frame.astype({"timestamp": expected["timestamp"].dtype}), lineage
