"""Lab 10 · Deployment patterns: a canary (champion 90 %, challenger 10 %) and a shadow behind the
traffic router. The measured share is within ±5 points of the split over 1,000 requests; the
shadow got every request and none of its answers reached a client; a promotion drill shifted the
traffic without a failed request.

The router: locally `fraudlab up --canary` (make up-canary) starts it on 127.0.0.1:8085 with a
challenger and a shadow MLServer; on the cluster it is the Deployment `traffic-router`, which the
checks reach through `kubectl port-forward service/traffic-router` (no NodePort: kind maps only
the ports chosen in lab 00).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

SDEP, ROUTER, SPLIT_CONFIGMAP = "fraud-detector-canary", "traffic-router", "traffic-split"
ROUTER_PORT = 8085
APPLY = kubectl("apply -k labs/10-deployment-patterns/starter")
UP = ".venv/bin/fraudlab down && .venv/bin/fraudlab up --canary   (make up-canary)"
SPLIT = {"champion": 90.0, "challenger": 10.0}
ALIASES = {"champion": "champion", "challenger": "challenger", "shadow": "challenger"}
REQUESTS = 1_000
TOLERANCE_POINTS = 5.0
CLIENTS = 4
VARIANT_HEADER, KEY_HEADER = "x-fraudlab-variant", "x-routing-key"
DRILL = "promotion-drill.json"
PORT_FORWARD = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


def kubectl_bin() -> str:
    return shutil.which("kubectl") or str(labkit.REPO_ROOT / ".venv" / "bin" / "kubectl")


class Router:
    """Where the checks reach the router (`url`), or why they cannot (`problem`, `fix`)."""

    def __init__(self, url=None, problem=None, fix=None, process=None):
        self.url, self.problem, self.fix, self.process = url, problem, fix, process
        self.failed_once: list[str] = []


def local_router() -> Router:
    path = labkit.stack_file()
    try:
        entry = json.loads(path.read_text())["router"]
    except (OSError, ValueError, KeyError, TypeError):
        return Router(problem=f"no router in {path} (the canary is not running)", fix=UP)
    if not labkit.pid_alive(entry.get("pid")):
        return Router(
            problem=f"{path} lists the router, but pid {entry.get('pid')} is gone", fix=UP
        )
    return Router(url=entry["url"].rstrip("/"))


def cluster_router() -> Router:
    """`kubectl port-forward service/traffic-router :8085` on a free local port (read-only: it
    changes nothing in the cluster), for as long as the checks run."""
    cmd = [
        kubectl_bin(), "--context", labkit.KUBE_CONTEXT, "-n", NAMESPACE,
        "port-forward", f"service/{ROUTER}", f":{ROUTER_PORT}",
    ]  # fmt: skip
    fix = kubectl(f"-n {NAMESPACE} get deployment,service {ROUTER}")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as err:
        return Router(problem=f"kubectl port-forward did not start: {err}", fix="make doctor")
    try:
        line = labkit.bounded(proc.stdout.readline, 30, "kubectl port-forward")
    except labkit.Timeout:
        proc.kill()
        return Router(problem="kubectl port-forward printed nothing within 30 s", fix=fix)
    found = PORT_FORWARD.search(line or "")
    if not found:
        proc.kill()
        err = proc.stderr.read() if proc.poll() is not None else ""
        return Router(problem=f"kubectl port-forward: {labkit.short(line + err, 200)}", fix=fix)
    return Router(url=f"http://127.0.0.1:{found.group(1)}", process=proc)


@pytest.fixture(scope="module")
def _router(target):
    router = cluster_router() if target == "cluster" else local_router()
    yield router
    if router.process is not None:
        router.process.terminate()
        router.process.wait(timeout=10)


@pytest.fixture
def router(request, _router) -> Router:
    """The router's URL; the first check that needs it fails with the reason, the others skip."""
    if _router.problem is not None:
        if _router.failed_once:
            pytest.skip(f"an earlier check failed: {_router.failed_once[0]}")
        _router.failed_once.append(request.node.name)
        pytest.fail(
            hint("the traffic router answering", _router.problem, _router.fix), pytrace=False
        )
    return _router


