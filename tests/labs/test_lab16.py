"""Lab 16's validators without a cluster: the spec check passes on the reference
(manifests/overlays/kind-autoscaling) and fails on the starter's gaps; the scaling check reads a
rescale up and back down from the HPA's events; the chaos and requests checks read the reports
the learner's commands write; the names and numbers the checks use are the app's; and the
local lab fails, with the command that fixes it, when no load test ran."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from reference_app.monitoring import slo
from reference_app.scaling import autoscaling
from tests.static.k8s import KUBECTL, _Loader, prepare_manifests, render

from .conftest import LAB_DIRS, ROOT, check, lab_env, load_lab_module, parse, run_lab
from .test_cluster_paths import FakeCluster, outcome

LAB = 16


class Cluster16(FakeCluster):
    """FakeCluster with the PodDisruptionBudget, the HPA and the events lab 16 reads."""

    def __init__(self, objects: list[dict], events: list[dict] | None = None):
        super().__init__(objects)
        self._events = events or []

    def poddisruptionbudget(self, name, namespace="fraud-lab"):
        return self._get("PodDisruptionBudget", name, namespace)

    def hpa(self, name, namespace="fraud-lab"):
        return self._get("HorizontalPodAutoscaler", name, namespace)

    def events(self, name, namespace="fraud-lab"):
        return [e for e in self._events if e["involvedObject"]["name"] == name]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab16-workspace")
    prepare_manifests(root)
    shutil.copytree(ROOT / "labs", root / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def reference(workspace) -> list[dict]:
    return render("kind-autoscaling", workspace / "manifests")


@pytest.fixture(scope="module")
def starter(workspace) -> list[dict]:
    out = subprocess.run(
        [KUBECTL, "kustomize", str(workspace / "labs" / LAB_DIRS[LAB].name / "starter")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [d for d in yaml.load_all(out.stdout, Loader=_Loader) if d]


@pytest.fixture(scope="module")
def module():
    return load_lab_module(LAB)


def replaced(objects: list[dict], new: list[dict]) -> list[dict]:
    keys = {(o["kind"], o["metadata"]["name"]) for o in new}
    return [o for o in objects if (o["kind"], o["metadata"]["name"]) not in keys] + new


def test_spec_check_passes_on_the_reference_and_fails_on_the_starter(module, reference, starter):
    assert outcome(module.test_autoscaler_and_budget_spec, Cluster16(reference)) is None
    message = outcome(
        module.test_autoscaler_and_budget_spec, Cluster16(replaced(reference, starter))
    )
    assert message.splitlines()[1] == (
        "found:    minReplicaCount 1, maxReplicaCount 4; scaleDown.stabilizationWindowSeconds 300; "
        "PodDisruptionBudget minAvailable 0"
    ), message
    assert message.splitlines()[2] == (
        "debug:    kubectl --context kind-fraud-lab apply -k labs/16-scalability-reliability-cost/starter"
    )


def test_the_starter_is_the_reference_with_gaps(reference, starter):
    """Same objects, labels and images as the reference; only the TODO(lab-16) values differ."""
    for obj in starter:
        (ref,) = [
            r for r in reference
            if (r["kind"], r["metadata"]["name"]) == (obj["kind"], obj["metadata"]["name"])
        ]  # fmt: skip
        assert obj["metadata"] == ref["metadata"] and obj != ref
        if obj["kind"] == "SeldonDeployment":
            a, b = copy.deepcopy(obj), copy.deepcopy(ref)
            gap, solved = (
                x["spec"]["predictors"][0]["componentSpecs"][0].pop("kedaSpec") for x in (a, b)
            )
            assert a == b  # everything but the kedaSpec is lab 09's model server
            assert gap["triggers"] == solved["triggers"]
            assert (gap["minReplicaCount"], solved["minReplicaCount"]) == (1, 2)
    text = "".join(p.read_text() for p in (LAB_DIRS[LAB] / "starter").glob("*.yaml"))
    assert "TODO(lab-16)" in text


def hpa_event(size: int, when: str, reason: str = "SuccessfulRescale") -> dict:
    return {
        "metadata": {"name": f"e-{when}", "creationTimestamp": when},
        "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": autoscaling.HPA},
        "reason": reason,
        "lastTimestamp": when,
        "message": f"New size: {size}; reason: external metric s0-prometheus above target",
    }


HPA_OBJECT = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": autoscaling.HPA, "namespace": "fraud-lab"},
    "status": {"currentReplicas": 2, "desiredReplicas": 2},
}


@pytest.mark.parametrize(
    ("events", "passes"),
    [
        ([hpa_event(3, "2026-12-02T10:01:00Z"), hpa_event(2, "2026-12-02T10:04:00Z")], True),
        ([hpa_event(3, "2026-12-02T10:01:00Z")], False),  # up, never back down
        ([hpa_event(2, "2026-12-02T10:00:00Z")], False),  # the minimum only
        ([hpa_event(3, "2026-12-02T10:01:00Z", reason="FailedGetExternalMetric")], False),
        ([], False),
    ],
)
def test_scaling_check_reads_the_hpas_rescales(module, reference, events, passes):
    cluster = Cluster16([*reference, HPA_OBJECT], events)
    message = outcome(module.test_scaled_up_under_load_and_back_down, cluster)
    assert (message is None) == passes, message
    if not passes:
        assert "describe hpa keda-hpa-fraud-detector-default-0-fraud-detector" in message


def test_scaling_check_without_keda_says_so(module, reference):
    message = outcome(module.test_scaled_up_under_load_and_back_down, Cluster16(reference))
    assert "is KEDA installed?" in message


def write_reports(data: Path, load: dict | None = None, sizes: dict | None = None) -> None:
    (data / "reports").mkdir(parents=True, exist_ok=True)
    if load is not None:
        (data / "reports" / "load-test.json").write_text(json.dumps(load))
    if sizes is not None:
        (data / "reports" / "rightsize.json").write_text(json.dumps(sizes))


@pytest.mark.parametrize(
    ("chaos", "failures", "passes"),
    [
        ({"pod": "fraud-detector-x", "deleted_at": 1.0}, 1, True),  # 1 of 2,000: 0.05 %
        ({"pod": "fraud-detector-x", "deleted_at": 1.0}, 3, False),  # 0.15 %
        (None, 0, False),  # no pod deleted
        ({"error": "ChaosError: no running pod"}, 0, False),
    ],
)
def test_chaos_check_reads_the_load_tests_report(
    module, tmp_path, monkeypatch, chaos, failures, passes
):
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    write_reports(
        tmp_path,
        {"requests": 2000, "failures": failures, "failure_share": failures / 2000, "chaos": chaos},
    )
    message = outcome(module.test_chaos_within_the_error_budget)
    assert (message is None) == passes, message


@pytest.mark.parametrize(
    ("proposed_cpu", "proposed_memory", "passes"),
    [
        ("200m", "640Mi", True),
        ("250m", "768Mi", True),
        ("300m", "768Mi", False),
        ("100m", "768Mi", False),
    ],
)
def test_requests_check_compares_the_live_requests_with_the_proposal(
    module, reference, tmp_path, monkeypatch, proposed_cpu, proposed_memory, passes
):
    """The reference model container requests 250m and 768Mi."""
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    proposal = {"requests": {"cpu": proposed_cpu, "memory": proposed_memory}, "limits": {}}
    write_reports(
        tmp_path, sizes={"workloads": [{"workload": "fraud-detector", "proposed": proposal}]}
    )
    message = outcome(module.test_requests_follow_the_proposal, Cluster16(reference))
    assert (message is None) == passes, message


def test_the_checks_use_the_apps_names_and_numbers(module, reference):
    assert module.MODEL_DEPLOYMENT == autoscaling.SCALED_OBJECT and module.HPA == autoscaling.HPA
    assert module.MIN_REPLICAS == autoscaling.MIN_REPLICAS
    assert module.MAX_SCALE_DOWN_WINDOW_S >= autoscaling.SCALE_DOWN_WINDOW_S
    assert module.LATENCY_THRESHOLD_MS == slo.LATENCY_THRESHOLD_S * 1000
    assert module.FAILURE_BUDGET == pytest.approx(1 - slo.AVAILABILITY.target)
    assert module.quantity("250m") == 0.25 and module.quantity("768Mi") == 768 * 2**20


def test_local_lab_fails_without_a_load_test_and_names_the_command(tmp_path):
    solved = str(LAB_DIRS[LAB] / "solution")
    env = lab_env({"FRAUD_DATA_DIR": str(tmp_path / "data"), "LAB_EXERCISE_DIR": solved})
    result = run_lab(LAB, "--target", "local", env=env)
    out = parse(result.stdout)
    assert result.returncode == 1, result.stdout
    failed = check(out, "The load test's report has requests")
    assert failed["symbol"] == "✗" and failed["hint"][2] == (
        "debug:    make up-monitoring && fraudlab load-test"
    ), failed
    assert check(out, "The right-sizing proposal exists")["symbol"] == "–"
    assert all(check(out, f"Your propose: {b}")["symbol"] == "✓" for b in _behaviours())


def _behaviours() -> list[str]:
    from reference_app.exercises import describe

    return [d["behaviour"] for d in describe(LAB)]


@pytest.mark.slow
def test_local_lab_passes_after_a_load_test_and_a_proposal(monitoring_stack):
    """Lab 16's local end state on lab 11's monitoring stack: a tiny load test against its
    MLServer and `fraudlab rightsize` against its Prometheus, then every local check passes."""
    from tests.integration.conftest import FRAUDLAB, SCALE_ENV

    data = Path(monitoring_stack["FRAUD_DATA_DIR"])
    stack = json.loads((data / "state" / "stack.json").read_text())
    env = {**lab_env(), **SCALE_ENV, **monitoring_stack, "FRAUD_SCRAPE_INTERVAL_S": "1"}
    tiny = ["--users", "3", "--ramp", "2", "--duration", "6", "--url", stack["mlserver"]["url"]]
    for args in (["load-test", *tiny], ["rightsize"]):
        done = subprocess.run(
            [FRAUDLAB, *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
    sizes = json.loads((data / "reports" / "rightsize.json").read_text())
    assert sizes["prometheus"] == stack["prometheus"]["url"]
    # Locally only the model server exports process metrics (the drift monitor's registry has none).
    assert [w["workload"] for w in sizes["workloads"]] == ["fraud-detector"]
    solved = {"LAB_EXERCISE_DIR": str(LAB_DIRS[LAB] / "solution")}
    result = run_lab(LAB, "--target", "local", env=lab_env({**monitoring_stack, **solved}))
    out = parse(result.stdout)
    assert result.returncode == 0, result.stdout
    assert all(c["symbol"] == "✓" or "(needs a cluster: " in c["text"] for c in out["checks"])
