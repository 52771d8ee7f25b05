"""Promotion rules: champion only through the gate and only by beating the champion's AP."""

import pytest

from reference_app.training.promotion import (
    BLOCKED,
    CHALLENGER,
    CHAMPION,
    QualityGate,
    decide_promotion,
)

GATE = QualityGate(min_auc=0.85, min_average_precision=0.60)


def m(auc, ap):
    return {"auc_roc": auc, "average_precision": ap}


@pytest.mark.parametrize(
    ("candidate", "champion_ap", "alias", "passed", "words"),
    [
        (m(0.88, 0.65), None, CHAMPION, True, "no champion yet"),
        (m(0.88, 0.70), 0.65, CHAMPION, True, "beats the champion"),
        (m(0.88, 0.65), 0.65, CHALLENGER, True, "does not beat"),  # a tie is not an improvement
        (m(0.88, 0.64), 0.70, CHALLENGER, True, "does not beat"),
        (m(0.84, 0.90), None, CHALLENGER, False, "AUC ROC 0.8400 < 0.85"),
        (m(0.95, 0.59), None, CHALLENGER, False, "average precision 0.5900 < 0.6"),
        (m(0.80, 0.50), 0.10, CHALLENGER, False, "fails the quality gate"),
    ],
)
def test_decide_promotion(candidate, champion_ap, alias, passed, words):
    decision = decide_promotion(candidate, champion_ap, GATE)
    assert decision.alias == alias
    assert decision.passed_gate is passed
    assert words in decision.reason


@pytest.mark.parametrize(
    ("candidate", "champion_ap", "failures", "passed", "reason"),
    [
        (
            m(0.88, 0.70),
            0.65,
            ["invariance: a score does not depend on its batch: largest change 1.0e+00"],
            True,
            "fails the model tests: invariance: a score does not depend on its batch: largest change 1.0e+00",
        ),
        (
            m(0.80, 0.70),
            None,
            ["they did not run on version 3 (fraudlab model-test --version 3)"],
            False,
            "fails the quality gate: AUC ROC 0.8000 < 0.85; fails the model tests: they did not run "
            "on version 3 (fraudlab model-test --version 3)",
        ),
    ],
)
def test_a_version_that_fails_the_model_tests_is_never_champion(
    candidate, champion_ap, failures, passed, reason
):
    """Lab 07: the model tests block a version on their own, from every alias (passed_gate stays
    the gate's)."""
    decision = decide_promotion(candidate, champion_ap, GATE, failures)
    assert (decision.alias, decision.passed_gate, decision.reason) == (BLOCKED, passed, reason)
    assert decide_promotion(candidate, champion_ap, GATE, []).reason != reason