def infer_url(router: Router, model_name: str) -> str:
    return f"{router.url}/v2/models/{model_name}/infer"


def router_split(router: Router) -> dict:
    return httpx.get(f"{router.url}/router/split", timeout=labkit.HTTP_TIMEOUT_S).json()


def router_metrics(router: Router) -> dict[str, float]:
    """The router's counters, `name{labels}` → value."""
    text = httpx.get(f"{router.url}/metrics", timeout=labkit.HTTP_TIMEOUT_S).text
    out = {}
    for line in text.splitlines():
        if line.startswith("fraud_router_") and " " in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def router_logs(target: str) -> str:
    if target == "cluster":
        return kubectl(f"-n {NAMESPACE} logs deployment/{ROUTER} --tail=30")
    return f"tail -n 30 {labkit.data_dir() / 'state' / 'logs' / 'router.log'}"


# --- kind mode: the objects ------------------------------------------------------------------------
def predictors(sdep: dict | None) -> dict[str, dict]:
    return {p.get("name"): p for p in ((sdep or {}).get("spec") or {}).get("predictors") or []}


def predictor_uri(predictor: dict) -> str | None:
    components = predictor.get("componentSpecs") or [{}]
    container = labkit.find_container(components[0].get("spec") or {}, "fraud-detector")
    return labkit.env_value(container, "FRAUD_MODEL_URI")


@pytest.mark.cluster("reads the SeldonDeployment's spec")
def test_canary_seldondeployment_spec(k8s):
    """SeldonDeployment `fraud-detector-canary` declares the canary: predictors champion (traffic 90) and challenger (traffic 10), and a shadow (`shadow: true`) serving the challenger."""
    sdep = k8s.seldondeployment(SDEP)
    assert sdep is not None, hint(
        f"SeldonDeployment {SDEP} in {NAMESPACE}", "no such object", APPLY
    )
    found = predictors(sdep)
    problems = []
    for name in ("champion", "challenger", "shadow"):
        if name not in found:
            problems.append(f"no predictor {name}")
            continue
        uri = predictor_uri(found[name])
        if uri != f"models:/fraud-detector@{ALIASES[name]}":
            problems.append(f"{name} serves {uri}")
    for name, share in SPLIT.items():
        if name in found and found[name].get("traffic") != share:
            problems.append(f"{name} traffic {found[name].get('traffic')}")
    if "shadow" in found and found["shadow"].get("shadow") is not True:
        problems.append("predictor shadow without shadow: true")
    assert not problems, hint(
        "champion traffic 90 (@champion), challenger traffic 10 (@challenger), shadow: true (@challenger)",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} get seldondeployment {SDEP} -o yaml"),
    )


@pytest.mark.cluster("SeldonDeployments run on a cluster")
@pytest.mark.needs("test_canary_seldondeployment_spec")
def test_canary_available(k8s):
    """SeldonDeployment `fraud-detector-canary` is Available (its three predictors' pods are ready)."""
    status = (k8s.seldondeployment(SDEP) or {}).get("status") or {}
    assert status.get("state") == "Available", hint(
        "status.state Available",
        f"state {status.get('state')} {labkit.short(status.get('description') or '', 120)}",
        kubectl(f"-n {NAMESPACE} get pods -l app.kubernetes.io/name={SDEP}"),
    )


