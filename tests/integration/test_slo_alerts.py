"""The SLO rules in a real local Prometheus and Alertmanager (Debian's packages): the group that
`fraudlab up --monitoring` renders with lab 12's burn_rate_threshold is loaded with its
thresholds, a learner's unwritten function stops the launch with its message, and the lab's
fault (no model answering the scrape) fires FraudModelDown into Alertmanager with its runbook."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reference_app.config import Settings
from reference_app.labcode import ENV, LabCodeError
from reference_app.launchers.prometheus import write_prometheus_config
from reference_app.launchers.stack import free_port, start_alertmanager, start_prometheus
from reference_app.monitoring import slo

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "labs" / "12-alerting-and-incidents"
FIRING_WAIT_S = 240  # FraudModelDown's `for: 2m`, a few 1 s scrapes and evaluations, the send


def thresholds(expr: str) -> list[str]:
    """The numbers an alert expression compares with, sorted, 6 significant digits."""
    return sorted(f"{float(x):.6g}" for x in re.findall(r">\s*([0-9.eE+-]+)", expr))


def test_the_starters_todo_stops_the_launch(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(LAB / "starter"))
    with pytest.raises(LabCodeError, match=r"burnrate\.py is not written yet"):
        write_prometheus_config(Settings(_env_file=None, data_dir=str(tmp_path)), tmp_path)


MODEL = """
import sys, time
from prometheus_client import Counter, start_http_server
Counter("fraud_scored_transactions", "stand-in for the runtime's counter").inc()
start_http_server(int(sys.argv[1]), addr="127.0.0.1")
while True:
    time.sleep(1)
"""


@pytest.fixture
def monitoring(tmp_path, monkeypatch):
    """Prometheus (1 s scrapes) and Alertmanager on free ports, the solved burnrate.py as the lab
    code, a metrics server on the model's metrics port, and the stack file that names them."""
    monkeypatch.setenv(ENV, str(LAB / "solution"))
    data = tmp_path / "data"
    settings = Settings(
        _env_file=None,
        data_dir=str(data),
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        metrics_port=free_port(),
        monitor_port=free_port(),
        scrape_interval_s=1,
    )
    model = subprocess.Popen([sys.executable, "-c", MODEL, str(settings.metrics_port)])
    try:
        with start_alertmanager(settings) as am, start_prometheus(settings) as prom:
            (data / "state").mkdir(parents=True, exist_ok=True)
            (data / "state" / "stack.json").write_text(
                json.dumps({"mlserver": {"pid": model.pid}, "alertmanager": {"url": am.url}})
            )
            monkeypatch.setenv("FRAUD_DATA_DIR", str(data))
            yield prom.url, am.url, model
    finally:
        os.kill(model.pid, signal.SIGCONT)
        model.kill()
        model.wait()


def query(prometheus: str, expr: str) -> list[dict]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    return answer.json()["data"]["result"]


@pytest.mark.slow
def test_slo_rules_load_and_the_labs_fault_reaches_alertmanager_with_its_runbook(monitoring):
    prometheus, alertmanager, model = monitoring
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    (group,) = [g for g in groups if g["name"] == slo.RULE_GROUP]
    loaded = {r["name"]: thresholds(r["query"]) for r in group["rules"] if r["type"] == "alerting"}
    reference = {
        r["alert"]: thresholds(r["expr"])
        for r in slo.slo_rule_group(slo.burn_rate_threshold)["rules"]
        if "alert" in r
    }
    assert loaded == reference  # Prometheus prints the parsed expression: compare its numbers
    assert loaded["FraudAvailabilityBudgetBurn"] == ["0.0056", "0.0056", "0.01344", "0.01344"]
    # The model answers its scrapes before the fault.
    deadline = time.monotonic() + 30
    while not query(prometheus, 'up{job="fraud-lab/fraud-detector"} == 1'):
        assert time.monotonic() < deadline, "the stand-in model was never scraped"
        time.sleep(1)
    # The lab's fault, as `make lab-12-solution TARGET=local` injects it: SIGSTOP, then wait.
    sys.path.insert(0, str(ROOT / "labs"))
    import reference as lab_reference

    assert lab_reference.stop_the_model(timeout_s=FIRING_WAIT_S) == 0
    assert model.poll() is None  # stopped, not gone: the process still exists
    assert query(prometheus, 'up{job="fraud-lab/fraud-detector"} == 0')
    alerts = httpx.get(
        f"{alertmanager}/api/v2/alerts",
        params={"filter": 'alertname="FraudModelDown"', "active": "true"},
        timeout=10,
    ).json()
    url = alerts[0]["annotations"]["runbook_url"]
    slug = url.rstrip("/").rsplit("/", 1)[-1]
    assert (ROOT / "chapters" / "runbooks" / f"{slug}.md").is_file(), url
    # The burn-rate pages stay quiet: a model that answers nothing makes no requests to count.
    firing = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    assert not [a for a in firing if "BudgetBurn" in a["labels"]["alertname"]]
