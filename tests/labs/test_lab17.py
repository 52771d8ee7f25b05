"""Lab 17's cluster checks (optional lab) against the rendered LLM server and a real HTTP server
that streams OpenAI chunks at FRAUD_LLM_URL (tests/unit/test_llm_probe.py's SSEServer): skipped
with the deploy command when the Deployment is absent; passing with the solved stream_timings;
failing with a hint on a Deployment that is not Available, a budget that is missed, or the
starter's TODO. The cluster's objects come from the rendered overlay kind-llm (no API server
here); the budgets are set so the outcome never depends on this machine's speed."""

from __future__ import annotations

import copy

import pytest

from tests.static.k8s import prepare_manifests, render
from tests.unit.test_llm_probe import FIRST_TOKEN_PAUSE_S, SSEServer

from .conftest import LAB_DIRS, load_lab_module

SERVER_CHECKS = (
    "test_llm_server_available",
    "test_models_lists_the_model",
    "test_a_completion_streams",
    "test_latency_within_the_laptop_budget",
)


class Cluster:
    """The one reader lab 17's checks use: `deployment(name)`."""

    def __init__(self, deployment: dict | None):
        self.found = deployment

    def deployment(self, name, namespace="fraud-lab"):
        return self.found if self.found and self.found["metadata"]["name"] == name else None


@pytest.fixture(scope="module")
def lab17():
    return load_lab_module(17)


@pytest.fixture(scope="module")
def rendered_deployment(tmp_path_factory) -> dict:
    objects = render("kind-llm", prepare_manifests(tmp_path_factory.mktemp("lab17")))
    (deployment,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "llm-server"
    ]
    return deployment


def with_status(deployment: dict, available: str) -> dict:
    found = copy.deepcopy(deployment)
    found["status"] = {
        "conditions": [{"type": "Available", "status": available, "message": "test"}]
    }
    return found


@pytest.fixture
def server(monkeypatch, lab17):
    with SSEServer() as running:
        monkeypatch.setenv("FRAUD_LLM_URL", running.url)
        lab17.probe.cache_clear()
        yield running


def run(lab17, name: str, cluster: Cluster) -> str | None:
    """None when the check passes, its message when it fails (a skip propagates)."""
    try:
        getattr(lab17, name)(cluster)
    except AssertionError as err:
        return str(err)
    return None


def test_without_the_deployment_every_server_check_is_skipped_with_the_command(lab17):
    for name in SERVER_CHECKS:
        with pytest.raises(
            pytest.skip.Exception,
            match=r"^optional, not deployed: no Deployment llm-server .* apply -k labs/17",
        ):
            getattr(lab17, name)(Cluster(None))


def test_the_deployed_server_passes_with_the_solved_measurement(
    lab17, rendered_deployment, server, monkeypatch
):
    monkeypatch.setenv("LAB_EXERCISE_DIR", str(LAB_DIRS[17] / "solution"))
    monkeypatch.setenv("FRAUD_LLM_MAX_TTFT_S", "600")
    monkeypatch.setenv("FRAUD_LLM_MIN_TOKENS_PER_S", "0.001")
    cluster = Cluster(with_status(rendered_deployment, "True"))
    assert [run(lab17, name, cluster) for name in SERVER_CHECKS] == [None] * 4
    # What the model check compared: the id the Deployment's --alias gives, which the server lists.
    assert lab17.served_name(rendered_deployment) == "qwen2.5-1.5b-instruct"


def test_a_missed_budget_fails_with_the_measured_numbers(
    lab17, rendered_deployment, server, monkeypatch
):
    monkeypatch.setenv("LAB_EXERCISE_DIR", str(LAB_DIRS[17] / "solution"))
    monkeypatch.setenv(
        "FRAUD_LLM_MAX_TTFT_S", str(FIRST_TOKEN_PAUSE_S / 3)
    )  # below the server's pause
    cluster = Cluster(with_status(rendered_deployment, "True"))
    assert run(lab17, "test_a_completion_streams", cluster) is None
    message = run(lab17, "test_latency_within_the_laptop_budget", cluster)
    assert message and "time to first token" in message and "found:" in message


def test_an_unavailable_deployment_and_the_starters_todo_fail_with_hints(
    lab17, rendered_deployment, server, monkeypatch
):
    message = run(
        lab17, "test_llm_server_available", Cluster(with_status(rendered_deployment, "False"))
    )
    assert message and "Available='False'" in message and "-c download" in message
    monkeypatch.setenv("LAB_EXERCISE_DIR", str(LAB_DIRS[17] / "starter"))
    message = run(
        lab17, "test_a_completion_streams", Cluster(with_status(rendered_deployment, "True"))
    )
    assert message and "TODO(lab-17)" in message and "fraudlab llm-probe" in message


def test_the_model_check_names_the_port_forward_when_nothing_answers(
    lab17, rendered_deployment, monkeypatch
):
    from reference_app.launchers.stack import free_port

    monkeypatch.setenv("FRAUD_LLM_URL", f"http://127.0.0.1:{free_port()}")
    message = run(
        lab17, "test_models_lists_the_model", Cluster(with_status(rendered_deployment, "True"))
    )
    assert message and "port-forward service/llm-server 8000:8000" in message


def test_the_reference_applies_and_resets_exactly_the_llm_objects(tmp_path):
    """`labs/reference.py solution 17` applies the objects labelled optional=llm of kind-llm (or
    kind-gpu-llm for a GPU overlay); `reset 17` deletes the same objects."""
    load_lab_module(0)  # puts labs/ on sys.path
    import reference

    assert reference.llm_overlay("kind") == "kind-llm"
    assert (
        reference.llm_overlay("kind-gpu") == reference.llm_overlay("kind-gpu-llm") == "kind-gpu-llm"
    )
    objects = reference.llm_objects(render("kind-llm", prepare_manifests(tmp_path)))
    applied = sorted(f"{o['kind'].lower()}/{o['metadata']['name']}" for o in objects)
    assert applied == sorted(reference.RESETS[reference.LLM_LAB])
