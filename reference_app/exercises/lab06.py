"""Lab 06's exercise: the quality gate a trained model must pass to be promoted.

The learner writes `gate_failures` in `labs/06-training-on-kubernetes/starter/gate.py`; the train
step (`fraudlab train`, the train-model WorkflowTemplate on the cluster) tags each run with its
verdict (`passed_gate`, `gate_failures`), and the promote step refuses `champion` to a version it
fails. Reference: `training.promotion.gate_failures` (Breck et al., "The ML Test Score", 2017: a
model is checked against fixed quality thresholds before it serves).
"""

from __future__ import annotations

from ..training.promotion import GATE_EXERCISE, QualityGate, decide_promotion, gate_failures
from . import Behaviour, as_lab_code

EXERCISE = GATE_EXERCISE
REFERENCE = gate_failures
FILE = "labs/06-training-on-kubernetes/starter/gate.py"
CHECK = "make lab-06 TARGET=local"
MIN_AUC, MIN_AP = 0.85, 0.60
"""The course's gate (Settings.gate_min_auc, gate_min_ap defaults), passed as arguments."""


def _answer(function, metrics: dict[str, float]) -> str:
    return repr(list(function(metrics, MIN_AUC, MIN_AP)))


def _case(metrics: dict[str, float]):
    def check(learner, reference):
        return _answer(reference, metrics), _answer(learner, metrics)

    return check


def _promote_step(learner, reference):
    """The promote step's decision for a version below the gate, with no champion yet."""
    metrics = {"auc_roc": 0.8731, "average_precision": 0.5512}

    def decision(function):
        with as_lab_code(function):
            d = decide_promotion(metrics, None, QualityGate(MIN_AUC, MIN_AP))
        return f"{d.alias} (passed_gate={d.passed_gate}): {d.reason}"

    return decision(reference), decision(learner)


BEHAVIOURS = [
    Behaviour(
        "a run above both thresholds passes: no failures",
        _case({"auc_roc": 0.8812, "average_precision": 0.6735}),
        f"return an empty list when AUC ROC ≥ min_auc and AP ≥ min_ap: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "an AUC ROC below min_auc fails with one sentence",
        _case({"auc_roc": 0.8123, "average_precision": 0.6735}),
        f"append f\"AUC ROC {{metrics['auc_roc']:.4f}} < {{min_auc}}\": {FILE}; then {CHECK}",
    ),
    Behaviour(
        "an average precision below min_ap fails with one sentence",
        _case({"auc_roc": 0.8812, "average_precision": 0.5512}),
        f"append f\"average precision {{metrics['average_precision']:.4f}} < {{min_ap}}\": "
        f"{FILE}; then {CHECK}",
    ),
    Behaviour(
        "both below: two sentences, AUC ROC first",
        _case({"auc_roc": 0.7, "average_precision": 0.2}),
        f"check both thresholds, AUC ROC first, and return every failure: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a metric equal to its threshold passes",
        _case({"auc_roc": MIN_AUC, "average_precision": MIN_AP}),
        f"fail only when a metric is strictly below its threshold (<, not ≤): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the promote step keeps a version below the gate from champion, with your reasons",
        _promote_step,
        f"promotion calls your gate_failures (FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
