"""Lab 05 exercise: the promotion rule that gives a new model version its alias.

When a version is registered, the system evaluates it on the test week, runs the quality gate,
re-scores the current champion on the same test week, and asks `choose_alias` which alias the new
version gets. The registry then moves that alias (MLflow) and tags the version with the reason
and with the rule that decided (`promotion_rule`: this file's digest).

With FRAUD_LAB_CODE pointing at this folder, your function decides (`make train`,
`fraudlab promote`); on the cluster, the pipeline's promote step runs it from the ConfigMap
`lab-code-05` this lab's kustomization generates.

Check your work: `make lab-05 TARGET=local` (one line per behaviour).
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
    # TODO(lab-05): a version that fails the gate is always a challenger. One that passes becomes
    # champion when there is no champion yet, or when its AP is strictly higher than the
    # champion's; otherwise it is a challenger.
    raise NotImplementedError("TODO(lab-05): choose_alias")
