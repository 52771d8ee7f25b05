"""Lab 05's exercise: the promotion rule that gives a new model version its alias.

The learner writes `choose_alias` in `labs/05-tracking-and-registry/starter/promotion.py`;
`training.promotion.decide_promotion` (behind `fraudlab train`, `fraudlab promote` and the
pipeline's promote step, which mounts the ConfigMap `lab-code-05` once the learner applied it)
calls it with the gate's verdict and both average precisions, and the registry moves the alias
it returns. Each decided version is tagged with the rule that decided (`promotion_rule`).
Reference: `training.promotion.choose_alias` (champion/challenger on the same test set, as in
Sculley et al., "Hidden Technical Debt in Machine Learning Systems", 2015, and MLflow's aliases).
"""

from __future__ import annotations

from ..training.promotion import (
    CHALLENGER,
    CHAMPION,
    PROMOTION_EXERCISE,
    QualityGate,
    choose_alias,
    decide_promotion,
)
from . import Behaviour, as_lab_code

EXERCISE = PROMOTION_EXERCISE
REFERENCE = choose_alias
FILE = "labs/05-tracking-and-registry/starter/promotion.py"
CHECK = "make lab-05 TARGET=local"


def _case(passed_gate: bool, candidate_ap: float, champion_ap: float | None):
    def check(learner, reference):
        return (
            repr(reference(passed_gate, candidate_ap, champion_ap)),
            repr(learner(passed_gate, candidate_ap, champion_ap)),
        )

    return check


def _registry_sequence(learner, reference):
    """Three versions decided in turn, as the promote step decides them: which ends champion."""
    gate = QualityGate(0.85, 0.60)
    versions = [
        {"auc_roc": 0.871, "average_precision": 0.622},  # v1: the first to pass
        {"auc_roc": 0.880, "average_precision": 0.681},  # v2: better
        {"auc_roc": 0.902, "average_precision": 0.655},  # v3: higher AUC, lower AP
    ]

    def champion_after(function):
        champion, champion_ap = None, None
        with as_lab_code(function):
            for number, metrics in enumerate(versions, 1):
                decision = decide_promotion(metrics, champion_ap, gate)
                if decision.alias == CHAMPION:
                    champion, champion_ap = f"v{number}", metrics["average_precision"]
        return f"champion {champion}"

    return champion_after(reference), champion_after(learner)


BEHAVIOURS = [
    Behaviour(
        "the first version that passes the gate becomes champion",
        _case(True, 0.622, None),
        f"no champion yet (champion_ap is None) and the gate passed: return {CHAMPION!r}: "
        f"{FILE}; then {CHECK}",
    ),
    Behaviour(
        "a version that fails the gate is a challenger, however good its AP",
        _case(False, 0.95, 0.60),
        f"check passed_gate first: a failed gate always gives {CHALLENGER!r}: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a version that fails the gate is a challenger even with no champion",
        _case(False, 0.55, None),
        f"no champion is no excuse: the gate comes first: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a version that beats the champion's AP becomes champion",
        _case(True, 0.681, 0.622),
        f"compare candidate_ap with champion_ap (a float when there is a champion): {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        "a tie with the champion keeps the champion",
        _case(True, 0.622, 0.622),
        f"only a strictly higher AP promotes (>, not ≥): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "three versions in turn (AP 0.622, 0.681, 0.655): the second ends champion",
        _registry_sequence,
        f"decide_promotion runs your choose_alias (FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
