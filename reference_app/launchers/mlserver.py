"""Write MLServer's settings for the fraud runtime and start it, behind the gate.

`fraudlab serve` calls `write_mlserver_config`, then `run_mlserver`; the same command runs in a
container (kind mode, the SeldonDeployment) with `FRAUD_SERVE_HOST=0.0.0.0`.

`run_mlserver` does what `mlserver start <folder>` does (`mlserver/cli/main.py` `main` and
`start`: uvloop, `load_settings`, `MLServer(settings).start(models)`), with one step between
building the server and starting it: `install_gate` puts `serving.gate` in front of it. MLServer
1.7.1 has no setting for a body limit, for closing the model repository API or the docs, or for
a gRPC interceptor (`mlserver/settings.py` `Settings`), so the gate is added to the objects
`MLServer.__init__` builds (`mlserver/server.py`): an ASGI middleware on the REST server's
FastAPI app, and a gRPC server with the gate's interceptor first (`GatedGRPCServer`).

Example:
    >>> folder = write_mlserver_config(Settings(), Path("/tmp/mlserver"))   # doctest: +SKIP
    >>> run_mlserver(Settings(), folder)                                     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import Settings
from ..features import FEATURE_NAMES
from ..serving.runtime import RuntimeParameters
from ..tracking import OUTPUT_NAME

RUNTIME = "reference_app.serving.runtime.FraudRuntime"
ADMIN_TOKEN_FILE = "serving-admin-token"
"""Under `state_dir`: local mode's model repository credential (mode 0600)."""


def runtime_parameters(settings: Settings) -> dict:
    """The `parameters.extra` of the fraud runtime's model settings (see `RuntimeParameters`)."""
    return RuntimeParameters(
        tracking_uri=settings.mlflow_tracking_uri,
        flag_threshold=settings.flag_threshold,
        max_batch_rows=settings.max_batch_rows,
        micro_batching=settings.micro_batching,
    ).model_dump()


# --8<-- [start:metadata]
def model_metadata() -> dict:
    """The model's inputs and output for the V2 metadata endpoint (`GET /v2/models/<name>`).

    MLServer returns a model settings' `inputs` and `outputs` as they are (`mlserver/model.py`
    `MLModel.metadata`): one FP64 input per feature and one FP64 output, each of shape [-1]
    (one value per transaction; [n, 1] is accepted too).
    """
    return {
        "inputs": [{"name": name, "datatype": "FP64", "shape": [-1]} for name in FEATURE_NAMES],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP64", "shape": [-1]}],
    }


# --8<-- [end:metadata]


def write_mlserver_config(settings: Settings, folder: Path) -> Path:
    """Write `settings.json` and `<model>/model-settings.json` for MLServer into `folder`.

    Returns:
        The folder to pass to `run_mlserver` (or `mlserver start`, without the gate).
    """
    model_dir = folder / settings.model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    server = {
        # NOTE: debug off, or MLServer returns Python tracebacks in 500 bodies.
        "debug": False,
        "host": settings.serve_host,
        "http_port": settings.http_port,
        "grpc_port": settings.grpc_port,
        "metrics_port": settings.metrics_port,
        "metrics_endpoint": "/metrics",
        # NOTE: inference in the server process; scale with replicas, not a worker pool.
        "parallel_workers": 0,
        "load_models_at_startup": True,
        # gRPC refuses a larger message itself, before parsing (RESOURCE_EXHAUSTED); REST: the gate.
        "grpc_max_message_length": settings.max_body_bytes,
    }
    model = {
        "name": settings.model_name,
        "implementation": RUNTIME,
        **model_metadata(),
        # What the runtime needs, in its model settings (as MLServer's own runtimes read theirs).
        "parameters": {"uri": settings.model_uri, "extra": runtime_parameters(settings)},
    }
    (folder / "settings.json").write_text(json.dumps(server, indent=2))
    (model_dir / "model-settings.json").write_text(json.dumps(model, indent=2))
    return folder


def admin_token(settings: Settings, create: bool = False) -> str | None:
    """The model repository API's bearer token: `FRAUD_SERVING_ADMIN_TOKEN`, else the one local
    mode keeps in `<state_dir>/serving-admin-token` (made when `create`, by `fraudlab up`).

    Returns:
        The token, or None: the server closes the API, clients cannot reload it.
    """
    if settings.serving_admin_token is not None:
        return settings.serving_admin_token.get_secret_value()
    path = Path(settings.state_dir) / ADMIN_TOKEN_FILE
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip() if path.exists() else None


