"""Contracts between the manifests and the app: commands, settings, ports, probe paths, selectors."""

from __future__ import annotations

import re

import pytest
import typer
import typer.exceptions

from reference_app.cli import app
from reference_app.config import Settings

from .k8s import APP_IMAGE, containers, pod_templates, ref, selects

# Environment variables that belong to other programs, by the program that reads them.
FOREIGN_ENV = {
    "MLFLOW_TRACKING_USERNAME": "MLflow client", "MLFLOW_TRACKING_PASSWORD": "MLflow client",
    "MLFLOW_S3_ENDPOINT_URL": "MLflow server (boto3)", "MLFLOW_FLASK_SERVER_SECRET_KEY": "MLflow auth app",
    "AWS_ACCESS_KEY_ID": "boto3 / SeaweedFS", "AWS_SECRET_ACCESS_KEY": "boto3 / SeaweedFS",
    "POSTGRES_USER": "postgres image", "POSTGRES_PASSWORD": "postgres image", "POSTGRES_DB": "postgres image", "PGDATA": "postgres image",
    "FEAST_REPO_STATE": "the Feast feature repository (reference_app/feature_repo)", "FEAST_REPO_SOURCE": "the Feast feature repository",
    "FEAST_REPO_REDIS": "the Feast feature repository", "FEAST_REPO_YAML": "the Feast feature repository (offline.py)",
    "HOME": "Feast's image (its cache, on /tmp: a read-only root filesystem)",
    "RAY_USAGE_STATS_ENABLED": "Ray 2.60.0 (ray/_common/usage/usage_lib.py: 0 sends no usage report)",
}  # fmt: skip


def app_containers(objects):
    for obj in objects:
        for where, labels, pod in pod_templates(obj):
            for c in containers(pod):
                if c["image"].startswith(APP_IMAGE + ":"):
                    yield where, labels, pod, c


def parse_fraudlab(args: list[str]) -> str:
    """Parse args as the `fraudlab` CLI would (no command runs); return the command name.

    Raises:
        click.UsageError: unknown command, option or bad value.
    """
    group = typer.main.get_command(app)
    ctx = group.make_context("fraudlab", list(args), resilient_parsing=False)
    # typer vendors click; its Context keeps the subcommand in `_protected_args`.
    name, command, rest = group.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
    command.make_context(name, rest, parent=ctx)
    return name


def test_app_containers_exist(kind_objects):
    names = {c["name"] for _, _, _, c in app_containers(kind_objects)}
    assert {
        "mlflow",
        "s3-bucket",
        "simulate",
        "main",
        "fraud-detector",
        "wait-champion",
        "drift-monitor",
        "ct-controller",
    } <= names
    steps = {
        labels.get("app.kubernetes.io/name")
        for _, labels, _, c in app_containers(kind_objects)
        if c["name"] == "main"
    }
    assert {"simulate", "validate", "features", "train", "promote", "replay", "retrain"} <= steps


def test_every_app_container_runs_a_real_fraudlab_command(kind_objects):
    problems = []
    for where, _, _, c in app_containers(kind_objects):
        if where.startswith("RayJob/"):
            continue  # KubeRay writes the Ray containers' commands: the entrypoint is checked below
        args = (
            c.get("command", [])[1:]
            if c.get("command", [""])[0] == "fraudlab"
            else c.get("command", [])
        )
        args = args + c.get("args", [])
        try:
            parse_fraudlab(args)
        except Exception as err:  # noqa: BLE001 - any parse error is the finding
            problems.append(
                f"{where} container {c['name']}: `fraudlab {' '.join(args)}` does not parse: {err}"
            )
    for job in (o for o in kind_objects if o["kind"] == "RayJob"):  # the job's driver (lab 14)
        command, *args = job["spec"]["entrypoint"].split()
        try:
            assert command == "fraudlab", f"entrypoint {command!r}"
            parse_fraudlab(args)
        except Exception as err:  # noqa: BLE001 - any parse error is the finding
            problems.append(f"{ref(job)} entrypoint `{job['spec']['entrypoint']}`: {err}")
    assert not problems, "\n".join(problems)


