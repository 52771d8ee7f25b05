"""The kind overlays render, validate against Kubernetes 1.35 schemas, and meet the policies."""

from __future__ import annotations

import json
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from . import k8s
from .k8s import KNOWN_CRDS, KUBERNETES_VERSION, OVERLAYS, ROOT, pod_templates, ref


def allowed_images() -> set[str]:
    """Full references from the one image list (manifests/base/kustomization.yaml `images:`); the
    app image's tag is the build's (scripts/set-app-image.sh; TEST_APP_TAG here)."""
    listed = yaml.safe_load((ROOT / "manifests" / "base" / "kustomization.yaml").read_text())[
        "images"
    ]
    out = set()
    for item in listed:
        if item["name"] == "fraud-lab/app":
            item = {**item, "newTag": k8s.TEST_APP_TAG}
        name = item.get("newName", item["name"])
        out.add(
            f"{name}:{item['newTag']}" + (f"@{item['digest']}" if "digest" in item else "")
            if "newTag" in item
            else f"{name}@{item['digest']}"
        )
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders(rendered, overlay):
    kinds = {o["kind"] for o in rendered[overlay]}
    assert {
        "Namespace",
        "StatefulSet",
        "Deployment",
        "Job",
        "WorkflowTemplate",
        "CronWorkflow",
        "SeldonDeployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
    } <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_validate_strictly(rendered, overlay):
    """Every core object validates against the 1.35 schema; a missing schema is a failure."""
    problems = []
    for obj in rendered[overlay]:
        if (obj["apiVersion"], obj["kind"]) in KNOWN_CRDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{ref(obj)}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {KUBERNETES_VERSION} (removed or unknown API)"
            )
        except kubernetes_validate.ValidationError as err:
            problems.append(f"{ref(obj)}: {err.message} at {'.'.join(map(str, err.path))}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_their_crd_schemas(rendered, overlay):
    """Every custom resource validates against the strict JSON schema of its upstream CRD (unknown
    fields fail, like kubectl apply's strict field validation); a kind with no schema fails."""
    import jsonschema

    assert k8s.CRD_SCHEMAS.is_dir(), (
        f"no CRD schema folder {k8s.CRD_SCHEMAS}: set FRAUD_CRD_SCHEMAS, or build one with scripts/crd-schemas.sh"
    )
    problems, checked = [], 0
    for obj in rendered[overlay]:
        if (obj["apiVersion"], obj["kind"]) not in KNOWN_CRDS:
            continue
        schema = k8s.crd_schema(obj)
        if schema is None:
            problems.append(
                f"{ref(obj)}: no schema for {obj['apiVersion']} {obj['kind']} in {k8s.CRD_SCHEMAS}"
            )
            continue
        checked += 1
        for err in sorted(
            jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path)
        ):
            problems.append(
                f"{ref(obj)}: {err.message[:200]} at {'.'.join(map(str, err.path)) or '(top)'}"
            )
    assert checked and not problems, "\n".join(problems)


def test_crd_schema_check_catches_an_unknown_field(kind_objects):
    """The schema check is strict: a misspelt field in a WorkflowTemplate fails it."""
    import copy

    import jsonschema

    (template,) = [
        o
        for o in kind_objects
        if o["kind"] == "WorkflowTemplate" and o["metadata"]["name"] == "fraud-pipeline"
    ]
    broken = copy.deepcopy(template)
    broken["spec"]["templates"][0]["dag"]["tasks"][1]["depend"] = broken["spec"]["templates"][0][
        "dag"
    ]["tasks"][1].pop("depends")
    errors = list(jsonschema.Draft7Validator(k8s.crd_schema(broken)).iter_errors(broken))
    assert any("depend" in e.message for e in errors)
    assert not list(jsonschema.Draft7Validator(k8s.crd_schema(template)).iter_errors(template))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_specs_inside_custom_resources_validate(rendered, overlay):
    """SeldonDeployment componentSpecs are PodSpecs, each Argo container template becomes a pod,
    and so do a RayJob's head, worker groups and submitter: validate them as Pods."""
    problems, checked = [], 0
    for obj in rendered[overlay]:
        if obj["kind"] not in {"SeldonDeployment", "WorkflowTemplate", "CronWorkflow", "RayJob"}:
            continue
        for where, labels, spec in pod_templates(obj):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "check", "labels": labels},
                "spec": spec,
            }
            checked += 1
            try:
                kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                problems.append(f"{where}: {err.message} at {'.'.join(map(str, err.path))}")
    assert checked and not problems, "\n".join(problems)


def test_only_known_custom_resources(kind_objects):
    core_or_known = [
        o
        for o in kind_objects
        if "." not in o["apiVersion"].split("/")[0]
        or (o["apiVersion"], o["kind"]) in KNOWN_CRDS
        or o["apiVersion"].split("/")[0].endswith(".k8s.io")
    ]
    assert len(core_or_known) == len(kind_objects), [
        ref(o) for o in kind_objects if o not in core_or_known
    ]


