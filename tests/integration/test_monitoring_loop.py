"""The monitoring loop end to end, with real processes on 127.0.0.1: MLflow, MLServer, the drift
exporter, Prometheus, Alertmanager and the continuous-training controller.

A normal day raises no drift alert; a drifted day (amount shift, more compromised terminals, a
new night pattern injected from 2018-05-25) fires FraudFeatureDrift in Prometheus, Alertmanager
calls the controller's webhook, and a challenger is trained and promoted or rejected with the
reason recorded in MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reference_app.data import store
from reference_app.launchers.stack import free_port
from reference_app.serving.replay import v2_request

from .conftest import SCALE_ENV, run_fraudlab

pytestmark = pytest.mark.slow

NORMAL_DAY, DRIFTED_DAY = "2018-05-15", "2018-06-10"
LAB13 = Path(__file__).resolve().parents[2] / "labs" / "13-continuous-training"
WAIT_S = 90


def wait_for(what: str, check, timeout: float = WAIT_S, every: float = 1.0):
    """Poll `check()` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def alerts(prometheus: str, name: str) -> list[dict]:
    query = f'ALERTS{{alertname="{name}", alertstate="firing"}}'
    return httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()[
        "data"
    ]["result"]


def scalar(prometheus: str, query: str) -> list[dict]:
    return httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()[
        "data"
    ]["result"]


def evaluated_after(prometheus: str, alert: str, after: float) -> dict | None:
    """The alert rule's state from Prometheus' rules API once it was evaluated after `after`
    (Unix seconds), else None."""
    groups = httpx.get(f"{prometheus}/api/v1/rules", params={"type": "alert"}, timeout=10).json()
    (rule,) = [r for g in groups["data"]["groups"] for r in g["rules"] if r["name"] == alert]
    return rule if pd.Timestamp(rule["lastEvaluation"]).timestamp() > after else None


@pytest.fixture(scope="module")
def loop_env(tmp_path_factory):
    mlflow_port = free_port()
    return {
        **SCALE_ENV,
        "FRAUD_NB_DAYS": "75",
        "FRAUD_DRIFT_START": "2018-05-25",
        "FRAUD_DRIFT_EXTRA_TERMINALS": "10",
        "FRAUD_DRIFT_AMOUNT_FACTOR": "1.6",
        "FRAUD_DRIFT_NIGHT_CUSTOMERS": "20",
        "FRAUD_DATA_DIR": str(tmp_path_factory.mktemp("loop") / "data"),
        "FRAUD_MLFLOW_PORT": str(mlflow_port),
        "FRAUD_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "FRAUD_SCRAPE_INTERVAL_S": "1",
        # Lab 13's solved window: the controller's cycles run it as a learner's code runs.
        "FRAUD_LAB_CODE": str(LAB13 / "solution"),
        **{
            f"FRAUD_{k}_PORT": str(free_port())
            for k in ("HTTP", "GRPC", "METRICS", "MONITOR", "PROMETHEUS", "ALERTMANAGER", "CT")
        },
    }


