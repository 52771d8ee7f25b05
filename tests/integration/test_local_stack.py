"""The fraud system end to end with real MLflow and MLServer processes on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import random
import re
import select
import socket
import statistics
import struct
import threading
import time
import zlib
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
    # The untuned three, and the demo's tuned LightGBM (lab 14) beside them.
    assert set(s["models"]) == {"logistic_regression", "random_forest", "mlp", "lightgbm (tuned)"}
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
        "lightgbm (tuned)",
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
    assert "tune lightgbm: reused tuned run" in again.stdout  # no Ray started, no trial run
    assert summary(stack_settings)["champion_version"] == first["champion_version"]


def test_runs_carry_lineage_and_registry_uses_aliases(mlflow_server, stack_settings):
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
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
    assert run.data.params["model_type"] in {
        "logistic_regression",
        "random_forest",
        "mlp",
        "lightgbm",
    }
    assert run.data.params["train_start"] == "2018-05-01"
    # The train step records the gate's verdict on the run's own metrics (lab 06's gate).
    assert (run.data.tags["passed_gate"], run.data.tags["gate_failures"]) == ("true", "none")
    for v in client.search_model_versions("name = 'fraud-detector'"):
        tags = client.get_run(v.run_id).data.tags
        assert tags["passed_gate"] == v.tags["passed_gate"], v.version
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
    "NaN literal": (  # not JSON, but what Python's json writes: read, then refused by name
        _set("TX_AMOUNT", data=[1.0, float("nan"), 2.0, 3.0, 4.0]),
        "input TX_AMOUNT has 1 NaN or infinite values (first at row 1)",
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
    "not a V2 request": (lambda body: {"inputs": "all of them"}, "not a V2 inference request"),
    # Structure numpy would flatten or read as numbers without a word.
    "bare scalar": (_set("TX_AMOUNT", shape=[1], data=5.0), "input TX_AMOUNT has data a number"),
    "nested [[[v]]]": (_set("TX_AMOUNT", data=[[[1.0]]] * 5), "nested as [5, 1, 1] but shape [5]"),
    "booleans": (
        _set("TX_DURING_NIGHT", data=[True, False, True, False, True]),
        "input TX_DURING_NIGHT holds booleans (true/false)",
    ),
    # Ranges: float32 (the forest's arithmetic), then each datatype's own.
    "beyond float32": (
        _set("CUSTOMER_ID_NB_TX_1DAY_WINDOW", data=[1e39] * 5),
        "beyond the float32 range",
    ),
    "UINT8 -1": (
        _set("CUSTOMER_ID_NB_TX_1DAY_WINDOW", datatype="UINT8", data=[-1, 1, 1, 1, 1]),
        "holds -1 (row 0), which datatype UINT8 cannot hold",
    ),
    "BOOL 5": (
        _set("TX_DURING_WEEKEND", datatype="BOOL", data=[5, 0, 0, 0, 0]),
        "holds 5 (row 0), which datatype BOOL cannot hold",
    ),
    "INT8 300.7": (
        _set("CUSTOMER_ID_NB_TX_7DAY_WINDOW", datatype="INT8", data=[300.7, 1, 1, 1, 1]),
        "holds 300.7 (row 0), which datatype INT8 cannot hold",
    ),
    # The data contract's domains (reference_app/data/domains.py).
    "negative amount": (
        _set("TX_AMOUNT", data=[-1.0, 1.0, 1.0, 1.0, 1.0]),
        "outside its domain: an amount: a number ≥ 0",
    ),
    "flag 2": (_set("TX_DURING_NIGHT", data=[2, 0, 0, 0, 0]), "outside its domain: a flag: 0 or 1"),
    "fractional count": (
        _set("TERMINAL_ID_NB_TX_7DAY_WINDOW", data=[2.5, 1, 1, 1, 1]),
        "outside its domain: a count: a whole number ≥ 0",
    ),
    "risk above 1": (
        _set("TERMINAL_ID_RISK_30DAY_WINDOW", data=[1.5, 0, 0, 0, 0]),
        "outside its domain: a risk: a number in [0, 1]",
    ),
}


def _log_size(mlserver) -> int:
    return mlserver.log_path.stat().st_size


def _log_since(mlserver, offset: int) -> str:
    with open(mlserver.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _then_a_good_request_succeeds(mlserver, stack_settings, offset: int) -> None:
    """After a refused request: no traceback in the server log, and the server still answers."""
    response = _infer(mlserver, _good_request(stack_settings))
    assert response.status_code == 200, response.text
    assert "Traceback" not in _log_since(mlserver, offset), _log_since(mlserver, offset)[-3000:]


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_4xx_with_message(mlserver, stack_settings, case):
    mutate, message = BAD_REQUESTS[case]
    body = json.loads(json.dumps(_good_request(stack_settings), allow_nan=True))
    body = mutate(body)
    offset = _log_size(mlserver)
    response = httpx.post(
        f"{mlserver.url}/v2/models/fraud-detector/infer",
        content=json.dumps(body, allow_nan=True),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500, f"{case}: {response.status_code} {response.text}"
    assert message in response.text, response.text
    assert "Traceback" not in response.text
    _then_a_good_request_succeeds(mlserver, stack_settings, offset)
    # The refusal is in the server's log too (the gate's line, or the runtime's).
    assert message in _log_since(mlserver, offset), _log_since(mlserver, offset)[-3000:]


def _chunks(total: int, size: int = 65_536):
    """A body without Content-Length (chunked): the server counts as it reads."""
    for start in range(0, total, size):
        yield b" " * min(size, total - start)


SECRET = b"card 4111 1111 1111 1111"
BOMB_RATIO = gzip.compress(b"\0" * 10_000_000)  # ≈ 10 kB that would be 10 MB
BOMB_SIZE = gzip.compress(random.Random(0).randbytes(750_000).hex().encode())  # ~0.8 MB → 1.5 MB
INFER_PATH = "/v2/models/fraud-detector/infer"
JSON = {"content-type": "application/json"}
# What the gate in front of MLServer answers itself (reference_app/serving/gate.py): method,
# path, body, headers → status and a message naming the problem.
HTTP_REFUSALS = {
    "body over the cap": ("POST", INFER_PATH, b" " * 1_000_001, JSON, 413, "request body of 1000001 bytes is above the limit of 1,000,000 bytes"),
    "chunked body over the cap": ("POST", INFER_PATH, _chunks, JSON, 413, "request body is above the limit of 1,000,000 bytes"),
    "gzip bomb, by ratio": ("POST", INFER_PATH, BOMB_RATIO, {**JSON, "content-encoding": "gzip"}, 413, "gzip body expands more than 100 times"),
    "gzip bomb, by size": ("POST", INFER_PATH, BOMB_SIZE, {**JSON, "content-encoding": "gzip"}, 413, "gzip body expands beyond the limit of 1,000,000 bytes"),
    "not gzip": ("POST", INFER_PATH, b"{}", {**JSON, "content-encoding": "gzip"}, 400, "bad gzip body"),
    "other encoding": ("POST", INFER_PATH, b"{}", {**JSON, "content-encoding": "br"}, 415, "Content-Encoding br is not accepted"),
    "wrong content type": ("POST", INFER_PATH, SECRET, {"content-type": "text/plain"}, 415, "Content-Type text/plain is not accepted"),
    "malformed JSON": ("POST", INFER_PATH, b"{" + SECRET, JSON, 422, "Invalid JSON"),
    "unknown model": ("POST", "/v2/models/made-up-model/infer", b"{}", JSON, 404, "model made-up-model is not served here"),
    "unknown version": ("POST", "/v2/models/fraud-detector/versions/999/infer", b"{}", JSON, 404, "has no version 999 here: it serves version"),
    "streaming": ("POST", "/v2/models/fraud-detector/infer_stream", b"{}", JSON, 404, "streaming inference is off"),
    "unload, no token": ("POST", "/v2/repository/models/fraud-detector/unload", b"", {}, 401, "needs the admin token"),
    "load, wrong token": ("POST", "/v2/repository/models/fraud-detector/load", b"", {"authorization": "Bearer guess"}, 401, "needs the admin token"),
    "repository index": ("POST", "/v2/repository/index", b"{}", JSON, 401, "needs the admin token"),
    "server docs": ("GET", "/v2/docs", b"", {}, 404, "API docs are off"),
    "model docs": ("GET", "/v2/models/fraud-detector/docs/dataplane.json", b"", {}, 404, "API docs are off"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HTTP_REFUSALS))
def test_gate_refuses_with_a_message(mlserver, stack_settings, case):
    method, path, content, headers, status, message = HTTP_REFUSALS[case]
    content = content(1_000_001) if callable(content) else content
    offset = _log_size(mlserver)
    response = httpx.request(
        method, f"{mlserver.url}{path}", content=content, headers=headers, timeout=30
    )
    assert response.status_code == status and message in response.json()["error"], response.text
    assert "Traceback" not in response.text and SECRET not in response.content
    _then_a_good_request_succeeds(mlserver, stack_settings, offset)


def _gate_refusals(stack_settings) -> dict[tuple[str, str], float]:
    """fraud_gate_refusals_total by (protocol, code), read from the metrics port."""
    text = httpx.get(f"http://127.0.0.1:{stack_settings.metrics_port}/metrics", timeout=10).text
    found = re.findall(
        r'^fraud_gate_refusals_total\{code="([^"]+)",protocol="([^"]+)"\} (\S+)$', text, re.M
    )
    return {(protocol, code): float(value) for code, protocol, value in found}


def test_gate_refusals_are_counted_where_mlserver_cannot_see_them(mlserver, stack_settings):
    """MLServer's request metrics never see what the gate refused: the gate counts it itself."""
    before = _gate_refusals(stack_settings)
    for _ in range(2):
        response = httpx.post(
            f"{mlserver.url}{INFER_PATH}", content=b" " * 1_000_001, headers=JSON, timeout=30
        )
        assert response.status_code == 413
    assert httpx.post(f"{mlserver.url}/v2/repository/index", timeout=30).status_code == 401
    after = _gate_refusals(stack_settings)
    assert after[("rest", "413")] - before.get(("rest", "413"), 0) == 2
    assert after[("rest", "401")] - before.get(("rest", "401"), 0) == 1


