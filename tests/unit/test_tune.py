"""Lab 14's tuning, without Ray: the prequential folds never reach the test week, the fold data
holds only what each fold may see, the learner's folds are checked, and the models the search
drives (LightGBM blocks, MLP epochs) behave as the final fit does."""

import datetime as dt
import socket

import numpy as np
import pandas as pd
import pytest

from reference_app import labcode
from reference_app.config import Settings
from reference_app.features import FEATURE_NAMES
from reference_app.training import tune
from reference_app.training.models import TorchMLPClassifier, make_model
from reference_app.training.split import EvaluationProtocol

PROTOCOL = EvaluationProtocol(dt.date(2018, 7, 25), 7, 7, 7, 100)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def test_default_folds_are_the_handbooks():
    # Handbook ch. 5.3: the validation folds' training starts delta_delay + delta_assessment
    # before the protocol's training week, one week apart; fold 0 validates on 07-25 … 07-31.
    folds = tune.prequential_folds(dt.date(2018, 7, 25), 4, 7, 7, 7)
    assert [(f["train_start"], f["valid_start"], f["valid_end"]) for f in folds] == [
        (dt.date(2018, 7, 11), dt.date(2018, 7, 25), dt.date(2018, 7, 31)),
        (dt.date(2018, 7, 4), dt.date(2018, 7, 18), dt.date(2018, 7, 24)),
        (dt.date(2018, 6, 27), dt.date(2018, 7, 11), dt.date(2018, 7, 17)),
        (dt.date(2018, 6, 20), dt.date(2018, 7, 4), dt.date(2018, 7, 10)),
    ]


@pytest.mark.parametrize(
    ("n_folds", "delta_train", "delta_delay", "delta_assessment"),
    [(4, 7, 7, 7), (3, 14, 7, 7), (2, 7, 14, 3), (5, 3, 0, 1), (1, 28, 7, 14)],
)
def test_folds_stay_before_the_test_week(n_folds, delta_train, delta_delay, delta_assessment):
    start = dt.date(2018, 7, 25)
    test_start = start + days(delta_train + delta_delay)
    folds = tune.prequential_folds(start, n_folds, delta_train, delta_delay, delta_assessment)
    assert len(folds) == n_folds
    # The newest fold validates up to the training period's last day: the labels of the delay
    # period and the test week are never looked at.
    assert folds[0]["valid_end"] == start + days(delta_train - 1)
    for fold in folds:
        assert fold["valid_end"] < test_start - days(delta_delay)
        assert fold["valid_start"] - fold["train_start"] == days(delta_train + delta_delay)
        assert fold["valid_end"] - fold["valid_start"] == days(delta_assessment - 1)
    for newer, older in zip(folds, folds[1:], strict=False):
        assert newer["train_start"] - older["train_start"] == days(delta_assessment)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    """Synthetic transactions, 40 a day from 2018-06-10 to 2018-08-20, with a fraud signal in
    the first feature."""
    rng = np.random.default_rng(0)
    stamps = pd.date_range("2018-06-10", "2018-08-20 23:00", freq="36min")
    n = len(stamps)
    fraud = (rng.random(n) < 0.08).astype(int)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURE_NAMES))), columns=FEATURE_NAMES)
    frame[FEATURE_NAMES[0]] += 2.0 * fraud
    return frame.assign(
        TRANSACTION_ID=np.arange(n),
        TX_DATETIME=stamps,
        CUSTOMER_ID=rng.integers(0, 5000, n),
        TX_FRAUD=fraud,
    )