@pytest.mark.cluster("reads the router's Deployment")
def test_router_deployment_spec(k8s):
    """Deployment `traffic-router` copies every request to the shadow (FRAUD_ROUTER_SHADOW_URL) and reads its split from ConfigMap traffic-split, mounted without subPath."""
    deployment = k8s.deployment(ROUTER)
    assert deployment is not None, hint(f"Deployment {ROUTER}", "no such object", APPLY)
    pod = labkit.pod_spec(deployment)
    container = labkit.find_container(pod, ROUTER) or {}
    split_volumes = {
        v.get("name")
        for v in pod.get("volumes") or []
        if (v.get("configMap") or {}).get("name") == SPLIT_CONFIGMAP
    }
    mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") in split_volumes]
    split_file = labkit.env_value(container, "FRAUD_ROUTER_SPLIT_FILE") or ""
    problems = []
    if labkit.env_value(container, "FRAUD_ROUTER_SHADOW_URL") != "http://canary-shadow:9000":
        problems.append(
            f"FRAUD_ROUTER_SHADOW_URL={labkit.env_value(container, 'FRAUD_ROUTER_SHADOW_URL')}"
        )
    if len(mounts) != 1 or mounts[0].get("subPath"):
        problems.append(
            f"ConfigMap {SPLIT_CONFIGMAP} mounted {len(mounts)} times (subPath: never updated)"
        )
    elif split_file != f"{mounts[0].get('mountPath')}/split.json":
        problems.append(f"FRAUD_ROUTER_SPLIT_FILE={split_file or '(unset)'}")
    assert not problems, hint(
        f"FRAUD_ROUTER_SHADOW_URL=http://canary-shadow:9000; ConfigMap {SPLIT_CONFIGMAP} mounted at "
        "/etc/traffic-split (no subPath)",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} get deployment {ROUTER} -o yaml"),
    )


@pytest.mark.cluster("reads the router's Deployment")
def test_router_runs_your_split(k8s):
    """Deployment `traffic-router` runs your split.py: its ConfigMap (`lab-code-10-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 10, "split.py", APPLY)


# --- both targets: the router over HTTP ------------------------------------------------------------
def test_router_ready(router, model_name, target):
    """The traffic router answers ready: GET /v2/models/fraud-detector/ready → 200 once champion and challenger are."""
    url = f"{router.url}/v2/models/{model_name}/ready"
    r = httpx.get(url, timeout=labkit.HTTP_TIMEOUT_S)
    assert r.status_code == 200, hint(
        f"HTTP 200 from {url}",
        f"HTTP {r.status_code}: {labkit.short(r.text, 160)}",
        router_logs(target),
    )


@pytest.mark.needs("test_router_ready")
def test_router_applies_the_declared_split(router, target, request):
    """The router applies the split you declared (GET /router/split), with no refused split file: on the cluster the SeldonDeployment's traffic."""
    answer = router_split(router)
    declared = SPLIT
    debug = f"curl -s {router.url}/router/split"
    if target == "cluster":
        k8s = request.getfixturevalue("k8s")
        found = predictors(k8s.seldondeployment(SDEP))
        declared = {n: float(found.get(n, {}).get("traffic") or 0) for n in SPLIT}
        debug = kubectl(f"-n {NAMESPACE} get configmap {SPLIT_CONFIGMAP} -o yaml")
    else:
        path = labkit.data_dir() / "state" / "router" / "split.json"
        if path.is_file():
            declared = {k: float(v) for k, v in json.loads(path.read_text()).items()}
    assert answer.get("split") == declared and answer.get("error") is None, hint(
        f"split {declared}, no error",
        f"split {answer.get('split')}, error {answer.get('error')}",
        debug,
    )
    assert answer.get("shadow") is True, hint(
        "a shadow behind the router",
        "no shadow (FRAUD_ROUTER_SHADOW_URL unset)",
        router_logs(target),
    )


class Load:
    """1,000 one-transaction requests through the router, each with its own routing key:
    `answers` (status, variant header, model_version), the router's counters `before` and
    `after`, and the `split` it applied."""

    def __init__(self, answers, before, after, split):
        self.answers, self.before, self.after, self.split = answers, before, after, split