def test_parse_fraudlab_rejects_unknown_commands_and_options():
    assert parse_fraudlab(["train", "--model", "mlp", "--no-promote"]) == "train"
    with pytest.raises(typer.exceptions.TyperException, match="No such command"):
        parse_fraudlab(["trian"])
    with pytest.raises(typer.exceptions.TyperException, match="No such option"):
        parse_fraudlab(["train", "--modle", "mlp"])


def test_every_fraud_env_var_is_a_setting(kind_objects, manifests_copy):
    fields = set(Settings.model_fields)
    problems = []
    names = [
        (where, c["name"], e["name"])
        for where, _, pod in (t for o in kind_objects for t in pod_templates(o))
        for c in containers(pod)
        for e in c.get("env", [])
    ]
    for env_file in (manifests_copy / "overlays" / "kind" / "secrets").glob("*.env"):
        names += [
            (env_file.name, "secretGenerator", line.split("=", 1)[0])
            for line in env_file.read_text().splitlines()
            if "=" in line
        ]
    for where, container, name in names:
        if name.startswith("FRAUD_"):
            if name[len("FRAUD_") :].lower() not in fields:
                problems.append(
                    f"{where} {container}: {name} is not a setting of reference_app.config.Settings"
                )
        elif name not in FOREIGN_ENV:
            problems.append(
                f"{where} {container}: {name} is neither FRAUD_* nor a known variable of another program"
            )
    assert not problems, "\n".join(problems)


def test_service_target_ports_exist_on_selected_containers(kind_objects):
    problems = []
    pods = [
        (o["metadata"].get("namespace"), labels, pod)
        for o in kind_objects
        for _, labels, pod in pod_templates(o)
    ]
    for svc in (o for o in kind_objects if o["kind"] == "Service"):
        ns, selector = svc["metadata"].get("namespace"), svc["spec"].get("selector", {})
        selected = [pod for pns, labels, pod in pods if pns == ns and selects(selector, labels)]
        if not selected:
            problems.append(f"{ref(svc)}: selector {selector} matches no pod")
            continue
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            exposed = {
                (p.get("name"), p["containerPort"])
                for pod in selected
                for c in pod["containers"]
                for p in c.get("ports", [])
            }
            if not any(target in pair for pair in exposed):
                problems.append(
                    f"{ref(svc)} port {port.get('name')}: targetPort {target} is not a container port of the selected pods {sorted(exposed)}"
                )
    assert not problems, "\n".join(problems)


def test_every_selector_matches_pods(kind_objects):
    """PDBs, NetworkPolicies and PodMonitors select at least one pod template of their namespace."""
    problems = []
    pods = [
        (o["metadata"].get("namespace"), labels)
        for o in kind_objects
        for _, labels, _ in pod_templates(o)
    ]
    for obj in kind_objects:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] == "PodDisruptionBudget":
            selector = obj["spec"]["selector"]
        elif obj["kind"] == "NetworkPolicy":
            selector = obj["spec"]["podSelector"]
            peers = [peer.get("podSelector") for rule in obj["spec"].get("ingress", []) + obj["spec"].get("egress", [])
                     for peer in rule.get("from", []) + rule.get("to", []) if "podSelector" in peer and "namespaceSelector" not in peer]  # fmt: skip
            for peer in peers:
                if not any(pns == ns and selects(peer, labels) for pns, labels in pods):
                    problems.append(f"{ref(obj)}: peer podSelector {peer} matches no pod")
        elif obj["kind"] == "PodMonitor":
            selector = obj["spec"]["selector"]
        else:
            continue
        if not any(pns == ns and selects(selector, labels) for pns, labels in pods):
            problems.append(f"{ref(obj)}: selector {selector} matches no pod")
    for mon in (o for o in kind_objects if o["kind"] == "ServiceMonitor"):
        services = [
            s
            for s in kind_objects
            if s["kind"] == "Service"
            and s["metadata"].get("namespace") == mon["metadata"].get("namespace")
        ]
        matched = [
            s for s in services if selects(mon["spec"]["selector"], s["metadata"].get("labels", {}))
        ]
        if not matched:
            problems.append(f"{ref(mon)}: selects no Service")
        for ep in mon["spec"]["endpoints"]:
            if not any(p.get("name") == ep["port"] for s in matched for p in s["spec"]["ports"]):
                problems.append(
                    f"{ref(mon)}: endpoint port {ep['port']} is not a port name of the selected Services"
                )
    for mon in (o for o in kind_objects if o["kind"] == "PodMonitor"):
        ports = {
            p.get("name")
            for o in kind_objects
            for _, labels, pod in pod_templates(o)
            if selects(mon["spec"]["selector"], labels)
            for c in pod["containers"]
            for p in c.get("ports", [])
        }
        for ep in mon["spec"]["podMetricsEndpoints"]:
            if ep["port"] not in ports:
                problems.append(
                    f"{ref(mon)}: port {ep['port']} is not a container port name of the selected pods"
                )
    assert not problems, "\n".join(problems)


