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
        # pd.Timestamp reads these as NaT without raising: they must not pass as a time.
        ({"TX_DATETIME": None}, "TX_DATETIME"),
        ({"TX_DATETIME": ""}, "TX_DATETIME"),
        ({"TX_DATETIME": "NaT"}, "TX_DATETIME"),
        ({"TX_DATETIME": 1525168800}, "TX_DATETIME"),
        ({"TX_DATETIME": ["2018-05-01T10:00:00"]}, "TX_DATETIME"),
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


# --- review fixes: each test below fails without its fix -------------------------------------

import http.server  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

from reference_app.config import FEATURE_DELAY_DAYS, Settings  # noqa: E402
from reference_app.features.online import ttl_days  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RAW = {
    "TRANSACTION_ID": 1,
    "TX_DATETIME": "2018-05-01T10:00:00",
    "CUSTOMER_ID": 7,
    "TERMINAL_ID": 9,
    "TX_AMOUNT": 12.5,
}


def test_cli_refuses_a_transaction_without_a_time_with_exit_2():
    """`fraudlab feature-store score` with TX_DATETIME "NaT" exits 2 naming the field (before
    asking any server: check_raw runs first)."""
    from reference_app.cli import app

    result = CliRunner().invoke(
        app, ["feature-store", "score", json.dumps(RAW | {"TX_DATETIME": "NaT"})]
    )
    assert result.exit_code == 2, result.output
    assert "TX_DATETIME" in result.output
    assert "Traceback" not in result.output


def test_feature_server_url_follows_the_port_unless_set(monkeypatch):
    """One source for the port: with only FRAUD_FEATURE_SERVER_PORT set, the URL the online path
    asks uses it; an explicit FRAUD_FEATURE_SERVER_URL (kind mode's Service) still wins."""
    monkeypatch.delenv("FRAUD_FEATURE_SERVER_URL", raising=False)
    monkeypatch.setenv("FRAUD_FEATURE_SERVER_PORT", "7000")
    assert Settings(_env_file=None).feature_server_base_url == "http://127.0.0.1:7000"
    monkeypatch.setenv("FRAUD_FEATURE_SERVER_URL", "http://feature-server.fraud-lab:6566/")
    assert (
        Settings(_env_file=None).feature_server_base_url == "http://feature-server.fraud-lab:6566"
    )


@pytest.mark.parametrize(
    "manifest",
    [
        "manifests/base/features/job.feature-store.yaml",
        "labs/04-features/starter/job.feature-store.yaml",
    ],
)
def test_kind_manifests_set_the_feature_server_url(manifest):
    """The default URL is now derived from the local port, so kind mode must name its Service."""
    import yaml

    env = {
        e["name"]: e.get("value")
        for doc in yaml.safe_load_all((ROOT / manifest).read_text())
        if doc
        for pod in [doc.get("spec", {}).get("template", {}).get("spec", {})]
        for c in pod.get("containers", []) + pod.get("initContainers", [])
        for e in c.get("env", [])
    }
    assert env.get("FRAUD_FEATURE_SERVER_URL", "").startswith("http://")


