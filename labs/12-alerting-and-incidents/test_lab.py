"""Lab 12 · Alerting, SLOs, incident response: the SLO burn-rate alerts (thresholds from your
burnrate.py) are loaded next to the model alerts; an injected fault (the model down) fires its
alert, which reaches Alertmanager with its runbook link.

Cluster: the Job `slo-rules` (your manifest, your burnrate.py mounted) and the PrometheusRule
`fraud-lab-slo` it applied; Prometheus on NodePort 30090; Alertmanager through amtool in its pod.
Local: the Prometheus and Alertmanager of `make up-monitoring` (stack.json), whose SLO rules
`fraudlab up` rendered with FRAUD_LAB_CODE.
"""

from __future__ import annotations

import json
import re

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl
from labkit.exercises import FRAUDLAB

JOB, SERVICE_ACCOUNT, CONTAINER = "slo-rules", "slo-rules", "slo-rules"
APPLY_ARGS = ["slo-rules", "--apply"]
SLO_RULE, SLO_GROUP = "fraud-lab-slo", "fraud-lab.slo"
LAB_CODE_ANNOTATION = "fraud-lab.io/lab-code"
APPLY = (
    kubectl(f"-n {NAMESPACE} delete job {JOB} --ignore-not-found")
    + " && "
    + kubectl("apply -k labs/12-alerting-and-incidents/starter")
)
FAULT_ALERT = "FraudModelDown"
RUNBOOK_BASE = "https://fraud-lab.github.io/fraud-lab/runbooks/"
ALERTMANAGER_POD = (
    "monitoring",
    "alertmanager-kube-prometheus-stack-alertmanager-0",
    "alertmanager",
)
RULES_WAIT_S = 45.0  # the operator's config reload of a new PrometheusRule, then one evaluation
ALERT_WAIT_S = 20.0  # Prometheus sends firing alerts to Alertmanager within a few seconds


def inject_fault(target: str) -> str:
    """The command that makes FraudModelDown fire on this target (step 4 of the README)."""
    if target == "cluster":
        return (
            kubectl(
                f"-n {NAMESPACE} patch seldondeployment fraud-detector --type=json "
                """-p '[{"op": "replace", "path": "/spec/predictors/0/replicas", "value": 0}]'"""
            )
            + "   (then wait 3 minutes)"
        )
    return (
        'kill -STOP $(python3 -c \'import json; print(json.load(open("data/state/stack.json"))'
        '["mlserver"]["pid"])\')   (then wait 3 minutes)'
    )


def thresholds(expr: str) -> list[str]:
    """The numbers an alert compares with (`… > 0.01344 and …`), 6 significant digits."""
    return sorted(f"{float(x):.6g}" for x in re.findall(r">\s*([0-9.eE+-]+)", expr))