def mlserver_routes() -> list[re.Pattern]:
    """The REST routes MLServer 1.7 serves, from its own app factory (no server started)."""
    from mlserver.handlers import DataPlane, ModelRepositoryHandlers
    from mlserver.registry import MultiModelRegistry
    from mlserver.repository import SchemalessModelRepository
    from mlserver.rest.app import create_app
    from mlserver.settings import Settings as MLServerSettings

    settings, registry = MLServerSettings(), MultiModelRegistry()
    api = create_app(
        settings,
        DataPlane(settings=settings, model_registry=registry),
        ModelRepositoryHandlers(repository=SchemalessModelRepository("."), model_registry=registry),
    )
    return [route.path_regex for route in api.routes]


def review_routes() -> list:
    """The review page's routes (`fraudlab review serve`), built on an in-memory SQLite queue."""
    import sqlalchemy as sa

    from reference_app.responsible.review import ReviewQueue
    from reference_app.responsible.review_app import create_app

    return create_app(Settings(), ReviewQueue(sa.create_engine("sqlite://"))).routes


def test_probe_paths_are_routes_the_app_serves(kind_objects):
    from mlflow.server.security_utils import HEALTH_ENDPOINTS

    from reference_app.orchestration.continuous_training import create_app
    from reference_app.serving.router import LIVE_PATH, READY_PATH

    served = {
        "serve": mlserver_routes(),
        "mlflow": [re.compile(f"^{re.escape(p)}$") for p in HEALTH_ENDPOINTS],
        "ct-controller": [route.path_regex for route in create_app(Settings()).routes],
        # prometheus_client's exporter (the integration tests scrape this path for real).
        "monitor": [re.compile("^/metrics$")],
        # The traffic router (lab 10) answers these itself; any other /v2 GET goes to a variant.
        "route": [READY_PATH, LIVE_PATH],
        # The review page (lab 18): its routes, on a queue in memory (no route touches it here).
        "review": [r.path_regex for r in review_routes()],
    }
    problems, checked = [], 0
    for where, _, _, c in app_containers(kind_objects):
        command = c.get("args", [None])[0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            path = c.get(probe, {}).get("httpGet", {}).get("path")
            if path is None:
                continue
            checked += 1
            if not any(r.match(path) for r in served.get(command, [])):
                problems.append(
                    f"{where} container {c['name']}: {probe} path {path} is not served by `fraudlab {command}`"
                )
            if (
                command == "serve"
                and "/models/" in path
                and f"/models/{Settings().model_name}/" not in path
            ):
                problems.append(
                    f"{where}: {probe} path {path} names a model other than {Settings().model_name}"
                )
    assert checked >= 5 and not problems, "\n".join(problems)


def test_serve_ports_match_the_settings_the_container_gets(kind_objects):
    """The model container declares the ports it tells `fraudlab serve` to listen on."""
    for where, _, _, c in app_containers(kind_objects):
        if c.get("args", [None])[0] != "serve":
            continue
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        declared = {p["containerPort"] for p in c["ports"]}
        for key in ("FRAUD_HTTP_PORT", "FRAUD_GRPC_PORT", "FRAUD_METRICS_PORT"):
            assert int(env[key]) in declared, (
                f"{where}: {key}={env[key]} is not a declared container port {declared}"
            )
        assert env["FRAUD_SERVE_HOST"] == "0.0.0.0"


def flatten_dag(
    templates: dict[str, dict], template: str, entry: str
) -> list[tuple[str, list[str], set[str]]]:
    """`(task, fraudlab args, tasks it depends on)` of a WorkflowTemplate's DAG, in order, with
    tasks that call another DAG (templateRef) replaced by that DAG's tasks: a dependency on such a
    task becomes a dependency on its last task."""
    spec = templates[template]["spec"]
    by_name = {t["name"]: t for t in spec["templates"]}
    (dag,) = [by_name[entry]["dag"]]
    out, ends = [], {}
    for task in dag["tasks"]:
        ref = task.get("templateRef")
        owner, name = (ref["name"], ref["template"]) if ref else (template, task["template"])
        target = {t["name"]: t for t in templates[owner]["spec"]["templates"]}[name]
        depends = {ends.get(d, d) for d in re.findall(r"[\w-]+", task.get("depends", ""))}
        if "dag" in target:
            inner = flatten_dag(templates, owner, name)
            first = inner[0][0]
            out += [(n, a, deps or (depends if n == first else deps)) for n, a, deps in inner]
            ends[task["name"]] = inner[-1][0]
            continue
        params = {p["name"]: p["value"] for p in task.get("arguments", {}).get("parameters", [])}
        assert target["container"]["command"] == ["fraudlab"], (
            f"task {task['name']}: Argo's emissary needs an explicit command"
        )
        args = [
            re.sub(r"\{\{inputs\.parameters\.(\w+)\}\}", lambda m, p=params: p[m.group(1)], a)
            for a in target["container"]["args"]
        ]
        out.append((task["name"], args, depends))
    return out


def test_pipeline_template_equals_the_dag_the_app_runs(kind_objects):
    """WorkflowTemplate fraud-pipeline (with data-pipeline's DAG and train-model's template) runs
    PIPELINE_DAG: the same tasks, dependencies and container arguments that `fraudlab pipeline
    --through replay` runs locally, in that order."""
    from reference_app.orchestration.pipeline import PIPELINE_ALIASES, PIPELINE_DAG

    templates = {o["metadata"]["name"]: o for o in kind_objects if o["kind"] == "WorkflowTemplate"}
    found = flatten_dag(
        templates, "fraud-pipeline", templates["fraud-pipeline"]["spec"]["entrypoint"]
    )
    assert found == [(name, args, set(needs)) for name, args, needs in PIPELINE_DAG]
    # `through` names only tasks of the DAG; each is a step the local pipeline knows.
    (through,) = templates["fraud-pipeline"]["spec"]["arguments"]["parameters"]
    tasks = [t["name"] for t in templates["fraud-pipeline"]["spec"]["templates"][0]["dag"]["tasks"]]
    assert through["enum"] == tasks and through["value"] == "replay"
    assert all(PIPELINE_ALIASES.get(t, t) in {n for n, _, _ in PIPELINE_DAG} for t in tasks)


def test_dag_check_catches_a_missing_dependency(kind_objects):
    """Dropping `depends` from a task changes what flatten_dag reads: the equality test would fail."""
    import copy

    templates = {
        o["metadata"]["name"]: copy.deepcopy(o)
        for o in kind_objects
        if o["kind"] == "WorkflowTemplate"
    }
    templates["data-pipeline"]["spec"]["templates"][0]["dag"]["tasks"][2].pop("depends")
    found = dict((n, d) for n, _, d in flatten_dag(templates, "fraud-pipeline", "pipeline"))
    assert found["features"] == set()


def test_retrain_has_one_template_for_both_triggers(kind_objects):
    """The weekly CronWorkflow and the ct-controller's Workflows both run WorkflowTemplate retrain."""
    from reference_app.orchestration.continuous_training import retrain_workflow

    (cron,) = [o for o in kind_objects if o["kind"] == "CronWorkflow"]
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == "retrain"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["schedules"]
    submitted = retrain_workflow({"source": "alert", "alerts": ["FraudFeatureDrift"]})
    assert submitted["spec"]["workflowTemplateRef"]["name"] == "retrain"
    (template,) = [
        o
        for o in kind_objects
        if o["kind"] == "WorkflowTemplate" and o["metadata"]["name"] == "retrain"
    ]
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    assert (
        {p["name"] for p in submitted["spec"]["arguments"]["parameters"]} == declared == {"trigger"}
    )
    args = template["spec"]["templates"][0]["container"]["args"]
    assert (
        parse_fraudlab(
            [
                a.replace(
                    "{{workflow.parameters.trigger}}",
                    submitted["spec"]["arguments"]["parameters"][0]["value"],
                )
                for a in args
            ]
        )
        == "retrain"
    )
    role = [
        o for o in kind_objects if o["kind"] == "Role" and o["metadata"]["name"] == "ct-controller"
    ][0]
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]}
    ]