def _grpc_request(body: dict, name: str = "fraud-detector", version: str = ""):
    from mlserver.grpc import converters
    from mlserver.types import InferenceRequest

    return converters.ModelInferRequestConverter.from_types(
        InferenceRequest(**body), model_name=name, model_version=version
    )


def _grpc_set(name, **changes):
    return lambda body: _grpc_request(_set(name, **changes)(body))


def _grpc_raw(body):
    """Every input raw except the first, which keeps its contents: MLServer would shift inputs."""
    request = _grpc_request(body)
    for item in request.inputs[1:]:
        request.raw_input_contents.append(
            struct.pack(f"<{len(item.contents.fp64_contents)}d", *item.contents.fp64_contents)
        )
        item.ClearField("contents")
    return request


def _grpc_raw_size(body):
    request = _grpc_request(body)
    for item in request.inputs:
        request.raw_input_contents.append(b"\0" * 8 * 4)  # 4 values for shape [5]
        item.ClearField("contents")
    return request


# gRPC carries typed values (no strings or booleans in an FP64 tensor, no nesting), so its matrix
# is the checks a typed value can still fail, plus what gRPC adds (raw contents, message size).
GRPC_BAD_REQUESTS = {
    "NaN": (_grpc_set("TX_AMOUNT", data=[1.0, float("nan"), 2.0, 3.0, 4.0]), "INVALID_ARGUMENT", "input TX_AMOUNT has 1 NaN or infinite values (first at row 1)"),
    "infinity": (_grpc_set("TX_AMOUNT", data=[1.0, float("inf"), 2.0, 3.0, 4.0]), "INVALID_ARGUMENT", "NaN or infinite"),
    "beyond float32": (_grpc_set("CUSTOMER_ID_NB_TX_1DAY_WINDOW", data=[1e39] * 5), "INVALID_ARGUMENT", "beyond the float32 range"),
    "INT8 300": (_grpc_set("CUSTOMER_ID_NB_TX_7DAY_WINDOW", datatype="INT8", data=[300, 1, 1, 1, 1]), "INVALID_ARGUMENT", "which datatype INT8 cannot hold"),
    "negative amount": (_grpc_set("TX_AMOUNT", data=[-1.0, 1.0, 1.0, 1.0, 1.0]), "INVALID_ARGUMENT", "outside its domain: an amount"),
    "flag 2": (_grpc_set("TX_DURING_NIGHT", data=[2.0, 0.0, 0.0, 0.0, 0.0]), "INVALID_ARGUMENT", "outside its domain: a flag: 0 or 1"),
    "fractional count": (_grpc_set("TERMINAL_ID_NB_TX_7DAY_WINDOW", data=[2.5, 1.0, 1.0, 1.0, 1.0]), "INVALID_ARGUMENT", "a count: a whole number ≥ 0"),
    "risk above 1": (_grpc_set("TERMINAL_ID_RISK_30DAY_WINDOW", data=[1.5, 0.0, 0.0, 0.0, 0.0]), "INVALID_ARGUMENT", "a risk: a number in [0, 1]"),
    "missing input": (lambda body: _grpc_request(_drop("TX_AMOUNT")(body)), "INVALID_ARGUMENT", "missing inputs: TX_AMOUNT"),
    "raw mixed with contents": (_grpc_raw, "INVALID_ARGUMENT", "raw_input_contents has 14 entries for 15 inputs"),
    "raw of the wrong size": (_grpc_raw_size, "INVALID_ARGUMENT", "has 32 bytes; shape [5] of FP64 needs 40"),
    "message over the cap": (lambda body: _grpc_request(_big(body)), "RESOURCE_EXHAUSTED", "larger than max"),
    "unknown model": (lambda body: _grpc_request(body, name="made-up-model"), "NOT_FOUND", "model made-up-model is not served here"),
    "unknown version": (lambda body: _grpc_request(body, version="999"), "NOT_FOUND", "has no version 999 here"),
}  # fmt: skip