def reference_alerts() -> dict[str, list[str]]:
    """{alert: thresholds} of the reference SLO rules (the app's `fraudlab slo-rules`, no lab code)."""
    import os
    import subprocess

    import yaml

    out = subprocess.run(
        [str(FRAUDLAB), "slo-rules"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FRAUD_LAB_CODE": ""},
    )
    assert out.returncode == 0, hint(
        "fraudlab slo-rules prints the reference rules", out.stderr.strip()[-300:], "make install"
    )
    (group,) = yaml.safe_load(out.stdout)["spec"]["groups"]
    return {r["alert"]: thresholds(r["expr"]) for r in group["rules"] if "alert" in r}


def runbook_problem(url: str | None) -> str | None:
    """Why `url` is not a runbook page of the course, or None."""
    if not url:
        return "no runbook_url annotation"
    if not url.startswith(RUNBOOK_BASE):
        return f"runbook_url {url} is not a page under {RUNBOOK_BASE}"
    slug = url[len(RUNBOOK_BASE) :].strip("/")
    if not (labkit.REPO_ROOT / "chapters" / "runbooks" / f"{slug}.md").is_file():
        return f"runbook_url {url}: no page chapters/runbooks/{slug}.md"
    return None


# --- kind mode: your Job ------------------------------------------------------------------------
def job_pod(k8s) -> dict:
    return labkit.pod_spec(k8s.job(JOB) or {})


@pytest.mark.cluster("reads the Job")
def test_slo_rules_job_spec(k8s):
    """Job `slo-rules` runs `fraudlab slo-rules --apply` as ServiceAccount `slo-rules` (its Role may write PrometheusRules)."""
    job = k8s.job(JOB)
    pod = job_pod(k8s)
    container = labkit.find_container(pod, CONTAINER) or {}
    problems = []
    if job is None:
        problems.append(f"no Job {JOB}")
    else:
        if pod.get("serviceAccountName") != SERVICE_ACCOUNT:
            problems.append(f"serviceAccountName {pod.get('serviceAccountName')!r}")
        if [str(a) for a in container.get("args") or []] != APPLY_ARGS:
            problems.append(f"args {container.get('args')}")
    assert not problems, hint(
        f"serviceAccountName {SERVICE_ACCOUNT}; args {APPLY_ARGS}", "; ".join(problems), APPLY
    )


EXERCISE_WORKLOAD = f"Job {JOB}"
"""The workload that runs the learner's burnrate.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return job_pod(k8s)


@pytest.mark.cluster("reads the Job")
def test_slo_rules_job_runs_your_burnrate(k8s):
    """Job `slo-rules` runs your burnrate.py: its ConfigMap (`lab-code-12-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 12, "burnrate.py", APPLY)


@pytest.mark.cluster("Jobs run on a cluster")
@pytest.mark.needs("test_slo_rules_job_spec")
def test_slo_rules_job_succeeded(k8s):
    """Job `slo-rules` has completed: it applied the PrometheusRule `fraud-lab-slo`."""
    job = k8s.job(JOB)
    succeeded = ((job or {}).get("status") or {}).get("succeeded")
    pods = k8s.pods(NAMESPACE, f"app.kubernetes.io/name={JOB}")
    assert succeeded == 1, hint(
        "status.succeeded 1",
        f"succeeded {succeeded}; {labkit.pod_state(pods)}",
        kubectl(f"-n {NAMESPACE} logs job/{JOB} --tail=20"),
    )


@pytest.mark.cluster("reads the PrometheusRule")
@pytest.mark.needs("test_slo_rules_job_succeeded", "test_slo_rules_job_runs_your_burnrate")
def test_prometheusrule_from_your_burnrate(k8s):
    """PrometheusRule `fraud-lab-slo` was rendered by the burnrate.py the Job mounts (annotation fraud-lab.io/lab-code)."""
    rule = k8s.prometheusrule(SLO_RULE)
    files = labkit.mounted_lab_code(k8s, exercise_pod(k8s))
    expected = labkit.lab_code_source(12, "burnrate.py", files.get("burnrate.py"))
    found = (
        "no such object"
        if rule is None
        else (rule["metadata"].get("annotations") or {}).get(LAB_CODE_ANNOTATION)
    )
    assert found == expected, hint(
        f"{LAB_CODE_ANNOTATION}: {expected}",
        str(found),
        kubectl(f"-n {NAMESPACE} get prometheusrule {SLO_RULE} -o yaml"),
    )


# --- your Python: the burn-rate threshold -------------------------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(12))
def test_exercise(exercise, behaviour):
    """Your burn_rate_threshold: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)


# --- both targets: the rules in Prometheus, the fault's alert -----------------------------------
def rules_fix(target: str) -> str:
    return (
        APPLY
        if target == "cluster"
        else "make down && FRAUD_LAB_CODE=labs/12-alerting-and-incidents/starter make up-monitoring"
    )


def loaded_slo_alerts(prometheus) -> dict[str, list[str]]:
    """{alert: thresholds} of the SLO group Prometheus has loaded."""
    return {
        r["name"]: thresholds(r.get("query", ""))
        for g in prometheus.rule_groups()
        if g.get("name") == SLO_GROUP
        for r in g.get("rules") or []
        if r.get("type") == "alerting"
    }


def test_slo_alerts_loaded(endpoints, prometheus):
    """Prometheus has loaded the SLO burn-rate alerts (group fraud-lab.slo), with the thresholds of chapter 01's SLOs."""
    expected = reference_alerts()

    loaded: dict[str, list[str]] = {}

    def matches() -> bool:
        nonlocal loaded
        loaded = loaded_slo_alerts(prometheus)
        return loaded == expected

    labkit.wait_until(matches, RULES_WAIT_S)
    assert loaded == expected, hint(
        "; ".join(f"{a} > {', '.join(t)}" for a, t in expected.items()),
        "; ".join(f"{a} > {', '.join(t)}" for a, t in loaded.items())
        or f"no rule group {SLO_GROUP}",
        rules_fix(endpoints.target),
    )


def test_fault_alert_firing_with_runbook(endpoints, prometheus):
    """The injected fault fires its alert: FraudModelDown is firing in Prometheus, with a runbook_url to its page."""
    alerts = [a for a in prometheus.alerts() if a["labels"].get("alertname") == FAULT_ALERT]
    states = [a.get("state") for a in alerts]
    assert "firing" in states, hint(
        f"{FAULT_ALERT} firing (the model down for more than its `for: 2m`)",
        f"{FAULT_ALERT} {', '.join(states)}" if states else f"{FAULT_ALERT} not pending or firing",
        inject_fault(endpoints.target),
    )
    firing = next(a for a in alerts if a.get("state") == "firing")
    problem = runbook_problem((firing.get("annotations") or {}).get("runbook_url"))
    assert problem is None, hint(
        f"runbook_url {RUNBOOK_BASE}<page>/ with chapters/runbooks/<page>.md",
        problem,
        prometheus.debug(path="/api/v1/alerts"),
    )


def alertmanager_alerts(endpoints, k8s_getter) -> tuple[list[dict], str]:
    """(the active alerts named FAULT_ALERT in Alertmanager, the command that shows them)."""
    matcher = f"alertname={FAULT_ALERT}"
    if endpoints.target == "cluster":
        namespace, pod, container = ALERTMANAGER_POD
        k8s_getter()  # the cluster is reachable (else this check fails with the reason)
        command = f"amtool alert query {matcher} -o json --alertmanager.url=http://localhost:9093"
        out = labkit.run_in(labkit.pod_host(pod, container, namespace), command)
        show = kubectl(f"-n {namespace} exec {pod} -c {container} -- {command}")
        return (json.loads(out.stdout or "[]") if out.rc == 0 else []), show
    url = f"{endpoints.alertmanager}/api/v2/alerts"
    r = labkit.http_get(url, params={"filter": f'alertname="{FAULT_ALERT}"', "active": "true"})
    alerts = r.json() if not isinstance(r, str) and r.status_code == 200 else []
    return alerts, f"curl -s '{url}?filter=alertname%3D%22{FAULT_ALERT}%22'"


@pytest.mark.needs("test_fault_alert_firing_with_runbook")
def test_fault_alert_reached_alertmanager(request, endpoints):
    """Alertmanager has received FraudModelDown with its runbook link: the page reaches whoever the route names."""
    assert endpoints.target == "cluster" or endpoints.alertmanager, hint(
        "an alertmanager entry in stack.json (make up-monitoring)",
        f"{endpoints.source} lists no alertmanager",
        "make down && make up-monitoring",
    )
    found, show = [], ""

    def received() -> bool:
        nonlocal found, show
        found, show = alertmanager_alerts(endpoints, lambda: request.getfixturevalue("k8s"))
        return bool(found)

    labkit.wait_until(received, ALERT_WAIT_S)
    assert found, hint(f"{FAULT_ALERT} active in Alertmanager", "not there", show)
    urls = [(a.get("annotations") or {}).get("runbook_url") for a in found]
    problems = [runbook_problem(u) for u in urls]
    assert None in problems, hint(
        f"runbook_url {RUNBOOK_BASE}fraud-model-down/",
        "; ".join(p for p in problems if p),
        show,
    )
