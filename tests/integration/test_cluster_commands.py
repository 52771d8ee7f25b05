"""The kind-mode commands in local mode: the pipeline command, train without promotion then
`fraudlab promote`, and MLflow with basic auth — each against real servers."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from mlflow.tracking import MlflowClient

from reference_app.config import Settings
from reference_app.launchers.stack import free_port, start_mlflow

from .conftest import run_fraudlab

pytestmark = pytest.mark.slow


def test_pipeline_command_reuses_the_demo_datasets(demo_run, stack_env):
    """`fraudlab pipeline` runs the DAG's data steps with the Argo template's arguments, in order."""
    result = run_fraudlab(stack_env, "pipeline")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    steps = [ln for ln in lines if ln.startswith("▸ ")]
    assert steps == [
        "▸ simulate: fraudlab simulate",
        "▸ validate: fraudlab validate --max-quarantine 0.001",
        "▸ features: fraudlab features",
    ]
    assert sum(ln.startswith("reused ") for ln in lines) == 3, result.stdout


def test_pipeline_through_an_unknown_step_lists_the_steps(stack_env):
    result = run_fraudlab(stack_env, "pipeline", "--through", "trian")
    assert (
        result.returncode == 2
        and "no pipeline step 'trian'; the steps: simulate, validate, features" in result.stdout
    )


def test_promote_undecided_decides_every_new_version_in_order(demo_run, mlflow_server, stack_env):
    """The pipeline's promote step: every version the parallel train steps registered gets its alias."""
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    for model in ("logistic_regression", "logistic_regression"):
        trained = run_fraudlab(stack_env, "train", "--model", model, "--no-promote", "--force")
        assert trained.returncode == 0, trained.stdout + trained.stderr
    versions = sorted(
        int(v.version) for v in client.search_model_versions("name = 'fraud-detector'")
    )
    new = versions[-2:]
    # Lab 07: the pipeline's model-tests step first; each new version's run gets the verdict.
    tested = run_fraudlab(stack_env, "model-test", "--undecided")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert [
        ln.split(" (run")[0] for ln in tested.stdout.splitlines() if "model tests passed" in ln
    ] == [f"fraud-detector version {v}" for v in new]
    for v in new:
        run = client.get_run(client.get_model_version("fraud-detector", str(v)).run_id)
        assert run.data.tags["model_tests_passed"] == "true"
        assert "model_tests/report.json" in [
            a.path for a in client.list_artifacts(run.info.run_id, "model_tests")
        ]
    promoted = run_fraudlab(stack_env, "promote", "--undecided")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    decided = [ln for ln in promoted.stdout.splitlines() if "→ alias" in ln]
    assert [ln.split(":")[0] for ln in decided] == [f"fraud-detector version {v}" for v in new]
    for v in new:
        assert client.get_model_version("fraud-detector", str(v)).tags["promotion_decision"] in {
            "champion",
            "challenger",
        }
    again = run_fraudlab(stack_env, "promote", "--undecided")
    assert again.returncode == 0 and "every version is decided already" in again.stdout
    both = run_fraudlab(stack_env, "promote", "--undecided", "--version", "1")
    assert both.returncode == 2 and "exclude each other" in both.stdout


def test_model_tests_step_tests_a_champion_that_has_no_verdict(demo_run, mlflow_server, stack_env):
    """A champion promoted before the model tests existed (no verdict on its run) is tested by
    the next model-tests step, once; a tested champion is not tested again."""
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    champion = client.get_model_version_by_alias("fraud-detector", "champion")
    client.delete_tag(champion.run_id, "model_tests_passed")
    tested = run_fraudlab(stack_env, "model-test", "--undecided")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert f"fraud-detector version {champion.version} (run " in tested.stdout, tested.stdout
    assert client.get_run(champion.run_id).data.tags["model_tests_passed"] == "true"
    again = run_fraudlab(stack_env, "model-test", "--undecided")
    assert f"fraud-detector version {champion.version} (run " not in again.stdout, again.stdout


def test_wait_champion_finds_it_or_times_out(demo_run, mlflow_server, stack_env):
    found = run_fraudlab(stack_env, "wait-champion", "--timeout", "30")
    assert found.returncode == 0 and "fraud-detector@champion is version" in found.stdout, (
        found.stdout + found.stderr
    )
    missing = run_fraudlab(
        {**stack_env, "FRAUD_MODEL_NAME": "no-such-model"}, "wait-champion", "--timeout", "1"
    )
    assert (
        missing.returncode == 1
        and "no version of no-such-model has the alias champion after 1 s" in missing.stdout
    )