@pytest.fixture(scope="module")
def stack(loop_env):
    demo = run_fraudlab(loop_env, "demo", "--replay-day", NORMAL_DAY)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    up = run_fraudlab(loop_env, "up", "--monitoring", timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    record = json.loads((Path(loop_env["FRAUD_DATA_DIR"]) / "state" / "stack.json").read_text())
    yield record
    run_fraudlab(loop_env, "down")


def test_normal_day_raises_no_drift_alert(stack):
    prometheus = stack["prometheus"]["url"]
    psi = wait_for(
        "fraud_drift_psi in Prometheus",
        lambda: scalar(prometheus, 'fraud_drift_psi{feature="TX_AMOUNT"}'),
    )
    queried_at, value = psi[0]["value"]
    assert float(value) < 0.1
    # Proof that the rule ran on the PSI just seen: an evaluation of FraudFeatureDrift after the
    # query time, healthy and inactive (the rule has no `for:`, so a true expression would fire).
    rule = wait_for(
        "Prometheus to evaluate FraudFeatureDrift after the PSI was scraped",
        lambda: evaluated_after(prometheus, "FraudFeatureDrift", float(queried_at)),
        timeout=30,
        every=0.5,
    )
    assert rule["health"] == "ok" and rule["state"] == "inactive", rule
    assert alerts(prometheus, "FraudFeatureDrift") == []
    # Labels are 7 days late: nothing served is labelled yet, so no realised performance.
    assert scalar(prometheus, "fraud_realised_card_precision_top_k") == []
    assert scalar(prometheus, 'up{job="fraud-lab/fraud-detector"} == 1') and scalar(
        prometheus, 'up{job="mlflow"} == 1'
    )


def test_drifted_day_fires_the_alert_and_retrains(stack, loop_env):
    prometheus, controller = stack["prometheus"]["url"], stack["ct-controller"]["url"]
    replay = run_fraudlab(
        {**loop_env, "FRAUD_INFERENCE_URL": stack["mlserver"]["url"]},
        "replay",
        "--day",
        DRIFTED_DAY,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    firing = wait_for("FraudFeatureDrift to fire", lambda: alerts(prometheus, "FraudFeatureDrift"))
    drifted = {a["metric"]["feature"] for a in firing}
    assert drifted & {
        "TX_AMOUNT",
        "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
        "TERMINAL_ID_RISK_1DAY_WINDOW",
    }, drifted
    assert "TX_DURING_WEEKEND" not in drifted
    status = wait_for(
        "the controller to finish a retraining cycle",
        lambda: httpx.get(f"{controller}/status", timeout=10).json()["history"],
        timeout=240,
    )
    outcome = status[0]["outcome"]
    assert "error" not in outcome, outcome
    assert status[0]["trigger"]["alertname"] in {"FraudFeatureDrift", "FraudCardPrecisionLow"}
    # blocked: the model tests refused the challenger (lab 07), which then has no alias.
    assert outcome["decision"] in {"champion", "challenger", "blocked"} and outcome["reason"]
    assert (
        outcome["window"]["as_of"] == DRIFTED_DAY and outcome["window"]["test_end"] == "2018-06-03"
    )
    client = MlflowClient(tracking_uri=stack["mlflow"]["url"], registry_uri=stack["mlflow"]["url"])
    (run,) = client.search_runs(
        [client.get_experiment_by_name("continuous-training").experiment_id]
    )
    assert (
        run.data.tags["decision"] == outcome["decision"]
        and run.data.tags["decision_reason"] == outcome["reason"]
    )
    assert (
        run.data.tags["trigger_alert"] == status[0]["trigger"]["alertname"]
        and run.data.params["test_end"] == "2018-06-03"
    )
    version = client.get_model_version("fraud-detector", outcome["version"])
    assert version.tags["promotion_decision"] == outcome["decision"]
    # Serving answers with the champion, new or old.
    champion = client.get_model_version_by_alias("fraud-detector", "champion").version
    assert (champion == outcome["version"]) == (outcome["decision"] == "champion")
    day = store.read_dataset(
        str(Path(loop_env["FRAUD_DATA_DIR"]) / "features"), days=(dt.date(2018, 6, 10),) * 2
    ).head(3)
    answer = httpx.post(
        f"{stack['mlserver']['url']}/v2/models/fraud-detector/infer",
        json=v2_request(day),
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["model_version"] == champion
    assert outcome["reloaded"] is (outcome["decision"] == "champion")


def test_lab13_local_checks_pass_on_the_loop(stack, loop_env):
    """`make lab-13 TARGET=local` on the loop's end state (after the drifted day's cycle): every
    local check passes, the cycle's window included (run with the solved window.py)."""
    from tests.labs.conftest import lab_env, parse, run_lab

    env = lab_env(
        {
            "FRAUD_DATA_DIR": loop_env["FRAUD_DATA_DIR"],
            "LAB_EXERCISE_DIR": str(LAB13 / "solution"),
            **{k: v for k, v in loop_env.items() if k.startswith("FRAUD_GATE_")},
        }
    )
    result = run_lab(LAB13, "--target", "local", env=env)
    out = parse(result.stdout)
    assert result.returncode == 0, result.stdout
    assert out["summary"] == ("9", "9", "3 not for target local"), result.stdout
