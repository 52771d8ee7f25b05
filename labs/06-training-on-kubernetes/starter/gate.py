"""Lab 06 exercise: the quality gate a trained model must pass before it may become champion.

The train step evaluates each model on the test week and calls `gate_failures` with its metrics
and the gate's thresholds (FRAUD_GATE_MIN_AUC, FRAUD_GATE_MIN_AP). With FRAUD_LAB_CODE pointing at
this folder (locally) or this file mounted from a ConfigMap (the train-model WorkflowTemplate on
the cluster), your function is the one that runs: the run is tagged passed_gate=true/false with
your sentences in gate_failures, and the promote step refuses `champion` to a version that fails.

Check your work: `make lab-06 TARGET=local` (one line per behaviour).
"""


def gate_failures(metrics: dict[str, float], min_auc: float, min_ap: float) -> list[str]:
    """The sentences of the thresholds a run misses; an empty list when it passes.

    Args:
        metrics: the run's test-set metrics; `metrics["auc_roc"]` and
            `metrics["average_precision"]` are floats in [0, 1].
        min_auc: the smallest AUC ROC that passes (a value equal to it passes).
        min_ap: the smallest average precision that passes.

    Returns:
        `[]`, or one sentence per failed threshold, AUC ROC first, written exactly as:
        "AUC ROC 0.8123 < 0.85" and "average precision 0.5512 < 0.6" (metrics with 4 decimals).
    """
    # TODO(lab-06): build the list: for each threshold the run misses (strictly below), append
    # its sentence; return the list.
    raise NotImplementedError("TODO(lab-06): gate_failures")
