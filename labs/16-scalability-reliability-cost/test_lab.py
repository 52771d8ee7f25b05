"""Lab 16 · Scalability, reliability, cost: the model autoscales on its request rate, a load test
with a deleted pod stays within the availability SLO's budget, and requests follow a proposal
computed from what Prometheus measured.

Cluster: the SeldonDeployment fraud-detector (your kedaSpec) and PodDisruptionBudget, the HPA
KEDA made and its events, the live requests. Both targets: the load test's report
(`data/reports/load-test.json`, written on your machine by `fraudlab load-test`) and the
right-sizing proposal (`data/reports/rightsize.json`), re-read from Prometheus.
"""

from __future__ import annotations

import json
import math
import re

import httpx
import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

LAB = "labs/16-scalability-reliability-cost"
APPLY = kubectl(f"apply -k {LAB}/starter")
SELDON_DEPLOYMENT = "fraud-detector"
PDB = "fraud-detector"
# Names and numbers of the fraud system (tests/labs checks them equal to reference_app).
MODEL_DEPLOYMENT = (
    "fraud-detector-default-0-fraud-detector"  # Seldon: <sdep>-<predictor>-0-<container>
)
HPA = f"keda-hpa-{MODEL_DEPLOYMENT}"  # KEDA: keda-hpa-<ScaledObject>; Seldon names it as the Deployment
MIN_REPLICAS = 2
MAX_SCALE_DOWN_WINDOW_S = 120
LATENCY_THRESHOLD_MS = 100.0  # monitoring/slo.py LATENCY_THRESHOLD_S
FAILURE_BUDGET = 0.001  # 1 − the availability SLO's target (99.9 %)
REQUESTS_SLACK = 1.5  # live requests may exceed the proposal by this factor at most
LOAD_TEST = "fraudlab load-test"
EXERCISE_ON_MACHINE = True
EXERCISE_WORKLOAD = "fraudlab rightsize (on your machine: FRAUD_LAB_CODE=labs/16-scalability-reliability-cost/starter)"


def report(name: str) -> dict | None:
    path = labkit.data_dir() / "reports" / name
    return json.loads(path.read_text()) if path.is_file() else None


def load_test_command(target: str, chaos: bool = False) -> str:
    if target == "cluster":
        return f"{LOAD_TEST} --url http://127.0.0.1:{labkit.NODEPORTS['model_http']}" + (
            " --chaos" if chaos else ""
        )
    return f"make up-monitoring && {LOAD_TEST}"


def rightsize_command(target: str) -> str:
    flags = " --target cluster --apply" if target == "cluster" else ""
    return f"FRAUD_LAB_CODE={LAB}/starter .venv/bin/fraudlab rightsize{flags}"


# --- kind mode: your autoscaler and budget -----------------------------------------------------------
def keda_spec(sdep: dict | None) -> dict:
    specs = [
        c
        for p in ((sdep or {}).get("spec") or {}).get("predictors") or []
        for c in p.get("componentSpecs") or []
    ]
    return (specs[0].get("kedaSpec") or {}) if specs else {}


