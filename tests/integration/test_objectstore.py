"""`fraudlab s3-bucket`, MLflow's init container in kind mode, against a real S3 API server on loopback
(moto's standalone server: SeaweedFS has no build for this machine; the app uses the S3 API only)."""

from __future__ import annotations

import pytest
from moto.server import ThreadedMotoServer

from reference_app.launchers.stack import free_port

from .conftest import run_fraudlab


@pytest.fixture
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def env(endpoint: str, destination: str = "s3://mlflow") -> dict[str, str]:
    return {"FRAUD_MLFLOW_ARTIFACTS_DESTINATION": destination, "MLFLOW_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "fraudlab", "AWS_SECRET_ACCESS_KEY": "fraudlab-secret", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


def test_bucket_is_created_once_then_found(s3_endpoint):
    import boto3

    first = run_fraudlab(env(s3_endpoint), "s3-bucket", "--timeout", "30")
    assert (
        first.returncode == 0 and f"bucket of s3://mlflow at {s3_endpoint}: created" in first.stdout
    ), first.stdout + first.stderr
    again = run_fraudlab(env(s3_endpoint), "s3-bucket", "--timeout", "30")
    assert again.returncode == 0 and ": exists" in again.stdout
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        region_name="us-east-1",
    )
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["mlflow"]


def test_unreachable_store_fails_after_the_timeout_with_the_reason():
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = run_fraudlab(env(endpoint), "s3-bucket", "--timeout", "2")
    assert result.returncode == 1 and f"{endpoint} did not answer within 2 s" in result.stdout


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("/tmp/artifacts", "is not an s3://bucket[/prefix] URI"),
        ("s3://", "is not an s3://bucket[/prefix] URI"),
    ],
)
def test_destination_that_is_not_s3_is_a_clear_error(s3_endpoint, destination, message):
    result = run_fraudlab(env(s3_endpoint, destination), "s3-bucket", "--timeout", "2")
    assert result.returncode == 2 and message in result.stdout


def test_missing_endpoint_is_a_clear_error():
    result = run_fraudlab({"FRAUD_MLFLOW_ARTIFACTS_DESTINATION": "s3://mlflow"}, "s3-bucket")
    assert result.returncode == 2 and "MLFLOW_S3_ENDPOINT_URL is not set" in result.stdout
