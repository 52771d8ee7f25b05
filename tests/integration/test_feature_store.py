"""Lab 04: the Feast feature store, for real: `feast apply`, `feast materialize` and `feast serve`
from .venv-feast (SQLite online store, file registry) on a few weeks of simulated transactions,
the feature server on a free 127.0.0.1 port; the online serving path against it.

The last test scores through the model server of the integration stack (the `mlserver`
fixture: `fraudlab demo` on reduced data), so it runs with the other stack tests.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reference_app.config import Settings
from reference_app.data import store
from reference_app.data.simulator import SimulationParams, simulate_transactions
from reference_app.features import build_features
from reference_app.features.online import (
    TTL_DAYS,
    VIEWS,
    MissingFeatureError,
    model_inputs,
    raw_transaction,
)
from reference_app.features.transform import FEATURE_NAMES, TERMINAL_FEATURES
from reference_app.launchers import feast
from reference_app.launchers.stack import free_port
from reference_app.serving import online

from .conftest import FRAUDLAB

pytestmark = pytest.mark.slow
WINDOWS = [name for _, (_, names) in VIEWS.items() for name in names]


@pytest.fixture(scope="module")
def feature_store(tmp_path_factory):
    """A features dataset of 45 days (100 customers, 200 terminals), its Feast offline sources,
    applied and materialized up to its last transaction, and the feature server."""
    feast.feast_bin(Settings())  # FeatureStoreError naming the fix (`make feast`) when missing
    data_dir = tmp_path_factory.mktemp("feast") / "data"
    port = free_port()
    settings = Settings(
        data_dir=str(data_dir),
        feature_server_port=port,
        feature_server_url=f"http://127.0.0.1:{port}",
    )
    features = build_features(
        simulate_transactions(SimulationParams(100, 200, 45, "2018-04-01", 5, 4))
    )
    store.write_dataset(features, settings.features_dir, name="features")
    window = feast.prepare(settings)
    with feast.start_feature_server(settings) as server:
        yield settings, features, window, server


def test_materialized_window_ends_at_the_newest_transaction(feature_store):
    settings, features, window, _ = feature_store
    assert pd.Timestamp(window["end"]).tz_localize(None) == features["TX_DATETIME"].max()
    assert online.materialized(settings)["end"] == window["end"]


def test_online_equals_offline_point_in_time_and_training(feature_store):
    """For transactions that are the newest of their customer and terminal, the feature server's
    values, Feast's point-in-time join and the training dataset agree within 1e-9."""
    settings, features, window, _ = feature_store
    as_of = pd.Timestamp(window["end"]).tz_localize(None)
    sample = online.newest_rows(features, as_of).sample(25, random_state=1)
    served = pd.DataFrame(
        online.lookup(settings, sample["CUSTOMER_ID"].tolist(), sample["TERMINAL_ID"].tolist())
    )[WINDOWS].to_numpy(dtype=float)
    rows = sample[["CUSTOMER_ID", "TERMINAL_ID", "TX_DATETIME"]].rename(
        columns={"TX_DATETIME": "event_timestamp"}
    )
    offline = feast.historical_features(settings, rows)[WINDOWS].to_numpy(dtype=float)
    training = sample[WINDOWS].to_numpy(dtype=float)
    assert not np.isnan(offline).any()
    np.testing.assert_allclose(served, offline, rtol=0, atol=online.TOLERANCE)
    np.testing.assert_allclose(served, training, rtol=0, atol=online.TOLERANCE)


def test_point_in_time_join_of_older_transactions_equals_training(feature_store):
    """Any transaction, not only the newest: the offline join at its time gives its training row."""
    settings, features, _, _ = feature_store
    sample = features[features["TX_DATETIME"] >= "2018-04-20"].sample(40, random_state=2)
    rows = sample[["CUSTOMER_ID", "TERMINAL_ID", "TX_DATETIME"]].rename(
        columns={"TX_DATETIME": "event_timestamp"}
    )
    offline = feast.historical_features(settings, rows)[WINDOWS].to_numpy(dtype=float)
    np.testing.assert_allclose(
        offline, sample[WINDOWS].to_numpy(dtype=float), rtol=0, atol=online.TOLERANCE
    )


def test_terminal_risk_reads_no_label_newer_than_the_delay(feature_store):
    """Online terminal features equal a recomputation that never sees a label newer than
    t − 7 days; the labels after the cutoff could change it, and do not."""
    settings, features, window, _ = feature_store
    as_of = pd.Timestamp(window["end"]).tz_localize(None)
    sample = online.newest_rows(features, as_of).sample(15, random_state=3)
    served = online.lookup(settings, sample["CUSTOMER_ID"].tolist(), sample["TERMINAL_ID"].tolist())
    flipped = features.assign(  # every label newer than its terminal's cutoff, inverted
        TX_FRAUD=np.where(
            features["TX_DATETIME"] > as_of - pd.Timedelta(days=7),
            1 - features["TX_FRAUD"],
            features["TX_FRAUD"],
        )
    )
    for values, (_, row) in zip(served, sample.iterrows(), strict=True):
        for history in (features, flipped):
            recomputed = online.terminal_risk_from_labels(
                history, row["TERMINAL_ID"], row["TX_DATETIME"], 7
            )
            for name in TERMINAL_FEATURES:
                assert values[name] == pytest.approx(recomputed[name], abs=online.TOLERANCE)


