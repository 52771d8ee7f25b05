"""Model behaviour on small data: the MLP is seeded, records its device, and beats chance."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from reference_app.training.models import MODEL_TYPES, TorchMLPClassifier, make_model, select_device


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 15))
    y = (X[:, 0] + 0.5 * X[:, 3] + rng.normal(scale=0.5, size=3000) > 1.5).astype(int)
    return X, y


def test_device_falls_back_to_cpu():
    import torch

    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            select_device("cuda")


def test_mlp_is_seeded_and_records_device(xy):
    X, y = xy
    a = TorchMLPClassifier(epochs=3, seed=1).fit(X, y)
    b = TorchMLPClassifier(epochs=3, seed=1).fit(X, y)
    c = TorchMLPClassifier(epochs=3, seed=2).fit(X, y)
    assert a.device_ in {"cpu", "cuda"}
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_model_learns_the_signal(xy, model_type):
    X, y = xy
    model = make_model(model_type, seed=0)
    if model_type == "mlp":
        model.set_params(epochs=40)
    model.fit(X[:2000], y[:2000])
    proba = model.predict_proba(X[2000:])
    assert proba.shape == (1000, 2) and np.allclose(proba.sum(axis=1), 1)
    assert roc_auc_score(y[2000:], proba[:, 1]) > 0.9


def test_unknown_model_type():
    with pytest.raises(ValueError, match="unknown model type"):
        make_model("xgboost")
