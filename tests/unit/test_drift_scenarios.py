"""Drift injection and the monitoring job on small data."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from reference_app.config import Settings
from reference_app.data.contracts import validate_transactions
from reference_app.data.drift_scenarios import SCENARIO4_NIGHT_TESTING, DriftScenario, inject_drift
from reference_app.data.simulator import simulate_transactions
from reference_app.features import FEATURE_NAMES, build_features
from reference_app.monitoring.monitor import NothingToMonitorError, compute_monitoring
from reference_app.orchestration.continuous_training import create_app, recent_window
from tests.conftest import simulation


@pytest.fixture(scope="module")
def base():
    return simulate_transactions(simulation(n_customers=300, n_terminals=600, nb_days=70, seed=5))


def test_no_change_before_the_start_day(base):
    drifted = inject_drift(
        base,
        DriftScenario(
            start_day=45,
            extra_compromised_terminals=5,
            amount_factor=2.0,
            night_testing_customers=10,
        ),
    )
    before = (
        drifted[drifted["TX_TIME_DAYS"] < 45].drop(columns="TRANSACTION_ID").reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        before,
        base[base["TX_TIME_DAYS"] < 45].drop(columns="TRANSACTION_ID").reset_index(drop=True),
    )
    assert drifted["TRANSACTION_ID"].tolist() == list(range(len(drifted)))
    assert drifted["TX_DATETIME"].is_monotonic_increasing
    assert validate_transactions(drifted).quarantined.empty


def test_each_drift_component(base):
    after = base["TX_TIME_DAYS"] >= 45
    shifted = inject_drift(base, DriftScenario(start_day=45, amount_factor=2.0))
    assert shifted.loc[after.to_numpy(), "TX_AMOUNT"].mean() == pytest.approx(
        2 * base.loc[after, "TX_AMOUNT"].mean(), rel=0.01
    )
    assert (
        (shifted["TX_AMOUNT"] > 220) <= (shifted["TX_FRAUD"] == 1)
    ).all()  # scenario 1 still holds
    terminals = inject_drift(base, DriftScenario(start_day=45, extra_compromised_terminals=5))
    assert (
        terminals.loc[terminals["TX_TIME_DAYS"] >= 45, "TX_FRAUD"].mean()
        > 1.5 * base.loc[after, "TX_FRAUD"].mean()
    )
    night = inject_drift(base, DriftScenario(start_day=45, night_testing_customers=10))
    new = night[night["TX_FRAUD_SCENARIO"] == SCENARIO4_NIGHT_TESTING]
    assert 25 * 10 * 3 <= len(new) <= 25 * 10 * 5  # 10 customers a day over days 45 … 69
    assert (
        (new["TX_DATETIME"].dt.hour.between(1, 4)).all()
        and (new["TX_AMOUNT"] <= 5).all()
        and (new["TX_TIME_DAYS"] >= 45).all()
    )
    with pytest.raises(ValueError, match="outside the simulated days"):
        inject_drift(base, DriftScenario(start_day=99, amount_factor=2.0))


def test_monitoring_sees_drift_and_waits_for_labels(tmp_path, base):
    drifted = inject_drift(base, DriftScenario(start_day=45, amount_factor=1.8))
    feats = build_features(drifted)
    settings = Settings(
        data_dir=str(tmp_path), train_start=dt.date(2018, 5, 1), delta_train=7, delta_delay=7
    )
    reference = feats[
        (feats["TX_DATETIME"] >= "2018-05-01") & (feats["TX_DATETIME"] < "2018-05-08")
    ]
    reports = tmp_path / "reports"
    reports.mkdir()
    with pytest.raises(NothingToMonitorError):
        compute_monitoring(settings, reference=reference)
    rng = np.random.default_rng(0)
    for day in ("2018-05-09", "2018-05-20"):  # a normal day, then a drifted one (day 49)
        served = feats[feats["TX_DATETIME"].dt.strftime("%Y-%m-%d") == day].copy()
        served["served_score"] = rng.random(len(served))
        served.to_parquet(reports / f"replay-{day}.parquet")
        result = compute_monitoring(settings, reference=reference)
        if day == "2018-05-09":
            assert result["drifted_features"] == [] and result["performance"] is None
    assert "TX_AMOUNT" in result["drifted_features"] and result["drift"]["TX_AMOUNT"]["psi"] > 0.25
    assert "TX_DURING_WEEKEND" not in result["drifted_features"]
    assert result["performance"]["day"] == "2018-05-09"  # the only day at least 7 days old
    assert [p["day"] for p in result["performance_by_day"]] == ["2018-05-09"]
    assert 0 <= result["performance"]["card_precision_top_k"] <= 1
    assert set(FEATURE_NAMES) | {"fraud_score"} == set(result["drift"])


def test_recent_window_respects_the_label_delay():
    w = recent_window(Settings(), dt.date(2018, 6, 10))
    assert w["test_end"] == dt.date(2018, 6, 3) and w["test_start"] == dt.date(2018, 5, 28)
    assert w["train_start"] == dt.date(2018, 5, 14)


def test_controller_webhook(tmp_path):
    client = TestClient(create_app(Settings(data_dir=str(tmp_path / "empty"))))
    assert client.get("/healthz").json() == {"ok": True}
    assert client.post("/alerts", json={"bad": "payload"}).status_code == 422
    quiet = {
        "status": "firing",
        "alerts": [{"status": "firing", "labels": {"alertname": "FraudModelDown"}}],
    }
    assert client.post("/alerts", json=quiet).json()["accepted"] is False
    resolved = {
        "status": "resolved",
        "alerts": [
            {
                "status": "resolved",
                "labels": {"alertname": "FraudFeatureDrift", "action": "retrain"},
            }
        ],
    }
    assert client.post("/alerts", json=resolved).json()["accepted"] is False
    drift = {
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "FraudFeatureDrift",
                    "action": "retrain",
                    "feature": "TX_AMOUNT",
                },
            }
        ],
    }
    assert client.post("/alerts", json=drift).json()["accepted"] is True
    # No data in this folder: the cycle fails, the controller records why and stays up.
    for _ in range(100):
        history = client.get("/status").json()["history"]
        if history:
            break
        import time

        time.sleep(0.05)
    assert history[0]["trigger"]["alertname"] == "FraudFeatureDrift"
    assert "DatasetError" in history[0]["outcome"]["error"]
    assert client.get("/healthz").status_code == 200