def _gated_grpc_server_class():
    """`GatedGRPCServer`, defined on first use: importing MLServer's gRPC stack is slow."""
    from grpc import aio
    from mlserver.grpc.dataplane_pb2_grpc import add_GRPCInferenceServiceServicer_to_server
    from mlserver.grpc.interceptors import PromServerInterceptor
    from mlserver.grpc.server import DefaultGrpcWorkers, GRPCServer
    from mlserver.grpc.servicers import InferenceServicer

    from ..serving.gate import GrpcGate

    class GatedGRPCServer(GRPCServer):
        """MLServer's gRPC server with the gate's interceptor first.

        `_create_server` follows `mlserver/grpc/server.py` `GRPCServer._create_server` (1.7.1),
        which fixes its interceptors when it builds the `grpc.aio` server, with two changes: the
        gate comes first, and the deprecated `inference.model_repository.ModelRepositoryService`
        (a second copy of load/unload) is not registered. The debug logging and tracing
        interceptors are left out: our settings turn both off (checked).
        """

        def __init__(self, settings, data_plane, model_repository_handlers, gate: GrpcGate):
            super().__init__(settings, data_plane, model_repository_handlers)
            self._gate = gate

        def _create_server(self):
            if self._settings.debug or self._settings.tracing_server:
                raise ValueError("the gated gRPC server supports neither debug nor tracing_server")
            self._inference_servicer = InferenceServicer(
                self._data_plane, self._model_repository_handlers
            )
            self._interceptors = [self._gate]
            if self._settings.metrics_endpoint:
                self._interceptors.append(
                    PromServerInterceptor(enable_handling_time_histogram=True)
                )
            self._server = aio.server(
                ThreadPoolExecutor(max_workers=DefaultGrpcWorkers),
                interceptors=list(self._interceptors),
                options=self._get_options(),
            )
            add_GRPCInferenceServiceServicer_to_server(self._inference_servicer, self._server)
            self._server.add_insecure_port(f"{self._settings.host}:{self._settings.grpc_port}")
            return self._server

    return GatedGRPCServer


# --8<-- [start:install-gate]
def install_gate(server, settings: Settings) -> None:
    """Put `serving.gate` in front of a built, not yet started `mlserver.MLServer`.

    Relies on what `MLServer.__init__` builds (`mlserver/server.py`): `_model_registry`,
    `_data_plane`, `_model_repository_handlers`, `_rest_server` (whose `_app` is the FastAPI app
    `mlserver/rest/server.py` `RESTServer.__init__` creates and hands uvicorn at start) and
    `_grpc_server` (whose server is only created in `start`, so it can still be replaced).
    """
    from fastapi.exceptions import RequestValidationError
    from mlserver.grpc.logging import logger as grpc_logger
    from starlette.middleware import Middleware
    from starlette_exporter import PrometheusMiddleware

    from ..serving.gate import GatePolicy, GrpcGate, QuietClientErrors, RestGate, validation_error
    from ..serving.infer_route import InferRoute

    policy = GatePolicy(
        max_body_bytes=settings.max_body_bytes,
        max_gzip_ratio=settings.max_gzip_ratio,
        admin_token=admin_token(settings),
        registry=server._model_registry,
    )
    app = server._rest_server._app
    # Innermost but one: inside MLServer's Prometheus middleware (rest_server_* metrics), before
    # its GZip middleware and FastAPI's routing (serving/infer_route.py says why).
    inner = [m.cls for m in app.user_middleware].index(PrometheusMiddleware) + 1
    app.user_middleware.insert(
        inner, Middleware(InferRoute, data_plane=server._data_plane, router=app.router)
    )
    app.add_middleware(RestGate, policy=policy)  # outermost: before routing, metrics, parsing
    app.add_exception_handler(RequestValidationError, validation_error)
    server._grpc_server = _gated_grpc_server_class()(
        server._settings, server._data_plane, server._model_repository_handlers, GrpcGate(policy)
    )
    grpc_logger.addFilter(QuietClientErrors())


# --8<-- [end:install-gate]


async def _serve(settings: Settings, folder: Path) -> None:
    from mlserver import MLServer
    from mlserver.cli.serve import load_settings

    mlserver_settings, models = await load_settings(str(folder))
    server = MLServer(mlserver_settings)  # inside the loop: it installs signal handlers on it
    install_gate(server, settings)
    logging.getLogger("mlserver").info(
        "gate: body limit %d bytes, gzip ratio %g, model repository API %s, docs off",
        settings.max_body_bytes,
        settings.max_gzip_ratio,
        "behind the admin token" if admin_token(settings) else "closed",
    )
    await server.start(models)


def run_mlserver(settings: Settings, folder: Path) -> None:
    """Run MLServer on the config in `folder` (from `write_mlserver_config`), behind the gate,
    until SIGINT/SIGTERM (`mlserver/server.py` `MLServer._add_signal_handlers`)."""
    from mlserver.utils import install_uvloop_event_loop

    install_uvloop_event_loop()
    asyncio.run(_serve(settings, folder))
