"""Fast tests of the model registry and the MLServer runtime, in process (no servers).

The fixture chain follows MLServer's own runtime tests (runtimes/sklearn/tests/conftest.py):
tmp_path → a small model logged to an MLflow SQLite store → model settings → a loaded runtime.
The slow server tests (tests/integration) stay for the wire: HTTP status codes, gRPC, metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from mlserver.errors import InferenceError
from mlserver.settings import ModelParameters, ModelSettings
from mlserver.types import InferenceRequest

from reference_app import tracking
from reference_app.config import Settings
from reference_app.features import FEATURE_NAMES, build_features
from reference_app.serving.replay import v2_request
from reference_app.serving.runtime import FraudRuntime, RuntimeParameters, _column, _plain_features
from reference_app.training.promotion import BLOCKED, CHALLENGER, CHAMPION, QualityGate
from reference_app.training.split import EvaluationProtocol
from reference_app.training.train import score, train

MODEL = "fraud-detector-unit"
PROTOCOL = EvaluationProtocol(dt.date(2018, 5, 1), 7, 7, 7, 100)
# A gate every model passes: these tests are about the comparison with the champion.
GATE = QualityGate(min_auc=0.0, min_average_precision=0.0)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, small_transactions):
    """An MLflow SQLite store with two registered versions: v1 a logistic regression (champion),
    v2 the same model on shuffled labels (worse: blocked by the model tests, lab 07)."""
    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    features = build_features(small_transactions)
    with contextlib.chdir(folder):  # MLflow's default artifact root (./mlruns) lands here
        tracking.configure(uri, "unit")
        good = train(features, "logistic_regression", PROTOCOL, seed=0, device="cpu")
        run1, v1 = tracking.log_training_run(good, MODEL, "digest-1")
        record_model_tests(
            run1, good, good.test
        )  # the model tests run before any promotion (lab 07)
        first = tracking.promote(MODEL, v1, good.test, good.metrics, GATE)
        rng = np.random.default_rng(0)
        shuffled = features.assign(TX_FRAUD=rng.permutation(features["TX_FRAUD"].to_numpy()))
        bad = train(shuffled, "logistic_regression", PROTOCOL, seed=0, device="cpu")
        run2, v2 = tracking.log_training_run(bad, MODEL, "digest-2")
        second_tests = record_model_tests(run2, bad, good.test)
        second = tracking.promote(MODEL, v2, good.test, score_metrics(bad, good.test), GATE)
        yield {
            "uri": uri,
            "folder": folder,
            "good": good,
            "versions": (v1, v2),
            "decisions": (first, second),
            "second_tests": second_tests,
        }


def record_model_tests(run_id: str, result, test: pd.DataFrame) -> list[str]:
    """Run the model test suite on a run's model and record its verdict (as `fraudlab
    model-test` does); return its failures."""
    from reference_app.training import model_tests

    results = model_tests.run_model_tests(lambda frame: score(result.model, frame), test)
    tracking.log_model_tests(run_id, model_tests.report(results), model_tests.run_tags(results))
    return model_tests.failures(results)


def score_metrics(result, test: pd.DataFrame) -> dict[str, float]:
    from reference_app.training.evaluation import evaluate_scores

    return evaluate_scores(test, score(result.model, test), k=PROTOCOL.top_k)


def test_first_version_is_champion_and_a_worse_one_blocked(registry):
    v1, v2 = registry["versions"]
    first, second = registry["decisions"]
    assert (first.alias, second.alias) == (CHAMPION, BLOCKED), (first, second)
    assert first.reason == "passes the gate and there is no champion yet"
    # The model of shuffled labels ranks no better than chance on the night slice: the model tests
    # refuse it before the comparison with the champion's AP would (lab 07).
    assert registry["second_tests"] and registry["second_tests"][0].startswith("slice: ")
    assert second.reason == "fails the model tests: " + "; ".join(registry["second_tests"])
    with contextlib.chdir(registry["folder"]):
        assert tracking.alias_version(MODEL, CHAMPION) == v1
        assert tracking.alias_version(MODEL, CHALLENGER) is None  # blocked: no alias at all
        assert tracking.undecided_versions(MODEL) == []
        assert tracking.latest_version(MODEL) == v2


def test_loaded_champion_scores_equal_the_trained_model(registry):
    test = registry["good"].test.head(500)
    with contextlib.chdir(registry["folder"]):
        loaded = tracking.load_model(f"models:/{MODEL}@{CHAMPION}")
    assert loaded.version == registry["versions"][0]
    np.testing.assert_allclose(
        loaded.predict_proba(test), score(registry["good"].model, test), rtol=0, atol=1e-12
    )


@pytest.fixture(scope="module")
def runtime(registry):
    """The fraud runtime loaded from model settings, as MLServer loads it."""
    settings = ModelSettings(
        name=MODEL,
        implementation=FraudRuntime,
        parameters=ModelParameters(
            uri=f"models:/{MODEL}@{CHAMPION}",
            extra=RuntimeParameters(tracking_uri=registry["uri"], max_batch_rows=50).model_dump(),
        ),
    )
    model = FraudRuntime(settings)
    with contextlib.chdir(registry["folder"]):
        assert asyncio.run(model.load()) is True
    return model


def request(frame: pd.DataFrame) -> InferenceRequest:
    return InferenceRequest.model_validate(v2_request(frame))


def test_runtime_reads_its_model_settings(runtime, registry):
    assert runtime._version == registry["versions"][0]
    assert runtime._config.max_batch_rows == 50
    assert runtime._config.flag_threshold == Settings.model_fields["flag_threshold"].default


def test_runtime_needs_a_model_uri():
    model = FraudRuntime(ModelSettings(name="x", implementation=FraudRuntime))
    with pytest.raises(ValueError, match="parameters.uri"):
        asyncio.run(model.load())


def test_runtime_scores_equal_offline_scores(runtime, registry):
    test = registry["good"].test.head(40)
    response = asyncio.run(runtime.predict(request(test)))
    (out,) = response.outputs
    assert out.name == tracking.OUTPUT_NAME and out.shape == [40] and out.datatype == "FP64"
    assert response.model_version == registry["versions"][0]
    np.testing.assert_allclose(
        out.data.root, score(registry["good"].model, test), rtol=0, atol=1e-12
    )


def test_runtime_accepts_n_by_1_shapes(runtime, registry):
    body = v2_request(registry["good"].test.head(3))
    for item in body["inputs"]:
        item["shape"] = [3, 1]
    assert len(runtime._check_request(InferenceRequest.model_validate(body))) == 3


def _body(registry, n: int = 3) -> dict:
    return v2_request(registry["good"].test.head(n))


def _edit(body: dict, name: str, **changes) -> dict:
    body["inputs"] = [
        ({**i, **changes} if i["name"] == name else i) for i in body["inputs"]
    ]  # fmt: skip
    return body


BAD_REQUESTS = {
    "duplicate input": (
        lambda b: {**b, "inputs": [*b["inputs"], b["inputs"][0]]},
        "duplicate input names",
    ),
    "missing input": (lambda b: {**b, "inputs": b["inputs"][1:]}, "missing inputs: TX_AMOUNT"),
    "unknown input": (
        lambda b: {**b, "inputs": [*b["inputs"], {**b["inputs"][0], "name": "TX_COLOUR"}]},
        "unknown inputs: TX_COLOUR",
    ),
    "non-numeric datatype": (
        lambda b: _edit(b, "TX_AMOUNT", datatype="BYTES", data=["a", "b", "c"]),
        "datatype BYTES",
    ),
    "2-d shape": (lambda b: _edit(b, "TX_AMOUNT", shape=[1, 3]), "expected [n] or [n, 1]"),
    "ragged data": (lambda b: _edit(b, "TX_AMOUNT", data=[[1.0, 2.0], [3.0]]), "ragged"),
    "strings as FP64": (
        lambda b: _edit(b, "TX_AMOUNT", data=["1", "2", "3"]),
        "non-numeric values",
    ),
    "shape and data disagree": (
        lambda b: _edit(b, "TX_AMOUNT", shape=[4]),
        "has 3 values but shape [4]",
    ),
    "NaN": (lambda b: _edit(b, "TX_AMOUNT", data=[1.0, float("nan"), 2.0]), "NaN or infinite"),
    "infinity": (lambda b: _edit(b, "TX_AMOUNT", data=[1.0, 2.0, float("inf")]), "first at row 2"),
    "different lengths": (
        lambda b: _edit(b, "TX_AMOUNT", shape=[2], data=[1.0, 2.0]),
        "different lengths",
    ),
    "empty batch": (
        lambda b: {**b, "inputs": [{**i, "shape": [0], "data": []} for i in b["inputs"]]},
        "empty batch",
    ),
    # Structure: what numpy would flatten or read as numbers without a word.
    "bare scalar": (lambda b: _edit(b, "TX_AMOUNT", shape=[1], data=5.0), "has data a number"),
    "nested [[[v]]]": (
        lambda b: _edit(b, "TX_AMOUNT", data=[[[1.0]], [[2.0]], [[3.0]]]),
        "nested as [3, 1, 1] but shape [3]",
    ),
    "booleans": (lambda b: _edit(b, "TX_DURING_NIGHT", data=[True, False, True]), "booleans"),
    "a boolean among numbers": (
        lambda b: _edit(b, "TX_AMOUNT", data=[1.0, True, 2.0]),
        "input TX_AMOUNT holds booleans (true/false); FP64 data must be numbers",
    ),
    # Ranges: float32 (the forest's arithmetic), then the datatype's own.
    "beyond float32": (
        lambda b: _edit(b, "CUSTOMER_ID_NB_TX_1DAY_WINDOW", data=[1.0, 1e39, 2.0]),
        "holds 1e+39 (row 1), beyond the float32 range",
    ),
    "UINT8 -1": (
        lambda b: _edit(b, "CUSTOMER_ID_NB_TX_1DAY_WINDOW", datatype="UINT8", data=[-1, 1, 2]),
        "holds -1 (row 0), which datatype UINT8 cannot hold: a whole number in [0, 255]",
    ),
    "BOOL 5": (
        lambda b: _edit(b, "TX_DURING_WEEKEND", datatype="BOOL", data=[0, 5, 1]),
        "which datatype BOOL cannot hold: a whole number in [0, 1]",
    ),
    "INT8 300.7": (
        lambda b: _edit(b, "CUSTOMER_ID_NB_TX_7DAY_WINDOW", datatype="INT8", data=[1, 2, 300.7]),
        "holds 300.7 (row 2), which datatype INT8 cannot hold: a whole number in [-128, 127]",
    ),
    # Domains of the data contract (data.domains), the ones `fraudlab validate` checks too.
    "negative amount": (
        lambda b: _edit(b, "TX_AMOUNT", data=[10.0, -0.5, 3.0]),
        "input TX_AMOUNT holds -0.5 (row 1), outside its domain: an amount: a number ≥ 0",
    ),
    "amount of a million": (
        lambda b: _edit(b, "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW", data=[1e6, 1.0, 1.0]),
        "an amount: a number ≥ 0 and < 1,000,000",
    ),
    "flag 2": (
        lambda b: _edit(b, "TX_DURING_NIGHT", data=[0, 2, 1]),
        "input TX_DURING_NIGHT holds 2 (row 1), outside its domain: a flag: 0 or 1",
    ),
    "fractional count": (
        lambda b: _edit(b, "TERMINAL_ID_NB_TX_30DAY_WINDOW", data=[3.0, 2.5, 1.0]),
        "outside its domain: a count: a whole number ≥ 0",
    ),
    "negative count": (
        lambda b: _edit(b, "CUSTOMER_ID_NB_TX_30DAY_WINDOW", data=[-1.0, 2.0, 1.0]),
        "a count: a whole number ≥ 0",
    ),
    "risk above 1": (
        lambda b: _edit(b, "TERMINAL_ID_RISK_7DAY_WINDOW", data=[0.1, 0.2, 1.5]),
        "holds 1.5 (row 2), outside its domain: a risk: a number in [0, 1]",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_check_request_refuses_with_a_message(runtime, registry, case):
    change, message = BAD_REQUESTS[case]
    payload = InferenceRequest.model_validate(change(_body(registry)))
    with pytest.raises(InferenceError) as err:
        runtime._check_request(payload)
    assert message in str(err.value), str(err.value)


def test_check_request_refuses_a_batch_above_the_limit(runtime, registry):
    body = v2_request(registry["good"].test.head(51))
    with pytest.raises(InferenceError, match="batch of 51 transactions exceeds the limit of 50"):
        runtime._check_request(InferenceRequest.model_validate(body))


def test_check_request_orders_columns_as_the_model_reads_them(runtime, registry):
    body = _body(registry)
    body["inputs"] = body["inputs"][::-1]
    features = runtime._check_request(InferenceRequest.model_validate(body))
    expected = registry["good"].test.head(3)[FEATURE_NAMES].to_numpy(dtype=np.float64)
    assert features.dtype == np.float64
    np.testing.assert_array_equal(features, expected)


def test_runtime_parameters_default_to_settings_and_refuse_unknown_keys():
    defaults = RuntimeParameters()
    assert defaults.tracking_uri == Settings.model_fields["mlflow_tracking_uri"].default
    assert defaults.max_batch_rows == Settings.model_fields["max_batch_rows"].default
    with pytest.raises(ValueError, match="extra"):
        RuntimeParameters.model_validate({"flag_treshold": 0.3})


@pytest.mark.parametrize(
    ("model_uri", "expected"),
    [
        (f"models:/{MODEL}@{CHAMPION}", None),
        (f"models:/{MODEL}/2", None),
        (
            f"models:/{MODEL}@gold",
            "`fraudlab model-test --version 2 && fraudlab promote --version 2`",
        ),
        (f"models:/{MODEL}/9", f"{MODEL} has no version 9 (versions: 1, 2)"),
        ("models:/no-such-model@champion", "`fraudlab demo`"),
    ],
)
def test_serving_problem_names_the_command_that_fixes_it(registry, model_uri, expected):
    """`fraudlab up` refuses to start MLServer on a model it could not load, and says why."""
    from reference_app.launchers.stack import serving_problem

    settings = Settings(mlflow_tracking_uri=registry["uri"], model_uri=model_uri)
    with contextlib.chdir(registry["folder"]):
        problem = serving_problem(settings)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem, problem


def test_check_request_accepts_the_datatypes_that_hold_the_values(runtime, registry):
    """Flags as BOOL (true/false), counts as integers, amounts as FP32: each read as float64."""
    body = _body(registry)
    rows = registry["good"].test.head(3)
    _edit(
        body,
        "TX_DURING_WEEKEND",
        datatype="BOOL",
        data=[bool(v) for v in rows["TX_DURING_WEEKEND"]],
    )
    _edit(
        body,
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
        datatype="UINT8",
        data=[int(v) for v in rows["CUSTOMER_ID_NB_TX_1DAY_WINDOW"]],
    )
    _edit(
        body,
        "TERMINAL_ID_NB_TX_7DAY_WINDOW",
        datatype="INT32",
        data=[int(v) for v in rows["TERMINAL_ID_NB_TX_7DAY_WINDOW"]],
    )
    _edit(body, "TX_AMOUNT", datatype="FP32")
    features = runtime._check_request(InferenceRequest.model_validate(body))
    np.testing.assert_array_equal(features, rows[FEATURE_NAMES].to_numpy(dtype=np.float64))


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_plain_path_decodes_exactly_what_the_input_checks_accept(runtime, registry, case):
    """The array path (`_plain_features`) decodes no input that `_column` would refuse (it
    returns None, and the message comes from the input-by-input checks); what both accept
    (e.g. a value outside its domain, refused after decoding) they decode alike."""
    change, _ = BAD_REQUESTS[case]
    inputs = {i.name: i for i in InferenceRequest.model_validate(change(_body(registry))).inputs}
    try:
        decoded = np.column_stack([_column(name, inputs[name]) for name in FEATURE_NAMES])
    except (InferenceError, KeyError, ValueError):  # refused, missing, different lengths
        decoded = None
    plain = _plain_features(inputs) if set(FEATURE_NAMES) <= set(inputs) else None
    if decoded is None:
        assert plain is None
    else:
        np.testing.assert_array_equal(plain, decoded)


@pytest.mark.parametrize("datatype", ["FP64", "FP32", "INT64", "UINT32"])
def test_plain_path_equals_the_input_checks(registry, datatype):
    """For good requests the array path gives the same (n, 15) float64 features as `_column`."""
    rows = registry["good"].test.head(40)
    body = v2_request(rows)
    for item in body["inputs"]:
        if datatype.startswith(("INT", "UINT")) and item["name"] in (
            "TX_DURING_WEEKEND",
            "TX_DURING_NIGHT",
        ):
            item["datatype"], item["data"] = datatype, [int(v) for v in item["data"]]
        elif datatype.startswith("FP"):
            item["datatype"] = datatype
    inputs = {i.name: i for i in InferenceRequest.model_validate(body).inputs}
    plain = _plain_features(inputs)
    columns = np.column_stack([_column(name, inputs[name]) for name in FEATURE_NAMES])
    assert plain is not None
    np.testing.assert_array_equal(plain, columns)
