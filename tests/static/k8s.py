"""Render the kustomize overlays and check the objects: policies that a real cluster (or a
careful reviewer) would enforce, each a function from objects to a list of readable problems.

Every check returns sentences naming the object (`Kind/namespace/name`) and what is wrong, so a
failing test reads like a review comment. tests/static/test_policies.py shows each check fails on
a deliberately broken fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
# kind-llm and kind-gpu-llm: lab 17's optional LLM server (never applied by make deploy).
OVERLAYS = ["kind", "kind-gpu", "kind-llm", "kind-gpu-llm"]
APP_IMAGE = "localhost:5001/fraud-lab/app"
# The tag the static tier renders with (make images writes the real one: scripts/set-app-image.sh).
TEST_APP_TAG = "git-0123456789ab"
# The Kubernetes version of the pinned kind node image (manifests/README.md).
KUBERNETES_VERSION = "1.35.0"
# Custom resources we deploy, from operators installed by pinned Helm charts.
KNOWN_CRDS = {
    ("machinelearning.seldon.io/v1", "SeldonDeployment"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
    ("argoproj.io/v1alpha1", "WorkflowTemplate"),
    ("argoproj.io/v1alpha1", "CronWorkflow"),
    ("argoproj.io/v1alpha1", "Workflow"),
    ("ray.io/v1", "RayJob"),
}
# JSON schemas of the custom resources (one file per kind: <group>/<kind>_<version>.json); the
# default is the folder beside the project, scripts/crd-schemas.sh builds one from the pinned CRDs.
CRD_SCHEMAS = Path(os.environ.get("FRAUD_CRD_SCHEMAS", ROOT.parent / "shared" / "crd-schemas"))
APP_NAMESPACES = ["fraud-lab"]
# Pod Security Standard "restricted": the volume types it allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "SeldonDeployment"}
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@$]+:[^@\s$]+@")


class _Loader(yaml.SafeLoader):
    """PyYAML reads a bare `=` (kustomize prints AlertmanagerConfig's matchType unquoted) as the
    YAML 1.1 "value" tag; Kubernetes' YAML 1.2 parser reads the string "="."""


_Loader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)


