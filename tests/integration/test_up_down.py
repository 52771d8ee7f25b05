"""`fraudlab up` / `status` / `down`: the local stack in the background, for labs and learners."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reference_app.launchers.stack import free_port, pid_alive

from .conftest import run_fraudlab

pytestmark = pytest.mark.slow


def test_up_status_down(demo_run, stack_env, stack_settings):
    # Ports of its own: other tests' servers of this session may still be running.
    stack_env = {
        **stack_env,
        **{f"FRAUD_{k}_PORT": str(free_port()) for k in ("MLFLOW", "HTTP", "GRPC", "METRICS")},
    }
    up = run_fraudlab(stack_env, "up", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    record = json.loads((Path(stack_settings.state_dir) / "stack.json").read_text())
    try:
        assert httpx.get(f"{record['mlflow']['url']}/health", timeout=10).status_code == 200
        assert (
            httpx.get(
                f"{record['mlserver']['url']}/v2/models/fraud-detector/ready", timeout=10
            ).status_code
            == 200
        )
        assert httpx.get(record["mlserver"]["metrics_url"], timeout=10).status_code == 200
        status = run_fraudlab(stack_env, "status")
        assert status.returncode == 0 and status.stdout.count("✓") == 2
        again = run_fraudlab(stack_env, "up")  # idempotent: the running stack is reused
        assert (
            again.returncode == 0
            and json.loads((Path(stack_settings.state_dir) / "stack.json").read_text())["mlflow"][
                "pid"
            ]
            == record["mlflow"]["pid"]
        )
    finally:
        down = run_fraudlab(stack_env, "down")
    assert down.returncode == 0 and "stopped mlflow, mlserver" in down.stdout
    assert not pid_alive(record["mlflow"]["pid"]) and not pid_alive(record["mlserver"]["pid"])
    after = run_fraudlab(stack_env, "status")
    assert after.returncode == 1 and "not running" in after.stdout
