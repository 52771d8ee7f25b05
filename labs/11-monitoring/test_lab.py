"""Lab 11 · Monitoring and observability: Prometheus scrapes the model and the drift monitor; the
score histogram and drift metrics for every feature exist; the alert rules are loaded; the Grafana
dashboard is provisioned.

Prometheus is http://127.0.0.1:30090 on the cluster, and the `prometheus` entry of stack.json in
local mode (only `make up-monitoring` starts one). A scrape takes up to an interval (15 s for the
model, 30 s for the drift monitor on the cluster): the checks wait for it, never more than 60 s.
"""

from __future__ import annotations

import json

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

DEPLOYMENT, CONTAINER = labkit.DRIFT_MONITOR_DEPLOYMENT, labkit.DRIFT_MONITOR_CONTAINER
APPLY = kubectl("apply -k labs/11-monitoring/starter")
SCRAPE_WAIT_S = 45.0  # two scrape intervals of the model's PodMonitor, plus rule evaluation
METRIC_WAIT_S = 20.0  # a scrape of metrics that appear after a replay


def replay_fix(target: str) -> str:
    """What makes the monitored model score a day on this target. In the cluster, the drift monitor
    reads the served scores the pipeline's replay step leaves on the `fraud-data` volume (a replay
    from this machine, make replay-cluster, writes them here, where the monitor never looks)."""
    return (
        "scripts/run-pipeline.sh fraud-pipeline through=replay"
        if target == "cluster"
        else "make replay DAY=2018-08-08"
    )


def prometheus_logs(endpoints) -> str:
    return (
        kubectl(
            f"-n {labkit.MONITORING_NAMESPACE} logs prometheus-kube-prometheus-stack-prometheus-0 -c prometheus --tail=30"
        )
        if endpoints.target == "cluster"
        else endpoints.log_command("prometheus")
    )


def poll(fn, seconds: float):
    """`fn()` until it returns something truthy or `seconds` have passed; its last answer."""
    box: dict = {}

    def attempt() -> bool:
        box["value"] = fn()
        return bool(box["value"])

    labkit.wait_until(attempt, seconds)
    return box.get("value")


def port_names(container: dict | None) -> dict[str, int]:
    return {
        p.get("name"): p.get("containerPort")
        for p in (container or {}).get("ports") or []
        if p.get("name")
    }


def arg_value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


def template_labels(obj: dict) -> dict[str, str]:
    """The labels of the pods a workload makes (a SeldonDeployment's first component)."""
    if obj.get("kind") == "SeldonDeployment":
        predictors = (obj.get("spec") or {}).get("predictors") or [{}]
        return (((predictors[0].get("componentSpecs") or [{}])[0].get("metadata")) or {}).get(
            "labels"
        ) or {}
    return (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}


# --- kind mode: the monitoring objects ------------------------------------------------------------
@pytest.mark.cluster("reads PodMonitors")
@pytest.mark.parametrize("monitor", list(labkit.PODMONITORS))
def test_podmonitor_selects_pods(k8s, monitor):
    """PodMonitor `{monitor}` selects the {monitor} pods and scrapes their port `metrics` (Prometheus job fraud-lab/{monitor})."""
    kind, name, container_name = labkit.PODMONITORS[monitor]
    pm = k8s.podmonitor(monitor)
    assert pm is not None, hint(
        f"PodMonitor {monitor} in {NAMESPACE}",
        "no such object (or no PodMonitor CRD: kube-prometheus-stack is not installed)",
        kubectl(f"-n {NAMESPACE} get podmonitors"),
    )
    workload = k8s.seldondeployment(name) if kind == "SeldonDeployment" else k8s.deployment(name)
    assert workload is not None, hint(
        f"{kind} {name} in {NAMESPACE}, whose pods the PodMonitor selects",
        "no such object",
        kubectl(f"-n {NAMESPACE} get {kind.lower()} {name}"),
    )
    spec = pm.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    pod_labels = template_labels(workload)
    ports = port_names(labkit.find_container(labkit.pod_spec(workload), container_name))
    endpoints = spec.get("podMetricsEndpoints") or []
    problems = []
    if not selector:
        problems.append("no selector.matchLabels (it would select every pod of the namespace)")
    elif any(pod_labels.get(k) != v for k, v in selector.items()):
        problems.append(f"selector {selector} does not match the {name} pods' labels {pod_labels}")
    scraped = [e.get("port") for e in endpoints]
    if not endpoints or any(p is None for p in scraped):
        problems.append("no podMetricsEndpoints port")
    elif any(p != labkit.METRICS_PORT_NAME or p not in ports for p in scraped):
        problems.append(
            f"podMetricsEndpoints ports {scraped}, the {container_name} container's named ports {sorted(ports)}"
        )
    elif any(e.get("path", "/metrics") != "/metrics" for e in endpoints):
        problems.append(f"paths {[e.get('path') for e in endpoints]}")
    assert not problems, hint(
        f"selector.matchLabels within the {name} pods' labels; podMetricsEndpoints port {labkit.METRICS_PORT_NAME}, path /metrics",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} get podmonitor {monitor} -o yaml"),
    )