def _big(body):
    n = 10_000  # 15 inputs × 10 000 doubles ≈ 1.2 MB, above the 1 MB cap
    return {"inputs": [{**i, "shape": [n], "data": [0.0] * n} for i in body["inputs"]]}


def _grpc_stub(stack_settings):
    import grpc
    from mlserver.grpc import dataplane_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{stack_settings.grpc_port}")
    return channel, dataplane_pb2_grpc.GRPCInferenceServiceStub(channel)


@pytest.mark.parametrize("case", list(GRPC_BAD_REQUESTS))
def test_bad_grpc_request_gets_an_error_code_with_message(mlserver, stack_settings, case):
    import grpc

    build, code, message = GRPC_BAD_REQUESTS[case]
    request = build(_good_request(stack_settings))
    offset = _log_size(mlserver)
    channel, stub = _grpc_stub(stack_settings)
    with channel:
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelInfer(request, timeout=30)
        assert err.value.code().name == code and message in err.value.details(), err.value.details()
        assert stub.ModelInfer(_grpc_request(_good_request(stack_settings)), timeout=30).outputs
    _then_a_good_request_succeeds(mlserver, stack_settings, offset)


@pytest.mark.parametrize(
    ("rpc", "metadata", "code"),
    [
        ("RepositoryModelUnload", None, "UNAUTHENTICATED"),
        ("RepositoryModelLoad", [("authorization", "Bearer guess")], "UNAUTHENTICATED"),
        ("RepositoryIndex", None, "UNAUTHENTICATED"),
    ],
)
def test_grpc_model_repository_needs_the_admin_token(mlserver, stack_settings, rpc, metadata, code):
    import grpc
    from mlserver.grpc import dataplane_pb2 as pb

    request = getattr(pb, f"{rpc}Request")(
        **({} if rpc == "RepositoryIndex" else {"model_name": "fraud-detector"})
    )
    channel, stub = _grpc_stub(stack_settings)
    with channel, pytest.raises(grpc.RpcError) as err:
        getattr(stub, rpc)(request, metadata=metadata, timeout=30)
    assert err.value.code().name == code and "needs the admin token" in err.value.details()
    assert _infer(mlserver, _good_request(stack_settings)).status_code == 200


