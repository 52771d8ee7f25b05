"""Lab 05 exercise, solved: the promotion rule that gives a new model version its alias (the
reference system's `training.promotion.choose_alias`).

Check it: `make lab-05 TARGET=local` (one line per behaviour).
"""

CHAMPION = "champion"
CHALLENGER = "challenger"


def choose_alias(passed_gate: bool, candidate_ap: float, champion_ap: float | None) -> str:
    """The alias a newly registered version gets.

    Args:
        passed_gate: whether the version passed the quality gate.
        candidate_ap: its average precision on the test week.
        champion_ap: the current champion's average precision on the same test week, or None
            when the registry has no champion yet.

    Returns:
        CHAMPION or CHALLENGER.
    """
    if not passed_gate:
        return CHALLENGER
    if champion_ap is None or candidate_ap > champion_ap:
        return CHAMPION
    return CHALLENGER
