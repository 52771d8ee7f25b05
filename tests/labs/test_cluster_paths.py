"""The cluster side of the validators, without a cluster: the names, namespaces, labels and ports
they look for exist in the rendered kind overlay; the checks that read specs pass on the reference
manifests and fail on the starters with the expected message; the connection refuses anything but
context kind-fraud-lab on a local API server and never falls back to localhost:8080."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from reference_app.config import Settings
from reference_app.features import FEATURE_NAMES
from reference_app.launchers.stack import free_port
from reference_app.serving import replay
from reference_app.tracking import OUTPUT_NAME
from tests.static.k8s import (
    KUBECTL,
    KUBERNETES_VERSION,
    containers,
    pod_security_problems,
    pod_templates,
    prepare_manifests,
    render,
)

from .conftest import LAB_DIRS, LABS, ROOT, check, lab_env, load_lab_module, parse, run_lab


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """manifests/ (prepared as make images and make deploy would) and labs/ side by side."""
    root = tmp_path_factory.mktemp("labs-workspace")
    prepare_manifests(root)
    shutil.copytree(ROOT / "labs", root / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def overlays(workspace) -> dict[str, list[dict]]:
    return {name: render(name, workspace / "manifests") for name in ("kind", "kind-gpu")}


_STARTERS: dict[int, list[dict]] = {}


@pytest.fixture(scope="module")
def labkit():
    load_lab_module(0)  # puts labs/ on sys.path
    import labkit

    return labkit


def find(objects: list[dict], kind: str, name: str, namespace: str | None = "fraud-lab") -> dict:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and o["metadata"].get("namespace") == namespace
    ]
    assert len(found) == 1, f"{kind}/{namespace}/{name}: {len(found)} in the rendered overlay"
    return found[0]


class FakeCluster:
    """`labkit.Cluster`'s object readers, answered from rendered manifests (specs, no status)."""

    def __init__(self, objects: list[dict]):
        self.objects = objects

    def _get(self, kind: str, name: str, namespace: str | None) -> dict | None:
        found = [
            o
            for o in self.objects
            if o["kind"] == kind
            and o["metadata"]["name"] == name
            and o["metadata"].get("namespace") == namespace
        ]
        return found[0] if found else None

    def job(self, name, namespace="fraud-lab"):
        return self._get("Job", name, namespace)

    def workflowtemplate(self, name, namespace="fraud-lab"):
        return self._get("WorkflowTemplate", name, namespace)

    def workflows(self, namespace="fraud-lab"):
        return [
            o
            for o in self.objects
            if o["kind"] == "Workflow" and o["metadata"].get("namespace") == namespace
        ]

    def cronjob(self, name, namespace="fraud-lab"):
        return self._get("CronJob", name, namespace)

    def deployment(self, name, namespace="fraud-lab"):
        return self._get("Deployment", name, namespace)

    def service(self, name, namespace="fraud-lab"):
        return self._get("Service", name, namespace)

    def seldondeployment(self, name, namespace="fraud-lab"):
        return self._get("SeldonDeployment", name, namespace)

    def rayjob(self, name, namespace="fraud-lab"):
        return self._get("RayJob", name, namespace)

    def prometheusrule(self, name, namespace="fraud-lab"):
        return self._get("PrometheusRule", name, namespace)

    def podmonitor(self, name, namespace="fraud-lab"):
        return self._get("PodMonitor", name, namespace)

    def configmap(self, name, namespace):
        return self._get("ConfigMap", name, namespace)

    def namespace(self, name):
        return self._get("Namespace", name, None)

    # Lab 15: policies, accounts, RBAC (tests/static/rbac.py decides as the API server would)
    # and Pod Security admission (a dry run refused by the namespace's enforce label).
    def networkpolicy(self, name, namespace="fraud-lab"):
        return self._get("NetworkPolicy", name, namespace)

    def serviceaccount(self, name, namespace="fraud-lab"):
        return self._get("ServiceAccount", name, namespace)

    def service_accounts(self, namespace="fraud-lab"):
        from tests.static.rbac import service_accounts

        return service_accounts(self.objects, namespace)

    def can_i(self, account, verb, resource, group="", name=None, namespace="fraud-lab"):
        from tests.static.rbac import allowed

        return allowed(self.objects, account, verb, resource, group, name, namespace)

    def dry_run_pod(self, pod, namespace="fraud-lab"):
        labels = (self.namespace(namespace) or {}).get("metadata", {}).get("labels", {})
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            return None
        problems = pod_security_problems(
            [{**pod, "metadata": {**pod["metadata"], "namespace": namespace}}]
        )
        return (
            f'pods is forbidden: violates PodSecurity "restricted:latest": {"; ".join(problems)}'
            if problems
            else None
        )

    def pods(self, namespace, selector):
        return []  # no pod runs from rendered manifests

    def jobs(self, selector, namespace="fraud-lab"):
        return []


