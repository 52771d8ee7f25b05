"""Lab 09 · Serving: the SeldonDeployment is Available; the served version is the champion and its
predictions equal the offline scores; a bad payload gets a 4xx; p95 latency is within the SLO.

The SLO: p95 latency of one request (one transaction) ≤ 100 ms over 50 requests, measured from
this machine (set LAB_SLO_P95_MS to change it on a slow machine, and say so).
"""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

import labkit
from labkit import NAMESPACE, POOL_LABEL, hint, kubectl

SDEP, CONTAINER, NODEPORT_SERVICE = (
    labkit.MODEL_SELDONDEPLOYMENT,
    labkit.MODEL_CONTAINER,
    labkit.MODEL_NODEPORT_SERVICE,
)
APPLY = kubectl("apply -k labs/09-serving/starter")
REPLICAS = 2
MODEL_URI = "models:/fraud-detector@champion"
WARMUP_REQUESTS = 3


def slo_ms() -> float:
    return float(os.environ.get("LAB_SLO_P95_MS", labkit.SLO_P95_MS))


def infer_url(endpoints, model_name: str) -> str:
    return f"{endpoints.model}/v2/models/{model_name}/infer"


def post(url: str, body: str) -> httpx.Response:
    return httpx.post(
        url,
        content=body,
        headers={"content-type": "application/json"},
        timeout=labkit.HTTP_TIMEOUT_S,
    )


def model_logs(endpoints) -> str:
    if endpoints.target == "cluster":
        return kubectl(f"-n {NAMESPACE} logs -l {labkit.MODEL_POD_SELECTOR} --tail=30")
    return endpoints.log_command("mlserver")


def served_version(endpoints, model_name: str) -> str | None:
    r = post(
        infer_url(endpoints, model_name),
        json.dumps(labkit.v2_request([labkit.sample_transaction()])),
    )
    return str(r.json().get("model_version")) if r.status_code == 200 else None


# Bad payloads and what makes each bad: every one must get HTTP 400 with a message.
def _missing_input() -> dict:
    body = labkit.v2_request([labkit.sample_transaction()])
    body["inputs"] = body["inputs"][1:]
    return body


def _text_value() -> dict:
    body = labkit.v2_request([labkit.sample_transaction()])
    body["inputs"][0]["data"] = ["fifty"]
    return body


def _wrong_length() -> dict:
    body = labkit.v2_request([labkit.sample_transaction(), labkit.sample_transaction(1)])
    body["inputs"][0]["data"] = body["inputs"][0]["data"][:1]
    return body


BAD_PAYLOADS = {
    "a missing input": _missing_input,
    "an amount that is not a number": _text_value,
    "inputs of different lengths": _wrong_length,
}


# --- kind mode: the SeldonDeployment ------------------------------------------------------------------------
@pytest.mark.cluster("reads the SeldonDeployment's spec")
def test_seldondeployment_spec(k8s):
    """SeldonDeployment `fraud-detector` speaks V2 with 2 replicas, loads models:/fraud-detector@champion, and is ready only once the model is."""
    sdep = k8s.seldondeployment(SDEP)
    assert sdep is not None, hint(
        f"SeldonDeployment {SDEP} in {NAMESPACE}",
        "no such object",
        APPLY,
    )
    spec = sdep.get("spec") or {}
    container = labkit.find_container(labkit.pod_spec(sdep), CONTAINER)
    readiness = ((container or {}).get("readinessProbe") or {}).get("httpGet", {}).get("path", "")
    problems = []
    if spec.get("protocol") != "v2":
        problems.append(f"protocol {spec.get('protocol')}")
    if min((p.get("replicas", 1) for p in spec.get("predictors") or [{}]), default=1) < REPLICAS:
        problems.append(f"replicas {[p.get('replicas', 1) for p in spec.get('predictors') or []]}")
    if labkit.env_value(container, "FRAUD_MODEL_URI") != MODEL_URI:
        problems.append(f"FRAUD_MODEL_URI {labkit.env_value(container, 'FRAUD_MODEL_URI')}")
    if not readiness.endswith(f"/v2/models/{SDEP}/ready"):
        problems.append(f"readinessProbe {readiness or '(none)'}")
    assert not problems, hint(
        f"protocol v2, replicas {REPLICAS}, FRAUD_MODEL_URI {MODEL_URI}, readinessProbe /v2/models/{SDEP}/ready",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} get seldondeployment {SDEP} -o yaml"),
    )


