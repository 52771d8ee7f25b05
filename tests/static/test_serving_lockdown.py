"""Kind mode's model is locked down: who may reach it (NetworkPolicies) and what it runs (the gate
in front of MLServer, `fraudlab serve`)."""

from __future__ import annotations

from .k8s import pod_templates, ref, selects

MODEL = {"app.kubernetes.io/name": "fraud-detector"}
INFERENCE_PORTS = {9000, 9500}
METRICS_PORT = 8082
CALLERS = {"replay", "ct-controller"}
"""Pods that call the model in the cluster: the pipeline's replay and the CT controller."""
NODE_RANGE = "172.16.0.0/12"
"""kind's nodes (NodePort after SNAT, kubelet probes): networkpolicy.fraud-detector.yaml NOTE."""


def policies(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] == "NetworkPolicy"]


def ports(rule: dict) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


def pods_labelled(objects: list[dict]) -> list[tuple[str, dict]]:
    return [
        (o["metadata"].get("namespace"), labels)
        for o in objects
        for _, labels, _ in pod_templates(o)
    ]


def test_model_ingress_admits_only_its_callers_the_nodes_and_monitoring(kind_objects):
    (policy,) = [  # the others that select it, default-deny, admit nothing
        p for p in policies(kind_objects) if selects(p["spec"]["podSelector"], MODEL)
        and p["spec"].get("ingress")
    ]  # fmt: skip
    problems = []
    for rule in policy["spec"]["ingress"]:
        peers = rule.get("from")
        if not peers or not rule.get("ports"):
            problems.append(f"a rule open to every source or port: {rule}")
            continue
        for peer in peers:
            if "ipBlock" in peer:
                ok = peer["ipBlock"] == {"cidr": NODE_RANGE} and ports(rule) <= INFERENCE_PORTS
            elif "namespaceSelector" in peer:
                ok = (
                    peer["namespaceSelector"]
                    == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
                    and "podSelector" not in peer
                    and ports(rule) == {METRICS_PORT}
                )
            else:
                (expression,) = peer["podSelector"].get("matchExpressions") or [{}]
                ok = (
                    expression.get("key") == "app.kubernetes.io/name"
                    and expression.get("operator") == "In"
                    and set(expression.get("values", [])) == CALLERS
                    and ports(rule) <= INFERENCE_PORTS
                )
            if not ok:
                problems.append(f"{ref(policy)}: peer {peer} on ports {sorted(ports(rule))}")
    admitted = {p for r in policy["spec"]["ingress"] for p in ports(r)}
    assert admitted == INFERENCE_PORTS | {METRICS_PORT}, admitted
    assert not problems, "\n".join(problems)


def test_every_pod_with_egress_to_the_model_is_admitted_by_it(kind_objects):
    """The callers' egress and the model's ingress name the same pods (a path open at one end
    only is either dead or a hole)."""
    pods = pods_labelled(kind_objects)
    egress = set()
    for policy in policies(kind_objects):
        for rule in policy["spec"].get("egress", []):
            to_model = [
                peer
                for peer in rule.get("to", [])
                if "podSelector" in peer and selects(peer["podSelector"], MODEL)
            ]
            if to_model:
                assert ports(rule) <= INFERENCE_PORTS, f"{ref(policy)}: {rule}"
                egress |= {
                    labels.get("app.kubernetes.io/name")
                    for ns, labels in pods
                    if ns == policy["metadata"]["namespace"]
                    and selects(policy["spec"]["podSelector"], labels)
                }
    assert egress == CALLERS, f"pods with egress to the model: {sorted(egress)}"


def test_the_model_runs_fraudlab_serve_behind_the_gate(kind_objects):
    """`fraudlab serve` starts MLServer behind the gate (body limit, closed model repository API
    and docs); `mlserver start` would skip it."""
    sdeps = [
        o for o in kind_objects if o["kind"] == "SeldonDeployment"
    ]  # lab 09's, lab 10's canary
    containers = [
        c for sdep in sdeps for _, _, pod in pod_templates(sdep) for c in pod["containers"]
    ]
    assert (
        sdeps
        and {tuple(c.get("args") or ()) for c in containers} == {("serve",)}
        and not any(c.get("command") for c in containers)
    )
    env = {e["name"] for c in containers for e in c.get("env", [])}
    assert "FRAUD_SERVING_ADMIN_TOKEN" not in env, "kind mode keeps the model repository API closed"