def test_fold_data_never_holds_a_test_week_row(features):
    folds = tune.prequential_folds(PROTOCOL.train_start, 4, 7, 7, 7)
    data = tune.fold_data(features, folds, PROTOCOL, 7)
    test_start = pd.Timestamp(PROTOCOL.train_start + days(14))
    by_stamp = features.set_index(features[FEATURE_NAMES[1]].round(12))["TX_DATETIME"]
    for fold, part in zip(folds, data, strict=True):
        assert part.valid["TX_DATETIME"].max() < pd.Timestamp(fold["valid_end"] + days(1))
        assert part.valid["TX_DATETIME"].min() >= pd.Timestamp(fold["valid_start"])
        assert part.valid["TX_DATETIME"].max() < test_start - pd.Timedelta(days=7)
        # The training rows (found by a feature value) all lie in the fold's training period.
        trained = by_stamp.loc[np.round(part.train_X[:, 1], 12)]
        assert trained.min() >= pd.Timestamp(fold["train_start"])
        assert trained.max() < pd.Timestamp(fold["train_start"] + days(7))
        assert part.train_X.shape[1] == len(FEATURE_NAMES) == part.valid_X.shape[1]


def test_a_fold_before_the_data_is_a_clear_error(features):
    folds = tune.prequential_folds(PROTOCOL.train_start, 8, 7, 7, 7)  # back to 2018-05-23
    with pytest.raises(ValueError, match=r"fold 5 trains from 2018-06-06, before .* 2018-06-10"):
        tune.fold_data(features, folds, PROTOCOL, 7)


def test_fold_metrics_per_fold_and_mean(features):
    folds = tune.prequential_folds(PROTOCOL.train_start, 2, 7, 7, 7)
    data = tune.fold_data(features, folds, PROTOCOL, 7)
    metrics = tune.fold_metrics(data, lambda i, X: X[:, 0], k=10)
    assert set(metrics) == {
        f"{where}_{name}"
        for where in ("fold0", "fold1", "mean")
        for name in ("auc_roc", "average_precision", "card_precision_top_k")
    }
    assert metrics["mean_auc_roc"] == pytest.approx(
        (metrics["fold0_auc_roc"] + metrics["fold1_auc_roc"]) / 2
    )
    assert metrics["mean_auc_roc"] > 0.8  # the signal in the first feature


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # The protocol's own window: it validates on the test week.
        (
            "[{'train_start': ts, 'valid_start': ts + dt.timedelta(days=14), "
            "'valid_end': ts + dt.timedelta(days=20)}] * n",
            r"fold 0 validates up to 2018-08-14, .* after 2018-07-31 .* starts on 2018-08-08",
        ),
        ("[]", r"returned 0 folds; expected a list of 4 folds"),
        (
            "[{'train_start': ts, 'valid_start': ts, 'valid_end': ts}] * n",
            r"fold 0 validates 2018-07-25 … 2018-07-25; a fold training from 2018-07-25 validates",
        ),
    ],
)
def test_the_tune_step_refuses_wrong_folds(tmp_path, monkeypatch, body, message):
    (tmp_path / "folds.py").write_text(
        "import datetime as dt\n\n\ndef prequential_folds(ts, n, dtrain, ddelay, dassess):\n"
        f"    return {body}\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with pytest.raises(labcode.LabCodeError, match=message):
        tune.validation_folds(Settings(), PROTOCOL)


def test_the_tune_step_uses_the_learners_folds(tmp_path, monkeypatch):
    (tmp_path / "folds.py").write_text(
        "import datetime as dt\n\n\ndef prequential_folds(ts, n, dtrain, ddelay, dassess):\n"
        "    start = ts - dt.timedelta(days=28)\n"
        "    return [{'train_start': start, 'valid_start': start + dt.timedelta(days=14),\n"
        "             'valid_end': start + dt.timedelta(days=20)}] * n\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    folds = tune.validation_folds(Settings(), PROTOCOL)
    assert [f["train_start"] for f in folds] == [dt.date(2018, 6, 27)] * 4
    assert tune.FOLDS_EXERCISE.source().startswith("lab-14/folds.py sha256:")


def test_the_tuning_key_follows_settings_and_folds(tmp_path, monkeypatch):
    s = Settings()
    folds = tune.prequential_folds(PROTOCOL.train_start, 4, 7, 7, 7)
    key = tune.tuning_key(s, "lightgbm", folds)
    assert key == tune.tuning_key(Settings(), "lightgbm", folds)
    assert key != tune.tuning_key(s.model_copy(update={"tune_trials": 3}), "lightgbm", folds)
    assert key != tune.tuning_key(s, "mlp", folds)
    assert key != tune.tuning_key(s, "lightgbm", folds[:3])
    (tmp_path / "folds.py").write_text("def prequential_folds(*args):\n    return []\n")
    monkeypatch.setenv(labcode.ENV, str(tmp_path))  # the learner's folds: another search
    assert key != tune.tuning_key(s, "lightgbm", folds)


def test_search_spaces_use_the_estimators_names():
    for model_type in ("lightgbm", "mlp"):
        params = make_model(model_type).get_params()
        assert set(tune.search_space(model_type)) <= set(params), model_type
    with pytest.raises(ValueError, match="no search space for 'random_forest'"):
        tune.search_space("random_forest")


def test_mlp_epochs_one_at_a_time_end_where_fit_ends():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 15))
    y = (X[:, 0] > 1).astype(int)
    whole = TorchMLPClassifier(epochs=3, seed=4).fit(X, y)
    stepwise = TorchMLPClassifier(epochs=3, seed=4)
    seen = []
    for epoch in stepwise.fit_epochs(X, y):
        seen.append(epoch)
        assert stepwise.predict_proba(X[:5]).shape == (5, 2)  # usable between epochs
    assert seen == [1, 2, 3]
    np.testing.assert_array_equal(whole.predict_proba(X), stepwise.predict_proba(X))


