"""The V2 infer route, served without FastAPI's per-request machinery.

MLServer 1.7.1 answers `POST /v2/models/{name}[/versions/{version}]/infer` through FastAPI:
Starlette's router, `fastapi/routing.py` `get_request_handler` (dependency solving, the body
validated into `InferenceRequest`, the returned `InferenceResponse` validated again against the
route's `response_model`, then `jsonable_encoder`), MLServer's `rest/app.py` `APIRoute` (which
wraps each request in its own `Request` class) and its GZip middleware. On a 1-row request those
layers cost more than the model and MLServer's `DataPlane` together (measured with py-spy under
`python -m reference_app.serving.bench`: ≈ 0.3 of the 1.0 ms of server CPU a request), and the
server, one Python thread, tops out where that CPU runs out.

`InferRoute` is an ASGI middleware placed just inside MLServer's Prometheus middleware (so the
`rest_server_*` metrics the alerts read still count every request, labelled with the route's
path template) and behind the gate (so every limit still holds). It does what MLServer's
`rest/endpoints.py` `Endpoints.infer` does, with the same parts of MLServer:

- the body is validated into `InferenceRequest` by pydantic-core straight from the JSON bytes
  (`model_validate_json`); an invalid body gets 422 with the gate's message (fields, no values);
- the request headers go into the payload (`mlserver.utils.insert_headers`), the payload through
  `DataPlane.infer` (model lookup, MLServer's model metrics, the runtime), the response's headers
  out of it (`extract_headers`);
- an `MLServerError` is answered as `rest/errors.py` `handle_mlserver_error` answers it
  (`{"error": str(exc)}` with the error's status); anything else propagates to Starlette's
  `ServerErrorMiddleware`, as before;
- the response is serialised as FastAPI serialises it for MLServer's routes
  (`response_model_exclude_unset`, `response_model_exclude_none`), by pydantic-core.

Every other route (health, metadata, ready, the repository API behind the gate) still goes
through FastAPI. The infer answers are not gzip-compressed (the GZip middleware is skipped):
a V2 answer of up to `max_batch_rows` scores is a few hundred kB at most, on loopback or in the
cluster.
"""

from __future__ import annotations

import logging
import re
import sys

from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest
from mlserver.utils import extract_headers, insert_headers
from pydantic import ValidationError

from .gate import Refused, _answer, _read, logger, not_a_request

INFER_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(/versions/(?P<version>[^/]+))?/infer$")


# --8<-- [start:infer-route]
class InferRoute:
    """ASGI middleware: `POST …/infer` straight to MLServer's `DataPlane` (module docstring).

    Args:
        app: the rest of the middleware stack (every other request goes there).
        data_plane: the server's `mlserver.handlers.DataPlane`.
        router: the FastAPI app's router: named in the scope, with the matched route's endpoint,
            as Starlette's router names them, so that the Prometheus middleware labels the
            request with the route's path template (`starlette_exporter` drops requests whose
            scope has no endpoint: `filter_unhandled_paths`, on by default).
    """

    def __init__(self, app, data_plane, router):
        self.app, self.data_plane, self.router = app, data_plane, router
        self.endpoints = {
            route.path.endswith("/versions/{model_version}/infer"): route.endpoint
            for route in router.routes
            if getattr(route, "path", "").endswith("/infer")
        }

    async def __call__(self, scope, receive, send):
        found = INFER_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if found is None or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        scope["router"], scope["endpoint"] = self.router, self.endpoints[bool(found["version"])]
        try:
            body = await _read(receive, cap=sys.maxsize)  # capped by the gate, which read it first
        except Refused as refused:  # the client went away
            return await _answer(send, refused.http, refused.message)
        try:
            payload = InferenceRequest.model_validate_json(body)
        except ValidationError as invalid:
            message = not_a_request(invalid.errors())
            logger.info("refused POST %r: 422 %s", scope["path"][:200], message)
            return await _answer(send, 422, message)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        insert_headers(payload, headers)
        try:
            response = await self.data_plane.infer(payload, found["name"], found["version"])
        except MLServerError as err:  # MLServer's REST handler would not log it either: one line
            level = logging.INFO if err.status_code < 500 else logging.ERROR
            logger.log(level, "refused POST %r: %d %s", scope["path"][:200], err.status_code, err)
            return await _answer(send, err.status_code, str(err))
        extra = extract_headers(response) or {}
        content = response.model_dump_json(exclude_unset=True, exclude_none=True).encode()
        start = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            *((k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": start})
        await send({"type": "http.response.body", "body": content})


# --8<-- [end:infer-route]