@pytest.fixture(scope="module")
def load(_router, model_name) -> Load | None:
    if _router.problem is not None:
        return None
    url = infer_url(_router, model_name)
    split = router_split(_router)["split"]
    before = router_metrics(_router)

    def send(i: int):
        body = json.dumps(labkit.v2_request([labkit.sample_transaction(i)]))
        with httpx.Client(timeout=labkit.HTTP_TIMEOUT_S) as client:
            try:
                r = client.post(
                    url,
                    content=body,
                    headers={"content-type": "application/json", KEY_HEADER: f"lab-10-check-{i}"},
                )
            except httpx.HTTPError as err:
                return 0, None, labkit.describe_error(err)
            version = r.json().get("model_version") if r.status_code == 200 else None
            return r.status_code, r.headers.get(VARIANT_HEADER), version

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, range(REQUESTS)))
    key = 'fraud_router_shadow_requests_total{outcome="answered"}'
    want = before.get(key, 0) + REQUESTS
    labkit.wait_until(lambda: router_metrics(_router).get(key, 0) >= want, 30, 0.5)
    return Load(answers, before, router_metrics(_router), split)


@pytest.mark.needs("test_router_ready")
def test_measured_share_within_5_points_of_the_split(router, load, target):
    """Over 1,000 requests the challenger's measured share is within ±5 points of the router's split, and every request got an answer."""
    statuses = [s for s, _, _ in load.answers]
    failed = [s for s in statuses if s != 200]
    assert not failed, hint(
        f"{REQUESTS} answers with HTTP 200",
        f"{len(failed)} failed (e.g. HTTP {failed[0]})",
        router_logs(target),
    )
    share = 100 * sum(v == "challenger" for _, v, _ in load.answers) / REQUESTS
    expected = load.split["challenger"]
    assert abs(share - expected) <= TOLERANCE_POINTS, hint(
        f"challenger share {expected:g} % ± {TOLERANCE_POINTS:g} points",
        f"{share:.1f} % of {REQUESTS} requests",
        f"{labkit.REPO_ROOT}/.venv/bin/fraudlab exercise check 10 --code labs/10-deployment-patterns/starter",
    )


@pytest.mark.needs("test_measured_share_within_5_points_of_the_split")
def test_each_answer_comes_from_the_variant_it_names(load, mlflow, model_name, target):
    """Each answer's model_version is the registry version of the variant the router names (X-Fraudlab-Variant): champion or challenger, never the shadow."""
    versions = {}
    for variant in ("champion", "challenger"):
        found = mlflow.version_by_alias(model_name, variant)
        versions[variant] = str(found["version"]) if found else None
    wrong = [(v, m) for _, v, m in load.answers if v not in versions or str(m) != versions[v]]
    assert not wrong, hint(
        f"champion answers with version {versions['champion']}, challenger with {versions['challenger']}",
        f"{len(wrong)} answers differ, e.g. variant {wrong[0][0]} with version {wrong[0][1]}",
        router_logs(target),
    )


@pytest.mark.needs("test_measured_share_within_5_points_of_the_split")
def test_shadow_got_every_request_and_never_answered(load, target):
    """The shadow received a copy of each of the 1,000 requests and answered it, and no client got its answer (the router counted only champion and challenger answers)."""

    def delta(key: str) -> float:
        return load.after.get(key, 0) - load.before.get(key, 0)

    answered = delta('fraud_router_shadow_requests_total{outcome="answered"}')
    lost = delta('fraud_router_shadow_requests_total{outcome="error"}') + delta(
        'fraud_router_shadow_requests_total{outcome="dropped"}'
    )
    assert answered == REQUESTS and lost == 0, hint(
        f"{REQUESTS} copies answered by the shadow, none lost",
        f"{answered:g} answered, {lost:g} lost",
        router_logs(target),
    )
    to_clients = {
        re.search(r'variant="([^"]+)"', k).group(1)
        for k in load.after
        if k.startswith("fraud_router_requests_total{") and delta(k) > 0
    }
    assert to_clients <= {"champion", "challenger"}, hint(
        "client answers from champion and challenger only",
        f"from {sorted(to_clients)}",
        router_logs(target),
    )


