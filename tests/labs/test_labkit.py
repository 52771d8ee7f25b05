"""The labs/labkit package's pure helpers: hints, settings, the local stack file, manifests, percentiles."""

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
    monkeypatch.setattr(labkit.endpoints, "MLFLOW_SECRETS_FILE", secrets)
    monkeypatch.setattr(labkit.endpoints, "REPO_ROOT", tmp_path)
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
    # Terms are ORed: the second allows any pool.
    assert labkit.required_pools(affinity(data, other)) is None
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
    # scripts/images.sh marks a commit built from a dirty tree.
    assert labkit.GIT_SHA.match(sha) and labkit.GIT_SHA.match(sha + "-dirty")
    assert not labkit.GIT_SHA.match("unknown")


# --- the package: its parts and what the checks use ------------------------------------------------
PARTS = ("names", "hints", "endpoints", "http", "waits", "cluster", "objects", "datasets")


def test_the_package_re_exports_every_public_name_of_its_parts(labkit):
    import importlib

    for part in (*PARTS, "reporter"):
        module = importlib.import_module(f"labkit.{part}")
        assert module.__doc__ and module.__doc__.strip(), f"labkit/{part}.py has no docstring"
    for part in PARTS:
        module = importlib.import_module(f"labkit.{part}")
        own = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", module.__name__) == module.__name__
            and not isinstance(value, type(importlib))
            and name != "annotations"
        ]
        missing = [name for name in own if getattr(labkit, name, None) is not getattr(module, name)]
        assert not missing, f"labkit does not re-export labkit.{part}: {missing}"


def test_every_name_the_checks_use_exists(labkit):
    """`labkit.X` and `from labkit import X` in the validators, the conftest and reference.py."""
    import re

    from .conftest import LABS

    sources = [*LABS.glob("[0-9][0-9]-*/test_lab.py"), LABS / "conftest.py", LABS / "reference.py"]
    used = set()
    for path in sources:
        text = path.read_text()
        used |= set(re.findall(r"\blabkit\.([A-Za-z_]\w*)", text))
        for names in re.findall(r"^from labkit import ([\w, ]+)$", text, flags=re.M):
            used |= {n.strip() for n in names.split(",")}
    used -= {"reporter"}  # the plugin module, imported by name
    assert used and not [n for n in sorted(used) if not hasattr(labkit, n)]


def test_labkit_imports_no_code_of_the_fraud_system():
    import ast

    from .conftest import LABS

    for path in [*(LABS / "labkit").glob("*.py"), LABS / "conftest.py", LABS / "reference.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not [m for m in modules if m.split(".")[0] == "reference_app"], path


# --- HTTP: status or error --------------------------------------------------------------------------
def free_port() -> int:
    """A port nothing listens on (for now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_server():
    """A local HTTP server: /ok → 200, /private → 401 without credentials and 200 with, /versions
    → a model-versions search answer, anything else → 404."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            path = self.path.split("?")[0]
            code, body = 404, b"{}"
            if path == "/ok":
                code = 200
            elif path == "/private":
                code = 200 if self.headers.get("Authorization") else 401
            elif path == "/api/2.0/mlflow/model-versions/search":
                code = 200
                if "fraud-detector" in self.path:
                    body = json.dumps(
                        {"model_versions": [{"version": v} for v in ("2", "10", "9")]}
                    ).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_status_is_the_status_or_the_error_on_one_line(labkit, http_server):
    assert labkit.http_status(f"{http_server}/ok") == 200
    assert labkit.http_status(f"{http_server}/missing") == 404
    assert labkit.http_status(f"{http_server}/private") == 401
    assert labkit.http_status(f"{http_server}/private", auth=("admin", "x")) == 200
    refused = labkit.http_status(f"http://127.0.0.1:{free_port()}/health")
    assert isinstance(refused, str) and refused.startswith("ConnectError: ")
    assert "\n" not in refused
    response = labkit.http_get(f"{http_server}/ok", timeout=2)
    assert response.status_code == 200 and response.json() == {}


def test_latest_version_reads_the_registry(labkit, http_server):
    assert labkit.MlflowApi(http_server).latest_version("fraud-detector") == "10"
    assert labkit.MlflowApi(http_server).latest_version("no-versions") is None
    # For a hint only: no answer is no version, not an error.
    assert labkit.MlflowApi(f"http://127.0.0.1:{free_port()}").latest_version("x") is None


def test_promote_command_names_the_command_that_restores_the_champion(labkit):
    assert (
        labkit.promote_command("local", "fraud-detector", "3")
        == ".venv/bin/fraudlab model-test --version 3 && .venv/bin/fraudlab promote --version 3"
    )
    assert labkit.promote_command("local", "fraud-detector", None, "http://127.0.0.1:5000") == (
        ".venv/bin/fraudlab model-test --version N && .venv/bin/fraudlab promote --version N"
        "   (N = a version of fraud-detector from"
        " `fraudlab train`'s output or the MLflow UI (http://127.0.0.1:5000))"
    )
    cluster = labkit.promote_command("cluster", "fraud-detector", "3")
    # On this machine, against the cluster's MLflow as its admin user (lab 05's step 4).
    assert cluster.startswith("(set -a; . manifests/overlays/kind/secrets/mlflow.env; set +a; ")
    assert cluster.endswith(
        "FRAUD_MLFLOW_TRACKING_URI=http://127.0.0.1:30500 .venv/bin/fraudlab promote --version 3)"
    )
    assert 'MLFLOW_TRACKING_PASSWORD="$FRAUD_MLFLOW_ADMIN_PASSWORD"' in cluster
