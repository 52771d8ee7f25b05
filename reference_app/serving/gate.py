"""The gate in front of MLServer: request limits, closed admin routes, known models only.

MLServer 1.7.1 has no setting for any of these (`mlserver/settings.py` `Settings`: no body limit,
no way to turn off the model repository API or the docs; `gzip_enabled` only compresses
responses), so `launchers.mlserver.run_mlserver` builds MLServer's server object itself and puts
this gate in front of it before it starts:

- REST: `RestGate`, an ASGI middleware around MLServer's FastAPI app, outside every route. A body
  above `max_body_bytes` is refused with 413 from its Content-Length before a byte of it is read
  (or as soon as a chunked body passes the cap); a gzip body is decompressed in a worker thread,
  never beyond the cap or `max_gzip_ratio` times its compressed size, then handed on plain
  (MLServer's own `mlserver/rest/requests.py` `Request.body` would decompress it without limit,
  on the event loop). A POST that is not JSON gets 415 without its body echoed (FastAPI would
  validate the raw bytes and return them in a 422). The model repository API (`/v2/repository/…`,
  `mlserver/rest/app.py` `create_app`) answers only with `Authorization: Bearer <admin token>`,
  and not at all without a token; `/v2/docs` and the per-model docs are off.
- gRPC: `GrpcGate`, the first server interceptor: the same credential for the repository RPCs,
  streaming inference off, and `raw_input_contents` checked against the inputs (MLServer's
  `mlserver/raw.py` `inject_raw` fills empty inputs from it in order, so a request that mixes
  both would silently shift inputs). Messages are capped by gRPC itself
  (`grpc_max_message_length`, set to the same cap by `launchers.mlserver`).
- Both: a model name or version from the URL must name a loaded model before MLServer sees it.
  MLServer's `mlserver/handlers/dataplane.py` `DataPlane._infer_contextmanager` labels its
  request metrics with the name and version from the URL *before* looking the model up, so every
  made-up name would grow /metrics for ever. The version in a response (`served_version`, the
  registry's) is addressable: `/v2/models/NAME/versions/V/…` goes to the loaded model when V is
  the version it serves.

Example:
    >>> policy = GatePolicy(max_body_bytes=1_000_000, max_gzip_ratio=100,
    ...                     admin_token=None, registry=registry)       # doctest: +SKIP
    >>> app.add_middleware(RestGate, policy=policy)                      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import zlib
from dataclasses import dataclass
from math import prod

import grpc
from fastapi import status
from fastapi.exceptions import RequestValidationError
from fastapi.requests import Request
from fastapi.responses import JSONResponse
from mlserver.errors import MLServerError, ModelNotFound
from mlserver.registry import MultiModelRegistry

from ..monitoring.metrics import gate_refusals

logger = logging.getLogger("mlserver.gate")
"""A child of MLServer's logger: one line per refused request, in MLServer's log format."""

REPOSITORY_PATH = re.compile(r"^/v2/repository(/|$)")
DOCS_PATH = re.compile(r"^/v2(/models/[^/]+(/versions/[^/]+)?)?/docs(/|$)")
STREAM_PATH = re.compile(r"/(infer|generate)_stream$")
MODEL_PATH = re.compile(
    r"^/v2/models/(?P<name>[^/]+)(/versions/(?P<version>[^/]+))?(?P<rest>/.*)?$"
)
REPOSITORY_RPC = re.compile(
    r"^/inference(\.model_repository\.ModelRepositoryService|\.GRPCInferenceService/Repository)"
)
INFER_RPC = "/inference.GRPCInferenceService/ModelInfer"
STREAM_RPC = "/inference.GRPCInferenceService/ModelStreamInfer"
NAMED_RPCS = {
    "/inference.GRPCInferenceService/ModelMetadata": ("name", "version"),
    "/inference.GRPCInferenceService/ModelReady": ("name", "version"),
    INFER_RPC: ("model_name", "model_version"),
}
RAW_ITEMSIZE = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "FP32": 4,
    "FP64": 8,
}
"""Bytes per value in `raw_input_contents`, as `mlserver/raw.py` `_DatatypeToCtype` unpacks them."""


class Refused(Exception):
    """A request the gate answers itself: HTTP status, gRPC status and a message."""

    def __init__(self, http: int, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.http, self.code, self.message = http, code, message


# --8<-- [start:policy]
@dataclass(frozen=True)
class GatePolicy:
    """What the gate enforces (from `Settings` through `launchers.mlserver.gate_policy`).

    Attributes:
        max_body_bytes: largest request body, compressed or not (REST; gRPC: per message).
        max_gzip_ratio: a gzip body may expand to at most this many times its size.
        admin_token: the bearer token of the model repository API; None: the API is closed.
        registry: MLServer's model registry, to check model names and versions.
    """

    max_body_bytes: int
    max_gzip_ratio: float
    admin_token: str | None
    registry: MultiModelRegistry

    def admin(self, credential: str | None) -> None:
        """Refuse a model repository call without the admin token (always, when there is none)."""
        if self.admin_token is None:
            raise Refused(
                403,
                grpc.StatusCode.PERMISSION_DENIED,
                "the model repository API (load/unload) is closed on this server",
            )
        expected = f"Bearer {self.admin_token}"
        if not credential or not hmac.compare_digest(credential.encode(), expected.encode()):
            raise Refused(
                401,
                grpc.StatusCode.UNAUTHENTICATED,
                "the model repository API (load/unload) needs the admin token: "
                "Authorization: Bearer <token>",
            )

    async def model_version(self, name: str, version: str | None) -> str | None:
        """The version to hand MLServer for a request naming (name, version): `version` when
        MLServer has it, None (the default model) when it is the version the model serves.

        Raises:
            Refused: 404 when no loaded model has that name or version (nothing is recorded).
        """
        try:
            model = await self.registry.get_model(name)
            if not version:
                return None
            if version == getattr(model, "served_version", None):
                return None
            await self.registry.get_model(name, version)
            return version
        except ModelNotFound:
            served = None
            if version:
                try:
                    served = getattr(await self.registry.get_model(name), "served_version", None)
                except ModelNotFound:
                    pass
            message = f"model {name} is not served here"
            if served is not None:
                message = f"model {name} has no version {version} here: it serves version {served}"
            elif version:
                message = f"model {name} version {version} is not served here"
            raise Refused(404, grpc.StatusCode.NOT_FOUND, message) from None

    # --8<-- [end:policy]


def gunzip_bounded(data: bytes, max_bytes: int, max_ratio: float) -> bytes:
    """Decompress one gzip member, stopping as soon as the output passes `max_bytes` or
    `max_ratio` times the compressed size, whichever is smaller.

    Runs in a worker thread (zlib releases the GIL), so the event loop keeps serving.

    Raises:
        Refused: 413 when the output would pass a limit; 400 for data that is not one whole gzip
            member.
    """
    by_ratio = int(len(data) * max_ratio)
    limit = min(max_bytes, by_ratio)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as err:
        raise Refused(400, grpc.StatusCode.INVALID_ARGUMENT, f"bad gzip body: {err}") from None
    if len(out) > limit:
        if by_ratio < max_bytes:
            message = (
                f"gzip body expands more than {max_ratio:g} times its {len(data):,} bytes "
                "(a compression bomb?)"
            )
        else:
            message = f"gzip body expands beyond the limit of {max_bytes:,} bytes"
        raise Refused(413, grpc.StatusCode.RESOURCE_EXHAUSTED, message)
    if not inflater.eof or inflater.unused_data:
        raise Refused(
            400,
            grpc.StatusCode.INVALID_ARGUMENT,
            "bad gzip body: expected exactly one complete gzip member",
        )
    return out


# --8<-- [start:rest]
class RestGate:
    """ASGI middleware in front of MLServer's REST app (see the module docstring)."""

    def __init__(self, app, policy: GatePolicy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            scope = await self._route(scope)
            receive = await self._body(scope, receive)
        except Refused as refused:
            logger.info(
                "refused %s %r: %d %s",
                scope["method"],
                scope["path"][:200],
                refused.http,
                refused.message,
            )
            gate_refusals().labels(protocol="rest", code=str(refused.http)).inc()
            return await _answer(send, refused.http, refused.message, close=refused.http == 413)
        return await self.app(scope, receive, send)

    async def _route(self, scope) -> dict:
        path = scope["path"]
        if REPOSITORY_PATH.match(path):
            self.policy.admin(_header(scope, b"authorization"))
        elif DOCS_PATH.match(path):
            raise Refused(404, grpc.StatusCode.NOT_FOUND, "API docs are off on this server")
        elif STREAM_PATH.search(path):
            raise Refused(
                404,
                grpc.StatusCode.NOT_FOUND,
                "streaming inference is off on this server: POST …/infer",
            )
        elif found := MODEL_PATH.match(path):
            name, version = found["name"], found["version"]
            if await self.policy.model_version(name, version) is None and version:
                path = f"/v2/models/{name}{found['rest'] or ''}"  # the model it serves
                scope = {**scope, "path": path, "raw_path": path.encode()}
        return scope

    async def _body(self, scope, receive):
        """Check the body's size, type and encoding; return a `receive` that replays it."""
        length = _header(scope, b"content-length")
        if length is not None and (
            not length.isdigit() or int(length) > self.policy.max_body_bytes
        ):
            raise Refused(
                413,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body of {length} bytes is above the limit of "
                f"{self.policy.max_body_bytes:,} bytes",
            )
        if scope["method"] != "POST":
            return receive
        kind = (_header(scope, b"content-type") or "application/json").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            raise Refused(
                415,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Content-Type {kind[:60]} is not accepted: send application/json "
                "(a V2 inference request)",
            )
        encoding = (_header(scope, b"content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise Refused(
                415,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Content-Encoding {encoding[:60]} is not accepted: gzip or none",
            )
        body = await _read(receive, self.policy.max_body_bytes)
        headers = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-length", b"content-encoding")
        ]
        if encoding == "gzip":
            limits = (self.policy.max_body_bytes, self.policy.max_gzip_ratio)
            body = await asyncio.to_thread(gunzip_bounded, body, *limits)
        scope["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
        return _replay(body, receive)

    # --8<-- [end:rest]


async def _read(receive, cap: int) -> bytes:
    """The whole request body, refusing it as soon as it passes `cap` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, grpc.StatusCode.CANCELLED, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise Refused(
                413,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body is above the limit of {cap:,} bytes",
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # a disconnect, for handlers that watch for it

    return replay


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _answer(send, status_code: int, message: str, close: bool = False) -> None:
    """An error answer in MLServer's shape (`{"error": "…"}`, `mlserver/rest/errors.py`)."""
    body = json.dumps({"error": message}, ensure_ascii=False).encode()  # UTF-8, as MLServer
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of a refused body is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A body that is not a V2 inference request: 422 naming the fields, never echoing values.

    FastAPI's default handler (`fastapi/exception_handlers.py`
    `request_validation_exception_handler`) returns each error's `input`, i.e. the client's data.
    """
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        content={"error": not_a_request(exc.errors())},
    )


def not_a_request(errors: list[dict]) -> str:
    """The message for a body that fails validation: the first five fields and what is wrong,
    never the values (pydantic's error dicts carry them as `input`)."""
    problems = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "not a V2 inference request: " + "; ".join(problems) + more


# --8<-- [start:grpc]
class GrpcGate(grpc.aio.ServerInterceptor):
    """gRPC server interceptor in front of MLServer's servicers (see the module docstring)."""

    def __init__(self, policy: GatePolicy):
        self.policy = policy

    async def intercept_service(self, continuation, details):
        method = details.method
        if REPOSITORY_RPC.match(method):
            try:
                self.policy.admin(dict(details.invocation_metadata or ()).get("authorization"))
            except Refused as refused:
                return _refusal(refused)
        if method == STREAM_RPC:
            return _refusal(
                Refused(
                    404,
                    grpc.StatusCode.UNIMPLEMENTED,
                    "streaming inference is off on this server: call ModelInfer",
                )
            )
        handler = await continuation(details)
        if method not in NAMED_RPCS or handler is None or handler.unary_unary is None:
            return handler
        name_field, version_field = NAMED_RPCS[method]
        behaviour = handler.unary_unary

        async def checked(request, context):
            try:
                if method == INFER_RPC:
                    _check_raw_contents(request)
                version = getattr(request, version_field) or None
                resolved = await self.policy.model_version(getattr(request, name_field), version)
                if version and resolved is None:
                    setattr(request, version_field, "")  # the model it serves
            except Refused as refused:
                logger.info("refused %s: %s", method, refused.message)
                gate_refusals().labels(protocol="grpc", code=refused.code.name).inc()
                await context.abort(refused.code, refused.message)
            return await behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            checked,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    # --8<-- [end:grpc]


def _refusal(refused: Refused) -> grpc.RpcMethodHandler:
    async def abort(request, context):
        logger.info("refused gRPC call: %s", refused.message)
        gate_refusals().labels(protocol="grpc", code=refused.code.name).inc()
        await context.abort(refused.code, refused.message)

    return grpc.unary_unary_rpc_method_handler(abort)


def _check_raw_contents(request) -> None:
    """`raw_input_contents`: one entry per input, no input with `contents` too, each the size its
    shape and datatype say (otherwise MLServer shifts inputs or fails with a 500)."""
    raw = request.raw_input_contents
    if not raw:
        return
    inputs = request.inputs
    mixed = [i.name for i in inputs if i.HasField("contents")]
    if mixed or len(raw) != len(inputs):
        raise Refused(
            400,
            grpc.StatusCode.INVALID_ARGUMENT,
            f"raw_input_contents has {len(raw)} entries for {len(inputs)} inputs"
            + (f", and inputs {', '.join(mixed[:3])} also have contents" if mixed else "")
            + ": send every input raw, or none",
        )
    for item, data in zip(inputs, raw, strict=True):
        size = RAW_ITEMSIZE.get(item.datatype)
        expected = prod(item.shape) * size if size else None
        if expected is not None and len(data) != expected:
            raise Refused(
                400,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"raw_input_contents for input {item.name} has {len(data)} bytes; shape "
                f"{list(item.shape)} of {item.datatype} needs {expected}",
            )


class QuietClientErrors(logging.Filter):
    """Log a client error (an `MLServerError` with a 4xx status) as one line, no traceback.

    MLServer's gRPC servicers log every error with its traceback (`mlserver/grpc/utils.py`
    `handle_mlserver_error`: `logger.exception(err)`), a 400 as loudly as a crash.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, MLServerError) and error.status_code < 500:
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "client error (%d): %s", (error.status_code, error)
        return True
