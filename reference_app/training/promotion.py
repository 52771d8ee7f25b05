"""Promotion rules for the model registry: quality gate, champion and challenger aliases.

A new model version becomes `champion` only if it passes the quality gate and beats the current
champion's average precision on the same test set; otherwise it is the `challenger`.

Example:
    >>> gate = QualityGate(min_auc=0.85, min_average_precision=0.60)   # or .from_settings(Settings())
    >>> decide_promotion({"auc_roc": 0.88, "average_precision": 0.65}, None, gate)
    Decision(alias='champion', passed_gate=True, reason='passes the gate and there is no champion yet')
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
# --8<-- [start:gate]
class QualityGate:
    """Minimum metrics on the test set to become champion (`Settings.gate_min_auc`, `gate_min_ap`)."""

    min_auc: float
    min_average_precision: float

    @classmethod
    def from_settings(cls, settings: Settings) -> QualityGate:
        """The gate `settings` configures (`FRAUD_GATE_MIN_AUC`, `FRAUD_GATE_MIN_AP`)."""
        return cls(min_auc=settings.gate_min_auc, min_average_precision=settings.gate_min_ap)

    def failures(self, metrics: dict[str, float]) -> list[str]:
        """Return a sentence per unmet threshold (empty when the gate passes)."""
        out = []
        if metrics["auc_roc"] < self.min_auc:
            out.append(f"AUC ROC {metrics['auc_roc']:.4f} < {self.min_auc}")
        if metrics["average_precision"] < self.min_average_precision:
            out.append(
                f"average precision {metrics['average_precision']:.4f} < {self.min_average_precision}"
            )
        return out


# --8<-- [end:gate]


@dataclass(frozen=True)
class Decision:
    """Which alias a new version gets, and why."""

    alias: str
    passed_gate: bool
    reason: str


def decide_promotion(
    candidate: dict[str, float], champion_ap: float | None, gate: QualityGate
) -> Decision:
    """Decide the alias of a newly registered version.

    Args:
        candidate: the new version's test metrics (`auc_roc`, `average_precision`).
        champion_ap: the current champion's average precision on the *same* test set, or None
            when there is no champion.
        gate: the quality gate.

    Returns:
        `Decision("champion", …)` when the candidate passes the gate and its AP is strictly higher
        than the champion's; `Decision("challenger", …)` otherwise, with the reason.
    """
    # --8<-- [start:decide]
    failures = gate.failures(candidate)
    if failures:
        return Decision(CHALLENGER, False, "fails the quality gate: " + "; ".join(failures))
    ap = candidate["average_precision"]
    if champion_ap is None:
        return Decision(CHAMPION, True, "passes the gate and there is no champion yet")
    if ap > champion_ap:
        return Decision(
            CHAMPION,
            True,
            f"passes the gate and beats the champion's AP ({ap:.4f} > {champion_ap:.4f})",
        )
    return Decision(
        CHALLENGER,
        True,
        f"passes the gate but does not beat the champion's AP ({ap:.4f} ≤ {champion_ap:.4f})",
    )
    # --8<-- [end:decide]
