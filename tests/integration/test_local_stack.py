"""The fraud system end to end with real MLflow and MLServer processes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reference_app.data import store
from reference_app.features import FEATURE_NAMES
from reference_app.serving.replay import v2_request

from .conftest import REPLAY_DAY, run_fraudlab

pytestmark = pytest.mark.slow


def summary(stack_settings) -> dict:
    return json.loads((Path(stack_settings.reports_dir) / "summary.json").read_text())


def test_demo_trains_promotes_serves_replays_and_reports(demo_run, stack_settings):
    out = demo_run.stdout
    s = summary(stack_settings)
    assert set(s["models"]) == {"logistic_regression", "random_forest", "mlp"}
    for m in s["models"].values():
        assert 0.5 < m["auc_roc"] <= 1 and 0 < m["average_precision"] <= 1
        assert 0 < m["card_precision_top_k"] <= m["card_precision_top_k_perfect"] < 1
    champion = s["champion_version"]
    best = max(s["models"].values(), key=lambda m: m["average_precision"])
    assert best["version"] == champion and best["alias"] == "champion"
    replay = s["replay"]
    assert replay["day"] == REPLAY_DAY and replay["model_version"] == champion
    assert replay["transactions"] > 1000 and replay["max_abs_diff"] <= 1e-6 and replay["skew_ok"]
    assert 0 < replay["latency_ms_p50"] <= replay["latency_ms_p99"]
    assert {d["feature"] for d in s["drift"]} >= set(FEATURE_NAMES) | {"fraud_score"}
    # The monitoring section: a normal test day, no drift alert, labels not known yet.
    assert (
        s["monitoring"]["as_of"] == REPLAY_DAY
        and s["monitoring"]["drifted_features"] == []
        and s["monitoring"]["performance"] is None
    )
    html = Path(s["report_html"]).read_text()
    # Four embedded plots: precision-recall, score distribution, feature drift, latency.
    assert html.count('src="data:image/png;base64,') == 4
    for title in (
        "Models (test week",
        "Replayed day",
        "Drift: training window",
        "Monitoring",
        "Latency",
    ):
        assert title in html
    # The summary table printed at the end.
    for needle in (
        "logistic_regression",
        "random_forest",
        "mlp",
        f"champion: fraud-detector version {champion}",
        "skew max |diff|",
        "report:",
    ):
        assert needle in out
    # Every row of the raw data is accounted for.
    validated = store.read_manifest(stack_settings.validated_dir)
    assert (
        validated["rows"] + validated["quarantined_rows"]
        == store.read_manifest(stack_settings.raw_dir)["rows"]
    )


def test_demo_rerun_reuses_what_is_up_to_date(demo_run, stack_env, stack_settings):
    first = summary(stack_settings)
    again = run_fraudlab(stack_env, "demo", "--replay-day", REPLAY_DAY)
    assert again.returncode == 0, again.stdout[-3000:]
    for step in ("simulate: reused", "validate: reused", "features: reused"):
        assert step in again.stdout
    assert again.stdout.count("reused run") == 3
    assert summary(stack_settings)["champion_version"] == first["champion_version"]


def test_runs_carry_lineage_and_registry_uses_aliases(mlflow_server, stack_settings):
    client = MlflowClient(tracking_uri=mlflow_server.url)
    champion = client.get_model_version_by_alias("fraud-detector", "champion")
    run = client.get_run(champion.run_id)
    features = store.read_manifest(stack_settings.features_dir)
    assert run.data.tags["data_digest"] == features["digest"]
    assert len(run.data.tags["git_commit"]) in (7, 40) or run.data.tags["git_commit"] == "unknown"
    assert run.data.tags["device"] in {"cpu", "cuda"}
    assert {
        "average_precision",
        "auc_roc",
        "card_precision_top_k",
        "card_precision_top_k_perfect",
    } <= set(run.data.metrics)
    assert run.data.params["model_type"] in {"logistic_regression", "random_forest", "mlp"}
    assert run.data.params["train_start"] == "2018-05-01"
    assert (
        champion.tags["promotion_decision"] == "champion" and champion.tags["passed_gate"] == "true"
    )
    assert champion.current_stage in (None, "None")  # aliases, not stages
    versions = client.search_model_versions("name = 'fraud-detector'")
    assert len(versions) >= 3
    # Each version records the decision taken when it was registered, with its reason.
    for v in versions:
        assert (
            v.tags["promotion_decision"] in {"champion", "challenger"}
            and v.tags["promotion_reason"]
        )
    aliases = {
        v.version: client.get_model_version("fraud-detector", v.version).aliases for v in versions
    }
    assert [v for v, a in aliases.items() if "champion" in a] == [champion.version]


def _good_request(stack_settings, n=5) -> dict:
    day = pd.Timestamp(REPLAY_DAY).date()
    return v2_request(store.read_dataset(stack_settings.features_dir, days=(day, day)).head(n))


def _infer(mlserver, body) -> httpx.Response:
    return httpx.post(f"{mlserver.url}/v2/models/fraud-detector/infer", json=body, timeout=30)


def test_served_scores_are_probabilities(mlserver, stack_settings):
    response = _infer(mlserver, _good_request(stack_settings, 7))
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (
        output["name"] == "fraud_probability"
        and output["shape"] == [7]
        and output["datatype"] == "FP64"
    )
    assert all(0 <= p <= 1 for p in output["data"])


def _set(name, **changes):
    def mutate(body):
        for item in body["inputs"]:
            if item["name"] == name:
                item.update(changes)
        return body

    return mutate


def _drop(name):
    def mutate(body):
        body["inputs"] = [i for i in body["inputs"] if i["name"] != name]
        return body

    return mutate


def _add_unknown(body):
    body["inputs"].append(
        {"name": "CARD_NUMBER", "shape": [5], "datatype": "FP64", "data": [1.0] * 5}
    )
    return body


def _empty(body):
    for item in body["inputs"]:
        item.update(shape=[0], data=[])
    return body


BAD_REQUESTS = {
    "missing input": (_drop("TX_AMOUNT"), "missing inputs: TX_AMOUNT"),
    "unknown input": (_add_unknown, "unknown inputs: CARD_NUMBER"),
    "wrong width": (_set("TX_AMOUNT", shape=[5, 2], data=[1.0] * 10), "expected [n] or [n, 1]"),
    "wrong dtype": (_set("TX_AMOUNT", datatype="BYTES", data=["a"] * 5), "datatype BYTES"),
    "non-numeric values": (_set("TX_AMOUNT", data=["a", "b", "c", "d", "e"]), "non-numeric"),
    # JSON has no NaN/Infinity: MLServer's parser refuses the literal with a 422 and a message.
    "NaN literal": (
        _set("TX_AMOUNT", data=[1.0, float("nan"), 2.0, 3.0, 4.0]),
        "JSON decode error",
    ),
    "numbers as strings": (
        _set("TX_AMOUNT", data=["1.0", "NaN", "2", "3", "4"]),
        "non-numeric values",
    ),
    "null value": (_set("TX_AMOUNT", data=[1.0, None, 2.0, 3.0, 4.0]), "non-numeric values"),
    "shape/data mismatch": (_set("TX_AMOUNT", shape=[4]), "has 5 values but shape [4]"),
    "different lengths": (_set("TX_AMOUNT", shape=[3], data=[1.0, 2.0, 3.0]), "different lengths"),
    "empty batch": (_empty, "empty batch"),
    "no inputs": (lambda body: {"inputs": []}, "missing inputs"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_400_with_message(mlserver, stack_settings, case):
    mutate, message = BAD_REQUESTS[case]
    body = json.loads(json.dumps(_good_request(stack_settings), allow_nan=True))
    body = mutate(body)
    response = httpx.post(
        f"{mlserver.url}/v2/models/fraud-detector/infer",
        content=json.dumps(body, allow_nan=True),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500, f"{case}: {response.status_code} {response.text}"
    assert message in response.text, response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_over_grpc_are_invalid_argument(mlserver, stack_settings, bad_value):
    """gRPC carries IEEE floats as they are, so NaN and inf reach the runtime's own check."""
    import grpc
    from mlserver.grpc import converters, dataplane_pb2_grpc
    from mlserver.types import InferenceRequest

    body = _good_request(stack_settings)
    body["inputs"][0]["data"][1] = bad_value
    request = converters.ModelInferRequestConverter.from_types(
        InferenceRequest(**body), model_name="fraud-detector", model_version=None
    )
    with grpc.insecure_channel(f"127.0.0.1:{stack_settings.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            dataplane_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input TX_AMOUNT has 1 NaN or infinite values (first at row 1)" in err.value.details()


def test_malformed_json_is_a_4xx(mlserver):
    response = httpx.post(
        f"{mlserver.url}/v2/models/fraud-detector/infer",
        content=b"{not json",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500 and "Traceback" not in response.text


def test_oversized_batch_is_refused(mlserver, stack_settings):
    n = stack_settings.max_batch_rows + 1
    body = {
        "inputs": [
            {"name": f, "shape": [n], "datatype": "FP64", "data": [0.0] * n} for f in FEATURE_NAMES
        ]
    }
    response = _infer(mlserver, body)
    assert response.status_code == 400 and "exceeds the limit" in response.text


def test_metrics_port_exposes_mlserver_and_fraud_metrics(mlserver, stack_settings):
    body = _good_request(stack_settings, 20)
    assert _infer(mlserver, body).status_code == 200
    text = httpx.get(f"http://127.0.0.1:{stack_settings.metrics_port}/metrics", timeout=10).text
    assert 'fraud_score_bucket{le="0.5",model_name="fraud-detector"' in text
    scored = [
        line for line in text.splitlines() if line.startswith("fraud_scored_transactions_total{")
    ]
    assert scored and float(scored[0].rsplit(" ", 1)[1]) >= 20
    assert "fraud_flagged_transactions_total{" in text
    assert "model_infer_request_success" in text or "rest_server_requests" in text