def test_lightgbm_takes_the_tuned_hyperparameters():
    model = make_model("lightgbm", seed=3, hyperparameters={"num_leaves": 9, "n_estimators": 20})
    assert model.get_params()["num_leaves"] == 9 and model.get_params()["random_state"] == 3
    with pytest.raises(ValueError, match="lightgbm has no hyper-parameter max_leaves"):
        make_model("lightgbm", hyperparameters={"max_leaves": 9})


def test_a_trial_scores_what_the_final_model_of_its_configuration_scores():
    """The trial's boosters (validation) and the classifier the best configuration becomes
    (`make_model`) are one model: same parameters, Dataset parameters (max_bin) included."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 15)) * rng.uniform(1, 100, size=15)
    y = (X[:, 0] + 30 * rng.normal(size=3000) > 40).astype(int)
    fold = tune.Fold(train_X=X[:2000], train_y=y[:2000], valid_X=X[2000:], valid=pd.DataFrame())
    scores = {}
    for max_bin in (15, 4095):
        config = {"num_leaves": 7, "min_child_samples": 5, "subsample": 0.8, "max_bin": max_bin}
        (booster,) = tune.lightgbm_boosters(config, [fold], seed=3)
        for _ in range(20):
            booster.update()
        final = make_model("lightgbm", 3, hyperparameters={**config, "n_estimators": 20})
        final.fit(fold.train_X, fold.train_y)
        scores[max_bin] = booster.predict(fold.valid_X)
        np.testing.assert_allclose(scores[max_bin], final.predict_proba(fold.valid_X)[:, 1])
    assert not np.allclose(scores[15], scores[4095])  # the bins reached the histograms


def test_an_unreachable_ray_address_fails_at_once():
    """A wrong --ray-address is one clear error, not minutes of Ray's GCS retries."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        tune.check_reachable(f"127.0.0.1:{port}")
        tune.check_reachable(f"ray://127.0.0.1:{port}")
    with pytest.raises(ConnectionError, match=rf"no Ray cluster answers at 127.0.0.1:{port}"):
        tune.check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(ConnectionError, match="is not host:port"):
        tune.check_reachable("head-svc")
    tune.check_reachable("auto")  # left to Ray
