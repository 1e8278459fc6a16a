"""Where a sandbox's data is shared: the DVC remote's URL, its S3 endpoint, and a check that it answers.

An ``s3://`` remote may live in an S3-compatible store rather than AWS: its endpoint
(``settings.dvc_remote_endpoint``) goes into the sandbox's DVC config, so every clone finds the store;
credentials stay in the environment (``AWS_ACCESS_KEY_ID``…). Before ``dvc push`` and ``dvc pull`` such
a remote is checked (:func:`check_remote`), so that a store that is down or refuses the keys gives one clear error.

Taught in notebooks/01_data_versioning.ipynb.
"""

from __future__ import annotations

import os
from pathlib import Path

from lifecycle.errors import ConfigError
from lifecycle.services.objectstore import check_bucket

REMOTE_NAME = "storage"
ENDPOINT_ENV = "LIFECYCLE_DVC_REMOTE_ENDPOINT"  # settings.dvc_remote_endpoint, from the environment


def resolve_remote_url(url: str) -> str:
    """A remote as DVC should store it: URLs (``s3://…``) unchanged, local folders made absolute.

    Raises:
        ConfigError: an empty URL.
    """
    url = str(url).strip()
    if not url:
        raise ConfigError("the DVC remote URL is empty; pass a folder or a URL such as s3://bucket/fraud, "
                          "or leave it to settings.dvc_remote_url")
    return url if "://" in url else str(Path(url).expanduser().resolve())


def remote_endpoint(remote_url: str, endpoint: str | None = None) -> str:
    """The S3 endpoint for ``remote_url``: ``endpoint``, or for an ``s3://`` remote ``settings.dvc_remote_endpoint``
    when ``endpoint`` is None; empty for AWS itself and for other remotes.

    Raises:
        ConfigError: an endpoint given for a remote that is not ``s3://``.
    """
    is_s3 = str(remote_url).startswith("s3://")
    if endpoint is None:
        from lifecycle.config import load_settings

        endpoint = load_settings().dvc_remote_endpoint if is_s3 else ""
    if endpoint and not is_s3:
        raise ConfigError(f"an S3 endpoint ({endpoint}) was given for the remote {remote_url!r}, which is not an "
                          "s3:// URL; use an s3://bucket/prefix remote, or unset LIFECYCLE_DVC_REMOTE_ENDPOINT")
    return endpoint.rstrip("/")



def relative_to(remote_url: str, path: Path) -> str:
    """A local remote as a path relative to the sandbox, which DVC stores relative to ``.dvc/config``: the
    sandbox and a clone beside it find the same folder, and no command shows an absolute path. URLs unchanged."""
    if "://" in remote_url:
        return remote_url
    try:
        return os.path.relpath(remote_url, path)
    except ValueError:  # another drive (Windows): only an absolute path reaches it
        return remote_url



def remote_config(path: str | Path) -> dict[str, str]:
    """The default remote's section of the DVC config of the repository at ``path`` (``url``, ``endpointurl``…)."""
    from configobj import ConfigObj  # DVC's own config parser, installed with dvc

    return dict(ConfigObj(str(Path(path) / ".dvc" / "config")).get(f'remote "{REMOTE_NAME}"', {}))


def check_remote(path: str | Path) -> None:
    """For an ``s3://`` remote of the repository at ``path``, check that its bucket answers with this
    environment's credentials (other remotes: nothing to check); see
    :func:`lifecycle.services.objectstore.check_bucket`."""
    remote = remote_config(path)
    if remote.get("url", "").startswith("s3://"):
        check_bucket(remote["url"], remote.get("endpointurl", ""))
