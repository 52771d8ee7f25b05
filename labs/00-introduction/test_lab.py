"""Lab 00 · Introduction: your machine is ready, and the kind cluster `fraud-lab` is up.

Cluster: `make doctor` passes; 3 nodes Ready; worker pools labelled; the local registry answers
and every node pulls from it; the namespaces carry their Pod Security labels.
Local: the `fraudlab` command is installed and the local stack (`make up`) answers.
Both: your versions.py (the doctor's kubectl version rule) behaves as the reference, and the
doctor runs it when FRAUD_LAB_CODE names its folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import labkit
from labkit import POOL_LABEL, hint, kubectl

DOCTOR = labkit.REPO_ROOT / "scripts" / "doctor.sh"
FRAUDLAB = labkit.REPO_ROOT / ".venv" / "bin" / "fraudlab"
REGISTRY_HOSTS_TOML = f"/etc/containerd/certs.d/{labkit.REGISTRY_HOST}/hosts.toml"
REGISTRY_CONTAINER_URL = "http://kind-registry:5000"
VERSIONS_SH = labkit.REPO_ROOT / "scripts" / "versions.sh"
# The exercise runs on your machine (the doctor), not in a pod: the `exercise` fixture reads
# versions.py from the starter folder (or LAB_EXERCISE_DIR) on both targets.
EXERCISE_WORKLOAD = "make doctor (scripts/doctor.sh, on your machine)"
EXERCISE_ON_MACHINE = True
DOCTOR_RULE = "FRAUD_LAB_CODE=labs/00-introduction/starter make doctor"


# --- kind mode ---------------------------------------------------------------------------------------
@pytest.mark.cluster("kind mode's preflight (local mode needs no Docker)")
def test_doctor_passes():
    """`make doctor` passes: Docker, kind, kubectl, helm, resources, inotify, ports and cgroup v2 are ready."""
    try:
        out = subprocess.run(
            ["bash", str(DOCTOR)],
            capture_output=True,
            text=True,
            timeout=labkit.MAX_WAIT_S,
            cwd=labkit.REPO_ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            hint(
                "make doctor to finish",
                f"no result after {labkit.MAX_WAIT_S:.0f} s (is Docker answering?)",
                "docker info",
            ),
            pytrace=False,
        )
    failed = [" ".join(line.split()) for line in out.stdout.splitlines() if line.startswith("✗")]
    assert out.returncode == 0, hint(
        "no ✗ line in make doctor",
        "\n".join(failed) or labkit.short(out.stderr or out.stdout),
        "make doctor   (each ✗ line there has the command that fixes it)",
    )


def shown(folder: Path) -> str:
    """`folder` relative to the repository when it is inside it (as the learner types it)."""
    try:
        return str(folder.resolve().relative_to(labkit.REPO_ROOT))
    except ValueError:
        return str(folder)


def kubectl_to_ask() -> str:
    """The installed kubectl's client version, or the pin when there is none (local mode)."""
    if shutil.which("kubectl"):
        out = subprocess.run(
            ["kubectl", "version", "--client"], capture_output=True, text=True, timeout=20
        ).stdout
        found = re.search(r"^Client Version: *(\S+)", out, re.MULTILINE)
        if found:
            return found.group(1)
    return re.search(r'^KUBECTL_VERSION="([^"]+)"', VERSIONS_SH.read_text(), re.MULTILINE).group(1)


