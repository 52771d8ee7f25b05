"""Lab 14's RayJob in the rendered kind overlay: optional in make deploy, one source for its
settings (Settings, requirements.lock, scripts/versions.sh), the Ray ports it fixes are the ones
its NetworkPolicies open, and the pods KubeRay builds from it can pass "restricted"."""

from __future__ import annotations

import re

import yaml

from reference_app.config import Settings

from . import k8s
from .k8s import ROOT

RAYJOB = "tune"
# The ports each Ray node listens on that other pods reach (networkpolicy.tune.yaml's comment
# cites KubeRay v1.7.0 utils/constant.go and Ray 2.60.0 scripts.py).
KUBERAY_DEFAULT_PORTS = {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "metrics": 8080}
PINNED_PORT_PARAMS = (
    "node-manager-port",
    "object-manager-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
)
DASHBOARD_AGENT_LISTEN_PORT = 52365  # KubeRay sets it when rayStartParams do not


def one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def rayjob(objects: list[dict]) -> dict:
    return one(objects, "RayJob", RAYJOB)


def groups(job: dict) -> list[tuple[str, dict]]:
    """(name, group spec) of the head and each worker group."""
    cluster = job["spec"]["rayClusterSpec"]
    return [("head", cluster["headGroupSpec"])] + [
        (g["groupName"], g) for g in cluster["workerGroupSpecs"]
    ]


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", []) if "value" in e}


def test_tuning_objects_are_optional_and_only_they(kind_objects):
    """Everything of manifests/base/tuning (and nothing else) carries fraud-lab.io/optional=tuning:
    make deploy leaves it out unless WITH=tuning."""
    tuning = {
        (o["kind"], o["metadata"]["name"])
        for o in kind_objects
        if (o["metadata"].get("labels") or {}).get("fraud-lab.io/optional") == "tuning"
    }
    assert tuning == {
        ("ServiceAccount", "tune"),
        ("RayJob", "tune"),
        ("NetworkPolicy", "tune-ray-cluster"),
        ("NetworkPolicy", "tune-ray-dashboard"),
        ("NetworkPolicy", "tune-submitter"),
    }


def test_rayjob_settings_come_from_one_source(kind_objects):
    """The head's FRAUD_* variables are Settings fields with valid values, the trials at once fit
    the workers' logical CPUs, and rayVersion is the image's ray (requirements.lock)."""
    job = rayjob(kind_objects)
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    values = env(head)
    fields = {f"FRAUD_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in values if k.startswith("FRAUD_")} <= fields
    settings = Settings(
        _env_file=None, **{k.removeprefix("FRAUD_").lower(): v for k, v in values.items() if k.startswith("FRAUD_")}
    )  # fmt: skip
    worker_cpus = sum(
        int(g["rayStartParams"]["num-cpus"]) * g["replicas"] for g in cluster["workerGroupSpecs"]
    )
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert 1 <= settings.tune_concurrency <= worker_cpus
    assert set(settings.tune_models.split(",")) <= {"lightgbm", "mlp"}
    lock = (ROOT / "requirements.lock").read_text()
    (ray,) = re.findall(r"^ray(?:\[[^\]]*\])?==([\d.]+)", lock, flags=re.M)
    assert cluster["rayVersion"] == ray
    # KubeRay probes Ray >= 2.53.0 over HTTP; older versions need wget, which the image lacks.
    assert tuple(int(p) for p in ray.split(".")) >= (2, 53, 0)
    assert job["spec"]["entrypoint"].split()[:2] == ["fraudlab", "tune"]


def test_rayjob_keeps_its_status_and_frees_its_cluster(kind_objects):
    """K8sJobMode with a restricted submitter (SidecarMode's container has no securityContext),
    the cluster deleted after the job, and the operator not told to delete the RayJob itself."""
    spec = rayjob(kind_objects)["spec"]
    assert spec["submissionMode"] == "K8sJobMode" and "submitterPodTemplate" in spec
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] >= 0
    values = yaml.safe_load((ROOT / "manifests/helm/kuberay-operator.values.yaml").read_text())
    assert "DELETE_RAYJOB_CR_AFTER_JOB_FINISHES" not in str(values.get("env"))
    assert values["watchNamespace"] == ["fraud-lab"] and values["singleNamespaceInstall"] is True


def test_rayjob_pods_pass_restricted_with_what_kuberay_adds(kind_objects):
    """The head, worker and submitter pods are restricted with a read-only root and /tmp
    writable (Ray's session directory is /tmp/ray), and no pod mounts a token. KubeRay's own
    additions: the workers' init container wait-gcs-ready copies the Ray container's
    securityContext (common/pod.go DefaultWorkerPodTemplate), /dev/shm is an emptyDir."""
    job = rayjob(kind_objects)
    assert k8s.pod_security_problems([job]) == []
    pods = list(k8s.pod_templates(job))
    assert len(pods) == 3
    for where, labels, pod in pods:
        assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == RAYJOB
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], where
        assert labels["app.kubernetes.io/part-of"] == "fraud-lab", where
    init = {**pods[1][2]["containers"][0]["securityContext"]}  # what KubeRay copies
    assert k8s.pod_security_problems(
        [{"kind": "Pod", "metadata": {"name": "w"}, "spec": {**pods[1][2], "containers": [{"name": "wait-gcs-ready", "securityContext": init}]}}]
    ) == []  # fmt: skip