HOST_PORT = re.compile(r"(?:^|[/@=\s])([a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*):(\d{2,5})\b")


def service_host_ports(podspec: dict, container: dict) -> list[tuple[str, int]]:
    """`(host, port)` pairs a container names in its command, args and env values."""
    texts = (
        container.get("command", [])
        + container.get("args", [])
        + [e.get("value") or "" for e in container.get("env", [])]
    )
    return [(m.group(1), int(m.group(2))) for text in texts for m in HOST_PORT.finditer(text)]


def test_every_host_port_a_container_names_is_a_service_port(kind_objects):
    """A container that dials `name:port` (URLs in args or env, `-master=s3:9333`) reaches a
    Service `name` in its namespace that exposes `port` — else it waits for nothing, forever."""
    services = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): {p["port"] for p in o["spec"]["ports"]}
        for o in kind_objects
        if o["kind"] == "Service"
    }
    problems, checked = [], 0
    for obj in kind_objects:
        ns = obj["metadata"].get("namespace")
        for where, _, pod in pod_templates(obj):
            for c in containers(pod):
                for host, port in service_host_ports(pod, c):
                    if (
                        host in {"localhost", "0.0.0.0"}
                        or "." in host
                        and not host.endswith(".svc")
                    ):
                        continue
                    checked += 1
                    exposed = services.get((ns, host.split(".")[0]))
                    if exposed is None:
                        problems.append(
                            f"{where} container {c['name']}: names {host}:{port}, but there is no Service {host} in {ns}"
                        )
                    elif port not in exposed:
                        problems.append(
                            f"{where} container {c['name']}: names {host}:{port}, but Service {host} exposes only {sorted(exposed)}"
                        )
    assert checked and not problems, "\n".join(problems)


