"""The object store behind MLflow's artifacts, through the S3 API only (any S3-compatible server).

Kind mode runs SeaweedFS; MLflow's Deployment creates its bucket in an init container
(`fraudlab s3-bucket`) before the server starts, through the S3 API's CreateBucket — not with
SeaweedFS' own `weed shell`, which needs the master's gRPC port and waits forever without it.

Example:
    >>> ensure_bucket("s3://mlflow", "http://s3:8333", timeout_s=300)   # doctest: +SKIP
    'created'
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

# Answers of CreateBucket that mean "it is there and it is ours" (S3 API; SeaweedFS returns
# BucketAlreadyOwnedByYou when the same identity creates it again).
ALREADY_THERE = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


class ObjectStoreError(RuntimeError):
    """The object store did not answer in time, or refused the bucket."""


def bucket_of(destination: str) -> str:
    """The bucket of an `s3://bucket[/prefix]` URI.

    Raises:
        ValueError: when `destination` is not an s3:// URI with a bucket.
    """
    parsed = urlparse(destination)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(
            f"{destination!r} is not an s3://bucket[/prefix] URI (FRAUD_MLFLOW_ARTIFACTS_DESTINATION)"
        )
    return parsed.netloc


def ensure_bucket(
    destination: str, endpoint_url: str, timeout_s: float = 300.0, poll_s: float = 2.0
) -> str:
    """Create the bucket of `destination` unless it exists; wait (bounded) for the server to answer.

    Credentials come from the usual AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).

    Args:
        destination: `s3://bucket[/prefix]`, the MLflow artifacts destination.
        endpoint_url: the S3 endpoint, e.g. `http://s3:8333`.
        timeout_s: seconds to keep retrying while the endpoint does not answer.
        poll_s: seconds between attempts.

    Returns:
        `"created"` or `"exists"`.

    Raises:
        ValueError: when `destination` is not an s3:// URI.
        ObjectStoreError: when the endpoint does not answer within `timeout_s`, or refuses the
            request (e.g. wrong credentials): the message names the S3 error code.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as S3ConnectionError

    bucket = bucket_of(destination)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # HeadBucket first: some S3 servers (AWS in us-east-1, moto) answer CreateBucket with 200
            # for a bucket the caller already owns, so its answer alone cannot tell.
            client.head_bucket(Bucket=bucket)
            return "exists"
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code not in {"404", "NoSuchBucket", "NotFound"}:
                raise ObjectStoreError(
                    f"{endpoint_url} refused HeadBucket {bucket}: {code or err}"
                ) from err
        except (S3ConnectionError, HTTPClientError) as err:
            if time.monotonic() >= deadline:
                raise ObjectStoreError(
                    f"{endpoint_url} did not answer within {timeout_s:.0f} s: {err}"
                ) from err
            time.sleep(poll_s)
            continue
        try:
            client.create_bucket(Bucket=bucket)
            return "created"
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ALREADY_THERE:  # created meanwhile by another replica
                return "exists"
            raise ObjectStoreError(
                f"{endpoint_url} refused CreateBucket {bucket}: {code or err}"
            ) from err