@pytest.mark.cluster("SeldonDeployments run on a cluster")
@pytest.mark.needs("test_seldondeployment_spec")
def test_seldondeployment_available(k8s):
    """SeldonDeployment `fraud-detector` is Available."""
    sdep = k8s.seldondeployment(SDEP)
    status = sdep.get("status") or {}
    assert status.get("state") == "Available", hint(
        "status.state Available",
        f"state {status.get('state')} {labkit.short(status.get('description') or '', 120)}",
        kubectl(f"-n {NAMESPACE} describe seldondeployment {SDEP}"),
    )


@pytest.mark.cluster("pods run on cluster nodes")
@pytest.mark.needs("test_seldondeployment_available")
def test_replicas_ready_on_serving_pool(k8s):
    """Its 2 replicas are Ready, on the serving pool."""
    pods = k8s.pods(NAMESPACE, labkit.MODEL_POD_SELECTOR)
    ready = labkit.ready_pods(pods)
    pools = {
        p["spec"].get("nodeName"): labkit.labels(k8s.node(p["spec"].get("nodeName"))).get(
            POOL_LABEL
        )
        for p in ready
    }
    assert len(ready) >= REPLICAS and set(pools.values()) == {"serving"}, hint(
        f"{REPLICAS} Ready pods on nodes with {POOL_LABEL}=serving",
        f"{len(ready)} Ready ({labkit.pod_state(pods)}); nodes {pools}",
        kubectl(f"-n {NAMESPACE} get pods -l {labkit.MODEL_POD_SELECTOR} -o wide"),
    )


@pytest.mark.cluster("reads facts inside a model pod")
@pytest.mark.needs("test_replicas_ready_on_serving_pool")
def test_model_pod_runs_champion_as_non_root(k8s):
    """Inside a model pod, MLServer runs as a non-root user and loads models:/fraud-detector@champion."""
    pod = labkit.ready_pods(k8s.pods(NAMESPACE, labkit.MODEL_POD_SELECTOR))[0]["metadata"]["name"]
    host = labkit.pod_host(pod, CONTAINER)
    uid = labkit.run_in(host, "id -u").stdout.strip()
    uri = labkit.run_in(host, 'printf "%s" "$FRAUD_MODEL_URI"').stdout.strip()
    assert uid not in ("", "0") and uri == MODEL_URI, hint(
        f"uid ≠ 0 and FRAUD_MODEL_URI={MODEL_URI}",
        f"uid {uid or '?'}, FRAUD_MODEL_URI={uri or '(unset)'}",
        kubectl(
            f"-n {NAMESPACE} exec {pod} -c {CONTAINER} -- sh -c 'id; printenv FRAUD_MODEL_URI'"
        ),
    )


@pytest.mark.cluster("NodePorts exist on a cluster")
def test_nodeport_service(k8s):
    """Service `fraud-detector-nodeport` exposes REST on NodePort 30080 and gRPC on 30081."""
    svc = k8s.service(NODEPORT_SERVICE)
    ports = sorted(p.get("nodePort") for p in ((svc or {}).get("spec") or {}).get("ports") or [])
    want = sorted([labkit.NODEPORTS["model_http"], labkit.NODEPORTS["model_grpc"]])
    assert ports == want, hint(
        f"NodePorts {want}",
        "no such Service" if svc is None else f"NodePorts {ports}",
        kubectl(f"-n {NAMESPACE} get service {NODEPORT_SERVICE}"),
    )