def test_host_port_check_catches_the_weed_shell_master_port():
    """The check reads `-master=s3:9333` (the bucket Job that could never finish) and URLs."""
    container = {
        "args": ["echo s3.bucket.list | weed shell -master=s3:9333"],
        "env": [{"name": "U", "value": "http://mlflow:5000"}],
    }
    assert service_host_ports({}, container) == [("s3", 9333), ("mlflow", 5000)]


@pytest.mark.parametrize(
    "args",
    [[], ["fraud-pipeline", "through=promote"], ["data-pipeline"], ["train-model", "model=mlp"]],
)
def test_submitted_workflows_validate_and_name_declared_parameters(kind_objects, args):
    """The Workflow scripts/run-pipeline.sh submits is valid for the Workflow CRD, names an existing
    WorkflowTemplate, and passes only parameters the template declares (with allowed values)."""
    import subprocess

    import jsonschema
    import yaml

    from . import k8s

    out = subprocess.run(
        ["bash", "scripts/run-pipeline.sh", *args],
        cwd=k8s.ROOT,
        env={"PRINT": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    workflow = yaml.safe_load(out.stdout)
    assert not list(jsonschema.Draft7Validator(k8s.crd_schema(workflow)).iter_errors(workflow))
    templates = {o["metadata"]["name"]: o for o in kind_objects if o["kind"] == "WorkflowTemplate"}
    template = templates[workflow["spec"]["workflowTemplateRef"]["name"]]
    declared = {p["name"]: p for p in template["spec"].get("arguments", {}).get("parameters", [])}
    for p in workflow["spec"].get("arguments", {}).get("parameters", []):
        assert p["name"] in declared, p
        assert p["value"] in declared[p["name"]].get("enum", [p["value"]]), p


def test_run_pipeline_refuses_a_malformed_parameter():
    import subprocess

    from . import k8s

    out = subprocess.run(
        ["bash", "scripts/run-pipeline.sh", "fraud-pipeline", "through"],
        cwd=k8s.ROOT,
        env={"PRINT": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "is not NAME=VALUE" in out.stderr


def test_api_server_egress_is_limited_to_the_api_servers_addresses(kind_objects):
    """No NetworkPolicy opens 443/6443 to anywhere: egress on those ports names ipBlocks, and only
    the ct-controller, Argo's workflow pods (whose executor reports to the API), the slo-rules
    Job (it applies the PrometheusRule fraud-lab-slo, lab 12) and the model inventory (it lists
    SeldonDeployments, lab 15) get it."""
    opened = []
    for policy in (o for o in kind_objects if o["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            ports = {p.get("port") for p in rule.get("ports", [])}
            if ports & {443, 6443}:
                assert rule.get("to") and all("ipBlock" in peer for peer in rule["to"]), (
                    f"{ref(policy)}: {rule}"
                )
                opened.append(policy["metadata"]["name"])
    assert sorted(set(opened)) == [
        "kubernetes-api-ct-controller",
        "kubernetes-api-model-inventory",
        "kubernetes-api-slo-rules",
        "kubernetes-api-workflow-pods",
    ]


def test_every_mlflow_client_may_reach_mlflow(kind_objects):
    """A pod that sets FRAUD_MLFLOW_TRACKING_URI is selected by NetworkPolicy mlflow-clients
    (egress to MLflow under the namespace's default deny), e.g. lab 07's model-tests and
    train-broken steps: a step left out would fail on the cluster only, with a timeout."""
    (policy,) = [
        o
        for o in kind_objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "mlflow-clients"
    ]
    clients = [
        (where, labels)
        for obj in kind_objects
        if obj["metadata"].get("namespace") == "fraud-lab"
        for where, labels, pod in pod_templates(obj)
        if any(
            e.get("name") == "FRAUD_MLFLOW_TRACKING_URI"
            for c in containers(pod)
            for e in c.get("env") or []
        )
    ]
    assert {
        "WorkflowTemplate/fraud-lab/fraud-pipeline template model-tests",
        "WorkflowTemplate/fraud-lab/broken-candidate template train-broken",
        "WorkflowTemplate/fraud-lab/train-model template train",
    } <= {w for w, _ in clients}, clients
    outside = [w for w, labels in clients if not selects(policy["spec"]["podSelector"], labels)]
    assert outside == [], outside
    # The check can fail: without the lab 07 names, their steps are outside the policy.
    narrowed = {
        "matchExpressions": [
            {**e, "values": [v for v in e["values"] if v not in ("model-tests", "train-broken")]}
            for e in policy["spec"]["podSelector"]["matchExpressions"]
        ]
    }
    assert sorted(w for w, labels in clients if not selects(narrowed, labels)) == [
        "WorkflowTemplate/fraud-lab/broken-candidate template train-broken",
        "WorkflowTemplate/fraud-lab/fraud-pipeline template model-tests",
    ]
