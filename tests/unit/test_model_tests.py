"""The model test suite (reference_app/training/model_tests.py) on small real models: a fitted
logistic regression passes it; the drill's broken candidate keeps its metrics (the quality gate
cannot tell) and fails the batch invariance; a constant model fails minimum functionality and the
directional test; a model blind at night fails the slice test; the promotion reads the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from reference_app.exercises.lab07 import _risk_scorer, _week
from reference_app.features import FEATURE_NAMES
from reference_app.training import model_tests
from reference_app.training.evaluation import evaluate_scores
from reference_app.training.model_tests import (
    BatchScaledModel,
    failures,
    run_model_tests,
    slice_failures,
    verdict_failures,
)


@pytest.fixture(scope="module")
def week() -> pd.DataFrame:
    """`_week` (its night not blind) with a customer and a day per row, for CP@k."""
    frame = _week(n=2000, blind_night=False)
    frame["CUSTOMER_ID"] = np.arange(len(frame)) % 300
    frame["TX_DATETIME"] = pd.Timestamp("2018-08-08") + pd.to_timedelta(
        np.arange(len(frame)) % 7, unit="D"
    )
    return frame


@pytest.fixture(scope="module")
def fitted(week) -> LogisticRegression:
    return LogisticRegression(max_iter=1000).fit(week[FEATURE_NAMES].to_numpy(), week["TX_FRAUD"])


def scorer(model):
    return lambda frame: model.predict_proba(frame[FEATURE_NAMES].to_numpy())[:, 1]


def by_kind(results) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for r in results:
        out.setdefault(r.kind, []).append(r.passed)
    return out


def test_a_sound_model_passes_every_test(week, fitted):
    results = run_model_tests(scorer(fitted), week)
    assert [r.kind for r in results] == [
        "minimum functionality",
        "minimum functionality",
        "invariance",
        "invariance",
        "directional",
        "slice",
    ]
    assert failures(results) == [], results


def test_the_broken_candidate_keeps_its_metrics_and_fails_batch_invariance(week, fitted):
    broken = BatchScaledModel(fitted)
    x = week[FEATURE_NAMES].to_numpy()
    sound, scaled = fitted.predict_proba(x)[:, 1], broken.predict_proba(x)[:, 1]
    for metric in ("auc_roc", "average_precision", "card_precision_top_k"):
        assert evaluate_scores(week, scaled)[metric] == pytest.approx(
            evaluate_scores(week, sound)[metric]
        )
    assert broken.predict_proba(x[:1])[0, 1] == 1.0 != sound[0]
    found = failures(run_model_tests(scorer(broken), week))
    assert len(found) == 1 and found[0].startswith(
        "invariance: a score does not depend on its batch: largest change"
    )


def test_a_constant_model_fails_minimum_functionality_and_direction(week):
    results = run_model_tests(lambda frame: np.full(len(frame), 0.5), week)
    assert by_kind(results)["minimum functionality"] == [True, False]
    assert by_kind(results)["directional"] == [False]
    assert by_kind(results)["invariance"] == [True, True]


def test_scores_outside_zero_one_fail(week):
    (first, *_) = run_model_tests(lambda frame: frame["TX_AMOUNT"].to_numpy(), week)
    assert not first.passed and first.detail.startswith("shape (2000,) for 2,000 transactions")


def test_a_model_blind_at_night_fails_the_night_slice():
    (sliced,) = [r for r in run_model_tests(_risk_scorer, _week()) if r.kind == "slice"]
    assert not sliced.passed
    assert sliced.detail.startswith("night: AUC ROC 0.") and "high amount" not in sliced.detail


def test_slice_failures_judges_only_slices_big_enough():
    y = np.array([1, 1, 0, 0, 0, 0])
    worst = np.array([0.1, 0.2, 0.9, 0.8, 0.7, 0.6])  # AUC 0.0
    assert slice_failures({"night": (y, worst)}, 0.7, 2) == [
        "night: AUC ROC 0.0000 < 0.7 (6 transactions, 2 frauds)"
    ]
    assert slice_failures({"night": (y, worst)}, 0.7, 3) == []  # 2 frauds < 3


def test_the_report_and_tags_carry_the_verdict(week, fitted):
    results = run_model_tests(scorer(BatchScaledModel(fitted)), week)
    report = model_tests.report(results, version="4")
    assert report["passed"] is False and report["version"] == "4"
    assert report["suite"] == "reference" and len(report["tests"]) == len(results)
    assert report["thresholds"]["slice_min_auc"] == model_tests.SLICE_MIN_AUC
    tags = model_tests.run_tags(results)
    assert tags["model_tests_passed"] == "false"
    assert verdict_failures(tags, "4") == [tags["model_test_failures"]]
    assert verdict_failures({"model_tests_passed": "true"}, "4") == []
    assert verdict_failures({}, "4") == [
        "they did not run on version 4 (fraudlab model-test --version 4)"
    ]
