"""Lab 16 on real servers: Locust at a tiny scale against the real MLServer of the demo, the
report and its SLO verdict; failures counted after the client's retries against a closed port;
and `rightsize` reading the model server's process metrics from a real local Prometheus over the
load test's window (Debian's `prometheus`, as tests/integration/test_slo_alerts.py)."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from reference_app.launchers.stack import free_port, start_prometheus
from reference_app.monitoring.slo import AVAILABILITY, LATENCY_THRESHOLD_S
from reference_app.scaling import rightsize as rs
from reference_app.scaling.loadtest import run_load_test

TINY = {"load_users": 3, "load_ramp_s": 2.0, "load_duration_s": 6.0, "load_user_rps": 5.0}
SAMPLES_WAIT_S = 60  # a few 1 s scrapes after the window; bounded


@pytest.mark.slow
def test_locust_load_test_against_the_real_model_server(mlserver, stack_settings, tmp_path):
    settings = stack_settings.model_copy(update=TINY)
    report = run_load_test(settings, mlserver.url, out_dir=tmp_path)
    assert report["requests"] > 0 and report["failures"] == 0, report
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"], lat
    assert report["slo"]["latency_threshold_ms"] == LATENCY_THRESHOLD_S * 1000
    assert report["slo"]["latency_met"] == (lat["p95"] <= LATENCY_THRESHOLD_S * 1000)
    assert report["slo"]["failure_budget_share"] == pytest.approx(1 - AVAILABILITY.target)
    assert report["slo"]["availability_met"] is True
    assert report["started_at"] < report["ended_at"]
    assert json.loads((tmp_path / "load-test.json").read_text()) == report
    # The requests went to the model: MLServer counted them on its /infer route (at least these:
    # other tests of the session share the server).
    metrics = httpx.get(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10).text
    served = re.search(
        r'rest_server_requests_total\{[^}]*method="POST",path="/v2/models/\{model_name\}/infer",'
        r'status_code="200"\} ([0-9.e+]+)',
        metrics,
    )
    assert served and float(served.group(1)) >= report["requests"], metrics[-2000:]


@pytest.mark.slow
def test_failures_are_counted_after_the_retries(demo_run, stack_settings, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: every attempt is refused
    settings = stack_settings.model_copy(update={**TINY, "load_duration_s": 3.0})
    report = run_load_test(settings, closed, out_dir=tmp_path)
    assert report["requests"] > 0 and report["failures"] == report["requests"]
    assert report["failure_share"] == 1.0 and report["slo"]["availability_met"] is False


class FlakyModel(http.server.BaseHTTPRequestHandler):
    """A replica going away: the first POST of each body gets a 503, the next the V2 answer."""

    posts = 0
    seen: set[bytes] = set()

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).posts += 1
        first = body not in self.seen
        self.seen.add(body)
        status, answer = (503, b"going away") if first else (200, b'{"outputs": []}')
        self.send_response(status)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_503s_are_retried_by_the_client(demo_run, stack_settings, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = stack_settings.model_copy(update={**TINY, "load_duration_s": 3.0})
        report = run_load_test(settings, f"http://127.0.0.1:{server.server_port}", out_dir=tmp_path)
    finally:
        server.shutdown()
    # The 503s were retried: the server refused each body once, yet no transaction failed (a
    # request cut off when Locust stopped may add a POST it did not count).
    assert report["requests"] > 0 and report["failures"] == 0, report
    assert FlakyModel.seen and FlakyModel.posts >= report["requests"] + len(FlakyModel.seen)


def samples_until(
    prometheus: str, expr: str, window: tuple[float, float], step: float
) -> list[float]:
    """The samples of `expr` over `window`, waiting (bounded) for the scrapes after its end."""
    deadline = time.monotonic() + SAMPLES_WAIT_S
    while True:
        values = rs.query_range(prometheus, expr, *window, step)
        if len(values) >= 3 or time.monotonic() > deadline:
            return values
        time.sleep(1)


@pytest.mark.slow
def test_rightsize_reads_the_model_servers_use_from_a_real_prometheus(
    mlserver, stack_settings, tmp_path
):
    settings = stack_settings.model_copy(
        update={
            **TINY,
            "prometheus_port": free_port(),
            "monitor_port": free_port(),  # the drift monitor is not running: no samples for it
            "alertmanager_port": free_port(),
            "scrape_interval_s": 1,
            "load_duration_s": 15.0,  # a dozen scrapes even when one times out on 2 busy cores
            "data_dir": str(tmp_path / "data"),
        }
    )
    Path(settings.state_dir).mkdir(parents=True)
    # Prometheus's own state in tmp_path; the load test's request bodies from the demo's features.
    Path(settings.features_dir).symlink_to(Path(stack_settings.features_dir).resolve())
    cpu_q, mem_q = rs.WORKLOADS[0].queries("local", "4s")
    with start_prometheus(settings) as prometheus:
        # The load starts once Prometheus has scraped the model server (bounded wait).
        now = time.time()
        assert samples_until(prometheus.url, mem_q, (now - 5, now + SAMPLES_WAIT_S), 1.0)
        report = run_load_test(settings, mlserver.url, out_dir=tmp_path)
        window = (report["started_at"], report["ended_at"])
        assert samples_until(prometheus.url, mem_q, window, 1.0)
        current = {"fraud-detector": {"requests": {"cpu": "250m", "memory": "768Mi"}}}
        rows = rs.rightsize(prometheus.url, window, "local", 1.0, current)
        cpu = rs.query_range(prometheus.url, cpu_q, *window, 1.0)
        memory = rs.query_range(prometheus.url, mem_q, *window, 1.0)
    assert [r["workload"] for r in rows] == ["fraud-detector"]  # the drift monitor is not running
    (row,) = rows
    assert (
        row["queries"] == {"cpu": cpu_q, "memory": mem_q}
        and row["current"] == current["fraud-detector"]
    )
    assert row["samples"] >= 3 and 0 < row["cpu_p95_cores"] <= row["cpu_max_cores"]
    assert 50 * rs.MIB < row["memory_max_bytes"] < 8 * 1024 * rs.MIB  # an MLServer's RSS
    # The proposal is the rule applied to what Prometheus holds for the window.
    assert row["proposed"] == rs.propose(cpu, memory)
    assert row["memory_max_bytes"] == max(memory)
