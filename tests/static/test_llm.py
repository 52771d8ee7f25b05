"""Lab 17's optional LLM server (manifests/components/llm, llm-gpu): rendered in overlays kind-llm
and kind-gpu-llm, which every policy of test_manifests.py also covers (OVERLAYS); here what is
particular to it. Nothing of it has run: no registry, no GPU, no cluster here."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
import yaml

from reference_app.config import Settings

from .k8s import ROOT, pod_templates, ref

OPTIONAL = ("fraud-lab.io/optional", "llm")
PINNED_REVISION = re.compile(r"^[0-9a-f]{40}$")


def llm_objects(objects: list[dict]) -> list[dict]:
    return [
        o for o in objects if (o["metadata"].get("labels") or {}).get(OPTIONAL[0]) == OPTIONAL[1]
    ]


def server(objects: list[dict]) -> tuple[dict, dict]:
    (deployment,) = [o for o in llm_objects(objects) if o["kind"] == "Deployment"]
    ((_, _, pod),) = list(pod_templates(deployment))
    return deployment, pod


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_make_deploy_never_applies_the_llm_server(rendered):
    """The overlays make deploy applies (kind, kind-gpu) hold nothing of lab 17; the lab's own
    overlays add exactly its objects, all labelled optional=llm, all in fraud-lab."""
    for overlay in ("kind", "kind-gpu"):
        assert not [o for o in rendered[overlay] if "llm" in o["metadata"]["name"]], overlay
    for overlay, base in (("kind-llm", "kind"), ("kind-gpu-llm", "kind-gpu")):
        added = [o for o in rendered[overlay] if o not in rendered[base]]
        assert added == llm_objects(rendered[overlay]), [ref(o) for o in added]
        assert {(o["kind"], o["metadata"]["name"]) for o in added} == {
            ("ServiceAccount", "llm-server"),
            ("PersistentVolumeClaim", "llm-models"),
            ("Deployment", "llm-server"),
            ("Service", "llm-server"),
            ("NetworkPolicy", "llm-server"),
            ("PodMonitor", "llm-server"),
        }
        assert {o["metadata"]["namespace"] for o in added} == {"fraud-lab"}


def test_only_the_gpu_path_asks_for_a_gpu(rendered):
    _, cpu = server(rendered["kind-llm"])
    _, gpu = server(rendered["kind-gpu-llm"])
    assert "runtimeClassName" not in cpu and "nodeSelector" not in cpu
    assert not any("nvidia.com/gpu" in c["resources"].get("limits", {}) for c in cpu["containers"])
    assert gpu["runtimeClassName"] == "nvidia"
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    (container,) = gpu["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["image"].startswith("vllm/vllm-openai:")
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    # The training step of the kind-gpu overlay still asks for its GPU: one GPU serves one at a time.
    assert any(
        "nvidia.com/gpu" in c.get("resources", {}).get("limits", {})
        for o in rendered["kind-gpu-llm"]
        if o["kind"] == "WorkflowTemplate"
        for _, _, pod in pod_templates(o)
        for c in pod["containers"]
    )


@pytest.mark.parametrize("overlay", ["kind-llm", "kind-gpu-llm"])
def test_served_name_port_and_probes_agree(rendered, overlay):
    """The model id, the port (FRAUD_LLM_URL's, the Service's, the container's) and the probes
    are the same on both paths; one replica, replaced by Recreate (RWO volume, one GPU)."""
    deployment, pod = server(rendered[overlay])
    (container,) = pod["containers"]
    args = container.get("command", []) + container["args"]
    name_flag = "--alias" if "--alias" in args else "--served-model-name"
    assert args[args.index(name_flag) + 1] == "qwen2.5-1.5b-instruct"
    port = urlparse(Settings().llm_url).port
    assert args[args.index("--port") + 1] == str(port)
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    (service,) = [o for o in llm_objects(rendered[overlay]) if o["kind"] == "Service"]
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container["volumeMounts"][0] == {
        "name": "models",
        "mountPath": "/models",
        "readOnly": True,
    }


@pytest.mark.parametrize("overlay", ["kind-llm", "kind-gpu-llm"])
def test_weights_come_from_a_pinned_revision(rendered, overlay):
    _, pod = server(rendered[overlay])
    (download,) = pod["initContainers"]
    values = env(download)
    assert PINNED_REVISION.match(values["MODEL_REVISION"]), values["MODEL_REVISION"]
    assert values["MODEL_REPO"].startswith("Qwen/Qwen2.5-1.5B-Instruct")
    if overlay == "kind-llm":  # one file, checked against its digest before it is used
        assert re.fullmatch(r"[0-9a-f]{64}", values["MODEL_SHA256"])
        assert "sha256sum --check" in download["args"][0]
        (container,) = pod["containers"]
        assert container["args"][1] == f"/models/{values['MODEL_FILE']}"
    else:
        assert env(pod["containers"][0])["HF_HUB_OFFLINE"] == "1"
        assert pod["containers"][0]["args"][0] == values["MODEL_DIR"]


def test_network_policy_admits_probes_and_prometheus_and_only_https_out(rendered):
    (policy,) = [o for o in llm_objects(rendered["kind-llm"]) if o["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "llm-server"}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in spec["ingress"] for p in rule["ports"]] == [8000]
    (egress,) = spec["egress"]
    assert egress["ports"] == [{"protocol": "TCP", "port": 443}]
    assert set(egress["to"][0]["ipBlock"]["except"]) >= {"10.0.0.0/8", "172.16.0.0/12"}


def test_components_write_the_images_of_the_one_list():
    """The component's manifests write full references (base's `images:` transformer does not
    reach a Component's objects); they are the list's entries (test_images_pinned_and_listed_once
    checks the rendered pods against it)."""
    listed = yaml.safe_load((ROOT / "manifests" / "base" / "kustomization.yaml").read_text())
    pins = {i["name"]: i["newTag"] for i in listed["images"]}
    text = "".join(
        p.read_text() for p in (ROOT / "manifests" / "components").glob("llm*/**/*.yaml")
    )
    for name in ("ghcr.io/ggml-org/llama.cpp", "vllm/vllm-openai"):
        found = set(re.findall(rf"image: {re.escape(name)}:(\S+)", text))
        assert found == {pins[name]}, (name, found)