def test_prometheus_rules_pass_promtool(kind_objects, tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, (
        "promtool not found: install Debian's prometheus package (apt-get install prometheus); .ci/run does"
    )
    rules = [o for o in kind_objects if o["kind"] == "PrometheusRule"]
    assert rules
    for obj in rules:
        path = tmp_path / f"{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump({"groups": obj["spec"]["groups"]}))
        result = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{ref(obj)}:\n{result.stdout}{result.stderr}"


def test_grafana_dashboard_is_valid(kind_objects):
    (cm,) = [
        o
        for o in kind_objects
        if o["kind"] == "ConfigMap"
        and o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert cm["metadata"]["namespace"] == "monitoring"
    dash = json.loads(cm["data"]["fraud-lab.json"])
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    # Panels do not overlap on Grafana's 24-column grid.
    cells = [
        (x, y)
        for p in dash["panels"]
        for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
        for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells)) and max(x for x, _ in cells) < 24
    assert {"Service", "Model", "Drift and delayed-label performance"} <= {
        p["title"] for p in dash["panels"] if p["type"] == "row"
    }
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    for metric in ("rest_server_requests_total", "rest_server_request_duration_seconds_bucket", "fraud_score_bucket", "fraud_flagged_transactions_total",
                   "fraud_scored_transactions_total", "fraud_drift_psi", "fraud_realised_card_precision_top_k", "fraud_realised_average_precision"):  # fmt: skip
        assert metric in exprs, f"dashboard has no panel on {metric}"


# --- policies on the real overlays ------------------------------------------------------------

POLICIES = {
    "pod security (restricted) and read-only root filesystem": k8s.pod_security_problems,
    "requests and memory limits": k8s.resource_problems,
    "probes on long-running containers": k8s.probe_problems,
    "jobs bounded": k8s.job_problems,
    "serving replicas and PodDisruptionBudget": k8s.serving_problems,
    "default-deny NetworkPolicy": k8s.network_policy_problems,
    "RBAC without wildcards or secret reads": k8s.rbac_problems,
    "no literal credentials": k8s.credential_problems,
    "labels": k8s.label_problems,
}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("policy", list(POLICIES))
def test_policy(rendered, overlay, policy):
    problems = POLICIES[policy](rendered[overlay])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_pinned_and_listed_once(rendered, overlay):
    problems = k8s.image_problems(rendered[overlay], allowed_images())
    assert not problems, "\n".join(problems)


def test_no_committed_secrets():
    assert not k8s.committed_secret_problems(ROOT / "manifests")


def test_gpu_component_requests_a_gpu_only_for_training(rendered):
    """With the gpu component, only the train template asks for a GPU, and its pod names
    RuntimeClass nvidia (nvkind registers it instead of making it the default runtime)."""
    gpu_pods = [
        (where, pod) for o in rendered["kind-gpu"] for where, _, pod in pod_templates(o)
        for c in pod.get("containers", []) if "nvidia.com/gpu" in c.get("resources", {}).get("limits", {})
    ]  # fmt: skip
    assert [where for where, _ in gpu_pods] == [
        "WorkflowTemplate/fraud-lab/train-model template train"
    ]
    ((_, pod),) = gpu_pods
    assert pod.get("runtimeClassName") == "nvidia"
    assert pod.get("nodeSelector") == {"nvidia.com/gpu.present": "true"}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["FRAUD_DEVICE"] == "cuda"
    cpu_only = [
        o
        for o in rendered["kind"]
        for _, _, pod in pod_templates(o)
        for c in pod.get("containers", [])
        if "nvidia.com/gpu" in c.get("resources", {}).get("limits", {})
    ]
    assert not cpu_only
    assert not [
        o for o in rendered["kind"] for _, _, pod in pod_templates(o) if pod.get("runtimeClassName")
    ]


def test_checkov_second_opinion(manifests_copy, tmp_path):
    """checkov (own venv, offline) finds nothing beyond the commented skip list in .checkov.yaml."""
    checkov = ROOT / ".venv-tools" / "bin" / "checkov"
    assert checkov.exists(), "checkov not installed: run `make tools` (make test does)"
    rendered_file = tmp_path / "kind.yaml"
    rendered_file.write_text(
        subprocess.run(
            [k8s.KUBECTL, "kustomize", str(manifests_copy / "overlays" / "kind")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    result = subprocess.run(
        [str(checkov), "--config-file", str(ROOT / ".checkov.yaml"), "--file", str(rendered_file), "--framework", "kubernetes", "--skip-download", "--quiet", "--compact", "--output", "cli"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_grafana_queries_are_valid_promql(kind_objects, tmp_path):
    """Every panel query parses: promtool checks them as recording rules (Grafana's variables
    replaced by plain durations)."""
    (cm,) = [
        o
        for o in kind_objects
        if o["kind"] == "ConfigMap"
        and o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    dash = json.loads(cm["data"]["fraud-lab.json"])
    rules = [
        {"record": f"dashboard:panel_{p['id']}:{t['refId'].lower()}", "expr": t["expr"].replace("$__rate_interval", "5m")}
        for p in dash["panels"] for t in p.get("targets", [])
    ]  # fmt: skip
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [shutil.which("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