def starter_objects(lab: int, workspace: Path | None = None) -> list[dict]:
    """The lab's starter as `kubectl apply -k labs/NN-…/starter` sends it (the app image
    Component resolved in `workspace`, rendered once per lab)."""
    if lab not in _STARTERS:
        assert workspace is not None, "render the starters with a workspace first"
        folder = workspace / "labs" / LAB_DIRS[lab].name / "starter"
        out = subprocess.run(
            [KUBECTL, "kustomize", str(folder)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        _STARTERS[lab] = [d for d in yaml.safe_load_all(out.stdout) if d]
    return _STARTERS[lab]


def is_lab_code(obj: dict) -> bool:
    """A ConfigMap the lab's kustomization generates from the learner's Python exercise."""
    return obj["kind"] == "ConfigMap" and "fraud-lab.io/lab-code" in (
        obj["metadata"].get("labels") or {}
    )


def with_starter(objects: list[dict], lab: int, workspace: Path) -> list[dict]:
    """The rendered overlay with the lab's starter objects in place of the reference ones."""
    starters = starter_objects(lab, workspace)
    keys = {(o["kind"], o["metadata"]["name"]) for o in starters}
    return [o for o in objects if (o["kind"], o["metadata"]["name"]) not in keys] + starters


def outcome(fn, *args) -> str | None:
    """None when a check passes, else its message."""
    try:
        fn(*args)
    except AssertionError as err:
        return str(err)
    return None


# Spec checks per lab: (check, extra args) → the message's "found" line with the starter in place.
SPEC_CHECKS = {
    2: [
        ("test_simulate_job_exists", (), None),
        ("test_simulate_requires_data_pool", (), "found:    no rule: the pod may run on any node"),
        (
            "test_simulate_sets_resources",
            (),
            "found:    missing resources.requests.cpu, resources.requests.memory, resources.limits.memory",
        ),
    ],
    4: [
        (
            "test_feature_store_job_spec",
            (),
            'found:    container materialize runs no `feast … materialize "$START" "$END"`; FEAST_REPO_REDIS=(unset)',
        ),
    ],
    3: [
        ("test_pipeline_template_exists", (), None),
        ("test_pipeline_dag_orders_the_steps", (), "found:    features depends on nothing"),
        ("test_validate_sets_quarantine_budget", (), "found:    args ['validate']"),
    ],
    5: [
        (
            "test_mlflow_deployment_configured",
            (),
            "found:    FRAUD_MLFLOW_BACKEND_STORE_URI=(unset), FRAUD_MLFLOW_ARTIFACTS_DESTINATION=(unset), MLFLOW_S3_ENDPOINT_URL=(unset), FRAUD_MLFLOW_AUTH=false",
        ),
    ],
    6: [
        ("test_train_template_on_data_pool", (), "found:    no rule: it may run on any node"),
        (
            "test_train_template_sets_resources",
            (),
            "found:    missing resources.requests.cpu, resources.requests.memory, resources.limits.memory",
        ),
        (
            "test_train_template_uses_mlflow_secret",
            (),
            "found:    MLFLOW_TRACKING_USERNAME (not set), MLFLOW_TRACKING_PASSWORD (not set)",
        ),
    ],
    7: [
        ("test_pipeline_tests_before_promote", (), None),
        (
            "test_drill_tests_before_promoting",
            (),
            "found:    no task model-tests; no task promote; train-broken args ['train', '--model', 'logistic_regression', '--no-promote']",
        ),
    ],
    9: [
        (
            "test_seldondeployment_spec",
            (),
            "found:    protocol None; replicas [1]; FRAUD_MODEL_URI models:/fraud-detector/1; readinessProbe (none)",
        ),
        ("test_nodeport_service", (), None),
    ],
    11: [
        ("test_podmonitor_selects_pods", ("fraud-detector",), None),
        (
            "test_podmonitor_selects_pods",
            ("drift-monitor",),
            "found:    no selector.matchLabels (it would select every pod of the namespace); no podMetricsEndpoints port",
        ),
        (
            "test_drift_monitor_deployment_spec",
            (),
            "found:    listens on 127.0.0.1 (the default), unreachable for Prometheus; no container port named metrics",
        ),
        ("test_dashboard_configmap", (), None),
    ],
    10: [
        (
            "test_canary_seldondeployment_spec",
            (),
            "found:    challenger serves models:/fraud-detector@champion; shadow serves models:/fraud-detector@champion; champion traffic 50; challenger traffic 50; predictor shadow without shadow: true",
        ),
        (
            "test_router_deployment_spec",
            (),
            "found:    FRAUD_ROUTER_SHADOW_URL=None; ConfigMap traffic-split mounted 0 times (subPath: never updated)",
        ),
    ],
    12: [
        (
            "test_slo_rules_job_spec",
            (),
            "found:    serviceAccountName None; args ['slo-rules']",
        ),
    ],
    13: [
        (
            "test_retrain_template_spec",
            (),
            "found:    serviceAccountName None; args ['retrain']",
        ),
    ],
    14: [
        (
            "test_rayjob_spec",
            (),
            "found:    entrypoint ''; replicas 0, minReplicas 0; num-cpus None (the trials run at once: 2); missing resources.requests.cpu, resources.requests.memory, resources.limits.memory",
        ),
    ],
    15: [
        ("test_namespace_enforces_restricted", (), None),
        ("test_privileged_pod_is_refused", (), None),
        ("test_every_pod_is_restricted", (), None),
        ("test_default_deny_is_in_place", (), None),
        (
            "test_model_inventory_may_read_seldondeployments_only",
            (),
            "found:    list seldondeployments: no; get seldondeployments/fraud-detector: no",
        ),
        ("test_service_accounts_match_the_permission_table", (), None),
        ("test_no_service_account_reads_secrets", (), None),
        (
            "test_model_inventory_account_and_policy",
            (),
            "found:    automountServiceAccountToken: false (no token, no API); egress none",
        ),
    ],
    18: [
        (
            "test_review_page_spec",
            (),
            "found:    args ['review', 'serve']; FRAUD_REVIEW_DATABASE_URI None; Service review targetPort 8080 (container ports {'http': 8097})",
        ),
    ],
}


@pytest.mark.parametrize("lab", sorted(SPEC_CHECKS))
def test_spec_checks_pass_on_the_reference_and_fail_on_the_starter(
    overlays, workspace, labkit, lab
):
    module = load_lab_module(lab)
    for name, args, starter_found in SPEC_CHECKS[lab]:
        fn = getattr(module, name)
        for overlay in ("kind", "kind-gpu"):
            assert outcome(fn, FakeCluster(overlays[overlay]), *args) is None, (
                f"lab {lab:02d} {name} fails on the reference ({overlay})"
            )
        message = outcome(fn, FakeCluster(with_starter(overlays["kind"], lab, workspace)), *args)
        if starter_found is None:
            assert message is None, (
                f"lab {lab:02d} {name} should not depend on the starter's gaps:\n{message}"
            )
        else:
            assert message is not None and starter_found in message.splitlines(), (
                f"lab {lab:02d} {name}:\n{message}"
            )
            assert message.splitlines()[0].startswith("expected: ") and message.splitlines()[
                2
            ].startswith("debug:    kubectl --context kind-fraud-lab ")


@pytest.mark.parametrize(
    ("namespace", "level"),
    [("fraud-lab", "restricted"), ("seldon-system", "baseline"), ("monitoring", "privileged")],
)
def test_lab00_namespace_checks_pass_on_the_rendered_namespaces(overlays, labkit, namespace, level):
    module = load_lab_module(0)
    assert labkit.NAMESPACE_POD_SECURITY[namespace] == level
    assert (
        outcome(module.test_namespace_pod_security, FakeCluster(overlays["kind"]), namespace, level)
        is None
    )


def test_names_the_validators_look_for_exist_in_the_overlay(overlays, labkit):
    objects = overlays["kind"]
    for name in (labkit.DATA_TEMPLATE, labkit.TRAIN_TEMPLATE, labkit.PIPELINE_TEMPLATE):
        find(objects, "WorkflowTemplate", name)
    find(objects, "Job", labkit.SIMULATE_JOB)
    data = find(objects, "WorkflowTemplate", labkit.DATA_TEMPLATE)
    assert labkit.dag_depends(data) == labkit.DATA_DEPENDS
    pipeline = find(objects, "WorkflowTemplate", labkit.PIPELINE_TEMPLATE)
    assert set(labkit.TRAIN_STEPS) <= set(labkit.dag_depends(pipeline))
    pvc = find(objects, "PersistentVolumeClaim", labkit.DATA_PVC)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    simulate = find(objects, "Job", "simulate")
    mounts = labkit.find_container(labkit.pod_spec(simulate), "simulate")["volumeMounts"]
    claim = {
        v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
        for v in labkit.pod_spec(simulate)["volumes"]
    }
    assert any(
        m["mountPath"] == labkit.DATA_MOUNT and claim[m["name"]] == labkit.DATA_PVC for m in mounts
    )
    # Every pipeline step is confined to the data pool, where the volume lives.
    for name in (labkit.DATA_TEMPLATE, labkit.TRAIN_TEMPLATE, labkit.PIPELINE_TEMPLATE):
        template = find(objects, "WorkflowTemplate", name)
        for step in (t["name"] for t in template["spec"]["templates"] if "container" in t):
            assert labkit.required_pools(labkit.template_pod_spec(template, step)) == {"data"}, (
                name,
                step,
            )
    mlflow = find(objects, "Deployment", labkit.MLFLOW_DEPLOYMENT)
    assert (
        labkit.find_container(labkit.pod_spec(mlflow), labkit.MLFLOW_CONTAINER)["name"]
        == labkit.MLFLOW_CONTAINER
    )
    assert [p["nodePort"] for p in find(objects, "Service", "mlflow")["spec"]["ports"]] == [
        labkit.NODEPORTS["mlflow"]
    ]
    sdep = find(objects, "SeldonDeployment", labkit.MODEL_SELDONDEPLOYMENT)
    assert f"{sdep['apiVersion']}" == f"{labkit.SELDON_GROUP}/{labkit.SELDON_VERSION}"
    assert (
        labkit.find_container(labkit.pod_spec(sdep), labkit.MODEL_CONTAINER)["name"]
        == labkit.MODEL_CONTAINER
    )
    key, value = labkit.MODEL_POD_SELECTOR.split("=")
    assert sdep["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]["labels"][key] == value
    service = find(objects, "Service", labkit.MODEL_NODEPORT_SERVICE)
    assert sorted(p["nodePort"] for p in service["spec"]["ports"]) == sorted(
        [labkit.NODEPORTS["model_http"], labkit.NODEPORTS["model_grpc"]]
    )
    assert labkit.MAX_QUARANTINE_SHARE == float(
        labkit.template_named(data, "validate")["container"]["args"][2]
    )
    from reference_app.orchestration.pipeline import MAX_QUARANTINE

    assert MAX_QUARANTINE == labkit.MAX_QUARANTINE_SHARE  # the app's data SLO, one value
    for namespace, level in labkit.NAMESPACE_POD_SECURITY.items():
        assert (
            find(objects, "Namespace", namespace, None)["metadata"]["labels"][
                labkit.PSS_ENFORCE_LABEL
            ]
            == level
        )
    secret = find(objects, "Secret", "mlflow-credentials")
    assert {"FRAUD_MLFLOW_ADMIN_USERNAME", "FRAUD_MLFLOW_ADMIN_PASSWORD"} <= set(secret["data"])
    assert (
        labkit.MLFLOW_SECRETS_FILE
        == ROOT / "manifests" / "overlays" / "kind" / "secrets" / "mlflow.env"
    )


def test_cluster_names_match_the_scripts(labkit):
    versions = (ROOT / "scripts" / "versions.sh").read_text()
    assert (
        f'CLUSTER_NAME="{labkit.CLUSTER_NAME}"' in versions
        and 'KUBE_CONTEXT="kind-${CLUSTER_NAME}"' in versions
    )
    assert labkit.KUBE_CONTEXT == f"kind-{labkit.CLUSTER_NAME}"
    assert f'REGISTRY_PORT="{labkit.REGISTRY_HOST.split(":")[1]}"' in versions
    assert (
        f"HOST_PORTS=({' '.join(str(labkit.NODEPORTS[k]) for k in ('mlflow', 'model_http', 'model_grpc', 'prometheus', 'grafana'))})"
        in versions
    )
    kind = yaml.safe_load((ROOT / "scripts" / "kind-config.yaml").read_text())
    assert len(kind["nodes"]) == labkit.NODE_COUNT
    assert sorted(
        n.get("labels", {}).get(labkit.POOL_LABEL) for n in kind["nodes"] if n["role"] == "worker"
    ) == sorted(labkit.POOLS)
    cluster_up = (ROOT / "scripts" / "cluster-up.sh").read_text()
    assert (
        "local-registry-hosting" in cluster_up
        and "kube-public" in cluster_up
        and "hosts.toml" in cluster_up
    )


def test_fraud_system_names_match_the_app(labkit):
    defaults = Settings(_env_file=None)
    assert list(labkit.FEATURE_NAMES) == list(FEATURE_NAMES)
    assert labkit.OUTPUT_NAME == OUTPUT_NAME and labkit.SKEW_TOLERANCE == replay.SKEW_TOLERANCE
    assert labkit.DEFAULTS == {
        "FRAUD_DATA_DIR": defaults.data_dir,
        "FRAUD_MODEL_NAME": defaults.model_name,
        "FRAUD_EXPERIMENT": defaults.experiment,
        "FRAUD_GATE_MIN_AUC": str(defaults.gate_min_auc),
        "FRAUD_GATE_MIN_AP": f"{defaults.gate_min_ap:.2f}",
        "FRAUD_MAX_BODY_BYTES": str(defaults.max_body_bytes),
        "FRAUD_DELTA_TRAIN": str(defaults.delta_train),
        "FRAUD_DELTA_DELAY": str(defaults.delta_delay),
        "FRAUD_DELTA_TEST": str(defaults.delta_test),
        "FRAUD_LLM_URL": defaults.llm_url,
        "FRAUD_LLM_MAX_TTFT_S": str(defaults.llm_max_ttft_s),
        "FRAUD_LLM_MIN_TOKENS_PER_S": str(defaults.llm_min_tokens_per_s),
    }


def test_no_part_applies_a_network_policy(overlays):
    """A lab's parts hold no NetworkPolicy: one applied without the rest (default-deny, allow-dns,
    the other allows; `make deploy` applies them together) isolates its pods: an Egress policy
    blocks DNS too, an Ingress one the probes' and clients' paths it does not list."""
    load_lab_module(0)
    import reference

    for part in reference.PARTS:
        kinds = {o["kind"] for o in reference.select(overlays["kind"], [part])}
        assert "NetworkPolicy" not in kinds, part


def test_reference_parts_exist_and_starters_replace_exactly_the_learners_parts(overlays, workspace):
    load_lab_module(0)
    import reference

    objects = overlays["kind"]
    for part in reference.PARTS:
        assert len(reference.select(objects, [part])) == len(reference.PARTS[part])
    covered = [key for parts in reference.PARTS.values() for key in parts]
    assert len(covered) == len(set(covered)), "an object is in two parts"
    staged = [p for _, parts, _ in reference.STAGES for p in parts]
    assert sorted(staged) == sorted(reference.PARTS), "every part is applied by exactly one stage"
    for lab, learner in reference.LEARNER.items():
        starters = {
            (o["kind"], o["metadata"]["name"])
            for o in starter_objects(lab, workspace)
            if not is_lab_code(o) and o["kind"] != "NetworkPolicy"
        }
        # A starter's NetworkPolicy (lab 15) is one of manifests/base/security's, which make
        # deploy applies together with the default deny: in no part (see the test above).
        for policy in (o for o in starter_objects(lab, workspace) if o["kind"] == "NetworkPolicy"):
            find(objects, "NetworkPolicy", policy["metadata"]["name"])
        assert starters == {key for part in learner for key in reference.PARTS[part]}, lab
        assert not set(learner) & set(reference.prerequisites(lab)), lab
    assert reference.prerequisites(6)[-1] == "pipeline" and "train" not in reference.prerequisites(
        6
    )
    assert reference.prerequisites(3)[-1] == "pipeline-account" and reference.RELEASES_FOR(3) == [
        "argo-workflows"
    ]
    assert reference.RESETS[2] == ["job/simulate"] and reference.RESETS[9] == [
        "seldondeployment/fraud-detector"
    ]
    assert reference.RESETS[11] == ["deployment/drift-monitor", "podmonitor/drift-monitor"]
    assert reference.prerequisites(11)[-1] == "monitoring-access"
    assert reference.RESETS[3] == ["workflowtemplate/data-pipeline"] and reference.RESETS[6] == [
        "workflowtemplate/train-model"
    ]
    # The dashboard ConfigMap is the one object of a part outside namespace fraud-lab.
    (dashboard,) = [
        o for o in reference.select(objects, ["monitoring-access"]) if o["kind"] == "ConfigMap"
    ]
    assert dashboard["metadata"]["namespace"] == "monitoring"


@pytest.mark.parametrize("lab", [2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 18])
def test_starters_are_the_reference_objects_with_gaps(overlays, workspace, lab):
    """Same kind, name, namespace, labels and image as the reference; TODO(lab-NN) gaps."""
    text = "".join(p.read_text() for p in (LAB_DIRS[lab] / "starter").glob("*.yaml"))
    todos = re.findall(r"TODO\(lab-(\d\d)\)", text)
    assert todos and set(todos) == {f"{lab:02d}"}
    for obj in starter_objects(lab, workspace):
        if is_lab_code(obj):
            continue
        ref = find(
            overlays["kind"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")
        )
        assert obj["metadata"]["labels"] == ref["metadata"]["labels"]
        assert obj["apiVersion"] == ref["apiVersion"]
        images = [c["image"] for _, _, pod in pod_templates(obj) for c in containers(pod)]
        ref_images = [c["image"] for _, _, pod in pod_templates(ref) for c in containers(pod)]
        assert images == ref_images
        assert obj != ref
        # Valid objects that kubectl apply accepts, restricted like the reference, even before the
        # gaps are filled (a SeldonDeployment's componentSpecs are validated as Pods).
        # A PodMonitor is a custom resource (no schema here): its CRD requires only a selector.
        if obj["kind"] == "PodMonitor":
            assert "selector" in obj["spec"] and obj["spec"]["podMetricsEndpoints"]
            continue
        if obj["kind"] in {"WorkflowTemplate", "RayJob"}:
            import jsonschema

            from tests.static.k8s import crd_schema

            assert not list(jsonschema.Draft7Validator(crd_schema(obj)).iter_errors(obj))
        docs = (
            [
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": pod}
                for _, _, pod in pod_templates(obj)
            ]
            if obj["kind"] in {"SeldonDeployment", "WorkflowTemplate", "RayJob"}
            else [obj]
        )
        for doc in docs:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert pod_security_problems([obj]) == []


def write_kubeconfig(path: Path, context: str, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    return path


class Listener:
    """Counts TCP connections to 127.0.0.1:port while it runs (None when the port is taken)."""

    def __init__(self, port: int):
        self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


@pytest.mark.parametrize(
    ("case", "found"),
    [
        (
            "no kubeconfig",
            "found:    no kubeconfig file ({kubeconfig}); the checks use context kind-fraud-lab only",
        ),
        (
            "another context",
            "found:    your kubeconfig has no context kind-fraud-lab (it has: kind-other); the checks refuse any other cluster",
        ),
        (
            "not a kind API server",
            "found:    context kind-fraud-lab points at http://localhost:8080, not a local kind API server",
        ),
        (
            "API server down",
            "found:    the API server of kind-fraud-lab (https://127.0.0.1:{port}) does not answer: ",
        ),
    ],
)
def test_cluster_target_refuses_other_clusters_and_never_uses_localhost_8080(tmp_path, case, found):
    kubeconfig, port = tmp_path / "kubeconfig", free_port()
    if case == "another context":
        write_kubeconfig(kubeconfig, "kind-other", "https://127.0.0.1:6443")
    elif case == "not a kind API server":
        write_kubeconfig(kubeconfig, "kind-fraud-lab", "http://localhost:8080")
    elif case == "API server down":
        write_kubeconfig(kubeconfig, "kind-fraud-lab", f"https://127.0.0.1:{port}")
    try:
        listener = Listener(8080)
    except OSError:
        listener = None  # 8080 is in use here: the output checks still run
    try:
        result = run_lab(
            2,
            "--target",
            "cluster",
            env=lab_env({"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}),
        )
    finally:
        if listener:
            listener.close()
    out = parse(result.stdout)
    assert result.returncode == 1 and "Traceback" not in result.stdout
    first = check(out, "Job `simulate` exists")
    assert first["symbol"] == "✗"
    assert (
        first["hint"][0]
        == "expected: context kind-fraud-lab in your kubeconfig, pointing at the kind cluster, answering"
    )
    assert first["hint"][1].startswith(found.format(kubeconfig=kubeconfig, port=port)), first[
        "hint"
    ]
    others = [c for c in out["checks"] if c is not first]
    assert others and all(
        c["symbol"] == "–" and "skipped because an earlier check failed" in c["text"]
        for c in others
    ), result.stdout
    if listener:
        assert listener.connections == 0, "a check connected to localhost:8080"


def test_pv_location_reads_local_path_volumes(labkit):
    host_path = {
        "spec": {
            "hostPath": {"path": "/var/local-path-provisioner/pvc-1_fraud-lab_fraud-data"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": ["fraud-lab-worker"],
                                }
                            ]
                        }
                    ]
                }
            },
        }
    }
    assert labkit.pv_location(host_path) == (
        "fraud-lab-worker",
        "/var/local-path-provisioner/pvc-1_fraud-lab_fraud-data",
    )
    local = {
        "metadata": {"annotations": {"local.path.provisioner/selected-node": "fraud-lab-worker"}},
        "spec": {"local": {"path": "/opt/x"}},
    }
    assert labkit.pv_location(local) == ("fraud-lab-worker", "/opt/x")
    assert labkit.pv_location({"spec": {"nfs": {}}}) == (None, None)


def test_labs_follow_the_chapters():
    chapters = {p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]-*.md")}
    for lab in LAB_DIRS.values():
        assert lab.name in chapters, f"labs/{lab.name} has no chapters/{lab.name}.md"
    assert sorted(LAB_DIRS) == [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    assert "monitoring work" not in (LABS / "README.md").read_text()


@pytest.mark.parametrize(
    "args", [["solution", "3"], ["reset", "2"], ["prereqs", "5"], ["apply", "secrets"]]
)
def test_reference_refuses_to_run_without_the_kind_context(tmp_path, args):
    """`make lab-N-solution` / `lab-N-reset` never touch a cluster other than kind-fraud-lab."""
    write_kubeconfig(tmp_path / "kubeconfig", "kind-other", "https://127.0.0.1:6443")
    env = lab_env(
        {
            "KUBECONFIG": str(tmp_path / "kubeconfig"),
            "HOME": str(tmp_path),
            "PATH": f"{ROOT / '.venv' / 'bin'}:{lab_env()['PATH']}",
        }
    )
    result = subprocess.run(
        [str(ROOT / ".venv-labs" / "bin" / "python"), str(LABS / "reference.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: no kubectl context kind-fraud-lab (refusing to use any other cluster); run: make cluster"
    )


def test_lab11_names_match_the_monitoring_manifests_and_the_app(overlays, labkit):
    """PodMonitors and the workloads they select, Prometheus job names (kind and local mode), metric
    names, alert rules, the dashboard ConfigMap and uid, Grafana's Secret and the NodePorts."""
    objects = overlays["kind"]
    for monitor, (kind, name, container) in labkit.PODMONITORS.items():
        pm = find(objects, "PodMonitor", monitor)
        workload = find(objects, kind, name)
        template = (
            workload["spec"]["predictors"][0]["componentSpecs"][0]["metadata"]
            if kind == "SeldonDeployment"
            else workload["spec"]["template"]["metadata"]
        )
        assert pm["spec"]["selector"]["matchLabels"].items() <= template["labels"].items(), monitor
        ports = {
            p["name"]: p["containerPort"]
            for p in labkit.find_container(labkit.pod_spec(workload), container)["ports"]
        }
        assert [e["port"] for e in pm["spec"]["podMetricsEndpoints"]] == [
            labkit.METRICS_PORT_NAME
        ] and labkit.METRICS_PORT_NAME in ports
    assert (labkit.MODEL_JOB, labkit.DRIFT_JOB) == tuple(
        f"{labkit.NAMESPACE}/{m}" for m in labkit.PODMONITORS
    )
    drift = find(objects, "Deployment", labkit.DRIFT_MONITOR_DEPLOYMENT)
    assert (
        drift["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        == labkit.DRIFT_MONITOR_POD_SELECTOR.split("=")[1]
    )
    args = labkit.find_container(labkit.pod_spec(drift), labkit.DRIFT_MONITOR_CONTAINER)["args"]
    assert args[args.index("--port") + 1] == str(labkit.DRIFT_MONITOR_PORT)
    # Local mode's Prometheus uses the same job names, so the same checks (and rules) apply.
    from reference_app.launchers.prometheus import rule_groups, write_prometheus_config

    config = yaml.safe_load(
        write_prometheus_config(Settings(_env_file=None), Path(tempfile.mkdtemp())).read_text()
    )
    assert {labkit.MODEL_JOB, labkit.DRIFT_JOB} <= {
        job["job_name"] for job in config["scrape_configs"]
    }
    rule = find(objects, "PrometheusRule", labkit.PROMETHEUS_RULE)
    alerts = {r.get("alert") for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(labkit.ALERT_RULES) <= alerts and alerts == {
        r.get("alert") for group in rule_groups() for r in group["rules"]
    }
    # Metric names: the runtime's score histogram and the drift exporter's gauges.
    from reference_app.monitoring.exporter import MonitoringCollector
    from reference_app.monitoring.metrics import runtime_metrics

    assert f"{runtime_metrics()[0]._name}_bucket" == labkit.SCORE_METRIC
    collector = MonitoringCollector(Settings(_env_file=None))
    features = [*labkit.FEATURE_NAMES, labkit.SCORE_FEATURE]
    collector.latest = lambda: {
        "drift": {f: {"psi": 0.0, "ks_statistic": 0.0, "ks_pvalue": 1.0} for f in features},
        "current_day": "2018-05-15",
        "performance": None,
    }
    families = {m.name: m for m in collector.collect()}
    assert {labkit.DRIFT_METRIC, labkit.MONITOR_UP_METRIC} <= set(families)
    assert sorted(s.labels["feature"] for s in families[labkit.DRIFT_METRIC].samples) == sorted(
        features
    )
    # The dashboard: ConfigMap, namespace, label, uid; Grafana's admin Secret and the NodePorts.
    cm = find(objects, "ConfigMap", labkit.DASHBOARD_CONFIGMAP, labkit.MONITORING_NAMESPACE)
    key, value = labkit.DASHBOARD_LABEL
    assert cm["metadata"]["labels"][key] == value
    assert [json.loads(v)["uid"] for v in cm["data"].values()] == [labkit.DASHBOARD_UID]
    values = yaml.safe_load(
        (ROOT / "manifests" / "helm" / "kube-prometheus-stack.values.yaml").read_text()
    )
    assert (
        values["grafana"]["sidecar"]["dashboards"]["label"] == key
        and values["grafana"]["sidecar"]["dashboards"]["labelValue"] == value
    )
    assert (
        values["prometheus"]["service"]["nodePort"] == labkit.NODEPORTS["prometheus"]
        and values["grafana"]["service"]["nodePort"] == labkit.NODEPORTS["grafana"]
    )
    versions = (ROOT / "scripts" / "versions.sh").read_text()
    assert (
        f'KPS_RELEASE="{labkit.GRAFANA_SECRET.removesuffix("-grafana")}"' in versions
        and f'KPS_NAMESPACE="{labkit.MONITORING_NAMESPACE}"' in versions
    )


def test_lab11_cluster_hint_reruns_the_in_cluster_replay(labkit):
    """The drift monitor reads the served scores the pipeline's replay step leaves on the volume;
    a replay from the host (make replay-cluster) writes them where the monitor never looks."""
    module = load_lab_module(11)
    assert module.replay_fix("cluster") == "scripts/run-pipeline.sh fraud-pipeline through=replay"
    assert "replay-cluster" not in module.replay_fix("cluster")


# Each lab with a Python exercise: its check that the workload runs the learner's module. (Lab 08's
# runs in the image build on the learner's machine: tests/labs/test_lab08_image.py checks that
# the registry's image records which labels.py labelled it.)
RUNS_YOUR_CODE = {
    2: "test_simulate_job_runs_your_function",
    3: "test_validate_step_runs_your_rule",
    4: "test_feature_store_job_runs_your_model_inputs",
    5: "test_your_promotion_rule_is_on_the_cluster",
    6: "test_train_step_runs_your_gate",
    7: "test_your_slice_test_is_on_the_cluster",
    9: "test_model_server_runs_your_request_check",
    10: "test_router_runs_your_split",
    11: "test_drift_monitor_runs_your_psi",
    12: "test_slo_rules_job_runs_your_burnrate",
    13: "test_retrain_step_runs_your_window",
    14: "test_rayjob_runs_your_folds",
    15: "test_inventory_runs_your_redact",
    18: "test_your_review_rule_is_on_the_cluster",
}


@pytest.mark.parametrize("lab", sorted(RUNS_YOUR_CODE))
def test_cluster_runs_the_exercise_in_the_configmap(labkit, overlays, workspace, tmp_path, lab):
    """The starter puts the learner's module in its ConfigMap, which the lab's workload mounts;
    the cluster check finds it and reads back that file, which fails the behaviours as a starter;
    the reference solution (`labs/reference.py solution N`) runs the solved module, which passes."""
    load_lab_module(0)
    import reference
    from conftest import exercise_files  # labs/conftest.py: what the exercise checks read

    module = load_lab_module(lab)
    runs_your_code = getattr(module, RUNS_YOUR_CODE[lab])
    starter = FakeCluster(with_starter(overlays["kind"], lab, workspace))
    assert outcome(runs_your_code, starter) is None
    assert exercise_files(module, starter) == {
        f.name: (LAB_DIRS[lab] / "starter" / f.name).read_text()
        for f in (LAB_DIRS[lab] / "solution").glob("*.py")
    }
    solved = reference.exercise_objects(overlays["kind"], lab)
    keys = {(o["kind"], o["metadata"]["name"]) for o in solved}
    solution = FakeCluster(
        [o for o in overlays["kind"] if (o["kind"], o["metadata"]["name"]) not in keys] + solved
    )
    assert outcome(runs_your_code, solution) is None
    reference_only = FakeCluster(overlays["kind"])
    assert outcome(runs_your_code, reference_only) is not None
    assert not exercise_files(module, reference_only)
    for cluster, passes in ((starter, False), (solution, True)):
        folder = tmp_path / ("solution" if passes else "starter")
        folder.mkdir()
        for file, text in exercise_files(module, cluster).items():
            (folder / file).write_text(text)
        results = labkit.exercise_results(lab, str(folder))
        assert results and all(r["passed"] == passes for r in results.values()), results


def test_the_recorded_lab_code_source_is_the_apps(labkit, tmp_path, monkeypatch):
    """The checks compare the registry's tags (promotion_rule, quality_gate) with the file the
    cluster mounts: labkit computes them as the app records them (labcode.Exercise.source)."""
    from reference_app import labcode
    from reference_app.training.model_tests import MODEL_TESTS_EXERCISE
    from reference_app.training.promotion import GATE_EXERCISE, PROMOTION_EXERCISE

    for exercise, lab in ((PROMOTION_EXERCISE, 5), (GATE_EXERCISE, 6), (MODEL_TESTS_EXERCISE, 7)):
        text = (LAB_DIRS[lab] / "solution" / exercise.filename).read_text()
        (tmp_path / exercise.filename).write_text(text)
        monkeypatch.setenv(labcode.ENV, str(tmp_path))
        assert exercise.source() == labkit.lab_code_source(lab, exercise.filename, text)
        assert exercise.source().startswith(f"lab-{lab:02d}/{exercise.filename} sha256:")
        monkeypatch.delenv(labcode.ENV)
        assert exercise.source() == "reference" == labkit.lab_code_source(lab, "x.py", None)


def test_the_pipeline_runs_the_promotion_rule_of_lab_05_when_applied(overlays, labkit):
    """The reference promote step mounts ConfigMap lab-code-05, optional: the learner's rule
    decides once lab 05's kustomization created it, the reference's before. Likewise the
    model-tests step and lab 07's ConfigMap lab-code-07 (the learner's slice test)."""
    for template, step, configmap in (
        ("fraud-pipeline", "promote", "lab-code-05"),
        ("fraud-pipeline", "model-tests", "lab-code-07"),
    ):
        obj = find(overlays["kind"], "WorkflowTemplate", template, "fraud-lab")
        pod = labkit.template_pod_spec(obj, step)
        name, container = labkit.lab_code_volume(pod)
        assert name == configmap, (template, step)
        (volume,) = [v for v in pod["volumes"] if v["name"] == "lab-code"]
        assert volume["configMap"]["optional"] is True
        assert labkit.env_value(container, "FRAUD_LAB_CODE") == labkit.LAB_CODE_MOUNT


def test_lab04_names_match_the_feature_store_manifests_and_the_app(overlays):
    """Lab 04's checks read the app's check names, the Job and Deployments the overlay has, and
    the Redis address the feature repository's kind configuration is given."""
    from reference_app.serving.online import CHECKS

    module = load_lab_module(4)
    assert module.CHECKS == list(CHECKS)
    objects = overlays["kind"]
    job = find(objects, "Job", module.JOB)
    for name in (module.SERVER, module.REDIS):
        find(objects, "Deployment", name)
    pod = job["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["initContainers"] + pod["containers"]]
    assert module.MATERIALIZE_CONTAINER in names and module.CHECK_CONTAINER in names
    materialize = module.find(pod, module.MATERIALIZE_CONTAINER)
    env = {e["name"]: e["value"] for e in materialize["env"]}
    assert env["FEAST_REPO_REDIS"] == module.REDIS_ADDRESS
    service = find(objects, "Service", module.REDIS)
    assert f"{module.REDIS}:{service['spec']['ports'][0]['port']}" == module.REDIS_ADDRESS


def test_lab14_names_match_the_tuning_manifests_and_the_app(overlays):
    """Lab 14's checks read the RayJob, head container and worker group the overlay has, the
    experiment and fold metrics `fraudlab tune` records, and the entrypoint the RayJob runs."""
    from reference_app.training import tune

    module = load_lab_module(14)
    assert module.TUNE_EXPERIMENT == Settings(_env_file=None).tune_experiment
    assert module.FOLD_METRICS == tuple(tune.FOLD_METRICS)
    job = find(overlays["kind"], "RayJob", module.RAYJOB)
    assert job["spec"]["entrypoint"] == module.ENTRYPOINT
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["name"] == module.HEAD_CONTAINER
    assert module.worker_group(job) is cluster["workerGroupSpecs"][0]
    concurrency = int(module.labkit.env_value(head, "FRAUD_TUNE_CONCURRENCY"))
    assert module.worker_problems(module.worker_group(job), concurrency) == []
    assert module.worker_problems(module.worker_group(job), concurrency + 1) == [
        f"num-cpus '{concurrency}' (the trials run at once: {concurrency + 1})"
    ]
