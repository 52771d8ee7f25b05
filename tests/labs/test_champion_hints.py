"""When no version carries the alias `champion`, labs 06 and 09 name the command that gives it
back, `fraudlab model-test --version N && fraudlab promote --version N` (locally), with N the latest registered version (read from MLflow)."""

from __future__ import annotations

import pytest

from .conftest import load_lab_module


class NoChampion:
    """An MLflow registry where no version carries the alias `champion`."""

    url = "http://127.0.0.1:5000"

    def __init__(self, latest: str | None):
        self.latest = latest

    def version_by_alias(self, model, alias):
        return None

    def latest_version(self, model):
        return self.latest


def message(fn, *args) -> list[str]:
    with pytest.raises(AssertionError) as failed:
        fn(*args)
    return str(failed.value).splitlines()


@pytest.fixture(scope="module")
def labkit():
    load_lab_module(0)
    import labkit

    return labkit


def test_lab06_names_the_promote_command(labkit):
    check = load_lab_module(6).test_champion_passed_gate
    local = message(check, labkit.Endpoints(target="local"), NoChampion("7"), "fraud-detector")
    assert local == [
        "expected: models:/fraud-detector@champion",
        "found:    no champion (has the promote step run?)",
        "debug:    .venv/bin/fraudlab model-test --version 7 && .venv/bin/fraudlab promote --version 7",
    ]
    cluster = message(check, labkit.Endpoints(target="cluster"), NoChampion("7"), "fraud-detector")
    assert cluster[2].startswith("debug:    (set -a; . manifests/overlays/kind/secrets/mlflow.env;")
    assert cluster[2].endswith(" .venv/bin/fraudlab promote --version 7)")
    unknown = message(check, labkit.Endpoints(target="local"), NoChampion(None), "fraud-detector")
    assert unknown[2] == (
        "debug:    .venv/bin/fraudlab model-test --version N && .venv/bin/fraudlab promote --version N"
        "   (N = a version of fraud-detector from"
        " `fraudlab train`'s output or the MLflow UI (http://127.0.0.1:5000))"
    )


def test_lab09_names_the_promote_command_then_the_restart(labkit, monkeypatch):
    module = load_lab_module(9)
    monkeypatch.setattr(module, "served_version", lambda endpoints, model: "7")
    check = module.test_serves_the_champion
    local = message(check, labkit.Endpoints(target="local"), NoChampion("7"), "fraud-detector")
    assert local == [
        "expected: model_version = the version with alias champion",
        "found:    served 7, champion none",
        "debug:    .venv/bin/fraudlab model-test --version 7 && .venv/bin/fraudlab promote --version 7",
        "          then: make down && make up   (the server loads the champion when it starts)",
    ]
    cluster = message(check, labkit.Endpoints(target="cluster"), NoChampion("7"), "fraud-detector")
    assert cluster[2].endswith(" .venv/bin/fraudlab promote --version 7)")
    assert cluster[3] == (
        "          then: kubectl --context kind-fraud-lab -n fraud-lab delete pods"
        " -l app.kubernetes.io/name=fraud-detector   (new pods load the champion)"
    )


@pytest.mark.slow
def test_latest_version_from_a_real_mlflow(labkit, reference_stack, monkeypatch):
    """MLflow's REST API as the checks read it: the reference stack's only version is its champion."""
    monkeypatch.setenv("FRAUD_DATA_DIR", reference_stack["FRAUD_DATA_DIR"])
    endpoints = labkit.local_endpoints()
    mlflow = labkit.MlflowApi(endpoints.mlflow, endpoints.mlflow_auth)
    champion = mlflow.version_by_alias("fraud-detector", labkit.CHAMPION)
    assert champion is not None
    assert mlflow.latest_version("fraud-detector") == str(champion["version"])
    assert mlflow.latest_version("no-such-model") is None