def render(overlay: str, manifests: Path) -> list[dict]:
    """`kubectl kustomize manifests/overlays/<overlay>` parsed into objects.

    Raises:
        subprocess.CalledProcessError: if kustomize fails (its stderr is in the exception).
    """
    out = subprocess.run(
        [KUBECTL, "kustomize", str(manifests / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [d for d in yaml.load_all(out.stdout, Loader=_Loader) if d]


def prepare_manifests(tmp: Path) -> Path:
    """Copy manifests/ to `tmp`, generate its secret env files (scripts/secrets.sh) and its app
    image Component (scripts/set-app-image.sh, as make images does) with TEST_APP_TAG."""
    target = tmp / "manifests"
    shutil.copytree(ROOT / "manifests", target, ignore=shutil.ignore_patterns("*.env", "app-image"))
    subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "secrets.sh"),
            str(target / "overlays" / "kind" / "secrets"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "set-app-image.sh"),
            TEST_APP_TAG,
            str(target / "components" / "app-image"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return target


def crd_schema(obj: dict) -> dict | None:
    """The JSON schema of a custom resource's kind and version from CRD_SCHEMAS, or None."""
    group, _, version = obj["apiVersion"].rpartition("/")
    path = CRD_SCHEMAS / group / f"{obj['kind'].lower()}_{version}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ref(obj: dict) -> str:
    """`Kind/namespace/name` of an object."""
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def pod_templates(obj: dict) -> Iterator[tuple[str, dict, dict]]:
    """Yield `(where, pod labels, pod spec)` for every pod template inside an object."""
    kind, spec = obj.get("kind"), obj.get("spec", {})
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        t = spec.get("template", {})
        yield ref(obj), t.get("metadata", {}).get("labels", {}), t.get("spec", {})
    elif kind == "CronJob":
        t = spec.get("jobTemplate", {}).get("spec", {}).get("template", {})
        yield ref(obj), t.get("metadata", {}).get("labels", {}), t.get("spec", {})
    elif kind == "Pod":
        yield ref(obj), obj.get("metadata", {}).get("labels", {}), spec
    elif kind == "SeldonDeployment":
        for p in spec.get("predictors", []):
            for i, c in enumerate(p.get("componentSpecs", [])):
                yield (
                    f"{ref(obj)} predictor {p.get('name')} componentSpecs[{i}]",
                    c.get("metadata", {}).get("labels", {}),
                    c.get("spec", {}),
                )
    elif kind in {"WorkflowTemplate", "Workflow", "CronWorkflow"}:
        yield from workflow_pods(obj)
    elif kind == "RayJob":
        yield from rayjob_pods(obj)


def rayjob_pods(obj: dict) -> Iterator[tuple[str, dict, dict]]:
    """The pods a KubeRay RayJob makes: its RayCluster's head and each worker group, and the
    submitter Job's pod (KubeRay v1.7.0 uses submitterPodTemplate as it is, adding the command)."""
    cluster = obj["spec"].get("rayClusterSpec") or {}
    head = (cluster.get("headGroupSpec") or {}).get("template") or {}
    yield f"{ref(obj)} head", head.get("metadata", {}).get("labels", {}), head.get("spec", {})
    for group in cluster.get("workerGroupSpecs") or []:
        t = group.get("template") or {}
        yield (
            f"{ref(obj)} worker group {group.get('groupName')}",
            t.get("metadata", {}).get("labels", {}),
            t.get("spec", {}),
        )
    if "submitterPodTemplate" in obj["spec"]:
        t = obj["spec"]["submitterPodTemplate"]
        yield f"{ref(obj)} submitter", t.get("metadata", {}).get("labels", {}), t.get("spec", {})


# Workflow-level fields that Argo copies onto every step's pod.
_WORKFLOW_POD_FIELDS = (
    "serviceAccountName",
    "automountServiceAccountToken",
    "securityContext",
    "affinity",
    "nodeSelector",
    "tolerations",
    "volumes",
)


def workflow_pods(obj: dict) -> Iterator[tuple[str, dict, dict]]:
    """The pod each container template of an Argo Workflow(Template) would run: `(where, labels,
    pod spec)`, with the workflow-level pod fields, the template's own (nodeSelector, tolerations,
    affinity, podSpecPatch) and its container (named `main`, as Argo names it)."""
    spec = obj.get("spec", {})
    if obj.get("kind") == "CronWorkflow":
        spec = spec.get("workflowSpec", {})
    base = {k: spec[k] for k in _WORKFLOW_POD_FIELDS if k in spec}
    pod_labels = spec.get("podMetadata", {}).get("labels", {})
    for t in spec.get("templates", []):
        if "container" not in t:
            continue
        pod = dict(base)
        for key in ("nodeSelector", "tolerations", "affinity", "securityContext"):
            if key in t:
                pod[key] = t[key]
        if "podSpecPatch" in t:
            pod.update(json.loads(t["podSpecPatch"]))
        if t.get("volumes"):  # a template's own volumes join the workflow's (Argo: tmpl.Volumes)
            pod["volumes"] = [*pod.get("volumes", []), *t["volumes"]]
        pod["containers"] = [{"name": "main", **t["container"]}]
        # Argo labels every pod with its Workflow's name (NetworkPolicies select on it).
        labels = {
            **pod_labels,
            **t.get("metadata", {}).get("labels", {}),
            "workflows.argoproj.io/workflow": f"{obj['metadata']['name']}-x1y2z",
        }
        yield f"{ref(obj)} template {t['name']}", labels, pod


def containers(podspec: dict) -> list[dict]:
    """Init and app containers of a pod spec."""
    return podspec.get("initContainers", []) + podspec.get("containers", [])


# --- policies ------------------------------------------------------------------------------


def pod_security_problems(objects: list[dict]) -> list[str]:
    """Pod Security Standard "restricted" plus a read-only root filesystem, per container."""
    problems = []
    for obj in objects:
        for where, _, pod in pod_templates(obj):
            psc = pod.get("securityContext", {})
            for flag in ("hostNetwork", "hostPID", "hostIPC"):
                if pod.get(flag):
                    problems.append(
                        f"{where}: {flag} is true; restricted pods share no host namespace"
                    )
            for v in pod.get("volumes", []):
                kinds = set(v) - {"name"}
                if not kinds <= RESTRICTED_VOLUME_TYPES:
                    problems.append(
                        f"{where}: volume {v['name']} is of type {', '.join(sorted(kinds - RESTRICTED_VOLUME_TYPES))}, not allowed by the restricted profile"
                    )
            for c in containers(pod):
                sc = c.get("securityContext", {})
                name = f"{where} container {c['name']}"
                if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                    problems.append(
                        f"{name}: runAsNonRoot is not true (pod or container securityContext)"
                    )
                if sc.get("runAsUser", psc.get("runAsUser")) == 0:
                    problems.append(f"{name}: runAsUser is 0 (root)")
                if sc.get("allowPrivilegeEscalation") is not False:
                    problems.append(f"{name}: allowPrivilegeEscalation is not false")
                if sc.get("privileged"):
                    problems.append(f"{name}: privileged is true")
                if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
                    problems.append(f"{name}: capabilities.drop does not contain ALL")
                if set(sc.get("capabilities", {}).get("add") or []) - {"NET_BIND_SERVICE"}:
                    problems.append(f"{name}: adds capabilities {sc['capabilities']['add']}")
                seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
                if seccomp not in {"RuntimeDefault", "Localhost"}:
                    problems.append(
                        f"{name}: seccompProfile.type is {seccomp!r}, expected RuntimeDefault"
                    )
                if sc.get("readOnlyRootFilesystem") is not True:
                    problems.append(f"{name}: readOnlyRootFilesystem is not true")
    return problems


def resource_problems(objects: list[dict]) -> list[str]:
    """Every container requests CPU and memory and has a memory limit."""
    problems = []
    for obj in objects:
        for where, _, pod in pod_templates(obj):
            for c in containers(pod):
                res = c.get("resources", {})
                for what, key in (
                    ("requests", "cpu"),
                    ("requests", "memory"),
                    ("limits", "memory"),
                ):
                    if key not in res.get(what, {}):
                        problems.append(f"{where} container {c['name']}: no resources.{what}.{key}")
    return problems


def probe_problems(objects: list[dict]) -> list[str]:
    """Long-running containers have readiness and liveness probes."""
    problems = []
    for obj in objects:
        if obj.get("kind") not in LONG_RUNNING:
            continue
        for where, _, pod in pod_templates(obj):
            for c in pod.get("containers", []):
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in c:
                        problems.append(f"{where} container {c['name']}: no {probe}")
    return problems


def image_problems(objects: list[dict], allowed: set[str]) -> list[str]:
    """Images are pinned (a tag other than latest, or a digest) and listed in the one image list."""
    problems = []
    for obj in objects:
        for where, _, pod in pod_templates(obj):
            for c in containers(pod):
                image = c.get("image", "")
                name, _, digest = image.partition("@")
                tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
                if not tag and not digest:
                    problems.append(
                        f"{where} container {c['name']}: image {image!r} has no tag or digest"
                    )
                if tag == "latest":
                    problems.append(f"{where} container {c['name']}: image {image!r} uses :latest")
                if image not in allowed:
                    problems.append(
                        f"{where} container {c['name']}: image {image!r} is not in manifests/base/kustomization.yaml images"
                    )
    return problems


def job_problems(objects: list[dict]) -> list[str]:
    """Jobs (and CronJob templates) bound their retries, run time and lifetime."""
    problems = []
    for obj in objects:
        if obj.get("kind") == "Job":
            spec, where = obj["spec"], ref(obj)
        elif obj.get("kind") == "CronJob":
            spec, where = obj["spec"]["jobTemplate"]["spec"], ref(obj) + " jobTemplate"
        elif obj.get("kind") == "RayJob":
            # A RayJob must end, free its RayCluster when it has, and keep its status to check.
            if "activeDeadlineSeconds" not in obj["spec"]:
                problems.append(f"{ref(obj)}: no spec.activeDeadlineSeconds")
            if obj["spec"].get("shutdownAfterJobFinishes") is not True:
                problems.append(
                    f"{ref(obj)}: spec.shutdownAfterJobFinishes is not true (its RayCluster would outlive the job)"
                )
            continue
        elif obj.get("kind") == "WorkflowTemplate":
            for key in ("activeDeadlineSeconds", "ttlStrategy"):
                if key not in obj["spec"]:
                    problems.append(
                        f"{ref(obj)}: no spec.{key} (a run must end, and its status must outlive it long enough to check)"
                    )
            continue
        else:
            continue
        for key in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
            if key not in spec:
                problems.append(f"{where}: no spec.{key}")
    return problems


def selects(selector: dict, labels: dict) -> bool:
    """True when a label selector (matchLabels / matchExpressions, or a plain map) matches labels."""
    if not selector:
        return True
    plain = (
        selector
        if "matchLabels" not in selector and "matchExpressions" not in selector
        else selector.get("matchLabels", {})
    )
    if any(labels.get(k) != v for k, v in plain.items()):
        return False
    for e in (
        selector.get("matchExpressions", [])
        if isinstance(selector.get("matchExpressions"), list)
        else []
    ):
        value, op = labels.get(e["key"]), e["operator"]
        if (
            (op == "In" and value not in e["values"])
            or (op == "NotIn" and value in e["values"])
            or (op == "Exists" and value is None)
            or (op == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def pods_by_namespace(objects: list[dict]) -> list[tuple[str, str, dict, dict]]:
    """`(namespace, where, labels, podspec)` for every pod template."""
    return [
        (o.get("metadata", {}).get("namespace", "default"), w, labels, pod)
        for o in objects
        for w, labels, pod in pod_templates(o)
    ]


def serving_problems(objects: list[dict]) -> list[str]:
    """Serving that clients reach runs ≥ 2 replicas and a PodDisruptionBudget covers its pods.

    Clients reach a SeldonDeployment's pods when a NodePort or LoadBalancer Service selects them
    (lab 09's fraud-detector). Lab 10's canary is reached only through the traffic router: one
    replica per predictor keeps it within a laptop's memory, and a shadow never answers a client.
    """
    problems = []
    pdbs = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    client_services = [
        o
        for o in objects
        if o.get("kind") == "Service"
        and (o.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer")
    ]
    for obj in objects:
        if obj.get("kind") == "SeldonDeployment":
            ns = obj["metadata"].get("namespace")
            for p in obj["spec"]["predictors"]:
                labels = {
                    k: v
                    for c in p.get("componentSpecs") or []
                    for k, v in ((c.get("metadata") or {}).get("labels") or {}).items()
                }
                reached = any(
                    svc["metadata"].get("namespace") == ns
                    and (svc["spec"].get("selector") or {})
                    and selects(svc["spec"]["selector"], labels)
                    for svc in client_services
                )
                if reached and p.get("replicas", 1) < 2 and not p.get("shadow"):
                    problems.append(
                        f"{ref(obj)} predictor {p.get('name')}: replicas {p.get('replicas', 1)} < 2"
                    )
            for where, labels, _ in pod_templates(obj):
                if not any(
                    pdb["metadata"].get("namespace") == ns
                    and selects(pdb["spec"].get("selector", {}), labels)
                    for pdb in pdbs
                ):
                    problems.append(f"{where}: no PodDisruptionBudget selects its pods")
    return problems


def network_policy_problems(
    objects: list[dict], namespaces: list[str] = APP_NAMESPACES
) -> list[str]:
    """Each app namespace has a default-deny policy (all pods, Ingress and Egress, no rules)."""
    problems = []
    for ns in namespaces:
        deny = [
            o for o in objects
            if o.get("kind") == "NetworkPolicy" and o["metadata"].get("namespace") == ns
            and o["spec"].get("podSelector") == {} and set(o["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not o["spec"].get("ingress") and not o["spec"].get("egress")
        ]  # fmt: skip
        if not deny:
            problems.append(
                f"namespace {ns}: no default-deny NetworkPolicy (podSelector {{}}, policyTypes Ingress+Egress, no rules)"
            )
    return problems


def rbac_problems(objects: list[dict]) -> list[str]:
    """RBAC rules name their verbs, resources and groups (no wildcards) and never read Secrets."""
    problems = []
    for obj in objects:
        if obj.get("kind") not in {"Role", "ClusterRole"}:
            continue
        for i, rule in enumerate(obj.get("rules", [])):
            for field in ("verbs", "resources", "apiGroups"):
                if "*" in rule.get(field, []):
                    problems.append(f"{ref(obj)} rule {i}: wildcard in {field}")
            if "secrets" in rule.get("resources", []) and set(rule.get("verbs", [])) & {
                "get",
                "list",
                "watch",
                "*",
            }:
                problems.append(f"{ref(obj)} rule {i}: reads Secrets")
    return problems


def credential_problems(objects: list[dict]) -> list[str]:
    """No literal credentials: secret-like env vars come from Secrets, no password in a URL."""
    problems = []
    for obj in objects:
        for where, _, pod in pod_templates(obj):
            for c in containers(pod):
                for env in c.get("env", []):
                    value = env.get("value")
                    if value is None:
                        continue
                    if CREDENTIAL_NAME.search(env["name"]):
                        problems.append(
                            f"{where} container {c['name']}: env {env['name']} has a literal value; use valueFrom.secretKeyRef"
                        )
                    if URL_WITH_PASSWORD.search(value):
                        problems.append(
                            f"{where} container {c['name']}: env {env['name']} embeds a password in a URL"
                        )
    return problems


def label_problems(objects: list[dict]) -> list[str]:
    """Every object carries app.kubernetes.io/name and app.kubernetes.io/part-of: fraud-lab."""
    problems = []
    for obj in objects:
        labels = obj.get("metadata", {}).get("labels", {})
        if "app.kubernetes.io/name" not in labels:
            problems.append(f"{ref(obj)}: no app.kubernetes.io/name label")
        if labels.get("app.kubernetes.io/part-of") != "fraud-lab":
            problems.append(
                f"{ref(obj)}: app.kubernetes.io/part-of is {labels.get('app.kubernetes.io/part-of')!r}, expected 'fraud-lab'"
            )
    return problems


def committed_secret_problems(manifests: Path) -> list[str]:
    """No Secret object and no credential value is committed under manifests/."""
    problems = []
    for path in sorted(manifests.rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                problems.append(
                    f"{path.relative_to(manifests.parent)}: a committed Secret; generate it (scripts/secrets.sh + secretGenerator)"
                )
    return problems
