"""labs/labkit.py's pure helpers: hints, settings, the local stack file, manifests, percentiles."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from .conftest import load_lab_module


@pytest.fixture(scope="module")
def labkit():
    load_lab_module(0)
    import labkit

    return labkit


def test_hint_has_expected_found_and_debug_lines(labkit):
    assert labkit.hint("a", "b", labkit.kubectl("get nodes")).splitlines() == [
        "expected: a",
        "found:    b",
        "debug:    kubectl --context kind-fraud-lab get nodes",
    ]
    assert labkit.hint("a", "b").count("\n") == 1


def test_settings_come_from_environment_then_dotenv_then_defaults(labkit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRAUD_DATA_DIR", raising=False)
    assert labkit.setting("FRAUD_DATA_DIR") == "data"
    (tmp_path / ".env").write_text("# local\nFRAUD_DATA_DIR='/srv/fraud'\n")
    assert labkit.setting("FRAUD_DATA_DIR") == "/srv/fraud"
    monkeypatch.setenv("FRAUD_DATA_DIR", "/elsewhere")
    assert labkit.setting("FRAUD_DATA_DIR") == "/elsewhere"


def test_local_endpoints_from_the_stack_file(labkit, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    ep = labkit.local_endpoints()
    assert (
        ep.problem == f"no {tmp_path}/state/stack.json (the local stack is not running)"
        and ep.fix == "make up"
    )
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "stack.json").write_text("{not json")
    assert "is not a stack file" in labkit.local_endpoints().problem
    stack = {
        "mlflow": {"pid": os.getpid(), "url": "http://127.0.0.1:5000/", "log": "/tmp/m.log"},
        "mlserver": {
            "pid": os.getpid(),
            "url": "http://127.0.0.1:8080",
            "grpc": "127.0.0.1:8081",
            "metrics_url": "http://127.0.0.1:8082/metrics",
            "log": "/tmp/s.log",
        },
        "prometheus": {"pid": os.getpid(), "url": "http://127.0.0.1:9090"},
    }
    (tmp_path / "state" / "stack.json").write_text(json.dumps(stack))
    ep = labkit.local_endpoints()
    assert ep.problem is None
    assert (ep.mlflow, ep.model, ep.model_grpc, ep.metrics, ep.prometheus) == (
        "http://127.0.0.1:5000",
        "http://127.0.0.1:8080",
        "127.0.0.1:8081",
        "http://127.0.0.1:8082/metrics",
        "http://127.0.0.1:9090",
    )
    assert ep.log_command("mlserver") == "tail -n 30 /tmp/s.log"
    stack["mlflow"]["pid"] = 2**22 + 12345  # above any pid_max: no such process
    (tmp_path / "state" / "stack.json").write_text(json.dumps(stack))
    assert labkit.local_endpoints().problem.endswith(
        f"lists mlflow but no such process runs (pid {2**22 + 12345})"
    )


def test_cluster_endpoints_read_the_generated_credentials(labkit, monkeypatch, tmp_path):
    secrets = tmp_path / "mlflow.env"
    monkeypatch.setattr(labkit, "MLFLOW_SECRETS_FILE", secrets)
    monkeypatch.setattr(labkit, "REPO_ROOT", tmp_path)
    assert labkit.cluster_endpoints().fix == "make secrets && make deploy"
    secrets.write_text("FRAUD_MLFLOW_ADMIN_USERNAME=admin\nFRAUD_MLFLOW_ADMIN_PASSWORD=s3cret\n")
    ep = labkit.cluster_endpoints()
    assert ep.problem is None and ep.mlflow_auth == ("admin", "s3cret")
    assert (ep.mlflow, ep.model, ep.prometheus) == (
        "http://127.0.0.1:30500",
        "http://127.0.0.1:30080",
        "http://127.0.0.1:30090",
    )
    # Hints never print the password.
    assert "s3cret" not in labkit.curl(
        ep.mlflow + "/api/2.0/mlflow/experiments/search", ep.mlflow_auth
    )


def test_required_pools(labkit):
    def affinity(*terms):
        return {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": list(terms)
                    }
                }
            }
        }

    data = {
        "matchExpressions": [{"key": "fraud-lab.io/pool", "operator": "In", "values": ["data"]}]
    }
    other = {
        "matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]
    }
    assert labkit.required_pools({}) is None
    assert labkit.required_pools(affinity(data)) == {"data"}
    assert (
        labkit.required_pools(affinity(data, other)) is None
    )  # terms are ORed: the second allows any pool
    assert labkit.required_pools({"nodeSelector": {"fraud-lab.io/pool": "serving"}}) == {"serving"}
    assert labkit.required_pools(
        {**affinity(data), "nodeSelector": {"nvidia.com/gpu.present": "true"}}
    ) == {"data"}


def test_resource_problems_and_env(labkit):
    assert labkit.resource_problems(None) == ["no such container"]
    assert labkit.resource_problems({"resources": {"requests": {"cpu": "1"}}}) == [
        "resources.requests.memory",
        "resources.limits.memory",
    ]
    container = {
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ]
    }
    assert labkit.env_value(container, "A") == "1" and labkit.env_value(container, "B") is None
    assert (
        labkit.env_from_secret(container, "B") == ("s", "k")
        and labkit.env_from_secret(container, "A") is None
    )


def test_manifest_problems(labkit):
    good = {
        "rows": 3,
        "digest": "a" * 64,
        "files": [{"name": "x", "rows": 1}, {"name": "y", "rows": 2}],
    }
    assert labkit.manifest_problems(good) == []
    assert labkit.manifest_problems({**good, "rows": 4}) == [
        "its 2 files hold 3 rows, the manifest says 4"
    ]
    assert labkit.manifest_problems({"rows": 0, "digest": "x"}) == [
        "rows is 0",
        "digest is 'x', not a SHA-256",
        "no file listed",
    ]


def test_percentile_matches_numpy(labkit):
    values = list(np.random.default_rng(3).exponential(10, size=57))
    for q in (50, 95, 99):
        assert labkit.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_bounded_calls_stop_waiting(labkit):
    import time

    with pytest.raises(labkit.Timeout, match="did not answer within 1 s"):
        labkit.bounded(lambda: time.sleep(5), 1, "the sleeper")
    assert labkit.bounded(lambda: 42, 1) == 42
    assert labkit.wait_until(lambda: False, 0.3, interval=0.1) is False


def test_job_state(labkit):
    assert labkit.job_succeeded({"status": {"succeeded": 1}})
    assert labkit.job_succeeded(
        {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    )
    failed = {
        "status": {
            "failed": 9,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        }
    }
    assert not labkit.job_succeeded(failed)
    assert (
        labkit.job_state(failed)
        == "0 active, 0 succeeded, 9 failed pods (Failed: BackoffLimitExceeded)"
    )


def test_git_commit_tags(labkit):
    sha = "a2a027ef4a89b746008082c51e35a4419dbae6d7"
    assert labkit.GIT_SHA.match(sha) and labkit.GIT_SHA.match(
        sha + "-dirty"
    )  # scripts/images.sh on a dirty tree
    assert not labkit.GIT_SHA.match("unknown")
