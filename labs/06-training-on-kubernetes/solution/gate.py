"""Lab 06 exercise, solved: the quality gate a trained model must pass before it may become
champion (the reference system's `training.promotion.gate_failures`).

Check it: `make lab-06 TARGET=local` (one line per behaviour).
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
    failures = []
    if metrics["auc_roc"] < min_auc:
        failures.append(f"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}")
    if metrics["average_precision"] < min_ap:
        failures.append(f"average precision {metrics['average_precision']:.4f} < {min_ap}")
    return failures