def test_deprecated_model_repository_service_is_gone(mlserver, stack_settings):
    """MLServer's second copy of load/unload (inference.model_repository) is refused too."""
    import grpc
    from mlserver.grpc import model_repository_pb2 as mr
    from mlserver.grpc import model_repository_pb2_grpc as mr_grpc

    with grpc.insecure_channel(f"127.0.0.1:{stack_settings.grpc_port}") as channel:
        stub = mr_grpc.ModelRepositoryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.RepositoryModelUnload(
                mr.RepositoryModelUnloadRequest(model_name="fraud-detector"), timeout=30
            )
    assert err.value.code().name in {"UNAUTHENTICATED", "UNIMPLEMENTED"}
    assert _infer(mlserver, _good_request(stack_settings)).status_code == 200


def test_admin_token_reloads_the_model(mlserver, stack_settings):
    """The reload path continuous training uses (`reload_serving`): the repository API with the
    token `fraudlab up` made; serving answers right after."""
    from reference_app.launchers.mlserver import admin_token
    from reference_app.orchestration.continuous_training import reload_serving

    token = admin_token(stack_settings)
    assert token, "the mlserver fixture made a token"
    settings = stack_settings.model_copy(update={"inference_url": mlserver.url})
    assert reload_serving(settings) is True
    assert _infer(mlserver, _good_request(stack_settings)).status_code == 200


