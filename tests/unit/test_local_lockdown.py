"""Local mode's lock-down, without servers: MLflow's address and credential, the model
repository's admin token, and the MLServer settings `fraudlab serve` writes."""

from __future__ import annotations

import json

import pytest

from reference_app.config import Settings
from reference_app.features import FEATURE_NAMES
from reference_app.launchers.mlserver import admin_token, write_mlserver_config
from reference_app.launchers.stack import ServerError, client_env, exposure_warning, stack_up


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_mlflow_on_loopback_is_quiet(host):
    assert exposure_warning(Settings(), host) is None


def test_mlflow_beyond_loopback_warns_louder_without_auth():
    open_warning = exposure_warning(Settings(), "0.0.0.0")
    assert "without auth" in open_warning and "`fraudlab up --auth`" in open_warning
    assert "basic auth is on" in exposure_warning(Settings(mlflow_auth=True), "0.0.0.0")


def test_mlflow_clients_sign_in_only_with_a_password():
    assert Settings().mlflow_client_env() == {}
    assert Settings(mlflow_admin_password="pw").mlflow_client_env() == {
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": "pw",
    }


def test_admin_token_is_made_once_per_state_folder(tmp_path):
    settings = Settings(data_dir=str(tmp_path))
    assert admin_token(settings) is None  # no token: the repository API is closed
    token = admin_token(settings, create=True)
    path = tmp_path / "state" / "serving-admin-token"
    assert len(token) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert admin_token(settings, create=True) == token == admin_token(settings)
    assert admin_token(Settings(data_dir=str(tmp_path), serving_admin_token="given")) == "given"


def test_children_get_the_secrets_as_env_leaves_out(tmp_path):
    settings = Settings(data_dir=str(tmp_path), mlflow_admin_password="pw")
    assert "FRAUD_SERVING_ADMIN_TOKEN" not in client_env(settings)
    token = admin_token(settings, create=True)
    env = client_env(settings)
    assert env["FRAUD_SERVING_ADMIN_TOKEN"] == token and env["MLFLOW_TRACKING_PASSWORD"] == "pw"
    assert "FRAUD_SERVING_ADMIN_TOKEN" not in settings.as_env()


def test_up_auth_without_a_password_starts_nothing(tmp_path):
    with pytest.raises(ServerError, match="FRAUD_MLFLOW_ADMIN_PASSWORD"):
        stack_up(Settings(data_dir=str(tmp_path)), auth=True)
    assert not (tmp_path / "state").exists()


def test_mlserver_settings_list_inputs_outputs_and_cap_grpc(tmp_path):
    folder = write_mlserver_config(Settings(max_body_bytes=123_456), tmp_path)
    server = json.loads((folder / "settings.json").read_text())
    model = json.loads((folder / "fraud-detector" / "model-settings.json").read_text())
    assert server["grpc_max_message_length"] == 123_456 and server["debug"] is False
    assert [i["name"] for i in model["inputs"]] == FEATURE_NAMES
    assert all(i["datatype"] == "FP64" and i["shape"] == [-1] for i in model["inputs"])
    assert model["outputs"] == [{"name": "fraud_probability", "datatype": "FP64", "shape": [-1]}]
