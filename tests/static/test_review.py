"""Lab 18's manifests: the review page (optional in make deploy), the queue's settings equal to
`Settings`, and the NetworkPolicies that let the replay, retrain and review pods reach
PostgreSQL (and only those of the fraud system's pods)."""

from __future__ import annotations

import pytest

from reference_app.config import Settings

from .k8s import containers, pod_templates, selects

REVIEW_ENV = {
    "FRAUD_REVIEW_BAND_LOW": "review_band_low",
    "FRAUD_REVIEW_BAND_HIGH": "review_band_high",
    "FRAUD_REVIEW_CAPACITY": "review_capacity",
    "FRAUD_REVIEW_PORT": "review_port",
}
QUEUE_CLIENTS = {"replay", "retrain", "review"}


def _pods(objects):
    for obj in objects:
        for where, labels, pod in pod_templates(obj):
            yield obj, where, labels, pod


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", []) if "value" in e}


def test_review_settings_in_the_manifests_equal_the_settings(kind_objects):
    """Every FRAUD_REVIEW_* value a container gets equals Settings' default (one source)."""
    s, found = Settings(), 0
    for _, where, _, pod in _pods(kind_objects):
        for c in containers(pod):
            for name, value in _env(c).items():
                if name in REVIEW_ENV:
                    found += 1
                    expected = getattr(s, REVIEW_ENV[name])
                    assert type(expected)(value) == expected, (
                        f"{where}: {name}={value}, Settings {expected}"
                    )
    assert found >= 7  # the replay step (3) and the review page (4)


@pytest.mark.parametrize("name", ["replay", "retrain", "review"])
def test_queue_clients_get_the_postgres_uri_from_the_secret(kind_objects, name):
    """The replay and retrain steps and the review page build FRAUD_REVIEW_DATABASE_URI from the
    Secret postgres-credentials (user, password, database), never from literals."""
    found = [
        (where, c)
        for _, where, labels, pod in _pods(kind_objects)
        if labels.get("app.kubernetes.io/name") == name
        for c in containers(pod)
    ]
    assert found, f"no pod labelled {name}"
    for where, c in found:
        uri = _env(c).get("FRAUD_REVIEW_DATABASE_URI", "")
        assert (
            uri == "postgresql://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres:5432/$(POSTGRES_DB)"
        ), where
        from_secret = {
            e["name"]
            for e in c.get("env", [])
            if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "postgres-credentials"
        } | (
            {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
            if any(
                r.get("secretRef", {}).get("name") == "postgres-credentials"
                for r in c.get("envFrom", [])
            )
            else set()
        )
        assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} <= from_secret, where


def test_the_review_page_is_optional_and_its_policy_admits_only_the_nodes(kind_objects):
    """Deployment, Service, ServiceAccount and NetworkPolicy `review` and Job `model-card` carry
    fraud-lab.io/optional=review (make deploy leaves them out); the page takes connections from the
    nodes only (probes; analysts come through kubectl port-forward) and reaches only PostgreSQL."""
    review = {
        (o["kind"], o["metadata"]["name"]): o
        for o in kind_objects
        if o["metadata"].get("labels", {}).get("fraud-lab.io/optional") == "review"
    }
    assert set(review) == {
        ("Deployment", "review"), ("Service", "review"), ("ServiceAccount", "review"), ("NetworkPolicy", "review"),
        ("Job", "model-card"),
    }  # fmt: skip
    policy = review[("NetworkPolicy", "review")]["spec"]
    assert [p["from"] for p in policy["ingress"]] == [[{"ipBlock": {"cidr": "172.16.0.0/12"}}]]
    assert policy["egress"] == [{
        "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }]  # fmt: skip
    pod = review[("Deployment", "review")]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "review"


def test_postgres_admits_mlflow_and_the_queue_clients_only(kind_objects):
    """PostgreSQL's ingress admits MLflow and the review queue's clients (replay, retrain, review),
    and those pods have an egress rule to it on 5432."""
    policies = [
        o
        for o in kind_objects
        if o["kind"] == "NetworkPolicy" and o["metadata"].get("namespace") == "fraud-lab"
    ]
    (postgres,) = [p for p in policies if p["metadata"]["name"] == "postgres"]
    admitted = {
        name
        for name in (
            *QUEUE_CLIENTS,
            "mlflow",
            "train",
            "fraud-detector",
            "monitor",
            "ct-controller",
        )
        if any(
            selects(peer.get("podSelector", {}), {"app.kubernetes.io/name": name})
            for rule in postgres["spec"]["ingress"]
            for peer in rule["from"]
        )
    }
    assert admitted == QUEUE_CLIENTS | {"mlflow"}
    for name in QUEUE_CLIENTS:
        egress = [
            rule
            for p in policies
            if "Egress" in p["spec"].get("policyTypes", [])
            and selects(p["spec"]["podSelector"], {"app.kubernetes.io/name": name})
            for rule in p["spec"].get("egress", [])
            if any(
                selects(t.get("podSelector", {}), {"app.kubernetes.io/name": "postgres"})
                for t in rule.get("to", [])
            )
        ]
        assert egress and all(r["ports"] == [{"protocol": "TCP", "port": 5432}] for r in egress), (
            name
        )


def test_the_replay_step_mounts_lab_code_18_optionally(kind_objects):
    """The pipeline's replay step runs the learner's review rule when ConfigMap lab-code-18 exists
    (optional volume at /lab-code, FRAUD_LAB_CODE=/lab-code), the reference rule otherwise."""
    (pipeline,) = [
        o
        for o in kind_objects
        if o["kind"] == "WorkflowTemplate" and o["metadata"]["name"] == "fraud-pipeline"
    ]
    (replay,) = [t for t in pipeline["spec"]["templates"] if t["name"] == "replay"]
    assert replay["volumes"] == [
        {"name": "lab-code", "configMap": {"name": "lab-code-18", "optional": True}}
    ]
    assert {"name": "lab-code", "mountPath": "/lab-code", "readOnly": True} in replay["container"][
        "volumeMounts"
    ]
    assert _env(replay["container"])["FRAUD_LAB_CODE"] == "/lab-code"