# --- both targets: the model over HTTP ----------------------------------------------------------------------
def test_model_ready(endpoints, model_name):
    """The model server has loaded the model: GET /v2/models/fraud-detector/ready → 200."""
    url = f"{endpoints.model}/v2/models/{model_name}/ready"
    status = labkit.http_status(url)
    assert status == 200, hint(f"HTTP 200 from {url}", str(status), model_logs(endpoints))


@pytest.mark.needs("test_model_ready")
def test_serves_the_champion(endpoints, mlflow, model_name):
    """The server answers with the registry's champion version (model_version in its responses)."""
    champion = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    served = served_version(endpoints, model_name)
    restart = (
        "make down && make up   (the server loads the champion when it starts)"
        if endpoints.target == "local"
        else kubectl(
            f"-n {NAMESPACE} delete pods -l {labkit.MODEL_POD_SELECTOR}   (new pods load the champion)"
        )
    )
    debug = restart
    if champion is None:
        # No version carries the alias: give it back, then the server loads it.
        latest = mlflow.latest_version(model_name)
        promote = labkit.promote_command(endpoints.target, model_name, latest, mlflow.url)
        debug = f"{promote}\nthen: {restart}"
    assert champion is not None and served == str(champion["version"]), hint(
        f"model_version = the version with alias {labkit.CHAMPION}",
        f"served {served}, champion {champion['version'] if champion else 'none'}",
        debug,
    )


@pytest.mark.needs("test_model_ready")
def test_predictions_equal_offline_scores(endpoints, model_name):
    """Predictions equal offline scores: the latest replay found max |served − offline| ≤ 1e-6, for the version served now."""
    path, replay = labkit.latest_replay()
    if endpoints.target == "cluster":
        fix = "make replay-cluster DAY=2018-08-08"
    else:
        fix = "make replay DAY=2018-08-08"
    assert replay is not None, hint(
        f"a replay report {labkit.data_dir()}/reports/replay-<day>.json",
        "no replay report" if path is None else f"{path} is not JSON",
        fix,
    )
    served = served_version(endpoints, model_name)
    diff = replay.get("max_abs_diff")
    assert (
        isinstance(diff, (int, float))
        and diff <= labkit.SKEW_TOLERANCE
        and replay.get("transactions", 0) > 0
    ), hint(
        f"max |served − offline| ≤ {labkit.SKEW_TOLERANCE:.0e} over the replayed day",
        f"{path.name}: max |diff| {diff}, {replay.get('transactions')} transactions",
        f"{fix}   (scores: {replay.get('scores_path')})",
    )
    assert str(replay.get("model_version")) == served, hint(
        f"the replay made against the served version {served}",
        f"{path.name} replayed version {replay.get('model_version')}",
        fix,
    )


@pytest.mark.needs("test_model_ready")
@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
def test_bad_payload_gets_4xx(endpoints, model_name, case):
    """A bad payload ({case}) gets a 4xx answer with an error message, not a 500."""
    body = json.dumps(BAD_PAYLOADS[case]())
    r = post(infer_url(endpoints, model_name), body)
    try:
        body_json = r.json()
        message = body_json.get("error") or body_json.get("detail") or ""
    except ValueError:
        message = ""
    assert 400 <= r.status_code < 500 and message, hint(
        'HTTP 4xx with a message ({"error": "…"})',
        f"HTTP {r.status_code}: {labkit.short(r.text, 160)}",
        labkit.curl(infer_url(endpoints, model_name), data=body),
    )


