"""Lab 07's exercise: the slice test of the model test suite.

The learner writes `slice_failures` in `labs/07-testing-ml-systems/starter/model_checks.py`; the
model-tests step (`fraudlab model-test`, the pipeline's step between the train steps and promote;
on the cluster the fraud-pipeline template mounts the ConfigMap lab-code-07) judges every new
candidate's night and high-amount slices with it, and the promote step refuses `champion` to a
candidate that fails. Reference: `training.model_tests.slice_failures` (Breck et al., "The ML
Test Score", 2017, Model 6: model quality is sufficient on important data slices).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..features import FEATURE_NAMES
from ..training.model_tests import (
    MODEL_TESTS_EXERCISE,
    failures,
    run_model_tests,
    slice_failures,
)
from ..training.promotion import QualityGate, decide_promotion
from . import Behaviour, as_lab_code

EXERCISE = MODEL_TESTS_EXERCISE
REFERENCE = slice_failures
FILE = "labs/07-testing-ml-systems/starter/model_checks.py"
CHECK = "make lab-07 TARGET=local"
MIN_AUC, MIN_FRAUDS = 0.7, 2
"""The thresholds the behaviours pass (the system's are model_tests.SLICE_MIN_AUC, SLICE_MIN_FRAUDS)."""

# Small slices with known AUC ROC: (labels, scores).
GOOD = (np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.8, 0.3, 0.2, 0.1]))  # AUC 1.0
POOR = (np.array([1, 1, 0, 0, 0, 0]), np.array([0.9, 0.1, 0.5, 0.4, 0.3, 0.2]))  # AUC 0.5
EXACT = (np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.5, 0.1]))  # AUC 0.75
ONE_FRAUD = (np.array([1, 0, 0, 0]), np.array([0.1, 0.9, 0.8, 0.7]))  # AUC 0.0, 1 fraud
ONE_LEGIT = (np.array([1, 1, 1, 0]), np.array([0.1, 0.2, 0.3, 0.9]))  # AUC 0.0, 1 legitimate


def _answer(function, slices, min_auc=MIN_AUC) -> str:
    return repr(list(function(slices, min_auc, MIN_FRAUDS)))


def _case(slices, min_auc=MIN_AUC):
    def check(learner, reference):
        return _answer(reference, slices, min_auc), _answer(learner, slices, min_auc)

    return check


def _week(seed: int = 7, n: int = 800, blind_night: bool = True) -> pd.DataFrame:
    """A small test week: 15 features and labels; the terminal risk tells frauds apart, except
    at night (a quarter of the rows) when `blind_night`."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.uniform(0, 1, size=(n, len(FEATURE_NAMES))), columns=FEATURE_NAMES)
    frame["TX_AMOUNT"] = rng.uniform(5, 150, n)
    frame["TX_DURING_NIGHT"] = (np.arange(n) % 4 == 0).astype(float)
    fraud = (np.arange(n) % 5 == 0).astype(int)
    risk = np.where(fraud == 1, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.5, n))
    night = (frame["TX_DURING_NIGHT"].to_numpy() == 1) & blind_night
    frame["TERMINAL_ID_RISK_7DAY_WINDOW"] = np.where(night, rng.uniform(0, 1, n), risk)
    frame["TX_FRAUD"] = fraud
    return frame


def _risk_scorer(features: pd.DataFrame) -> np.ndarray:
    """A candidate that reads the terminal risk only (blind at night in `_week`)."""
    risk = features[[f"TERMINAL_ID_RISK_{n}DAY_WINDOW" for n in (1, 7, 30)]].to_numpy()
    return 1.0 / (1.0 + np.exp(-6.0 * (risk.sum(axis=1) - 1.5)))


def _model_tests_step(learner, reference):
    """The model-tests step's verdict on a candidate blind at night, then the promotion's."""

    def decision(function):
        with as_lab_code(function):
            found = failures(run_model_tests(_risk_scorer, _week()))
        metrics = {"auc_roc": 0.91, "average_precision": 0.72}
        d = decide_promotion(metrics, None, QualityGate(0.85, 0.60), found)
        return f"{d.alias}: {d.reason}"

    return decision(reference), decision(learner)


BEHAVIOURS = [
    Behaviour(
        "every slice at or above min_auc: no failures",
        _case({"night": GOOD, "high amount": GOOD}),
        f"return an empty list when no slice's AUC ROC is below min_auc: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a slice below min_auc fails with one sentence",
        _case({"night": POOR, "high amount": GOOD}),
        'append f"{name}: AUC ROC {auc:.4f} < {min_auc} ({len(labels):,} transactions, '
        f'{{frauds:,}} frauds)": {FILE}; then {CHECK}',
    ),
    Behaviour(
        "two slices below: two sentences, in the slices' order",
        _case({"night": POOR, "high amount": POOR}),
        f"go through every slice in order (slices.items()) and return every failure: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a slice with fewer than min_frauds frauds is not judged",
        _case({"night": ONE_FRAUD, "high amount": GOOD}),
        f"skip a slice whose labels hold fewer than min_frauds frauds: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a slice with fewer than min_frauds legitimate transactions is not judged",
        _case({"night": GOOD, "high amount": ONE_LEGIT}),
        f"skip a slice with fewer than min_frauds legitimate transactions too: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "an AUC ROC equal to min_auc passes",
        _case({"night": EXACT}, min_auc=0.75),
        f"fail only when the AUC ROC is strictly below min_auc (<, not ≤): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the model-tests step blocks a candidate blind at night, with your sentence",
        _model_tests_step,
        f"the model test suite calls your slice_failures (FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