def test_messages_name_only_existing_feature_store_commands():
    """Every `fraudlab feature-store <cmd>` in the code, chapters and labs is a real command
    (`fraudlab feature-store up` never existed: it is `fraudlab up --features`)."""
    from reference_app.cli import feature_store_app

    commands = {c.name for c in feature_store_app.registered_commands}
    named = {}
    for folder in ("reference_app", "chapters", "labs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".md", ".yaml", ".yml", ".sh"} and path.is_file():
                for cmd in re.findall(r"fraudlab feature-store ([a-z][a-z-]*)", path.read_text()):
                    named.setdefault(cmd, path.relative_to(ROOT))
    unknown = {cmd: str(path) for cmd, path in named.items() if cmd not in commands}
    assert not unknown, f"commands that do not exist: {unknown} (commands: {sorted(commands)})"
    err = MissingFeatureError("CUSTOMER_ID=1", "customer_windows:x", "NOT_FOUND")
    assert "`fraudlab up --features`" in str(err)


def _fake_feast(tmp_path, body: str) -> Settings:
    script = tmp_path / "bin" / "feast"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return Settings(_env_file=None, data_dir=str(tmp_path / "data"), feast_bin=str(script))


def test_a_feast_command_past_its_timeout_is_a_feature_store_error(tmp_path, monkeypatch):
    """A real `feast` stand-in that never finishes: FeatureStoreError naming the command and the
    timeout, not subprocess.TimeoutExpired."""
    from reference_app.launchers import feast

    settings = _fake_feast(tmp_path, "exec sleep 30")
    monkeypatch.setattr(feast, "COMMAND_TIMEOUT_S", 0.5)
    with pytest.raises(feast.FeatureStoreError, match=r"feast apply did not finish within 0.5 s"):
        feast.run_feast(settings, "apply")
    python = tmp_path / "bin" / "python"  # offline.py's interpreter: never finishes either
    python.write_text("#!/bin/sh\nexec sleep 30\n")
    python.chmod(0o755)
    rows = pd.DataFrame(
        {"CUSTOMER_ID": [1], "TERMINAL_ID": [2], "event_timestamp": [pd.Timestamp("2018-05-01")]}
    )
    with pytest.raises(feast.FeatureStoreError, match=r"historical features .* within 0.5 s"):
        feast.historical_features(settings, rows)


def test_stack_up_with_features_fails_before_any_server_when_feast_is_missing(tmp_path):
    from reference_app.launchers.feast import FeatureStoreError
    from reference_app.launchers.stack import stack_up

    settings = Settings(
        _env_file=None, data_dir=str(tmp_path / "data"), feast_bin=str(tmp_path / "no" / "feast")
    )
    with pytest.raises(FeatureStoreError, match="make feast"):
        stack_up(settings, features=True)
    assert not Path(settings.state_dir).exists(), "something was started or written first"


class _Canned(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


@pytest.fixture
def canned_server():
    """A real HTTP server on 127.0.0.1 answering 200 with `_Canned.body` to every POST."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"<html>proxy</html>", "not JSON"),
        (b"{}", "metadata.feature_names"),
        (b'{"metadata": {"feature_names": ["a"]}}', "results"),
        (b'{"metadata": {"feature_names": ["a"]}, "results": [{"values": []}]}', "values for a"),
    ],
)
def test_lookup_refuses_an_unexpected_feature_server_answer(canned_server, body, named):
    from reference_app.serving.online import OnlineServingError, lookup

    _Canned.body = body
    settings = Settings(_env_file=None, feature_server_url=canned_server)
    with pytest.raises(OnlineServingError, match=named) as err:
        lookup(settings, [1], [2])
    assert canned_server in str(err.value)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"not json", "not JSON"),
        (b'{"model_name": "fraud"}', "no output named 'fraud_probability'"),
        (b'{"outputs": [{"name": "fraud_probability", "data": ["x"]}]}', "not a list of numbers"),
        (
            b'{"outputs": [{"name": "fraud_probability", "data": [0.1, 0.2]}]}',
            "2 fraud_probability values for 1",
        ),
    ],
)
def test_infer_refuses_an_unexpected_model_server_answer(canned_server, body, named):
    from reference_app.serving.online import OnlineServingError, infer

    _Canned.body = body
    settings = Settings(_env_file=None, inference_url=canned_server)
    with pytest.raises(OnlineServingError, match=named) as err:
        infer(settings, np.zeros((1, len(FEATURE_NAMES))))
    assert canned_server in str(err.value)


def test_parity_sample_names_the_window_when_no_transaction_qualifies(tmp_path, features):
    from reference_app.data import store
    from reference_app.serving.online import OnlineServingError, parity_sample, write_materialized

    settings = Settings(_env_file=None, data_dir=str(tmp_path / "data"))
    store.write_dataset(features, settings.features_dir, name="features")
    first = pd.Timestamp(features["TX_DATETIME"].min()).tz_localize("UTC")
    write_materialized(settings, first - pd.Timedelta(days=30), first - pd.Timedelta(days=1))
    with pytest.raises(OnlineServingError, match="no transaction to check") as err:
        parity_sample(settings)
    assert str((first - pd.Timedelta(days=1)).isoformat()) in str(err.value)


def test_the_feature_repo_delay_is_the_feature_datasets_delay(tmp_path, features):
    """The features dataset's terminal windows use `delta_delay` (orchestration/pipeline.py), so
    Feast's terminal ttl (FEAST_REPO_DELAY_DAYS) and the exported window follow it too."""
    from reference_app.data import store
    from reference_app.launchers import feast

    settings = Settings(_env_file=None, data_dir=str(tmp_path / "data"), delta_delay=2)
    assert feast.feast_env(settings)["FEAST_REPO_DELAY_DAYS"] == "2"
    assert ttl_days(2)["terminal_risk"] == 32
    assert ttl_days()["terminal_risk"] == FEATURE_DELAY_DAYS + 30
    store.write_dataset(features, settings.features_dir, name="features")
    window = feast.export(settings)
    start, end = pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
    assert end - start == pd.Timedelta(days=32)
