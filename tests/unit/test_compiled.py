"""Fast tests of compiled inference (ONNX + onnxruntime) and of the runtime's micro-batcher.

Fixture chain as in test_runtime.py: small transactions → the three model flavours → ONNX →
an MLflow SQLite store → model settings → a loaded `FraudRuntime`; no server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

import mlflow
import numpy as np
import pytest
from mlserver.errors import InferenceError
from mlserver.settings import ModelParameters, ModelSettings
from mlserver.types import InferenceRequest

from reference_app import tracking
from reference_app.features import FEATURE_NAMES, build_features
from reference_app.serving.batching import MicroBatcher, batching_pays
from reference_app.serving.compiled import CompiledModel, NativeModel, scorer_for
from reference_app.serving.replay import v2_request
from reference_app.serving.runtime import FraudRuntime, RuntimeParameters
from reference_app.training.export import export_onnx
from reference_app.training.models import MODEL_TYPES
from reference_app.training.split import EvaluationProtocol
from reference_app.training.train import score, train

MODEL = "fraud-detector-compiled"
PROTOCOL = EvaluationProtocol(dt.date(2018, 5, 1), 7, 7, 7, 100)

# --8<-- [start:bounds]
# Largest |compiled - native| allowed on a test week, per flavour. Measured on the handbook's
# test week (2018-08-08 to 08-14, 59,803 transactions): logistic regression 8.9e-16 (float64
# throughout), random forest 6.5e-7 (same paths, class probabilities summed in float32), MLP
# 1.3e-7 (float32 matrix products in another library).
NATIVE_BOUND = {"logistic_regression": 1e-12, "random_forest": 2e-6, "mlp": 1e-6}
# --8<-- [end:bounds]


@pytest.fixture(scope="module")
def trained(small_transactions):
    """The three model flavours trained on the small data: {model_type: TrainResult}."""
    features = build_features(small_transactions)
    return {m: train(features, m, PROTOCOL, seed=0, device="cpu") for m in MODEL_TYPES}


@pytest.fixture(scope="module")
def compiled(trained):
    """{model_type: CompiledModel} exported from the trained models."""
    return {m: CompiledModel(export_onnx(r.model)) for m, r in trained.items()}


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_compiled_model_scores_the_test_week_as_the_native_model(trained, compiled, model_type):
    """The compiled model's fraud probabilities stay within `NATIVE_BOUND` of the native model's
    on the whole test week: 1e-12 (logistic regression), 2e-6 (forest), 1e-6 (MLP). Measured on
    the handbook's test week (59,803 rows): 8.9e-16, 6.5e-7 (float32 sums, same tree paths) and
    1.3e-7."""
    result = trained[model_type]
    diff = np.abs(
        compiled[model_type].predict_proba(result.test) - score(result.model, result.test)
    )
    assert diff.max() <= NATIVE_BOUND[model_type], (model_type, diff.max())


def _rows_on_the_edge(forest, test, trees: int = 20) -> np.ndarray:
    """Test rows moved onto the edge of a split they reach: the feature set to the smallest
    float64 above the threshold (which float32 may round to either side)."""
    base = test[FEATURE_NAMES].to_numpy(np.float64)
    rows = []
    for tree in forest.estimators_[:trees]:
        t, feature = tree.tree_.threshold, tree.tree_.feature
        reach = tree.decision_path(base.astype(np.float32)).tocsc()
        for node in np.flatnonzero(feature >= 0)[:30]:
            passing = reach[:, node].nonzero()[0]
            if len(passing):
                row = base[passing[0]].copy()
                row[feature[node]] = np.nextafter(t[node], np.inf)
                rows.append(row)
    return np.asarray(rows)


def test_forest_rows_on_a_split_edge_take_the_native_path(trained, compiled):
    """Rows sitting on a split's edge (in float32) score as in scikit-learn: the compiled forest
    reads float32, as scikit-learn's trees do. A graph reading float64 sends some of them the
    other way (measured on the handbook's test week: 32 of 59,803 rows off, up to 0.02)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    forest = trained["random_forest"].model
    rows = _rows_on_the_edge(forest, trained["random_forest"].test)
    assert len(rows) >= 20
    native = forest.predict_proba(rows)[:, 1]
    ours = compiled["random_forest"].predict_proba(rows)
    assert np.abs(ours - native).max() <= NATIVE_BOUND["random_forest"]
    as_float64 = to_onnx(
        forest,
        initial_types=[("features", DoubleTensorType([None, len(FEATURE_NAMES)]))],
        options={id(forest): {"zipmap": False}},
        target_opset={"": 21, "ai.onnx.ml": 3},
    )
    other = CompiledModel(as_float64.SerializeToString()).predict_proba(rows)
    assert np.abs(other - native).max() > 1e-3, len(rows)  # the rows do sit on an edge


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_compiled_scores_do_not_depend_on_the_batch(trained, compiled, model_type):
    """A row scores the same alone or in a batch, bit for bit: micro-batching cannot move the
    served scores away from the offline ones (the replay's skew check)."""
    rows = trained[model_type].test[FEATURE_NAMES].to_numpy(np.float64)[:64]
    model = compiled[model_type]
    alone = np.concatenate([model.predict_proba(rows[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_array_equal(alone, model.predict_proba(rows))


def test_export_refuses_an_unknown_model():
    with pytest.raises(TypeError, match="no ONNX export for dict"):
        export_onnx({})


# --- the registry and the runtime --------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory, trained):
    """An MLflow SQLite store: v1 the forest logged by `log_training_run` (with its ONNX file),
    v2 the forest logged as before compiled inference (the pyfunc alone)."""
    folder = tmp_path_factory.mktemp("compiled-registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    result = trained["random_forest"]
    with contextlib.chdir(folder):  # MLflow's default artifact root (./mlruns) lands here
        tracking.configure(uri, "unit-compiled")
        _, v1 = tracking.log_training_run(result, MODEL, "digest-1")
        with mlflow.start_run():
            legacy = mlflow.pyfunc.log_model(
                name="model",
                python_model=tracking.FraudModel(result.model),
                pip_requirements=tracking.PIP_REQUIREMENTS,
                registered_model_name=MODEL,
            )
        yield {"uri": uri, "folder": folder, "versions": (v1, str(legacy.registered_model_version))}


def _runtime(
    registry, version: str, max_batch_rows: int = 50, micro_batching: str = "auto"
) -> FraudRuntime:
    settings = ModelSettings(
        name=MODEL,
        implementation=FraudRuntime,
        parameters=ModelParameters(
            uri=f"models:/{MODEL}/{version}",
            extra=RuntimeParameters(
                tracking_uri=registry["uri"],
                max_batch_rows=max_batch_rows,
                micro_batching=micro_batching,
            ).model_dump(),
        ),
    )
    model = FraudRuntime(settings)
    with contextlib.chdir(registry["folder"]):
        assert asyncio.run(model.load()) is True
    return model


def test_logged_model_carries_its_onnx_file_beside_the_native_model(registry, trained):
    v1, v2 = registry["versions"]
    with contextlib.chdir(registry["folder"]):
        new, old = (tracking.load_model(f"models:/{MODEL}/{v}") for v in (v1, v2))
    assert new.onnx_path and new.onnx_path.endswith("model.onnx") and old.onnx_path is None
    test = trained["random_forest"].test
    np.testing.assert_array_equal(
        CompiledModel(new.onnx_path).predict_proba(test),
        CompiledModel(export_onnx(trained["random_forest"].model)).predict_proba(test),
    )
    # The native pyfunc stays what promotion and offline scoring use.
    np.testing.assert_allclose(
        new.predict_proba(test), score(trained["random_forest"].model, test), rtol=0, atol=1e-12
    )


def test_runtime_serves_the_compiled_model_and_equals_offline_scores(registry, trained):
    """The runtime scores with onnxruntime; the replay's offline scorer (`scorer_for`, the same
    artifact) gives the same scores: skew 0 ≤ 1e-6."""
    runtime = _runtime(registry, registry["versions"][0])
    assert isinstance(runtime._scorer, CompiledModel)
    assert not runtime._batcher.merge  # a compiled call is too cheap to wait for others
    test = trained["random_forest"].test.head(40)
    response = asyncio.run(runtime.predict(InferenceRequest.model_validate(v2_request(test))))
    with contextlib.chdir(registry["folder"]):
        offline = scorer_for(tracking.load_model(f"models:/{MODEL}/{registry['versions'][0]}"))
    np.testing.assert_array_equal(response.outputs[0].data.root, offline.predict_proba(test))


def test_version_without_onnx_serves_the_native_model_and_says_so_once(registry, trained, caplog):
    """A version logged before compiled inference still serves, with its native model; the
    fallback is logged once, at load."""
    with caplog.at_level(logging.WARNING, logger="reference_app.serving.compiled"):
        runtime = _runtime(registry, registry["versions"][1])
        test = trained["random_forest"].test.head(20)
        for _ in range(3):
            response = asyncio.run(
                runtime.predict(InferenceRequest.model_validate(v2_request(test)))
            )
    assert isinstance(runtime._scorer, NativeModel)
    assert runtime._batcher.merge  # the native forest's call costs ≈ 10 ms: worth sharing
    notes = [r.getMessage() for r in caplog.records if "no ONNX artifact" in r.getMessage()]
    assert len(notes) == 1 and f"version {registry['versions'][1]}" in notes[0], notes
    np.testing.assert_allclose(
        response.outputs[0].data.root,
        score(trained["random_forest"].model, test),
        rtol=0,
        atol=1e-12,
    )


def test_concurrent_requests_are_scored_together_and_fail_alone(registry, trained):
    """Good and bad requests at once: each good one gets its own scores (equal to scoring it
    alone), each bad one its own message, and no merged batch exceeds the row limit."""
    runtime = _runtime(registry, registry["versions"][0], max_batch_rows=50, micro_batching="on")
    test = trained["random_forest"].test
    good = [test.iloc[i * 30 : i * 30 + 1 + i % 30] for i in range(12)]  # 1 to 12 rows each
    bad = v2_request(test.head(3))
    bad["inputs"] = bad["inputs"][1:]  # TX_AMOUNT missing
    big = v2_request(test.head(51))  # above the per-request limit of 50
    sizes = []
    score_ = runtime._batcher._score
    runtime._batcher._score = lambda rows: sizes.append(len(rows)) or score_(rows)

    async def send(body):
        return await runtime.predict(InferenceRequest.model_validate(body))

    async def all_at_once():
        bodies = [v2_request(g) for g in good[:6]] + [bad, big] + [v2_request(g) for g in good[6:]]
        return await asyncio.gather(*(send(b) for b in bodies), return_exceptions=True)

    answers = asyncio.run(all_at_once())
    oks = answers[:6] + answers[8:]
    assert isinstance(answers[6], InferenceError) and "missing inputs: TX_AMOUNT" in str(answers[6])
    assert isinstance(answers[7], InferenceError) and "batch of 51" in str(answers[7])
    for frame, answer in zip(good, oks, strict=True):
        expected = runtime._scorer.predict_proba(frame)
        np.testing.assert_array_equal(answer.outputs[0].data.root, expected)
    assert len(sizes) < len(good) and max(sizes) <= 50, sizes


# --- the batcher alone ---------------------------------------------------------------------------


def test_batcher_merges_concurrent_requests_into_one_call():
    calls = []

    def model(rows):
        calls.append(len(rows))
        return rows[:, 0] * 2

    batcher = MicroBatcher(model, max_rows=100)

    async def main():
        parts = [np.full((n, 15), float(n)) for n in (1, 2, 3)]
        return await asyncio.gather(*(batcher.score(p) for p in parts))

    out = asyncio.run(main())
    assert calls == [6] and [list(o) for o in out] == [[2.0], [4.0, 4.0], [6.0, 6.0, 6.0]]
    assert (batcher.calls, batcher.requests) == (1, 3)


def test_batcher_keeps_every_call_within_max_rows():
    calls = []
    batcher = MicroBatcher(lambda rows: calls.append(len(rows)) or rows[:, 0], max_rows=10)

    async def main():
        return await asyncio.gather(*(batcher.score(np.ones((4, 15))) for _ in range(7)))

    out = asyncio.run(main())
    assert all(len(o) == 4 for o in out) and max(calls) <= 10 and sum(calls) == 28, calls


def test_batcher_without_merging_scores_each_request_alone():
    calls = []
    batcher = MicroBatcher(lambda rows: calls.append(len(rows)) or rows[:, 0], 100, merge=False)

    async def main():
        return await asyncio.gather(*(batcher.score(np.ones((n, 15))) for n in (1, 2, 3)))

    assert [len(o) for o in asyncio.run(main())] == [1, 2, 3] and calls == [1, 2, 3]


def test_batching_pays_for_a_slow_model_only():
    def slow(rows):
        time.sleep(0.002)
        return rows[:, 0]

    assert batching_pays(slow) and not batching_pays(lambda rows: rows[:, 0])


def test_batcher_fails_only_the_request_the_model_refuses():
    def model(rows):
        if (rows < 0).any():
            raise ValueError("negative value")
        return rows[:, 0]

    batcher = MicroBatcher(model, max_rows=100)

    async def main():
        parts = [np.ones((2, 15)), -np.ones((1, 15)), np.full((3, 15), 5.0)]
        return await asyncio.gather(*(batcher.score(p) for p in parts), return_exceptions=True)

    good, bad, other = asyncio.run(main())
    assert list(good) == [1.0, 1.0] and list(other) == [5.0, 5.0, 5.0]
    assert isinstance(bad, ValueError) and str(bad) == "negative value"


def test_the_forest_records_the_threads_it_trained_with(trained):
    """The run's hyper-parameters are the fit's (n_jobs −1, all cores); serving's single thread,
    set after the fit, is recorded apart."""
    forest = trained["random_forest"]
    assert forest.params["hp_n_jobs"] == -1 and forest.params["serving_n_jobs"] == 1
    assert forest.model.get_params()["n_jobs"] == 1
    assert "serving_n_jobs" not in trained["mlp"].params
