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


def test_up_auth_needs_a_password(stack_env):
    result = run_fraudlab(stack_env, "up", "--auth", timeout=60)
    assert result.returncode == 1 and "FRAUD_MLFLOW_ADMIN_PASSWORD" in result.stdout, result.stdout


def test_up_with_auth_locks_mlflow_and_the_model_repository(demo_run, stack_env, stack_settings):
    """`fraudlab up --auth`: MLflow asks for a user (as in kind mode), the model server still loads
    the champion (its MLflow client signs in), and the model repository API needs the stack's
    admin token, which only the stack's own processes get."""
    password = "lab-admin-password"
    stack_env = {
        **stack_env,
        "FRAUD_MLFLOW_ADMIN_PASSWORD": password,
        **{f"FRAUD_{k}_PORT": str(free_port()) for k in ("MLFLOW", "HTTP", "GRPC", "METRICS")},
    }
    up = run_fraudlab(stack_env, "up", "--auth", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    record = json.loads((Path(stack_settings.state_dir) / "stack.json").read_text())
    try:
        search = f"{record['mlflow']['url']}/api/2.0/mlflow/registered-models/search"
        assert httpx.get(search, timeout=10).status_code == 401
        assert httpx.get(search, auth=("admin", password), timeout=10).status_code == 200
        model = f"{record['mlserver']['url']}/v2/models/fraud-detector"
        assert httpx.get(f"{model}/ready", timeout=10).status_code == 200
        token_file = Path(stack_settings.state_dir) / "serving-admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        load = f"{record['mlserver']['url']}/v2/repository/models/fraud-detector/load"
        assert httpx.post(load, timeout=10).status_code == 401
        reloaded = httpx.post(
            load, headers={"authorization": f"Bearer {token_file.read_text()}"}, timeout=120
        )
        assert reloaded.status_code == 200, reloaded.text
    finally:
        down = run_fraudlab(stack_env, "down")
    assert down.returncode == 0
