"""Each policy check fails on a deliberately broken object, with a message naming the problem."""

from __future__ import annotations

import copy

import pytest

from . import k8s

GOOD_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "train", "namespace": "fraud-lab", "labels": {"app.kubernetes.io/name": "train", "app.kubernetes.io/part-of": "fraud-lab"}},
    "spec": {
        "backoffLimit": 2, "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 60,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "train"}},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "containers": [{
                    "name": "train", "image": "localhost:5001/fraud-lab/app:0.1.0", "args": ["train"],
                    "env": [{"name": "FRAUD_DATA_DIR", "value": "/data"}],
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
                }],
            },
        },
    },
}  # fmt: skip
ALLOWED = {"localhost:5001/fraud-lab/app:0.1.0"}


def broken(change) -> list[dict]:
    obj = copy.deepcopy(GOOD_JOB)
    change(obj)
    return [obj]


def pod(obj):
    return obj["spec"]["template"]["spec"]


def container(obj):
    return pod(obj)["containers"][0]


def test_good_fixture_passes_every_policy():
    objs = [GOOD_JOB]
    assert (
        not k8s.pod_security_problems(objs)
        and not k8s.resource_problems(objs)
        and not k8s.job_problems(objs)
    )
    assert (
        not k8s.image_problems(objs, ALLOWED)
        and not k8s.credential_problems(objs)
        and not k8s.label_problems(objs)
    )


CASES = [
    (
        "root user",
        lambda o: pod(o)["securityContext"].update(runAsNonRoot=False),
        k8s.pod_security_problems,
        "runAsNonRoot is not true",
    ),
    (
        "privilege escalation",
        lambda o: container(o)["securityContext"].pop("allowPrivilegeEscalation"),
        k8s.pod_security_problems,
        "allowPrivilegeEscalation is not false",
    ),
    (
        "capabilities kept",
        lambda o: container(o)["securityContext"].update(capabilities={}),
        k8s.pod_security_problems,
        "capabilities.drop does not contain ALL",
    ),
    (
        "no seccomp",
        lambda o: pod(o)["securityContext"].pop("seccompProfile"),
        k8s.pod_security_problems,
        "seccompProfile.type is None",
    ),
    (
        "hostPath volume",
        lambda o: pod(o)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
        k8s.pod_security_problems,
        "volume host is of type hostPath",
    ),
    (
        "host network",
        lambda o: pod(o).update(hostNetwork=True),
        k8s.pod_security_problems,
        "hostNetwork is true",
    ),
    (
        "writable root",
        lambda o: container(o)["securityContext"].pop("readOnlyRootFilesystem"),
        k8s.pod_security_problems,
        "readOnlyRootFilesystem is not true",
    ),
    (
        "no memory limit",
        lambda o: container(o)["resources"].pop("limits"),
        k8s.resource_problems,
        "no resources.limits.memory",
    ),
    (
        "no cpu request",
        lambda o: container(o)["resources"]["requests"].pop("cpu"),
        k8s.resource_problems,
        "no resources.requests.cpu",
    ),
    (
        "unbounded job",
        lambda o: o["spec"].pop("activeDeadlineSeconds"),
        k8s.job_problems,
        "no spec.activeDeadlineSeconds",
    ),
    (
        "job kept forever",
        lambda o: o["spec"].pop("ttlSecondsAfterFinished"),
        k8s.job_problems,
        "no spec.ttlSecondsAfterFinished",
    ),
    (
        "latest tag",
        lambda o: container(o).update(image="localhost:5001/fraud-lab/app:latest"),
        lambda objs: k8s.image_problems(objs, ALLOWED),
        "uses :latest",
    ),
    (
        "untagged image",
        lambda o: container(o).update(image="postgres"),
        lambda objs: k8s.image_problems(objs, ALLOWED),
        "has no tag or digest",
    ),
    (
        "unlisted image",
        lambda o: container(o).update(image="busybox:1.37"),
        lambda objs: k8s.image_problems(objs, ALLOWED),
        "not in manifests/base/kustomization.yaml images",
    ),
    (
        "literal password",
        lambda o: container(o)["env"].append({"name": "POSTGRES_PASSWORD", "value": "hunter2"}),
        k8s.credential_problems,
        "POSTGRES_PASSWORD has a literal value",
    ),
    (
        "password in URL",
        lambda o: container(o)["env"].append(
            {"name": "DB", "value": "postgresql://mlflow:hunter2@postgres/db"}
        ),
        k8s.credential_problems,
        "embeds a password in a URL",
    ),
    (
        "missing labels",
        lambda o: o["metadata"].update(labels={}),
        k8s.label_problems,
        "no app.kubernetes.io/name label",
    ),
]