def test_replay_waits_for_the_model_then_says_why_it_gave_up(stack_env):
    port = free_port()
    result = run_fraudlab(
        stack_env, "replay", "--url", f"http://127.0.0.1:{port}", "--wait-ready", "1"
    )
    assert (
        result.returncode == 1
        and f"model not ready at http://127.0.0.1:{port}/v2/models/fraud-detector/ready after 1 s"
        in result.stdout
    )


def test_train_without_promotion_then_promote(mlflow_server, stack_env):
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    champion_before = client.get_model_version_by_alias("fraud-detector", "champion").version
    trained = run_fraudlab(
        stack_env, "train", "--model", "logistic_regression", "--no-promote", "--force"
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    new = max(int(v.version) for v in client.search_model_versions("name = 'fraud-detector'"))
    assert (
        f"registered fraud-detector version {new}; run `fraudlab model-test --version {new}`, "
        f"then `fraudlab promote --version {new}`" in trained.stdout
    )
    assert client.get_model_version("fraud-detector", str(new)).aliases == []
    untested = run_fraudlab(stack_env, "promote", "--version", str(new))
    assert untested.returncode == 0 and (
        f"version {new}: " in untested.stdout
        and "→ blocked, no alias: fails the model tests: they did not run" in untested.stdout
    ), untested.stdout
    # Blocked only for want of model tests: still undecided, so --undecided decides it again.
    assert client.get_model_version("fraud-detector", str(new)).tags["model_tests_ran"] == "false"
    tested = run_fraudlab(stack_env, "model-test")  # defaults to the latest version
    assert tested.returncode == 0 and f"version {new} (run " in tested.stdout, tested.stdout
    promoted = run_fraudlab(stack_env, "promote", "--undecided")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    # The retrained logistic regression equals the first one, which lost to the champion.
    assert f"version {new}:" in promoted.stdout and "→ alias challenger" in promoted.stdout
    version = client.get_model_version("fraud-detector", str(new))
    assert (
        version.aliases == ["challenger"]
        and version.tags["compared_with_champion"] == champion_before
    )
    assert (
        client.get_model_version_by_alias("fraud-detector", "champion").version == champion_before
    )


def test_promote_without_versions_is_a_clear_error(tmp_path, mlflow_server, stack_env):
    env = {**stack_env, "FRAUD_MODEL_NAME": "no-such-model"}
    result = run_fraudlab(env, "promote")
    assert result.returncode == 2 and "has no registered version" in result.stdout


def test_mlflow_basic_auth(tmp_path):
    password = "correct-horse-battery-staple"
    settings = Settings(
        data_dir=str(tmp_path), mlflow_auth=True, mlflow_admin_password=password,
        mlflow_allowed_hosts="127.0.0.1:*,localhost:*", mlflow_prometheus_dir=str(tmp_path / "prometheus"),
    )  # fmt: skip
    with start_mlflow(settings, free_port()) as server:
        search = f"{server.url}/api/2.0/mlflow/experiments/search?max_results=1"
        assert (
            httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        )  # probes need no user
        assert httpx.get(search, timeout=10).status_code == 401
        assert httpx.get(search, auth=("admin", "wrong"), timeout=10).status_code == 401
        assert httpx.get(search, auth=("admin", password), timeout=10).status_code == 200
        # Prometheus metrics (the ServiceMonitor scrapes them with the same user).
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 401
        metrics = httpx.get(f"{server.url}/metrics", auth=("admin", password), timeout=10)
        assert metrics.status_code == 200 and "mlflow_http_request" in metrics.text, metrics.text[
            :500
        ]
        # Host-header protection: a name outside the allowed list is refused.
        assert (
            httpx.get(
                search, auth=("admin", password), headers={"Host": "evil.example:80"}, timeout=10
            ).status_code
            == 403
        )
        # The MLflow client authenticates with MLflow's own variables (set from a Secret in kind).
        code = f"import mlflow; mlflow.set_tracking_uri({server.url!r}); print(mlflow.create_experiment('auth-check'))"
        env = {
            **os.environ,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": password,
        }
        ok = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert ok.returncode == 0, ok.stderr[-2000:]


def test_mlflow_auth_without_password_is_refused(tmp_path):
    env = {"FRAUD_DATA_DIR": str(tmp_path), "FRAUD_MLFLOW_AUTH": "true"}
    result = run_fraudlab(env, "mlflow", "--port", str(free_port()), timeout=60)
    assert result.returncode == 2 and "FRAUD_MLFLOW_ADMIN_PASSWORD is not set" in result.stdout
