"""Promotion rules for the model registry: quality gate, champion and challenger aliases.

A new model version becomes `champion` only if it passes the quality gate and the model test
suite (`model_tests`, lab 07) and beats the current champion's average precision on the same test
set; otherwise it is the `challenger`.

Example:
    >>> gate = QualityGate(min_auc=0.85, min_average_precision=0.60)   # or .from_settings(Settings())
    >>> decide_promotion({"auc_roc": 0.88, "average_precision": 0.65}, None, gate)
    Decision(alias='champion', passed_gate=True, reason='passes the gate and there is no champion yet')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Settings
from ..labcode import Exercise, LabCodeError

CHAMPION = "champion"
CHALLENGER = "challenger"
BLOCKED = "blocked"
"""Lab 07: the outcome of a version the model tests refuse. It gets no alias at all: not
champion, and not challenger either, which a canary would serve (lab 10)."""

GATE_EXERCISE = Exercise(lab=6, module="gate", function="gate_failures")
"""Lab 06: the learner's `gate_failures` (labs/06-training-on-kubernetes/starter/gate.py) stands
in for this module's when `FRAUD_LAB_CODE` has it (`labcode`): in the train step, which tags each
run with the gate's verdict, and wherever a version is promoted."""


PROMOTION_EXERCISE = Exercise(lab=5, module="promotion", function="choose_alias")
"""Lab 05: the learner's `choose_alias` (labs/05-tracking-and-registry/starter/promotion.py) stands
in for this module's when `FRAUD_LAB_CODE` has it: in `fraudlab train`/`promote` and in the
pipeline's promote step, which mounts the ConfigMap `lab-code-05` when the learner applied it.
Each decided version records which rule decided (tag `promotion_rule`)."""


# --8<-- [start:gate]
def gate_failures(metrics: dict[str, float], min_auc: float, min_ap: float) -> list[str]:
    """The quality gate: a sentence per unmet threshold, in the order AUC ROC, average precision.

    Args:
        metrics: test-set metrics with `auc_roc` and `average_precision` (floats in [0, 1]).
        min_auc, min_ap: the thresholds; a metric equal to its threshold passes.

    Returns:
        `[]` when both are met, else e.g. `["AUC ROC 0.8123 < 0.85"]`.

    Raises:
        KeyError: a metric is missing.
    """
    out = []
    if metrics["auc_roc"] < min_auc:
        out.append(f"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}")
    if metrics["average_precision"] < min_ap:
        out.append(f"average precision {metrics['average_precision']:.4f} < {min_ap}")
    return out


@dataclass(frozen=True)
class QualityGate:
    """Minimum metrics on the test set to become champion (`Settings.gate_min_auc`, `gate_min_ap`)."""

    min_auc: float
    min_average_precision: float

    @classmethod
    def from_settings(cls, settings: Settings) -> QualityGate:
        """The gate `settings` configures (`FRAUD_GATE_MIN_AUC`, `FRAUD_GATE_MIN_AP`)."""
        return cls(min_auc=settings.gate_min_auc, min_average_precision=settings.gate_min_ap)

    def failures(self, metrics: dict[str, float]) -> list[str]:
        """Return a sentence per unmet threshold (empty when the gate passes): `gate_failures`,
        or the learner's (lab 06, `GATE_EXERCISE`)."""
        gate = GATE_EXERCISE.implementation(gate_failures)
        return list(gate(metrics, self.min_auc, self.min_average_precision))


# --8<-- [end:gate]


@dataclass(frozen=True)
class Decision:
    """Which alias a new version gets, and why.

    `alias` is `champion`, `challenger`, or `blocked` (`BLOCKED`: no alias, the model tests
    refused it)."""

    alias: str
    passed_gate: bool
    reason: str


# --8<-- [start:choose]
def choose_alias(passed_gate: bool, candidate_ap: float, champion_ap: float | None) -> str:
    """The promotion rule: `champion` for a version that passes the gate and beats the champion.

    Args:
        passed_gate: whether the candidate passed the quality gate.
        candidate_ap: the candidate's average precision on the test set.
        champion_ap: the current champion's average precision on the *same* test set, or None
            when there is no champion.

    Returns:
        "champion" when the candidate passed the gate and there is no champion or its AP is
        strictly higher; "challenger" otherwise (a tie keeps the champion: no churn for noise).
    """
    if not passed_gate:
        return CHALLENGER
    if champion_ap is None or candidate_ap > champion_ap:
        return CHAMPION
    return CHALLENGER


# --8<-- [end:choose]


def decide_promotion(
    candidate: dict[str, float],
    champion_ap: float | None,
    gate: QualityGate,
    model_test_failures: Sequence[str] = (),
) -> Decision:
    """Decide the alias of a newly registered version.

    Args:
        candidate: the new version's test metrics (`auc_roc`, `average_precision`).
        champion_ap: the current champion's average precision on the *same* test set, or None
            when there is no champion.
        gate: the quality gate.
        model_test_failures: why the model test suite refuses the version (lab 07,
            `model_tests.verdict_failures`: failed tests, or that they did not run); `()` when
            they passed.

    Returns:
        The `Decision`: `BLOCKED` when the model tests refuse the version, else the alias
        `choose_alias` (or the learner's, lab 05) picks; whether the gate passed; and the facts
        it was decided on.

    Raises:
        LabCodeError: the learner's rule returned something other than the two aliases.
    """
    # --8<-- [start:decide]
    failures = gate.failures(candidate)
    ap = candidate["average_precision"]
    refused = ([f"fails the quality gate: {'; '.join(failures)}"] if failures else []) + (
        [f"fails the model tests: {'; '.join(model_test_failures)}"] if model_test_failures else []
    )
    if model_test_failures:  # lab 07: refused before any rule, and served nowhere
        alias = BLOCKED
    else:  # the rule (lab 05) answers one of the two aliases: blocking is the model tests' call
        alias = PROMOTION_EXERCISE.implementation(choose_alias)(not failures, ap, champion_ap)
        if alias not in (CHAMPION, CHALLENGER):
            raise LabCodeError(
                f"lab 05: choose_alias returned {alias!r}; expected {CHAMPION!r} or {CHALLENGER!r}"
            )
    if refused:
        reason = "; ".join(refused)
    elif champion_ap is None:
        reason = "passes the gate and there is no champion yet"
    elif ap > champion_ap:
        reason = f"passes the gate and beats the champion's AP ({ap:.4f} > {champion_ap:.4f})"
    else:
        reason = (
            f"passes the gate but does not beat the champion's AP ({ap:.4f} ≤ {champion_ap:.4f})"
        )
    return Decision(alias, not failures, reason)
    # --8<-- [end:decide]
