"""Model behaviour on the default (handbook-scale) simulated data: minimum performance,
directional and invariance expectations (Made-With-ML's tests/model split)."""

import numpy as np
import pytest

from reference_app.config import Settings
from reference_app.data.simulator import simulate_transactions
from reference_app.features import FEATURE_NAMES, build_features
from reference_app.training.evaluation import evaluate_scores
from reference_app.training.split import EvaluationProtocol
from reference_app.training.train import score, train
from tests.conftest import simulation

pytestmark = pytest.mark.slow
MODELS = ("logistic_regression", "random_forest", "mlp", "lightgbm")
"""The untuned three, and LightGBM with its default settings: lab 14's tuning registers LightGBM
versions, which the same directional, invariance and model tests must hold for."""


# --8<-- [start:default-data]
@pytest.fixture(scope="module")
def default_features():
    """The handbook's reference run (5 000 customers, 10 000 terminals, 183 days): ≈ 5 s."""
    return build_features(simulate_transactions(simulation()))


@pytest.fixture(scope="module")
def results(default_features):
    s = Settings()
    protocol = EvaluationProtocol.from_settings(s)
    return {m: train(default_features, m, protocol, seed=s.seed, device=s.device) for m in MODELS}


# --8<-- [end:default-data]


def test_quality_gate_on_default_data(results):
    s = Settings()
    lr = results["logistic_regression"].metrics
    assert lr["auc_roc"] >= s.gate_min_auc, lr
    assert lr["average_precision"] >= s.gate_min_ap_logistic, lr
    assert max(r.metrics["average_precision"] for r in results.values()) >= s.gate_min_ap


def test_test_set_matches_the_handbook_protocol(results):
    r = results["logistic_regression"]
    # Handbook: 58 264 test transactions (385 frauds) on its own draw of the same simulator.
    assert r.params["n_test"] == pytest.approx(58_264, rel=0.05)
    assert r.test["TX_FRAUD"].sum() == pytest.approx(385, rel=0.25)
    assert r.metrics["card_precision_top_k_perfect"] < 1.0


def test_models_beat_published_random_baseline(results):
    # Handbook random model: AUC 0.5, AP 0.007, CP@100 0.017.
    for r in results.values():
        assert (
            r.metrics["auc_roc"] > 0.8
            and r.metrics["average_precision"] > 0.3
            and r.metrics["card_precision_top_k"] > 0.1
        )


# --8<-- [start:directional]
@pytest.mark.parametrize("model_type", MODELS)
def test_compromised_terminal_raises_the_score(results, model_type):
    """Directional: the same transactions at a terminal with a high recent fraud rate score higher."""
    r = results[model_type]
    sample = r.test.sample(500, random_state=0).copy()
    risky = sample.copy()
    for n in (1, 7, 30):
        risky[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = 0.8
    assert np.mean(score(r.model, risky) > score(r.model, sample)) > 0.9


# --8<-- [end:directional]


# --8<-- [start:invariance]
@pytest.mark.parametrize("model_type", MODELS)
def test_a_transactions_score_does_not_depend_on_its_batch(results, model_type):
    """Invariance on the inputs the model reads: a row's score is the same alone, in a batch, and
    in a batch in another order (serving batches requests; no row may leak into another's score,
    e.g. through batch statistics in the MLP)."""
    r = results[model_type]
    sample = r.test.head(300)[FEATURE_NAMES]
    batch = score(r.model, sample)
    reordered = score(r.model, sample.iloc[::-1])[::-1]
    alone = np.array([score(r.model, sample.iloc[[i]])[0] for i in range(0, 300, 30)])
    np.testing.assert_allclose(reordered, batch, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(alone, batch[::30], rtol=1e-6, atol=1e-9)


# --8<-- [end:invariance]


@pytest.mark.parametrize("model_type", MODELS)
def test_every_reference_model_passes_the_model_test_suite(results, model_type):
    """Lab 07: the suite the pipeline's model-tests step runs passes on each reference model, so
    it blocks only what misbehaves (its thresholds: reference_app/training/model_tests.py)."""
    from reference_app.training.model_tests import failures, run_model_tests

    r = results[model_type]
    assert failures(run_model_tests(lambda frame: score(r.model, frame), r.test)) == []


def test_the_broken_candidate_passes_the_gate_and_fails_the_model_tests(results):
    """The drill's candidate (`fraudlab train --broken`): the quality gate cannot tell it from
    the logistic regression it wraps; the model tests' batch invariance can."""
    from reference_app.training.model_tests import BatchScaledModel, failures, run_model_tests
    from reference_app.training.promotion import QualityGate

    r = results["logistic_regression"]
    broken = BatchScaledModel(r.model)
    metrics = evaluate_scores(r.test, score(broken, r.test))
    assert metrics["auc_roc"] == pytest.approx(r.metrics["auc_roc"])
    assert QualityGate.from_settings(Settings()).failures(metrics) == []
    (found,) = failures(run_model_tests(lambda frame: score(broken, frame), r.test))
    assert found.startswith("invariance: a score does not depend on its batch")