def test_gzip_body_is_served(mlserver, stack_settings):
    body = json.dumps(_good_request(stack_settings)).encode()
    response = httpx.post(
        f"{mlserver.url}{INFER_PATH}",
        content=gzip.compress(body),
        headers={**JSON, "content-encoding": "gzip"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_metadata_lists_inputs_and_output(mlserver):
    meta = httpx.get(f"{mlserver.url}/v2/models/fraud-detector", timeout=30).json()
    assert [i["name"] for i in meta["inputs"]] == FEATURE_NAMES
    assert {(i["datatype"], tuple(i["shape"])) for i in meta["inputs"]} == {("FP64", (-1,))}
    assert meta["outputs"] == [{"name": "fraud_probability", "datatype": "FP64", "shape": [-1]}]


def test_the_version_a_response_names_can_be_addressed(mlserver, stack_settings):
    first = _infer(mlserver, _good_request(stack_settings)).json()
    version = first["model_version"]
    url = f"{mlserver.url}/v2/models/fraud-detector/versions/{version}"
    response = httpx.post(f"{url}/infer", json=_good_request(stack_settings), timeout=30)
    assert response.status_code == 200 and response.json()["model_version"] == version
    assert httpx.get(f"{url}/ready", timeout=30).status_code == 200
    channel, stub = _grpc_stub(stack_settings)
    with channel:
        reply = stub.ModelInfer(
            _grpc_request(_good_request(stack_settings), version=version), timeout=30
        )
    assert reply.model_version == version


def test_made_up_model_names_never_become_metric_labels(mlserver, stack_settings):
    body = _good_request(stack_settings, 1)
    for i in range(30):
        assert (
            httpx.post(
                f"{mlserver.url}/v2/models/made-up-{i}/infer", json=body, timeout=30
            ).status_code
            == 404
        )
        assert (
            httpx.post(
                f"{mlserver.url}/v2/models/fraud-detector/versions/v{i}/infer",
                json=body,
                timeout=30,
            ).status_code
            == 404
        )
    text = httpx.get(f"http://127.0.0.1:{stack_settings.metrics_port}/metrics", timeout=10).text
    assert "made-up" not in text and 'version="v1' not in text


def _gzip_zeros(n: int) -> bytes:
    """gzip of n zero bytes, compressed 1 MB at a time (never n bytes in memory)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * 1_000_000
    parts = [deflate.compress(chunk) for _ in range(n // len(chunk))]
    return b"".join([*parts, deflate.flush()])


def test_huge_bodies_and_bombs_do_not_delay_other_requests(mlserver, stack_settings):
    """Requirement: a 100 MB body or a gzip bomb delays other requests by at most 50 ms. While
    three clients send 100 MB bodies and one sends 1 GB gzip bombs, good requests all succeed,
    the big bodies are refused before they are read, and the good requests' median latency stays
    within 50 ms of the median without them."""
    body = json.dumps(_good_request(stack_settings, 1)).encode()

    def good(n: int, out: list) -> None:
        with httpx.Client(timeout=30, headers=JSON) as client:
            for _ in range(n):
                start = time.perf_counter()
                status = client.post(f"{mlserver.url}{INFER_PATH}", content=body).status_code
                out.append((status, (time.perf_counter() - start) * 1000))

    def huge(out: list) -> None:
        """100 MB announced; stop sending as soon as the server answers."""
        host, port = mlserver.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                f"POST {INFER_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000000\r\n\r\n".encode()
            )
            sent, chunk = 0, b" " * 65_536
            sock.setblocking(False)
            while sent < 100_000_000:
                readable, writable, _ = select.select([sock], [sock], [], 30)
                if readable:
                    break
                try:
                    sent += sock.send(chunk)
                except BlockingIOError:
                    pass
            sock.setblocking(True)
            out.append((sock.recv(4096).split(b"\r\n")[0], sent))

    bomb = _gzip_zeros(1_000_000_000)  # ≈ 1 MB that would be 1 GB

    def bombs(out: list) -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(5):
                out.append(
                    client.post(
                        f"{mlserver.url}{INFER_PATH}",
                        content=bomb,
                        headers={**JSON, "content-encoding": "gzip"},
                    ).status_code
                )

    baseline, during, big, bombed = [], [], [], []
    good(40, baseline)
    threads = [
        threading.Thread(target=good, args=(60, during)),
        threading.Thread(target=bombs, args=(bombed,)),
    ]
    threads += [threading.Thread(target=huge, args=(big,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {status for status, _ in baseline + during} == {200} and len(during) == 60
    assert bombed == [413] * 5
    assert [line for line, _ in big] == [b"HTTP/1.1 413 Request Entity Too Large"] * 3
    assert all(sent < 20_000_000 for _, sent in big), big  # refused long before 100 MB
    before = statistics.median(ms for _, ms in baseline)
    after = statistics.median(ms for _, ms in during)
    assert after - before <= 50, f"median {before:.1f} ms → {after:.1f} ms under attack"


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
    # The alerts' series: the infer route (served by serving.infer_route, outside FastAPI's
    # router) still counts under its route template, with its status.
    assert _infer(mlserver, {"inputs": []}).status_code == 400
    text = httpx.get(f"http://127.0.0.1:{stack_settings.metrics_port}/metrics", timeout=10).text
    counted = {
        line.split('status_code="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("rest_server_requests_total{")
        and 'path="/v2/models/{model_name}/infer"' in line
    }
    assert counted.get("200", 0) >= 1 and counted.get("400", 0) >= 1, counted
    assert "rest_server_request_duration_seconds_bucket{" in text
    assert "model_infer_request_success" in text
