"""The object store as a client sees it: a bucket at an endpoint, reached with credentials.

Used wherever the kit talks S3 itself: :mod:`lifecycle.versioning` checks an ``s3://`` DVC remote
before ``dvc push`` and ``dvc pull`` (so a store that is down, or keys it does not know, give one
clear error naming the URL and the fix rather than DVC's retries and botocore's traceback), and the
services and their tests list what the bucket holds. Credentials come from where every AWS tool
looks (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, profiles), never from the kit's settings.

Checked against boto3/botocore 1.43 and moto 5.2.

Taught in notebooks/01_data_versioning.ipynb (a remote by URL) and README.md ("Point it at
production backends").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lifecycle.errors import CommandError, ConfigError

REGION = "us-east-1"  # what an S3-compatible store expects when none is configured
SERVICES_HINT = ("for the kit's own services run 'lifecycle services up' (or 'make services'), then "
                 "'source workspace/services.env' or 'lifecycle run --backends services'")
# Error codes with which S3 refuses a request's credentials (HEAD requests carry only the status).
REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403",
           "InvalidToken", "ExpiredToken"}


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")``.

    Raises:
        ConfigError: not an ``s3://`` URL with a bucket name.
    """
    if not url.startswith("s3://") or not url.removeprefix("s3://").split("/")[0]:
        raise ConfigError(f"{url!r} is not an S3 URL; expected s3://BUCKET/PREFIX, e.g. s3://lifecycle/dvc")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def s3_client(endpoint: str = "", access_key_id: str | None = None, secret_access_key: str | None = None) -> Any:
    """A boto3 S3 client for ``endpoint`` (empty: AWS itself), failing fast rather than retrying.

    Credentials default to boto3's own chain (the ``AWS_*`` environment variables, then profiles), read
    afresh each time: boto3's default session would keep the first keys it found for the whole process
    (a kernel), even after ``lifecycle services up`` made new ones.
    """
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client("s3", endpoint_url=endpoint or None,
                        region_name=os.environ.get("AWS_DEFAULT_REGION") or REGION,
                        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                        config=Config(connect_timeout=3, read_timeout=15, retries={"max_attempts": 1}))


def check_bucket(url: str, endpoint: str = "", access_key_id: str | None = None,
                 secret_access_key: str | None = None) -> None:
    """Check that the bucket of ``url`` answers at ``endpoint``, with these credentials or (by default)
    those of this environment.

    Raises:
        CommandError: nothing answers at the endpoint.
        ConfigError: no credentials, credentials the store refuses, or no such bucket.
    """
    bucket, prefix = split_s3_url(url)
    with _translated(url, endpoint, access_key_id):
        s3_client(endpoint, access_key_id, secret_access_key).list_objects_v2(Bucket=bucket, Prefix=prefix,
                                                                               MaxKeys=1)


def list_objects(url: str, endpoint: str = "") -> dict[str, int]:
    """The objects under ``url`` (``s3://bucket/prefix``): key → size in bytes.

    Raises:
        CommandError, ConfigError: as :func:`check_bucket`.
    """
    bucket, prefix = split_s3_url(url)
    found: dict[str, int] = {}
    with _translated(url, endpoint):
        pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return found


@contextmanager
def _translated(url: str, endpoint: str, access_key_id: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into the kit's (no botocore traceback for the learner); others pass."""
    try:
        yield
    except Exception as err:
        translated = translate_s3_error(err, url, endpoint, access_key_id)
        if translated is err:
            raise
        raise translated from None


def translate_s3_error(err: Exception, url: str, endpoint: str = "", access_key_id: str | None = None) -> Exception:
    """botocore's exception for a request to ``url`` as the kit's error: what failed, where, and the fix.

    Returns ``err`` itself when it is not a botocore error the kit knows (it is then re-raised as is).
    """
    from botocore import exceptions as boto

    where = f"the object store at {endpoint}" if endpoint else "AWS S3"
    if isinstance(err, boto.NoCredentialsError | boto.PartialCredentialsError):
        return ConfigError(f"no credentials for {url} ({where}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
                           f"{SERVICES_HINT}")
    if isinstance(err, boto.EndpointConnectionError | boto.ConnectTimeoutError | boto.ReadTimeoutError):
        return CommandError(f"{where} is not answering, so {url} cannot be reached ({err}); {SERVICES_HINT}, "
                            "or point LIFECYCLE_DVC_REMOTE_ENDPOINT at your store")
    if isinstance(err, boto.ClientError):
        code = str(err.response.get("Error", {}).get("Code", "")) or "unknown"
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        key = access_key_id or os.environ.get("AWS_ACCESS_KEY_ID") or "(from a profile)"
        if code in REFUSED or status == 403:
            return ConfigError(f"{where} refused the credentials for {url} (access key id {key}: {code}): set "
                               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to keys it knows; the kit's services "
                               "make new keys at every 'lifecycle services up' and write them to "
                               "workspace/services.env")
        if code in ("NoSuchBucket", "404") or status == 404:
            return ConfigError(f"{where} has no bucket {split_s3_url(url)[0]!r} (for {url}): create it, or "
                               "choose another with LIFECYCLE_DVC_REMOTE; 'lifecycle services up' creates "
                               "the bucket 'lifecycle'")
        return CommandError(f"{where} answered {code} (HTTP {status}) for {url}: {err}")
    if isinstance(err, boto.BotoCoreError):
        return CommandError(f"could not reach {url} ({where}): {err}; {SERVICES_HINT}")
    return err


def describe_s3_failure(output: str, url: str, endpoint: str = "") -> str:
    """A hint for a DVC command that failed on an ``s3://`` remote, from what DVC printed."""
    where = f"the object store at {endpoint}" if endpoint else "AWS S3"
    if "Unable to locate credentials" in output:
        return f"no credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; {SERVICES_HINT}"
    if "Forbidden" in output or "InvalidAccessKeyId" in output or "SignatureDoesNotMatch" in output:
        return f"{where} refused the credentials for {url}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if "Could not connect" in output or "Connect timeout" in output:
        return f"{where} is not answering: {SERVICES_HINT}"
    return f"check that {url} exists at {where} and that your AWS credentials may write to it"