@pytest.mark.parametrize(
    ("change", "check", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_policy_catches_broken_fixture(change, check, message):
    problems = check(broken(change))
    assert any(message in p for p in problems), problems
    assert all(p.startswith("Job/fraud-lab/train") for p in problems)


def test_url_with_variable_references_is_not_a_literal_credential():
    objs = broken(
        lambda o: container(o)["env"].append(
            {
                "name": "DB",
                "value": "postgresql://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres:5432/mlflow",
            }
        )
    )
    assert not k8s.credential_problems(objs)


def test_long_running_workload_without_probes():
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "mlflow", "namespace": "fraud-lab"},
        "spec": {"template": GOOD_JOB["spec"]["template"]},
    }
    assert k8s.probe_problems([deploy]) == [
        "Deployment/fraud-lab/mlflow container train: no readinessProbe",
        "Deployment/fraud-lab/mlflow container train: no livenessProbe",
    ]


def seldon(replicas: int, labels: dict) -> dict:
    return {
        "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment", "metadata": {"name": "fraud-detector", "namespace": "fraud-lab"},
        "spec": {"predictors": [{"name": "default", "replicas": replicas, "componentSpecs": [{"metadata": {"labels": labels}, "spec": {"containers": []}}]}]},
    }  # fmt: skip


PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "fd", "namespace": "fraud-lab"},
    "spec": {
        "minAvailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "fraud-detector"}},
    },
}


NODEPORT = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "fd-nodeport", "namespace": "fraud-lab"},
    "spec": {"type": "NodePort", "selector": {"app.kubernetes.io/name": "fraud-detector"}},
}


def test_serving_needs_two_replicas_and_a_matching_pdb():
    labels = {"app.kubernetes.io/name": "fraud-detector"}
    assert not k8s.serving_problems([seldon(2, labels), PDB, NODEPORT])
    assert "replicas 1 < 2" in k8s.serving_problems([seldon(1, labels), PDB, NODEPORT])[0]
    assert (
        "no PodDisruptionBudget selects its pods"
        in k8s.serving_problems([seldon(2, {"app.kubernetes.io/name": "other"}), PDB, NODEPORT])[0]
    )


def test_one_replica_is_enough_where_no_client_service_selects_the_pods():
    """Lab 10's canary: reached only through the traffic router (a ClusterIP Service)."""
    labels = {"app.kubernetes.io/name": "fraud-detector"}
    cluster_ip = {**NODEPORT, "spec": {**NODEPORT["spec"], "type": "ClusterIP"}}
    assert not k8s.serving_problems([seldon(1, labels), PDB, cluster_ip])
    assert k8s.serving_problems([seldon(1, labels), PDB, cluster_ip, NODEPORT])


def test_namespace_without_default_deny():
    allow_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x", "namespace": "fraud-lab"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
    }
    assert k8s.network_policy_problems([allow_all]) == [
        "namespace fraud-lab: no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress+Egress, no rules)"
    ]


def test_rbac_wildcards_and_secret_reads():
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "fraud-lab"}, "rules": [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}, {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}]}  # fmt: skip
    problems = k8s.rbac_problems([role])
    assert problems == [
        "Role/fraud-lab/r rule 0: reads Secrets",
        "Role/fraud-lab/r rule 1: wildcard in apiGroups",
    ]


def test_committed_secret_is_found(tmp_path):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: x}\n"
    )
    assert "a committed Secret" in k8s.committed_secret_problems(tmp_path / "manifests")[0]
