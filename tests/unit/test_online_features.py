"""Lab 04's app side without Feast: the offline sources' point-in-time tables, the feature
server's answer, raw-transaction checks and the model inputs. (Feast itself, for real:
tests/integration/test_feature_store.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reference_app.data.simulator import SimulationParams, simulate_transactions
from reference_app.features import build_features
from reference_app.features.online import (
    EVENT_TIMESTAMP,
    VIEWS,
    MissingFeatureError,
    check_raw,
    entity_tables,
    model_inputs,
    online_values,
    raw_transaction,
)
from reference_app.features.transform import FEATURE_NAMES
from reference_app.serving.online import newest_rows, terminal_risk_from_labels


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(simulate_transactions(SimulationParams(80, 160, 40, "2018-04-01", 5, 3)))


def test_a_point_in_time_join_of_the_entity_tables_gives_the_training_rows(features):
    """The newest entity row at or before each transaction's time (what Feast's join does, here
    with pandas.merge_asof) holds exactly that transaction's window features."""
    tables = entity_tables(features)
    rows = features.assign(
        **{EVENT_TIMESTAMP: pd.to_datetime(features["TX_DATETIME"]).dt.tz_localize("UTC")}
    ).sort_values(EVENT_TIMESTAMP)
    for view, (key, names) in VIEWS.items():
        table = tables[view].sort_values(EVENT_TIMESTAMP)
        joined = pd.merge_asof(
            rows[[key, EVENT_TIMESTAMP, "TRANSACTION_ID"]],
            table,
            on=EVENT_TIMESTAMP,
            by=key,
            direction="backward",
        ).set_index("TRANSACTION_ID")
        expected = features.set_index("TRANSACTION_ID").loc[joined.index, names]
        np.testing.assert_allclose(joined[names].to_numpy(float), expected.to_numpy(float), atol=0)


def test_entity_tables_have_one_row_per_entity_and_second(features):
    tables = entity_tables(features)
    for view, (key, names) in VIEWS.items():
        table = tables[view]
        assert list(table.columns) == [key, EVENT_TIMESTAMP, *names]
        assert not table.duplicated([key, EVENT_TIMESTAMP]).any()
        assert str(table[EVENT_TIMESTAMP].dt.tz) == "UTC"
    doubled = pd.concat([features, features.iloc[[0]]], ignore_index=True)
    assert len(entity_tables(doubled)["customer_windows"]) == len(tables["customer_windows"])


def test_online_values_reads_statuses():
    """The shape of `POST /get-online-features` as Feast 0.67's server answered it (captured from
    tests/integration/test_feature_store.py's server): join keys first, one result per name."""
    answer = {
        "metadata": {"feature_names": ["CUSTOMER_ID", "CUSTOMER_ID_NB_TX_1DAY_WINDOW"]},
        "results": [
            {"values": [29, 99999], "statuses": ["PRESENT", "PRESENT"]},
            {"values": [2, None], "statuses": ["PRESENT", "NOT_FOUND"]},
        ],
    }
    assert online_values(answer, 0) == {"CUSTOMER_ID": 29, "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 2}
    assert online_values(answer, 1)["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"TX_AMOUNT": None}, "TX_AMOUNT"),
        ({"TX_AMOUNT": float("nan")}, "TX_AMOUNT"),
        ({"CUSTOMER_ID": "7"}, "CUSTOMER_ID"),
        ({"TERMINAL_ID": True}, "TERMINAL_ID"),
        ({"TX_DATETIME": "yesterday"}, "TX_DATETIME"),
    ],
)
def test_check_raw_names_the_bad_field(change, named):
    raw = {
        "TRANSACTION_ID": 1,
        "TX_DATETIME": "2018-05-01T10:00:00",
        "CUSTOMER_ID": 7,
        "TERMINAL_ID": 9,
        "TX_AMOUNT": 12.5,
    }
    assert check_raw(raw) is raw
    with pytest.raises(ValueError, match=named):
        check_raw(raw | change)
    with pytest.raises(ValueError, match="lacks"):
        check_raw({k: v for k, v in raw.items() if k != "TERMINAL_ID"})


def test_model_inputs_of_raw_transactions_are_their_training_rows(features):
    windows = [n for _, (_, names) in VIEWS.items() for n in names]
    for _, row in features.iloc[::50].iterrows():
        inputs = model_inputs(raw_transaction(row), {n: row[n] for n in windows})
        np.testing.assert_allclose(inputs, row[FEATURE_NAMES].to_numpy(float), atol=0)


def test_model_inputs_refuses_a_missing_value_naming_entity_and_feature(features):
    row = features.iloc[-1]
    online = {n: 1.0 for _, (_, names) in VIEWS.items() for n in names}
    online["TERMINAL_ID_RISK_30DAY_WINDOW"] = None
    with pytest.raises(MissingFeatureError) as err:
        model_inputs(raw_transaction(row), online)
    assert err.value.entity == f"TERMINAL_ID={row['TERMINAL_ID']}"
    assert err.value.feature == "TERMINAL_ID_RISK_30DAY_WINDOW"


def test_newest_rows_are_the_last_of_customer_and_terminal(features):
    as_of = features["TX_DATETIME"].max()
    rows = newest_rows(features, as_of)
    assert len(rows) > 0
    for _, row in rows.iterrows():
        assert (
            features[features["CUSTOMER_ID"] == row["CUSTOMER_ID"]]["TX_DATETIME"].max()
            == (row["TX_DATETIME"])
        )
        assert (
            features[features["TERMINAL_ID"] == row["TERMINAL_ID"]]["TX_DATETIME"].max()
            == (row["TX_DATETIME"])
        )


def test_terminal_recomputation_equals_build_features_and_ignores_newer_labels(features):
    """The lab's recomputation from labels ≤ t − 7 days equals the training features, and a label
    newer than that changes nothing; with the delay wrong (0 days) it differs somewhere."""
    sample = features[features["TX_DATETIME"] >= "2018-04-25"].sample(30, random_state=0)
    differs_without_delay = False
    for _, row in sample.iterrows():
        got = terminal_risk_from_labels(features, row["TERMINAL_ID"], row["TX_DATETIME"], 7)
        for name, value in got.items():
            assert value == pytest.approx(row[name], abs=1e-12)
        no_delay = terminal_risk_from_labels(features, row["TERMINAL_ID"], row["TX_DATETIME"], 0)
        differs_without_delay |= any(
            abs(no_delay[n] - row[n]) > 1e-12 for n in no_delay if n.startswith("TERMINAL_ID_NB")
        )
    assert differs_without_delay