def test_network_policies_open_exactly_the_ports_ray_listens_on(kind_objects):
    """Every Ray port the RayJob fixes (and KubeRay's defaults) is open between the Ray pods, and
    nothing else; the dashboard also to the submitter and to the operator's namespace."""
    job = rayjob(kind_objects)
    expected = set(KUBERAY_DEFAULT_PORTS.values()) | {DASHBOARD_AGENT_LISTEN_PORT}
    ranges = set()
    for name, group in groups(job):
        params = group["rayStartParams"]
        pinned = {int(params[p]) for p in PINNED_PORT_PARAMS}
        assert len(pinned) == len(PINNED_PORT_PARAMS), name
        expected |= pinned
        ranges.add((int(params["min-worker-port"]), int(params["max-worker-port"])))
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in head["ports"]} == KUBERAY_DEFAULT_PORTS
    policy = one(kind_objects, "NetworkPolicy", "tune-ray-cluster")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for _, labels, _ in k8s.pod_templates(job):
        if labels.get("app.kubernetes.io/name") != "tune-submitter":
            assert k8s.selects(selector, labels)
    for rules in (policy["spec"]["ingress"], policy["spec"]["egress"]):
        (rule,) = rules
        peers = rule.get("from") or rule.get("to")
        assert peers == [{"podSelector": {"matchLabels": selector}}]
        singles = {p["port"] for p in rule["ports"] if "endPort" not in p}
        spans = {(p["port"], p["endPort"]) for p in rule["ports"] if "endPort" in p}
        assert singles == expected and spans == ranges
    dashboard = one(kind_objects, "NetworkPolicy", "tune-ray-dashboard")
    (rule,) = dashboard["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": KUBERAY_DEFAULT_PORTS["dashboard"]}]
    namespaces = [
        p["namespaceSelector"]["matchLabels"] for p in rule["from"] if "namespaceSelector" in p
    ]
    versions = (ROOT / "scripts" / "versions.sh").read_text()
    (operator_ns,) = re.findall(r'^KUBERAY_NAMESPACE="([^"]+)"', versions, flags=re.M)
    assert namespaces == [{"kubernetes.io/metadata.name": operator_ns}]
    namespace = one(kind_objects, "Namespace", operator_ns)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # MLflow: the head (the driver) is an MLflow client; the worker and the submitter are not.
    clients = one(kind_objects, "NetworkPolicy", "mlflow-clients")["spec"]["podSelector"]
    reached = {
        labels["app.kubernetes.io/name"]
        for _, labels, _ in k8s.pod_templates(job)
        if k8s.selects(clients, labels)
    }
    assert reached == {"tune-head"}


def test_the_lab_code_configmap_name_is_rewritten_in_a_rayjob(tmp_path):
    """kustomize appends a generated ConfigMap's hash to its references in a RayJob's pod
    templates too (manifests/base/kustomizeconfig.yaml nameReference), as lab 14's starter needs."""
    config = yaml.safe_load((ROOT / "manifests" / "base" / "kustomizeconfig.yaml").read_text())
    (configmaps,) = [n for n in config["nameReference"] if n["kind"] == "ConfigMap"]
    paths = {(f["kind"], f["path"]) for f in configmaps["fieldSpecs"]}
    assert (
        "RayJob",
        "spec/rayClusterSpec/headGroupSpec/template/spec/volumes/configMap/name",
    ) in paths
    (tmp_path / "kustomizeconfig.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "folds.py").write_text("x = 1\n")
    job = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "tune"}, "spec": {"rayClusterSpec": {
        "headGroupSpec": {"template": {"spec": {"volumes": [{"name": "lab-code", "configMap": {"name": "lab-code-14"}}],
                                                "containers": [{"name": "ray-head", "image": "x:1"}]}}}}}}  # fmt: skip
    (tmp_path / "rayjob.yaml").write_text(yaml.safe_dump(job))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["rayjob.yaml"], "configurations": ["kustomizeconfig.yaml"],
        "configMapGenerator": [{"name": "lab-code-14", "files": ["folds.py"]}],
    }))  # fmt: skip
    import subprocess

    out = subprocess.run(
        [k8s.KUBECTL, "kustomize", str(tmp_path)], capture_output=True, text=True, check=True
    )
    docs = {d["kind"]: d for d in yaml.safe_load_all(out.stdout)}
    name = docs["ConfigMap"]["metadata"]["name"]
    assert name.startswith("lab-code-14-")
    volume = docs["RayJob"]["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"][
        "volumes"
    ][0]
    assert volume["configMap"]["name"] == name


def test_the_app_image_has_rays_dashboard_for_kuberay():
    """KubeRay submits the RayJob to the head's Job API (dashboard, 8265) and probes every node's
    dashboard agent (52365 /api/healthz); Ray starts neither without its `default` extra
    (ray 2.60.0 _private/services.py: no dashboard when ray.dashboard.optional_deps fails to
    import; the agent runs --minimal, with no HTTP server: dashboard/agent.py). The image is
    built from requirements.lock, so the lock must pin every requirement of ray[default]."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    needed = {
        Requirement(r).name.lower().replace("_", "-")
        for r in requires("ray") or []
        if 'extra == "default"' in r and Requirement(r).marker.evaluate({"extra": "default"})
    }
    lock = (ROOT / "requirements.lock").read_text().lower().replace("_", "-")
    pinned = set(re.findall(r"^([a-z0-9.-]+)==", lock, flags=re.M))
    assert needed and not needed - pinned, (
        f"requirements.lock lacks ray[default]'s {sorted(needed - pinned)}"
    )


def test_rayjob_cluster_requires_rays_token(kind_objects):
    """Only the job's own pods can drive its Ray cluster: KubeRay's token auth (a generated
    Secret, RAY_AUTH_MODE/RAY_AUTH_TOKEN on every Ray container) needs rayVersion >= 2.52.0."""
    cluster = rayjob(kind_objects)["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    major, minor, _ = (int(x) for x in cluster["rayVersion"].split("."))
    assert (major, minor) >= (2, 52)