@pytest.mark.cluster("reads the Deployment's spec")
def test_drift_monitor_deployment_spec(k8s):
    """Deployment `drift-monitor` runs `fraudlab monitor` on 0.0.0.0:8090 behind the container port `metrics`, reading the fraud-data volume at /data."""
    dep = k8s.deployment(DEPLOYMENT)
    assert dep is not None, hint(
        f"Deployment {DEPLOYMENT} in {NAMESPACE}",
        "no such object",
        kubectl("apply -k labs/11-monitoring/starter"),
    )
    podspec = labkit.pod_spec(dep)
    container = labkit.find_container(podspec, CONTAINER) or {}
    args = [str(a) for a in container.get("args") or []]
    ports = port_names(container)
    problems = []
    if args[:1] != ["monitor"]:
        problems.append(f"args {args}")
    else:
        host, port = (
            arg_value(args, "--host") or "127.0.0.1 (the default)",
            arg_value(args, "--port") or str(labkit.DRIFT_MONITOR_PORT),
        )
        if host != "0.0.0.0":
            problems.append(f"listens on {host}, unreachable for Prometheus")
        if labkit.METRICS_PORT_NAME not in ports:
            problems.append(f"no container port named {labkit.METRICS_PORT_NAME}")
        elif str(ports[labkit.METRICS_PORT_NAME]) != port:
            problems.append(
                f"listens on port {port}, port {labkit.METRICS_PORT_NAME} is {ports[labkit.METRICS_PORT_NAME]}"
            )
    claims = {
        v.get("name"): (v.get("persistentVolumeClaim") or {}).get("claimName")
        for v in podspec.get("volumes") or []
    }
    if not any(
        m.get("mountPath") == labkit.DATA_MOUNT and claims.get(m.get("name")) == labkit.DATA_PVC
        for m in container.get("volumeMounts") or []
    ):
        problems.append(f"no volume {labkit.DATA_PVC} at {labkit.DATA_MOUNT}")
    assert not problems, hint(
        f"args monitor --host 0.0.0.0 --port {labkit.DRIFT_MONITOR_PORT}; container port {labkit.METRICS_PORT_NAME} {labkit.DRIFT_MONITOR_PORT}; volume {labkit.DATA_PVC} at {labkit.DATA_MOUNT}",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} get deployment {DEPLOYMENT} -o yaml"),
    )


@pytest.mark.cluster("Deployments run on a cluster")
@pytest.mark.needs("test_drift_monitor_deployment_spec")
def test_drift_monitor_available(k8s):
    """Deployment `drift-monitor` is Available."""
    dep = k8s.deployment(DEPLOYMENT)
    pods = k8s.pods(NAMESPACE, labkit.DRIFT_MONITOR_POD_SELECTOR)
    assert labkit.condition(dep, "Available") == "True", hint(
        "condition Available=True (a Ready pod)",
        f"Available={labkit.condition(dep, 'Available')}; {labkit.pod_state(pods)}",
        kubectl(f"-n {NAMESPACE} describe deployment {DEPLOYMENT}"),
    )