def test_doctor_runs_your_rule():
    """`make doctor` runs your versions.py: the kubectl line is your kubectl_verdict's (FRAUD_LAB_CODE)."""
    folder = labkit.starter_dir(0)
    text = (folder / "versions.py").read_text() if (folder / "versions.py").is_file() else None
    pin = re.search(r'^KUBECTL_VERSION="([^"]+)"', VERSIONS_SH.read_text(), re.MULTILINE).group(1)
    python = labkit.REPO_ROOT / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(python) if python.exists() else "python3", "-m", "reference_app.doctor"]
        + ["kubectl-verdict", kubectl_to_ask(), pin],
        capture_output=True,
        text=True,
        timeout=labkit.MAX_WAIT_S,
        cwd=labkit.REPO_ROOT,
        env=dict(os.environ, FRAUD_LAB_CODE=str(folder), PYTHONPATH=str(labkit.REPO_ROOT)),
    )
    expected = labkit.lab_code_source(0, "versions.py", text)
    found = out.stdout.strip().partition("\t")[2] if out.returncode == 0 else ""
    assert out.returncode == 0 and found == expected, hint(
        f"the doctor's kubectl verdict from {expected}",
        labkit.short(out.stderr) if out.returncode else f"the verdict came from {found or '?'}",
        f"{DOCTOR_RULE}   (then: .venv/bin/fraudlab exercise check 0 --code {shown(folder)})",
    )


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(0))
def test_exercise(exercise, behaviour):
    """Your kubectl_verdict: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)


@pytest.mark.cluster("checks the kind cluster")
def test_cluster_answers(k8s):
    """Your kubeconfig has the context `kind-fraud-lab`, a local kind API server, and it answers."""
    assert k8s.server.startswith("https://"), hint(
        "an https API server", k8s.server, kubectl("cluster-info")
    )


@pytest.mark.cluster("checks the kind cluster")
def test_nodes_ready(k8s):
    """The cluster has 3 nodes (1 control plane, 2 workers), all Ready."""
    nodes = k8s.nodes()
    ready = [n["metadata"]["name"] for n in nodes if labkit.condition(n, "Ready") == "True"]
    found = f"{len(nodes)} nodes, {len(ready)} Ready ({', '.join(ready) or 'none'})"
    assert len(nodes) == labkit.NODE_COUNT and len(ready) == labkit.NODE_COUNT, hint(
        f"{labkit.NODE_COUNT} nodes, all Ready", found, kubectl("get nodes -o wide")
    )


@pytest.mark.cluster("checks the kind cluster")
@pytest.mark.needs("test_nodes_ready")
def test_worker_pools_labelled(k8s):
    """One worker is labelled fraud-lab.io/pool=data, the other fraud-lab.io/pool=serving."""
    pools = {n["metadata"]["name"]: labkit.labels(n).get(POOL_LABEL) for n in k8s.nodes()}
    found = ", ".join(f"{name}={pool or '(none)'}" for name, pool in sorted(pools.items()))
    assert sorted(p for p in pools.values() if p) == sorted(labkit.POOLS), hint(
        f"one node with {POOL_LABEL}=data and one with {POOL_LABEL}=serving",
        found,
        kubectl(f"get nodes -L {POOL_LABEL}"),
    )


@pytest.mark.cluster("the registry runs next to the kind cluster")
def test_registry_answers():
    """The local registry answers on localhost:5001 (GET /v2/ → 200)."""
    url = f"{labkit.REGISTRY_URL}/v2/"
    status = labkit.http_status(url)
    assert status == 200, hint(
        f"HTTP 200 from {url}",
        str(status),
        "docker ps --filter name=kind-registry   (then: make cluster)",
    )


@pytest.mark.cluster("checks the kind cluster")
def test_registry_advertised(k8s):
    """ConfigMap kube-public/local-registry-hosting tells tools to push to localhost:5001."""
    namespace, name = labkit.REGISTRY_CONFIGMAP
    cm = k8s.configmap(name, namespace)
    value = ((cm or {}).get("data") or {}).get("localRegistryHosting.v1", "")
    assert labkit.REGISTRY_HOST in value, hint(
        f'ConfigMap {namespace}/{name} with host: "{labkit.REGISTRY_HOST}"',
        "no such ConfigMap"
        if cm is None
        else labkit.short(value or "no localRegistryHosting.v1 key"),
        kubectl(f"-n {namespace} get configmap {name} -o yaml"),
    )


@pytest.mark.cluster("reads the kind nodes (Docker containers)")
@pytest.mark.needs("test_nodes_ready")
def test_nodes_pull_from_registry(k8s):
    """Every node maps localhost:5001 to the kind-registry container (containerd hosts.toml)."""
    wrong = []
    for node in sorted(n["metadata"]["name"] for n in k8s.nodes()):
        result = labkit.run_in(labkit.node_host(node), f"cat {REGISTRY_HOSTS_TOML}")
        if result.rc != 0 or REGISTRY_CONTAINER_URL not in result.stdout:
            wrong.append(f"{node}: {labkit.short(result.stdout or result.stderr or 'no file', 80)}")
    assert not wrong, hint(
        f"{REGISTRY_HOSTS_TOML} naming {REGISTRY_CONTAINER_URL} on every node",
        "; ".join(wrong),
        "make cluster   (rewrites it on every node)",
    )


@pytest.mark.cluster("checks the kind cluster")
@pytest.mark.parametrize(("namespace", "level"), sorted(labkit.NAMESPACE_POD_SECURITY.items()))
def test_namespace_pod_security(k8s, namespace, level):
    """Namespace `{namespace}` exists and enforces the `{level}` Pod Security level."""
    ns = k8s.namespace(namespace)
    found = (
        "no such namespace"
        if ns is None
        else f"{labkit.PSS_ENFORCE_LABEL}={labkit.labels(ns).get(labkit.PSS_ENFORCE_LABEL, '(unset)')}"
    )
    assert ns is not None and labkit.labels(ns).get(labkit.PSS_ENFORCE_LABEL) == level, hint(
        f"namespace {namespace} with {labkit.PSS_ENFORCE_LABEL}={level}",
        found,
        kubectl(f"get namespace {namespace} --show-labels"),
    )


# --- local mode -----------------------------------------------------------------------------------------
@pytest.mark.local("the cluster runs fraudlab from the app image")
def test_fraudlab_installed():
    """The `fraudlab` command is installed in .venv (make install)."""
    try:
        out = subprocess.run(
            [str(FRAUDLAB), "--help"], capture_output=True, text=True, timeout=labkit.MAX_WAIT_S
        )
        found = f"exit status {out.returncode}" if out.returncode else "ok"
    except FileNotFoundError:
        found = f"no {FRAUDLAB.relative_to(labkit.REPO_ROOT)}"
    except subprocess.TimeoutExpired:
        found = f"no answer within {labkit.MAX_WAIT_S:.0f} s"
    assert found == "ok", hint("`.venv/bin/fraudlab --help` to work", found, "make install")


@pytest.mark.local("the cluster's services are checked by the later labs")
def test_local_stack_running(endpoints):
    """The local stack is running: state/stack.json lists MLflow and MLServer, and both processes are alive."""
    assert endpoints.mlflow and endpoints.model, hint(
        "URLs of MLflow and MLServer in the stack file",
        f"{endpoints.source}: mlflow={endpoints.mlflow}, mlserver={endpoints.model}",
        "make down && make up",
    )


@pytest.mark.local("the cluster's MLflow is lab 05's")
@pytest.mark.needs("test_local_stack_running")
def test_local_mlflow_answers(endpoints):
    """The local MLflow answers (GET /health → 200)."""
    url = f"{endpoints.mlflow}/health"
    status = labkit.http_status(url)
    assert status == 200, hint(f"HTTP 200 from {url}", str(status), endpoints.log_command("mlflow"))


@pytest.mark.local("the cluster's model is lab 09's")
@pytest.mark.needs("test_local_stack_running")
def test_local_model_ready(endpoints, model_name):
    """The local model server has loaded the champion (GET /v2/models/fraud-detector/ready → 200)."""
    url = f"{endpoints.model}/v2/models/{model_name}/ready"
    status = labkit.http_status(url)
    assert status == 200, hint(
        f"HTTP 200 from {url}", str(status), endpoints.log_command("mlserver")
    )
