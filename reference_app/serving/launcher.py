"""Write MLServer's settings for the fraud runtime and start it.

`fraudlab serve` calls `write_mlserver_config` then runs `mlserver start <dir>`; the same files
work in a container (kind mode) with `FRAUD_SERVE_HOST=0.0.0.0`.

Example:
    >>> folder = write_mlserver_config(Settings(), Path("/tmp/mlserver"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Settings

RUNTIME = "reference_app.serving.runtime.FraudRuntime"


def write_mlserver_config(settings: Settings, folder: Path) -> Path:
    """Write `settings.json` and `<model>/model-settings.json` for MLServer into `folder`.

    Returns:
        The folder to pass to `mlserver start`.
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
    }
    model = {
        "name": settings.model_name,
        "implementation": RUNTIME,
        "parameters": {"uri": settings.model_uri},
    }
    (folder / "settings.json").write_text(json.dumps(server, indent=2))
    (model_dir / "model-settings.json").write_text(json.dumps(model, indent=2))
    return folder
