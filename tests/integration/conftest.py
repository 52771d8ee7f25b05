"""Real local stack for integration tests: `fraudlab demo` on reduced data, MLflow and MLServer on
free 127.0.0.1 ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference_app.config import Settings
from reference_app.launchers.mlserver import admin_token
from reference_app.launchers.stack import free_port, start_mlflow, start_mlserver

# --8<-- [start:stack-env]
# Handbook density (1 customer : 2 terminals) at 40 % of the population, 60 days; the protocol
# moves to May so the 30-day windows have history. The gate is relaxed for the smaller data.
# The demo's tuning (lab 14) validates on 2 prequential folds: 4 would reach back into March.
SCALE_ENV = {
    "FRAUD_N_CUSTOMERS": "2000",
    "FRAUD_N_TERMINALS": "4000",
    "FRAUD_NB_DAYS": "60",
    "FRAUD_TRAIN_START": "2018-05-01",
    "FRAUD_GATE_MIN_AUC": "0.75",
    "FRAUD_GATE_MIN_AP": "0.40",
    "FRAUD_TUNE_FOLDS": "2",
}
REPLAY_DAY = "2018-05-15"
FRAUDLAB = str(Path(sys.executable).parent / "fraudlab")


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory) -> dict[str, str]:
    """Environment of a local stack whose ports are all free."""
    data_dir = tmp_path_factory.mktemp("stack") / "data"
    mlflow_port = free_port()
    return {
        **SCALE_ENV,
        "FRAUD_DATA_DIR": str(data_dir),
        "FRAUD_MLFLOW_PORT": str(mlflow_port),
        "FRAUD_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "FRAUD_HTTP_PORT": str(free_port()),
        "FRAUD_GRPC_PORT": str(free_port()),
        "FRAUD_METRICS_PORT": str(free_port()),
    }


# --8<-- [end:stack-env]


def run_fraudlab(
    env: dict[str, str], *args: str, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run the `fraudlab` CLI with `env` on top of the current environment."""
    return subprocess.run(
        [FRAUDLAB, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def demo_run(stack_env):
    """The main job, end to end, on reduced data (first run: nothing to reuse)."""
    result = run_fraudlab(stack_env, "demo", "--replay-day", REPLAY_DAY)
    assert result.returncode == 0, (
        f"fraudlab demo failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.fixture(scope="session")
def stack_settings(stack_env) -> Settings:
    """Settings of the test stack, built from its environment without touching os.environ
    (other test folders in the same session must see the defaults)."""
    return Settings(**{key[len("FRAUD_") :].lower(): value for key, value in stack_env.items()})


@pytest.fixture(scope="session")
def mlflow_server(demo_run, stack_settings):
    """MLflow on the demo's SQLite store (the demo stopped its own server)."""
    with start_mlflow(stack_settings) as server:
        yield server


@pytest.fixture(scope="session")
def mlserver(mlflow_server, stack_settings):
    """MLServer with the fraud runtime serving the champion; its model repository API answers the
    admin token `fraudlab up` would make (`admin_token`), as in local mode."""
    admin_token(stack_settings, create=True)
    with start_mlserver(stack_settings) as server:
        yield server