@pytest.mark.needs("test_model_ready")
def test_body_over_the_limit_gets_413(endpoints, model_name):
    """A request body over the server's limit (FRAUD_MAX_BODY_BYTES, 1 MB) gets 413 before the server reads it."""
    limit = int(labkit.setting("FRAUD_MAX_BODY_BYTES"))
    url = infer_url(endpoints, model_name)
    try:
        r = httpx.post(
            url,
            content=b" " * (limit + 1),
            headers={"content-type": "application/json"},
            timeout=labkit.HTTP_TIMEOUT_S,
        )
        found = f"HTTP {r.status_code}: {labkit.short(r.text, 160)}"
        ok = r.status_code == 413
    except httpx.HTTPError as err:
        found, ok = labkit.describe_error(err), False
    assert ok, hint(
        f"HTTP 413 for a body of {limit + 1:,} bytes",
        found,
        f"head -c {limit + 1} /dev/zero | tr '\\0' ' ' | curl -s -i -H 'content-type: application/json' "
        f"--data-binary @- {url}   (the server must run `fraudlab serve`, which puts the gate in front of MLServer)",
    )


REPOSITORY_CLOSED = "401 or 403 (the model repository API needs the admin token, or is closed)"


@pytest.mark.needs("test_model_ready")
def test_model_repository_api_is_closed(endpoints):
    """MLServer's model repository API (load/unload) refuses a client without the admin token: POST /v2/repository/index → 401 or 403."""
    url = f"{endpoints.model}/v2/repository/index"
    try:
        r = httpx.post(url, json={}, timeout=labkit.HTTP_TIMEOUT_S)
        found, ok = (
            f"HTTP {r.status_code}: {labkit.short(r.text, 160)}",
            r.status_code in (401, 403),
        )
    except httpx.HTTPError as err:
        found, ok = labkit.describe_error(err), False
    assert ok, hint(
        f"HTTP {REPOSITORY_CLOSED}",
        found,
        f"curl -s -i -X POST -H 'content-type: application/json' -d '{{}}' {url}",
    )


@pytest.mark.needs("test_model_ready")
def test_latency_within_slo(endpoints, model_name):
    """p95 latency of one-transaction requests is within the lab's SLO (≤ 100 ms over 50 requests)."""
    url = infer_url(endpoints, model_name)
    latencies, errors = [], 0
    deadline = time.monotonic() + labkit.MAX_WAIT_S - 10
    with httpx.Client(
        timeout=labkit.HTTP_TIMEOUT_S, headers={"content-type": "application/json"}
    ) as client:
        for i in range(WARMUP_REQUESTS + labkit.LATENCY_REQUESTS):
            if time.monotonic() > deadline:
                break
            body = json.dumps(labkit.v2_request([labkit.sample_transaction(i)]))
            t0 = time.perf_counter()
            status = client.post(url, content=body).status_code
            elapsed = (time.perf_counter() - t0) * 1000
            errors += status != 200
            if i >= WARMUP_REQUESTS:
                latencies.append(elapsed)
    assert latencies and not errors, hint(
        f"{labkit.LATENCY_REQUESTS} answered requests",
        f"{len(latencies)} timed, {errors} errors",
        model_logs(endpoints),
    )
    p95 = labkit.percentile(latencies, 95)
    assert p95 <= slo_ms(), hint(
        f"p95 ≤ {slo_ms():g} ms",
        f"p95 {p95:.1f} ms, p50 {labkit.percentile(latencies, 50):.1f} ms over {len(latencies)} requests",
        model_logs(endpoints),
    )


# --- your request check: the model server --------------------------------------------------------------------------------
EXERCISE_WORKLOAD = f"SeldonDeployment {SDEP}"
"""The workload that runs the learner's request_check.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return labkit.pod_spec(k8s.seldondeployment(SDEP) or {})


@pytest.mark.cluster("reads the SeldonDeployment")
def test_model_server_runs_your_request_check(k8s):
    """SeldonDeployment `fraud-detector` runs your request_check.py: its ConfigMap (`lab-code-09-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 9, "request_check.py", APPLY)


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(9))
def test_exercise(exercise, behaviour):
    """Your input_problem: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