@pytest.mark.cluster("reads the SeldonDeployment and the PodDisruptionBudget")
def test_autoscaler_and_budget_spec(k8s):
    """SeldonDeployment `fraud-detector` scales on its request rate (kedaSpec: ≥ 2 replicas, a Prometheus trigger, scale-down window ≤ 120 s) and PodDisruptionBudget `fraud-detector` keeps ≥ 1 replica through a drain."""
    sdep = k8s.seldondeployment(SELDON_DEPLOYMENT)
    keda = keda_spec(sdep)
    problems = []
    if sdep is None:
        problems.append(f"no SeldonDeployment {SELDON_DEPLOYMENT}")
    elif not keda:
        problems.append("no kedaSpec in its componentSpec")
    else:
        low, high = keda.get("minReplicaCount", 0), keda.get("maxReplicaCount", 0)
        if low < MIN_REPLICAS or high <= low:
            problems.append(f"minReplicaCount {low}, maxReplicaCount {high}")
        if not any(t.get("type") == "prometheus" for t in keda.get("triggers") or []):
            problems.append("no prometheus trigger")
        down = (
            ((keda.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get(
                "behavior"
            )
            or {}
        ).get("scaleDown") or {}
        window = down.get("stabilizationWindowSeconds", 300)
        if window > MAX_SCALE_DOWN_WINDOW_S:
            problems.append(f"scaleDown.stabilizationWindowSeconds {window}")
    pdb = (k8s.poddisruptionbudget(PDB) or {}).get("spec")
    if pdb is None:
        problems.append(f"no PodDisruptionBudget {PDB}")
    elif not keeps_one(pdb):
        problems.append(f"PodDisruptionBudget minAvailable {pdb.get('minAvailable')}")
    assert not problems, hint(
        f"kedaSpec minReplicaCount ≥ {MIN_REPLICAS} < maxReplicaCount, a prometheus trigger, "
        f"scaleDown window ≤ {MAX_SCALE_DOWN_WINDOW_S} s; PodDisruptionBudget minAvailable ≥ 1",
        "; ".join(problems),
        APPLY,
    )


def keeps_one(pdb_spec: dict) -> bool:
    """True when the budget keeps at least one of MIN_REPLICAS replicas through a drain."""
    low, high = pdb_spec.get("minAvailable"), pdb_spec.get("maxUnavailable")
    if isinstance(low, str) and low.endswith("%"):
        return float(low[:-1]) > 0
    if isinstance(high, str) and high.endswith("%"):
        return float(high[:-1]) < 100
    if low is not None:
        return int(low) >= 1
    return high is not None and int(high) < MIN_REPLICAS


def rescales(events: list[dict]) -> list[tuple[str, int]]:
    """(time, new size) of each SuccessfulRescale event of an HPA, oldest first."""
    out = []
    for e in events:
        size = re.search(r"New size: (\d+)", e.get("message") or "")
        if e.get("reason") == "SuccessfulRescale" and size:
            when = (
                e.get("lastTimestamp")
                or e.get("eventTime")
                or e["metadata"].get("creationTimestamp")
                or ""
            )
            out.append((str(when), int(size.group(1))))
    return sorted(out)


@pytest.mark.cluster("reads the HPA KEDA made and its events")
@pytest.mark.needs("test_autoscaler_and_budget_spec")
def test_scaled_up_under_load_and_back_down(k8s):
    """The model's HPA (made by KEDA) scaled above its minimum under the load test and back down to it afterwards (its SuccessfulRescale events)."""
    hpa = k8s.hpa(HPA)
    sizes = rescales(k8s.events(HPA))
    up = [i for i, (_, n) in enumerate(sizes) if n > MIN_REPLICAS]
    down = [i for i, (_, n) in enumerate(sizes) if n <= MIN_REPLICAS and up and i > up[0]]
    status = (hpa or {}).get("status") or {}
    assert hpa is not None and up and down, hint(
        f"HPA {HPA}: a rescale above {MIN_REPLICAS} replicas, then one back to {MIN_REPLICAS}",
        f"no HPA {HPA} (is KEDA installed? is the kedaSpec applied?)"
        if hpa is None
        else f"rescales {sizes or 'none'} (the API server keeps events for an hour); now "
        f"{status.get('currentReplicas')} replicas",
        f"{load_test_command('cluster')}; then, a few minutes later: "
        + kubectl(f"-n {NAMESPACE} describe hpa {HPA}"),
    )


@pytest.mark.cluster("reads the load test's report")
def test_chaos_within_the_error_budget():
    """The load test deleted a model pod (--chaos) and at most 0.1 % of its requests failed (the availability SLO's budget)."""
    r = report("load-test.json") or {}
    chaos = r.get("chaos") or {}
    share = r.get("failure_share")
    ok = (
        chaos.get("pod")
        and not chaos.get("error")
        and share is not None
        and share <= FAILURE_BUDGET
    )
    assert ok, hint(
        f"a report with a deleted pod and failures ≤ {FAILURE_BUDGET:.1%}",
        "no load test report"
        if not r
        else f"chaos {chaos or 'none (run it with --chaos)'}; {r.get('failures')} of {r.get('requests')} "
        f"failed ({(share or 0):.3%})",
        load_test_command("cluster", chaos=True),
    )


def quantity(text: str | int | float | None) -> float | None:
    """A Kubernetes quantity as a number (cores or bytes): "250m" → 0.25, "512Mi" → 536870912."""
    if text is None:
        return None
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not match or match.group(2) not in {"", *units}:
        return None
    return float(match.group(1)) * units.get(match.group(2), 1)


@pytest.mark.cluster("reads the SeldonDeployment and the proposal")
def test_requests_follow_the_proposal(k8s):
    """The model container's live requests are at least the right-sizing proposal and at most 1.5× it."""
    proposal = next(
        (
            w
            for w in (report("rightsize.json") or {}).get("workloads") or []
            if w.get("workload") == SELDON_DEPLOYMENT
        ),
        None,
    )
    sdep = k8s.seldondeployment(SELDON_DEPLOYMENT) or {}
    pods = [
        c["spec"]
        for p in (sdep.get("spec") or {}).get("predictors") or []
        for c in p.get("componentSpecs") or []
    ]
    container = labkit.find_container(pods[0], SELDON_DEPLOYMENT) if pods else None
    live = ((container or {}).get("resources") or {}).get("requests") or {}
    problems = []
    if proposal is None:
        problems.append("no proposal for fraud-detector in rightsize.json")
    else:
        for resource, wanted in (proposal.get("proposed") or {}).get("requests", {}).items():
            have, want = quantity(live.get(resource)), quantity(wanted)
            if have is None or want is None or not want <= have <= want * REQUESTS_SLACK:
                problems.append(f"requests.{resource} {live.get(resource)} (proposed {wanted})")
    assert not problems, hint(
        f"requests between the proposal and {REQUESTS_SLACK}× it",
        "; ".join(problems),
        rightsize_command("cluster"),
    )


# --- both targets: the reports ----------------------------------------------------------------------
def test_load_test_report_with_slo_verdict(target):
    """The load test's report has requests, failures, p50/p95/p99 latency and the SLO verdict, which agrees with its numbers (p95 ≤ 100 ms; failures ≤ 0.1 %)."""
    r = report("load-test.json")
    problems = []
    if r is None:
        problems.append(f"no {labkit.data_dir()}/reports/load-test.json")
    else:
        lat, slo = r.get("latency_ms") or {}, r.get("slo") or {}
        if not r.get("requests") or any(lat.get(p) is None for p in ("p50", "p95", "p99")):
            problems.append(f"requests {r.get('requests')}, latency {lat}")
        elif slo.get("latency_threshold_ms") != LATENCY_THRESHOLD_MS or slo.get("latency_met") != (
            lat["p95"] <= LATENCY_THRESHOLD_MS
        ):
            problems.append(f"p95 {lat['p95']} ms but verdict {slo}")
        elif slo.get("availability_met") != (r["failures"] / r["requests"] <= FAILURE_BUDGET):
            problems.append(f"{r['failures']} of {r['requests']} failed but verdict {slo}")
    assert not problems, hint(
        f"a report with requests, p50/p95/p99 and a verdict against p95 ≤ {LATENCY_THRESHOLD_MS:g} ms",
        "; ".join(problems),
        load_test_command(target),
    )


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[float]:
    answer = httpx.get(
        f"{url}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=30,
    ).json()
    values = [float(v) for s in answer["data"]["result"] for _, v in s["values"]]
    return [v for v in values if math.isfinite(v)]


@pytest.mark.needs("test_load_test_report_with_slo_verdict")
def test_rightsize_numbers_come_from_prometheus(endpoints, prometheus):
    """The right-sizing proposal exists for the load test's window, and its CPU p95 and memory peak are what Prometheus answers for the same queries now."""
    r = report("rightsize.json")
    load = report("load-test.json") or {}
    problems = []
    if r is None or not r.get("workloads"):
        problems.append(f"no proposal in {labkit.data_dir()}/reports/rightsize.json")
    elif (r["window"]["start"], r["window"]["end"]) != (
        load.get("started_at"),
        load.get("ended_at"),
    ):
        problems.append("its window is not the last load test's (run rightsize again)")
    else:
        for w in r["workloads"]:
            cpu = query_range(
                prometheus.url,
                w["queries"]["cpu"],
                r["window"]["start"],
                r["window"]["end"],
                r["step_s"],
            )
            memory = query_range(
                prometheus.url,
                w["queries"]["memory"],
                r["window"]["start"],
                r["window"]["end"],
                r["step_s"],
            )
            if not cpu or not memory:
                problems.append(f"{w['workload']}: Prometheus has no samples now")
                continue
            p95, peak = labkit.percentile(cpu, 95), max(memory)
            if not (
                math.isclose(p95, w["cpu_p95_cores"], rel_tol=1e-6, abs_tol=1e-9)
                and math.isclose(peak, w["memory_max_bytes"], rel_tol=1e-6)
            ):
                problems.append(
                    f"{w['workload']}: recorded CPU p95 {w['cpu_p95_cores']:.4f}, memory {w['memory_max_bytes']:.0f}; "
                    f"Prometheus {p95:.4f}, {peak:.0f}"
                )
            if not (w.get("proposed") or {}).get("requests"):
                problems.append(f"{w['workload']}: no proposed requests")
    assert not problems, hint(
        "a proposal per workload whose numbers Prometheus confirms",
        "; ".join(problems),
        rightsize_command(endpoints.target),
    )


# --- your Python: the right-sizing rule ---------------------------------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(16))
def test_exercise(exercise, behaviour):
    """Your propose: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
