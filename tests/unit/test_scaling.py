"""Lab 16's pieces that need no server: the report read from Locust's CSV, the SLO verdict from
the one source, the requests the manifests set, the PromQL per target, the proposal rule's
errors, and the JSON patch `rightsize --apply` sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_app.monitoring.slo import AVAILABILITY, LATENCY_THRESHOLD_S
from reference_app.scaling import rightsize as rs
from reference_app.scaling.loadtest import LoadTestError, read_locust_stats, slo_verdict

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,"
    "80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
# Locust 2.47's _stats.csv of the chapter's worked example (3,471 requests).
ROWS = (
    "POST,infer,3471,0,13,18.96,1.45,291.59,212.18,76.83,0.0,13,19,24,28,36,48,82,100,270,290,290\n"
    ",Aggregated,3471,0,13,18.96,1.45,291.59,212.18,76.83,0.0,13,19,24,28,36,48,82,100,270,290,290"
)


def test_the_report_reads_locusts_aggregated_row(tmp_path):
    path = tmp_path / "load-test_stats.csv"
    path.write_text(f"{HEADER}\n{ROWS}\n")
    stats = read_locust_stats(path)
    assert stats["requests"] == 3471 and stats["failures"] == 0
    assert stats["latency_ms"] == {"p50": 13.0, "p95": 48.0, "p99": 100.0, "max": 290.0}


def test_no_csv_or_no_aggregated_row_is_a_clear_error(tmp_path):
    with pytest.raises(LoadTestError, match="wrote no"):
        read_locust_stats(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text(HEADER + "\n")
    with pytest.raises(LoadTestError, match="no Aggregated row"):
        read_locust_stats(tmp_path / "empty.csv")


@pytest.mark.parametrize(
    ("p95", "failures", "latency_met", "availability_met"),
    [
        (48.0, 0, True, True),
        (100.0, 3, True, True),
        (101.0, 4, False, False),
        (None, 0, False, True),
    ],
)
def test_the_verdict_uses_the_slos_thresholds(p95, failures, latency_met, availability_met):
    verdict = slo_verdict({"requests": 3000, "failures": failures, "latency_ms": {"p95": p95}})
    assert verdict["latency_threshold_ms"] == LATENCY_THRESHOLD_S * 1000 == 100
    assert verdict["failure_budget_share"] == pytest.approx(1 - AVAILABILITY.target)
    assert (verdict["latency_met"], verdict["availability_met"]) == (latency_met, availability_met)


def test_the_manifests_requests_are_read_from_the_rendered_base():
    current = rs.manifest_resources(
        rs.rendered_manifests(ROOT, str(Path(__import__("sys").executable).parent / "kubectl"))
    )
    assert current["fraud-detector"]["requests"] == {"cpu": "250m", "memory": "768Mi"}
    assert set(current) == {w.name for w in rs.WORKLOADS}


def test_queries_per_target():
    model = rs.WORKLOADS[0]
    cpu, memory = model.queries("cluster", "60s")
    assert cpu == (
        'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="fraud-lab", '
        'container="fraud-detector", pod=~"fraud-detector-default-0-fraud-detector-.*"}[60s]))'
    )
    assert memory.startswith("sum by (pod) (container_memory_working_set_bytes{")
    assert model.queries("local", "8s") == (
        'rate(process_cpu_seconds_total{job="fraud-lab/fraud-detector"}[8s])',
        'process_resident_memory_bytes{job="fraud-lab/fraud-detector"}',
    )


@pytest.mark.parametrize(
    ("cpu", "memory"), [([], [1.0]), ([0.1], []), ([-0.1], [1.0]), ([float("nan")], [1.0])]
)
def test_propose_refuses_what_is_not_a_measurement(cpu, memory):
    with pytest.raises(ValueError):
        rs.propose(cpu, memory)


def test_the_apply_patch_targets_the_model_container():
    proposal = rs.propose([0.1], [300 * rs.MIB])
    (op,) = rs.resources_patch(proposal)
    assert op == {
        "op": "replace",
        "path": "/spec/predictors/0/componentSpecs/0/spec/containers/0/resources",
        "value": {"requests": {"cpu": "120m", "memory": "368Mi"}, "limits": {"memory": "736Mi"}},
    }