def test_missing_entity_gets_an_error_naming_it(feature_store):
    settings, features, _, _ = feature_store
    unknown = int(features["CUSTOMER_ID"].max()) + 1
    with pytest.raises(MissingFeatureError) as err:
        online.lookup(settings, [unknown], [int(features["TERMINAL_ID"].iloc[0])])
    assert err.value.entity == f"CUSTOMER_ID={unknown}"
    assert err.value.feature == "customer_windows:CUSTOMER_ID_NB_TX_1DAY_WINDOW"
    assert err.value.status == "NOT_FOUND"
    assert f"CUSTOMER_ID={unknown}" in str(err.value)


def test_raw_transaction_gets_its_training_inputs(feature_store):
    """The serving path's inputs (transaction features + online lookup) are the training row's."""
    settings, features, window, _ = feature_store
    as_of = pd.Timestamp(window["end"]).tz_localize(None)
    sample = online.newest_rows(features, as_of).sample(10, random_state=4)
    for _, row in sample.iterrows():
        raw = raw_transaction(row)
        (values,) = online.lookup(settings, [raw["CUSTOMER_ID"]], [raw["TERMINAL_ID"]])
        inputs = model_inputs(raw, values)
        np.testing.assert_allclose(
            inputs, row[FEATURE_NAMES].to_numpy(dtype=float), rtol=0, atol=online.TOLERANCE
        )


def test_score_command_names_the_missing_customer(feature_store):
    """`fraudlab feature-store score` exits 2 with the entity and feature, no traceback."""
    settings, features, _, _ = feature_store
    raw = raw_transaction(features.iloc[-1]) | {"CUSTOMER_ID": 10**6}
    result = subprocess.run(
        [FRAUDLAB, "feature-store", "score", json.dumps(raw)],
        env={**os.environ, "FRAUD_FEATURE_SERVER_URL": settings.feature_server_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CUSTOMER_ID=1000000" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_score_command_refuses_a_transaction_without_amount(feature_store):
    settings, features, _, _ = feature_store
    raw = raw_transaction(features.iloc[-1])
    del raw["TX_AMOUNT"]
    result = subprocess.run(
        [FRAUDLAB, "feature-store", "score", json.dumps(raw)],
        env={**os.environ, "FRAUD_FEATURE_SERVER_URL": settings.feature_server_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "TX_AMOUNT" in result.stdout


REGISTRY_SCRIPT = """
import json, sys
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1], fs_yaml_file=sys.argv[2])
print(json.dumps({v.name: {"keys": [e.name for e in v.entity_columns],
                           "ttl_days": v.ttl.days,
                           "features": [f.name for f in v.features]}
                  for v in store.list_feature_views()}))
"""


def test_the_registry_has_the_apps_views_keys_ttl_and_features(feature_store):
    """What `feast apply` registered from reference_app/feature_repo equals the app's one source
    (`features.online.VIEWS`, `TTL_DAYS`; the feature names of `features.transform`)."""
    settings, _, _, _ = feature_store
    python = feast.feast_bin(settings).parent / "python"
    result = subprocess.run(
        [str(python), "-c", REGISTRY_SCRIPT, str(feast.REPO), str(feast.LOCAL_YAML)],
        env={**os.environ, **feast.feast_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    registered = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {
        view: {"keys": [key], "ttl_days": TTL_DAYS[view], "features": list(names)}
        for view, (key, names) in VIEWS.items()
    }
    assert registered == expected


@pytest.fixture(scope="module")
def stack_feature_store(stack_settings, stack_env, mlserver):
    """The feature store of the integration stack's features dataset (`fraudlab demo` on reduced
    data), next to its model server: what `fraudlab up --features` starts."""
    port = free_port()
    settings = stack_settings.model_copy(
        update={"feature_server_port": port, "feature_server_url": f"http://127.0.0.1:{port}"}
    )
    feast.prepare(settings)
    env = {
        **stack_env,
        "FRAUD_FEATURE_SERVER_PORT": str(port),
        "FRAUD_FEATURE_SERVER_URL": settings.feature_server_url,
        "FRAUD_INFERENCE_URL": mlserver.url,
    }
    with feast.start_feature_server(settings):
        yield env


def test_parity_checks_pass_against_the_served_model(stack_feature_store):
    """`fraudlab feature-store check`: every lab 04 check passes, the online path's score
    included (the served champion scores the online inputs and the training row alike)."""
    result = subprocess.run(
        [FRAUDLAB, "feature-store", "check", "--json", "--sample", "10"],
        env={**os.environ, **stack_feature_store},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checks = json.loads(result.stdout.strip().splitlines()[-1])
    assert [c["passed"] for c in checks] == [True] * 5, checks
    assert "score" in checks[-1]["check"]


def test_the_score_command_runs_the_learners_model_inputs(stack_feature_store, stack_settings):
    """With FRAUD_LAB_CODE on lab 04's starter, scoring stops with the TODO, no traceback; on the
    solution it scores."""
    features = store.read_dataset(stack_settings.features_dir)
    raw = raw_transaction(features.iloc[-1])
    root = Path(__file__).resolve().parents[2] / "labs" / "04-features"
    outcomes = {}
    for folder in ("starter", "solution"):
        outcomes[folder] = subprocess.run(
            [FRAUDLAB, "feature-store", "score", json.dumps(raw)],
            env={**os.environ, **stack_feature_store, "FRAUD_LAB_CODE": str(root / folder)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert outcomes["starter"].returncode == 2
    assert "TODO(lab-04)" in outcomes["starter"].stdout
    assert "Traceback" not in outcomes["starter"].stdout + outcomes["starter"].stderr
    assert outcomes["solution"].returncode == 0, outcomes["solution"].stdout
    scored = json.loads(outcomes["solution"].stdout)
    assert 0.0 <= scored["fraud_probability"] <= 1.0
    assert scored["TRANSACTION_ID"] == raw["TRANSACTION_ID"]