@pytest.mark.needs("test_router_ready")
def test_a_routing_key_always_reaches_the_same_variant(router, model_name, target):
    """The split is sticky: each of 20 routing keys (X-Routing-Key, e.g. a card) reaches the same variant on 3 requests."""
    url = infer_url(router, model_name)
    moved = []
    with httpx.Client(timeout=labkit.HTTP_TIMEOUT_S) as client:
        for card in range(20):
            seen = {
                client.post(
                    url,
                    json=labkit.v2_request([labkit.sample_transaction(repeat)]),
                    headers={KEY_HEADER: f"card-{card}"},
                ).headers.get(VARIANT_HEADER)
                for repeat in range(3)
            }
            if len(seen) != 1:
                moved.append(f"card-{card}: {sorted(map(str, seen))}")
    assert not moved, hint("one variant per routing key", "; ".join(moved[:3]), router_logs(target))


def _not_json() -> tuple[bytes, dict]:
    return b"{not json", {"content-type": "application/json"}


def _missing_input() -> tuple[bytes, dict]:
    body = labkit.v2_request([labkit.sample_transaction()])
    body["inputs"] = body["inputs"][1:]
    return json.dumps(body).encode(), {"content-type": "application/json"}


def _too_large() -> tuple[bytes, dict]:
    limit = int(labkit.setting("FRAUD_MAX_BODY_BYTES"))
    return b" " * (limit + 1), {"content-type": "application/json"}


BAD_REQUESTS = {
    "a body that is not JSON": (_not_json, {400}),
    "a missing input (the variant's 400, passed on)": (_missing_input, {400, 422}),
    "a body over FRAUD_MAX_BODY_BYTES": (_too_large, {413}),
}


@pytest.mark.needs("test_router_ready")
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_a_4xx_with_a_message(router, model_name, case):
    """The router answers a bad request ({case}) with a 4xx and a message, not a 500."""
    make, statuses = BAD_REQUESTS[case]
    body, headers = make()
    url = infer_url(router, model_name)
    try:
        r = httpx.post(url, content=body, headers=headers, timeout=labkit.HTTP_TIMEOUT_S)
        message = (
            r.json().get("error")
            if r.headers.get("content-type", "").startswith("application/json")
            else None
        )
        found, ok = (
            f"HTTP {r.status_code}: {labkit.short(r.text, 160)}",
            r.status_code in statuses and bool(message),
        )
    except (httpx.HTTPError, ValueError) as err:
        found, ok = labkit.describe_error(err), False
    assert ok, hint(
        f"HTTP {' or '.join(map(str, sorted(statuses)))} with an error message",
        found,
        f"curl -s -i {url} -H 'content-type: application/json' -d '{{not json'",
    )


def test_promotion_drill_without_a_failed_request(target):
    """The latest promotion drill (fraudlab route drill) moved all traffic to the challenger and back without a failed request, over ≥ 1,000 requests."""
    path = labkit.data_dir() / "reports" / DRILL
    fix = (
        ".venv/bin/fraudlab route drill"
        if target == "local"
        else f"{kubectl(f'-n {NAMESPACE} port-forward service/{ROUTER} 8085:8085')} &  then: "
        ".venv/bin/fraudlab route drill --url http://127.0.0.1:8085 --configmap traffic-split"
    )
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        report = None
    assert report is not None and report.get("target") == target, hint(
        f"a drill report {path} for target {target}",
        "no report" if report is None else f"a report for target {report.get('target')}",
        fix,
    )
    phases = report.get("phases") or {}
    promoted = (phases.get("promoted") or {}).get("challenger_share")
    assert (
        report.get("failed") == 0 and report.get("requests", 0) >= REQUESTS and promoted == 100.0
    ), hint(
        f"0 failed of ≥ {REQUESTS} requests; 100 % on the challenger while promoted",
        f"{report.get('failed')} failed of {report.get('requests')} (e.g. {(report.get('failures') or ['-'])[0]}); "
        f"{promoted} % on the challenger while promoted",
        fix,
    )


# --- your split function: the router ------------------------------------------------------------------
EXERCISE_WORKLOAD = f"Deployment {ROUTER}"
"""The workload that runs the learner's split.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return labkit.pod_spec(k8s.deployment(ROUTER) or {})


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(10))
def test_exercise(exercise, behaviour):
    """Your choose_variant: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
