"""Lab 15 beyond the lab-wide tests: the local checks fail where they should (a plain stack
without MLflow's basic auth, a credential in a log, a server on another address than 127.0.0.1),
and the network probe the learner applies is a valid, restricted pod that no policy allows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reference_app.launchers.stack import free_port
from tests.static.k8s import (
    KUBECTL,
    label_problems,
    pod_security_problems,
    prepare_manifests,
    render,
    resource_problems,
    selects,
)

from .conftest import LAB15_ADMIN_PASSWORD, LAB_DIRS, ROOT, check, lab_env, run_lab
from .test_local_labs import SOLVED, assert_learner_output

LAB = LAB_DIRS.get(15)


@pytest.mark.slow
def test_lab15_fails_without_basic_auth(reference_stack):
    """`make up` (no --auth): MLflow answers anonymous requests; the check says how to turn auth
    on, the admin check waits; the loopback and log checks pass."""
    result = run_lab(15, "--target", "local", env=lab_env({**reference_stack, **SOLVED[15]}))
    out = assert_learner_output(result, 15)
    assert result.returncode == 1, result.stdout
    refused = check(out, "MLflow answers 401 to a request without credentials")
    assert refused["symbol"] == "✗" and refused["hint"][:2] == [
        "expected: 401 Unauthorized",
        "found:    200",
    ]
    assert "fraudlab up --auth" in refused["hint"][2]
    assert check(out, "MLflow answers 200 to the admin user")["symbol"] == "–"
    assert check(out, "Every server of the local stack")["symbol"] == "✓"
    assert check(out, "No log file of the local stack")["symbol"] == "✓"


@pytest.mark.slow
def test_lab15_finds_a_leaked_password_and_a_server_off_loopback(auth_stack, tmp_path):
    """The auth stack's record plus two faults: a log line with the admin password, and a
    server on 127.0.0.2 (a loopback address, but not the 127.0.0.1 the stack binds)."""
    state = tmp_path / "data" / "state"
    (state / "logs").mkdir(parents=True)
    record = json.loads((Path(auth_stack["FRAUD_DATA_DIR"]) / "state" / "stack.json").read_text())
    leak = state / "logs" / "leak.log"
    leak.write_text(f"retrying with admin:{LAB15_ADMIN_PASSWORD}\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        for _ in range(100):  # until it listens (bounded: 100 × 0.1 s)
            try:
                httpx.get(f"http://127.0.0.2:{port}/", timeout=0.5)
                break
            except httpx.HTTPError:
                import time

                time.sleep(0.1)
        record["exposed"] = {"pid": server.pid, "url": f"http://127.0.0.2:{port}", "log": str(leak)}
        (state / "stack.json").write_text(json.dumps(record))
        env = lab_env({**auth_stack, "FRAUD_DATA_DIR": str(tmp_path / "data"), **SOLVED[15]})
        result = run_lab(15, "--target", "local", env=env)
    finally:
        server.terminate()
        server.wait(10)
    out = assert_learner_output(result, 15)
    assert result.returncode == 1, result.stdout
    loopback = check(out, "Every server of the local stack")
    assert (
        loopback["symbol"] == "✗" and loopback["hint"][1] == f"found:    exposed 127.0.0.2:{port}"
    )
    logs = check(out, "No log file of the local stack")
    assert (
        logs["symbol"] == "✗"
        and logs["hint"][1] == "found:    leak.log: FRAUD_MLFLOW_ADMIN_PASSWORD"
    )
    assert check(out, "MLflow answers 401")["symbol"] == "✓"
    assert check(out, "MLflow answers 200 to the admin user")["symbol"] == "✓"


def test_probe_is_a_restricted_pod_no_policy_allows(tmp_path):
    """labs/15-…/probe renders (with the app image Component) to one Pod, restricted, labelled,
    bounded; no NetworkPolicy of the overlay but default-deny and allow-dns selects it."""
    workspace = tmp_path / "ws"
    manifests = prepare_manifests(workspace)
    shutil.copytree(LAB / "probe", workspace / "labs" / LAB.name / "probe")
    out = subprocess.run(
        [KUBECTL, "kustomize", str(workspace / "labs" / LAB.name / "probe")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (pod,) = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert pod["kind"] == "Pod" and pod["metadata"]["namespace"] == "fraud-lab"
    assert pod["spec"]["containers"][0]["image"].startswith("localhost:5001/fraud-lab/app:")
    assert not pod_security_problems([pod]) and not resource_problems([pod])
    assert not label_problems([pod]) and pod["spec"]["activeDeadlineSeconds"] <= 1800
    policies = [o for o in render("kind", manifests) if o["kind"] == "NetworkPolicy"]
    selecting = sorted(
        p["metadata"]["name"]
        for p in policies
        if selects(p["spec"]["podSelector"], pod["metadata"]["labels"])
    )
    assert selecting == ["allow-dns", "default-deny"]
    assert (ROOT / "labs" / LAB.name / "probe" / "pod.netpol-probe.yaml").exists()


@pytest.mark.slow
def test_model_inventory_resolves_the_served_uris_in_the_registry(reference_stack, tmp_path):
    """`write_inventory` (what the model-inventory CronJob runs after listing SeldonDeployments)
    on the overlay's SeldonDeployments and the reference stack's MLflow: the champion's URI
    resolves to its version, with its promotion decision; an alias nobody carries to None."""
    manifests = prepare_manifests(tmp_path / "ws")
    deployments = [o for o in render("kind", manifests) if o["kind"] == "SeldonDeployment"]
    (tmp_path / "deployments.json").write_text(json.dumps(deployments))
    record = json.loads(
        (Path(reference_stack["FRAUD_DATA_DIR"]) / "state" / "stack.json").read_text()
    )
    code = (
        "import json, sys\n"
        "from reference_app.config import Settings\n"
        "from reference_app.serving.inventory import write_inventory\n"
        "s = Settings(_env_file=None, data_dir=sys.argv[1], mlflow_tracking_uri=sys.argv[2])\n"
        "print(write_inventory(s, json.load(open(sys.argv[3]))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data"), record["mlflow"]["url"],
         str(tmp_path / "deployments.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    inventory = json.loads(Path(out.stdout.strip()).read_text())
    rows = {(r["deployment"], r["predictor"]): r for r in inventory["models"]}
    champion = rows[("fraud-detector", "default")]
    assert champion["version"] == "1" and champion["promotion_decision"] == "champion", champion
    challengers = [r for r in rows.values() if r["model_uri"].endswith("@challenger")]
    assert challengers and all(r["version"] is None for r in challengers), challengers


def test_rendered_manifest_check_finds_a_credential_outside_the_secrets(tmp_path, monkeypatch):
    """The cluster check on the rendered overlay (the workspace's, with secrets generated as
    make secrets does): passes on the reference, fails naming the object and the secret once a
    ConfigMap carries the MLflow admin password in a URL."""
    from .conftest import load_lab_module

    module = load_lab_module(15)
    import labkit

    manifests = prepare_manifests(tmp_path)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "kubectl").symlink_to(KUBECTL)
    monkeypatch.setattr(labkit, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(module, "SECRETS_DIR", manifests / "overlays" / "kind" / "secrets")
    module.test_no_credential_in_rendered_manifests()
    env = labkit.read_env_file(manifests / "overlays" / "kind" / "secrets" / "mlflow.env")
    (manifests / "base" / "inventory" / "configmap.leak.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: leak, labels: {app.kubernetes.io/name: leak}}\n"
        f"data: {{url: 'http://admin:{env['FRAUD_MLFLOW_ADMIN_PASSWORD']}@mlflow:5000'}}\n"
    )
    kustomization = manifests / "base" / "inventory" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "  - configmap.leak.yaml\n")
    with pytest.raises(AssertionError) as failed:
        module.test_no_credential_in_rendered_manifests()
    assert str(failed.value).splitlines()[1] == (
        "found:    ConfigMap/leak: mlflow:FRAUD_MLFLOW_ADMIN_PASSWORD"
    )
