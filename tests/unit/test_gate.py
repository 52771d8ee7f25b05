"""The gate in front of MLServer (reference_app/serving/gate.py), in process: an echo app behind
`RestGate`, a model registry with one loaded model, no server. The wire, with MLServer itself, is
tested in tests/integration/test_local_stack.py."""

from __future__ import annotations

import asyncio
import gzip
import json
import random

import grpc
import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from mlserver import MLModel
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.registry import MultiModelRegistry
from mlserver.settings import ModelSettings
from pydantic import BaseModel

from reference_app.serving.gate import (
    GatePolicy,
    Refused,
    RestGate,
    _check_raw_contents,
    gunzip_bounded,
    validation_error,
)

CAP = 10_000
TOKEN = "s3cret-token"


class ServedModel(MLModel):
    """A loaded model that serves registry version 7, as `FraudRuntime.served_version` says."""

    served_version = "7"


async def echo(scope, receive, send):
    """What the app behind the gate received: path, body size and headers."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    out = json.dumps({"path": scope["path"], "size": len(body), "headers": headers}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": out})


@pytest.fixture(scope="module")
def policy():
    registry = MultiModelRegistry()
    asyncio.run(registry.load(ModelSettings(name="fraud-detector", implementation=ServedModel)))
    return GatePolicy(max_body_bytes=CAP, max_gzip_ratio=50, admin_token=TOKEN, registry=registry)


def call(policy, method, path, content=b"", headers=None, token=TOKEN) -> httpx.Response:
    gate = RestGate(
        echo, GatePolicy(policy.max_body_bytes, policy.max_gzip_ratio, token, policy.registry)
    )

    async def go():
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://gate") as client:
            return await client.request(method, path, content=content, headers=headers)

    return asyncio.run(go())


INFER = "/v2/models/fraud-detector/infer"
JSON = {"content-type": "application/json"}


def test_a_good_request_passes_unchanged(policy):
    r = call(policy, "POST", INFER, b'{"inputs": []}', JSON)
    assert r.status_code == 200 and r.json()["path"] == INFER and r.json()["size"] == 14


@pytest.mark.parametrize(
    ("method", "path", "content", "headers", "status", "message"),
    [
        ("POST", INFER, b"x" * (CAP + 1), JSON, 413, f"request body of {CAP + 1} bytes is above the limit of 10,000 bytes"),
        ("POST", INFER, b"{}", {"content-type": "text/plain"}, 415, "Content-Type text/plain is not accepted"),
        ("POST", INFER, b"{}", {**JSON, "content-encoding": "br"}, 415, "Content-Encoding br is not accepted"),
        ("POST", INFER, b"not gzip", {**JSON, "content-encoding": "gzip"}, 400, "bad gzip body"),
        ("POST", "/v2/repository/models/fraud-detector/unload", b"", None, 401, "needs the admin token"),
        ("POST", "/v2/repository/index", b"{}", {"authorization": "Bearer wrong"}, 401, "needs the admin token"),
        ("GET", "/v2/docs", b"", None, 404, "API docs are off"),
        ("GET", "/v2/docs/dataplane.json", b"", None, 404, "API docs are off"),
        ("GET", "/v2/models/fraud-detector/docs", b"", None, 404, "API docs are off"),
        ("POST", "/v2/models/fraud-detector/infer_stream", b"{}", JSON, 404, "streaming inference is off"),
        ("POST", "/v2/models/made-up-123/infer", b"{}", JSON, 404, "model made-up-123 is not served here"),
        ("POST", "/v2/models/fraud-detector/versions/3/infer", b"{}", JSON, 404, "has no version 3 here: it serves version 7"),
        ("GET", "/v2/models/nope/ready", b"", None, 404, "model nope is not served here"),
    ],
    ids=["over the cap", "text/plain", "brotli", "not gzip", "repository, no token", "repository, wrong token",
         "docs", "docs json", "model docs", "stream", "unknown model", "unknown version", "unknown model ready"],
)  # fmt: skip
def test_refused_with_a_message_and_not_passed_on(
    policy, method, path, content, headers, status, message
):
    r = call(policy, method, path, content, headers)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert "path" not in r.json()  # the app behind the gate never saw it


def test_a_wrong_content_type_does_not_echo_the_body(policy):
    r = call(policy, "POST", INFER, b"card 4111-1111-1111-1111", {"content-type": "text/plain"})
    assert r.status_code == 415 and "4111" not in r.text


def test_the_repository_api_is_closed_without_a_token_configured(policy):
    r = call(policy, "POST", "/v2/repository/models/fraud-detector/load", b"",
             {"authorization": "Bearer anything"}, token=None)  # fmt: skip
    assert r.status_code == 403 and "closed on this server" in r.json()["error"]


def test_the_repository_api_answers_the_admin_token(policy):
    r = call(policy, "POST", "/v2/repository/models/fraud-detector/load", b"",
             {"authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 200 and r.json()["path"] == "/v2/repository/models/fraud-detector/load"


def test_the_served_version_is_addressable(policy):
    r = call(policy, "POST", "/v2/models/fraud-detector/versions/7/infer", b"{}", JSON)
    assert r.status_code == 200 and r.json()["path"] == INFER
    r = call(policy, "GET", "/v2/models/fraud-detector/versions/7", b"", None)
    assert r.status_code == 200 and r.json()["path"] == "/v2/models/fraud-detector"


def test_a_gzip_body_reaches_the_app_plain(policy):
    body = json.dumps({"inputs": [{"data": [0.5] * 500}]}).encode()
    r = call(policy, "POST", INFER, gzip.compress(body), {**JSON, "content-encoding": "gzip"})
    assert r.status_code == 200 and r.json()["size"] == len(body)
    assert "content-encoding" not in r.json()["headers"]
    assert r.json()["headers"]["content-length"] == str(len(body))


@pytest.mark.parametrize(
    ("plain", "message"),
    [
        (b" " * (CAP // 2), "expands more than 50 times its"),  # 5 kB in ≈ 40 bytes
        (
            random.Random(0).randbytes(CAP // 2 + 100).hex().encode(),
            "expands beyond the limit of 10,000",
        ),
    ],
    ids=["beyond the ratio", "beyond the cap"],
)
def test_a_gzip_bomb_is_refused(policy, plain, message):
    bomb = gzip.compress(plain)
    r = call(policy, "POST", INFER, bomb, {**JSON, "content-encoding": "gzip"})
    assert r.status_code == 413 and message in r.json()["error"], r.text


def test_gunzip_stops_at_the_limit():
    """A 1 GB bomb costs the 1 MB it may expand to, not 1 GB."""
    bomb = gzip.compress(b"\0" * 50_000_000)
    with pytest.raises(Refused, match="expands beyond the limit of 1,000 bytes"):
        gunzip_bounded(bomb, 1_000, 1e9)


class Body(BaseModel):
    inputs: list[int]


def test_validation_errors_name_fields_without_echoing_values():
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.post("/infer")
    async def infer(body: Body) -> dict:
        return {}

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/infer", json={"inputs": ["secret-value"]})

    r = asyncio.run(go())
    assert r.status_code == 422 and "inputs.0" in r.json()["error"] and "secret-value" not in r.text


def _request(raw: list[bytes], with_contents: bool = False) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="fraud-detector")
    for name in ("A", "B"):
        item = request.inputs.add(name=name, datatype="FP64", shape=[2])
        if with_contents and name == "A":
            item.contents.fp64_contents.extend([1.0, 2.0])
    request.raw_input_contents.extend(raw)
    return request


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_request([b"\0" * 16]), "raw_input_contents has 1 entries for 2 inputs"),
        (_request([b"\0" * 16], with_contents=True), "inputs A also have contents"),
        (_request([b"\0" * 16, b"\0" * 8]), "input B has 8 bytes; shape [2] of FP64 needs 16"),
    ],
    ids=["too few", "mixed with contents", "wrong size"],
)
def test_raw_input_contents_must_match_the_inputs(request_, message):
    with pytest.raises(Refused) as err:
        _check_raw_contents(request_)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and message in err.value.message


def test_raw_input_contents_for_every_input_pass():
    _check_raw_contents(_request([b"\0" * 16, b"\0" * 16]))
    _check_raw_contents(_request([]))