# --- your Python: the PSI the drift monitor computes ------------------------------------------------
EXERCISE_WORKLOAD = f"Deployment {DEPLOYMENT}"
"""The workload that runs the learner's psi.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return labkit.pod_spec(k8s.deployment(DEPLOYMENT) or {})


@pytest.mark.cluster("reads the Deployment's spec")
def test_drift_monitor_runs_your_psi(k8s):
    """Deployment `drift-monitor` runs your psi.py: its ConfigMap (`lab-code-11-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 11, "psi.py", APPLY)


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(11))
def test_exercise(exercise, behaviour):
    """Your psi_from_shares: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)


@pytest.mark.cluster("reads a ConfigMap")
def test_dashboard_configmap(k8s):
    """ConfigMap `grafana-dashboard-fraud-lab` in `monitoring` is labelled grafana_dashboard=1 and holds the dashboard `fraud-lab`."""
    name, namespace = labkit.DASHBOARD_CONFIGMAP, labkit.MONITORING_NAMESPACE
    cm = k8s.configmap(name, namespace)
    key, value = labkit.DASHBOARD_LABEL
    uids = []
    for text in ((cm or {}).get("data") or {}).values():
        try:
            uids.append(json.loads(text).get("uid"))
        except (ValueError, AttributeError):
            uids.append("(not JSON)")
    found = (
        "no such object"
        if cm is None
        else f"label {key}={labkit.labels(cm).get(key)}; dashboard uids {uids}"
    )
    assert (
        cm is not None and labkit.labels(cm).get(key) == value and labkit.DASHBOARD_UID in uids
    ), hint(
        f"label {key}={value}; a JSON dashboard with uid {labkit.DASHBOARD_UID}",
        found,
        kubectl(f"-n {namespace} get configmap {name} --show-labels"),
    )


@pytest.mark.cluster("Grafana runs on the cluster")
@pytest.mark.needs("test_dashboard_configmap")
def test_grafana_has_the_dashboard(k8s, endpoints):
    """Grafana (127.0.0.1:30030) has loaded the dashboard `fraud-lab`."""
    namespace = labkit.MONITORING_NAMESPACE
    secret = k8s.secret(labkit.GRAFANA_SECRET, namespace) or {}
    user_key, password_key = labkit.GRAFANA_SECRET_KEYS
    show = kubectl(
        f"-n {namespace} get secret {labkit.GRAFANA_SECRET} -o jsonpath='{{.data.{password_key}}}' | base64 -d"
    )
    assert secret.get(password_key), hint(
        f"Secret {labkit.GRAFANA_SECRET} in {namespace} with {password_key}",
        "no such Secret or key (kube-prometheus-stack is not installed)",
        kubectl(f"-n {namespace} get secrets"),
    )
    url = f"{endpoints.grafana}/api/dashboards/uid/{labkit.DASHBOARD_UID}"
    auth = (secret.get(user_key) or "admin", secret[password_key])

    def answer():
        r = labkit.http_get(url, auth=auth)
        if isinstance(r, str):
            return r
        if r.status_code != 200:
            return f"HTTP {r.status_code}: {labkit.short(r.text, 120)}"
        return f"HTTP 200, uid {(r.json().get('dashboard') or {}).get('uid')}"

    # The dashboard sidecar loads a new ConfigMap within seconds.
    want = f"HTTP 200, uid {labkit.DASHBOARD_UID}"
    found = poll(lambda: (lambda a: a if a == want else None)(answer()), 30) or answer()
    assert found == want, hint(
        f"HTTP 200 from {url} (user {auth[0]}, password from Secret {labkit.GRAFANA_SECRET})",
        found,
        f'curl -s -u "{auth[0]}:$({show})" {url}',
    )


# --- both targets: Prometheus ----------------------------------------------------------------------
def test_prometheus_ready(endpoints, prometheus):
    """Prometheus answers on its URL: GET /-/ready → 200."""
    status = labkit.http_status(f"{prometheus.url}/-/ready")
    assert status == 200, hint(
        f"HTTP 200 from {prometheus.url}/-/ready", str(status), prometheus_logs(endpoints)
    )


def scraped(prometheus, job: str, seconds: float) -> list[dict]:
    """The `up` samples of a job, once one is 1 or after `seconds`."""
    return poll(lambda: prometheus.query(f'up{{job="{job}"}} == 1'), seconds) or prometheus.query(
        f'up{{job="{job}"}}'
    )


@pytest.mark.needs("test_prometheus_ready")
def test_prometheus_scrapes_the_model(endpoints, prometheus):
    """Prometheus scrapes the model: up{job="fraud-lab/fraud-detector"} == 1."""
    samples = scraped(prometheus, labkit.MODEL_JOB, SCRAPE_WAIT_S)
    up = [s["value"][1] for s in samples]
    fix = (
        kubectl(f"-n {NAMESPACE} get podmonitor fraud-detector -o yaml")
        if endpoints.target == "cluster"
        else prometheus.debug(path="/api/v1/targets")
    )
    assert "1" in up, hint(
        f"a target of job {labkit.MODEL_JOB} with up = 1",
        f"no target of job {labkit.MODEL_JOB}" if not up else f"up = {', '.join(up)}",
        fix,
    )


@pytest.mark.needs("test_prometheus_scrapes_the_model")
def test_score_metric_exists(endpoints, prometheus):
    """The model's score histogram is in Prometheus: fraud_score_bucket has samples, by model version."""
    expr = f'{labkit.SCORE_METRIC}{{job="{labkit.MODEL_JOB}"}}'
    samples = poll(lambda: prometheus.query(expr), METRIC_WAIT_S)
    versions = sorted({s["metric"].get("model_version", "?") for s in samples or []})
    assert samples, hint(
        f"{labkit.SCORE_METRIC} samples (they appear once the model has scored transactions)",
        "none",
        f"{replay_fix(endpoints.target)}   (then: {prometheus.debug(expr)})",
    )
    assert "?" not in versions, hint(
        "a model_version label on every sample", f"versions {versions}", prometheus.debug(expr)
    )


@pytest.mark.needs("test_prometheus_ready")
def test_prometheus_scrapes_the_drift_monitor(endpoints, prometheus):
    """Prometheus scrapes the drift monitor: up{job="fraud-lab/drift-monitor"} == 1."""
    samples = scraped(prometheus, labkit.DRIFT_JOB, SCRAPE_WAIT_S)
    up = [s["value"][1] for s in samples]
    if endpoints.target == "cluster":
        fix = kubectl(f"-n {NAMESPACE} get podmonitor drift-monitor -o yaml; ") + kubectl(
            f"-n {NAMESPACE} logs deployment/{DEPLOYMENT} --tail=30"
        )
    else:
        fix = endpoints.log_command("monitor")
    assert "1" in up, hint(
        f"a target of job {labkit.DRIFT_JOB} with up = 1",
        f"no target of job {labkit.DRIFT_JOB}" if not up else f"up = {', '.join(up)}",
        fix,
    )


@pytest.mark.needs("test_prometheus_scrapes_the_drift_monitor")
def test_drift_metrics_exist(endpoints, prometheus):
    """Drift metrics exist for the 15 features and the score: fraud_drift_psi{feature}."""
    expr = f'{labkit.DRIFT_METRIC}{{job="{labkit.DRIFT_JOB}"}}'
    wanted = {*labkit.FEATURE_NAMES, labkit.SCORE_FEATURE}

    def features() -> set[str]:
        return {s["metric"].get("feature") for s in prometheus.query(expr)}

    found = poll(lambda: wanted <= features() and wanted, METRIC_WAIT_S) or features()
    missing = sorted(wanted - found)
    up = (
        [] if found else prometheus.query(f'{labkit.MONITOR_UP_METRIC}{{job="{labkit.DRIFT_JOB}"}}')
    )
    state = (
        f"{labkit.MONITOR_UP_METRIC} = {up[0]['value'][1]}: the drift monitor has no served day to compare"
        if up
        else "no sample"
    )
    assert found, hint(
        f"{labkit.DRIFT_METRIC} for {len(wanted)} features (the 15 inputs and {labkit.SCORE_FEATURE})",
        state,
        f"{replay_fix(endpoints.target)}   (the drift monitor compares the latest replayed day with the training window)",
    )
    assert not missing, hint(
        f"{labkit.DRIFT_METRIC} for {len(wanted)} features",
        f"{len(missing)} missing: {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}",
        prometheus.debug(expr),
    )


@pytest.mark.needs("test_prometheus_ready")
def test_alert_rules_loaded(endpoints, prometheus):
    """Prometheus has loaded the alert rules FraudFeatureDrift and FraudModelDown."""
    rules = prometheus.alert_rules()
    missing = [r for r in labkit.ALERT_RULES if r not in rules]
    fix = (
        kubectl(f"-n {NAMESPACE} get prometheusrule {labkit.PROMETHEUS_RULE} -o yaml")
        if endpoints.target == "cluster"
        else prometheus_logs(endpoints)
    )
    assert not missing, hint(
        f"alerting rules {', '.join(labkit.ALERT_RULES)}",
        f"missing {', '.join(missing)} ({len(rules)} alerting rules loaded)",
        fix,
    )
