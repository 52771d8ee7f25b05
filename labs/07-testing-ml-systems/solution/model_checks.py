"""Lab 07 exercise, solved: the slice test of the model test suite (the reference system's
`training.model_tests.slice_failures`).

Check it: `make lab-07 TARGET=local` (one line per behaviour).
"""

import numpy as np
from sklearn.metrics import roc_auc_score


def slice_failures(
    slices: dict[str, tuple[np.ndarray, np.ndarray]], min_auc: float, min_frauds: int
) -> list[str]:
    """The sentences of the slices whose AUC ROC is below `min_auc`; an empty list when none is.

    Args:
        slices: slice name → (labels, scores) of the slice's transactions: `labels` (n,) 0/1
            (1 = fraud), `scores` (n,) the candidate's fraud probabilities, in the same order.
            The slices come in a fixed order, e.g. "night" then "high amount".
        min_auc: the smallest AUC ROC that passes (a value equal to it passes).
        min_frauds: a slice with fewer frauds than this, or fewer legitimate transactions than
            this, is not judged (too small: its AUC ROC would be noise).

    Returns:
        `[]`, or one sentence per failed slice, in the slices' order, written exactly as:
        "night: AUC ROC 0.6123 < 0.7 (1,234 transactions, 45 frauds)" (AUC with 4 decimals,
        counts with thousands separators: f"{n:,}").
    """
    out = []
    for name, (labels, scores) in slices.items():
        frauds = int(np.sum(labels))
        if frauds < min_frauds or len(labels) - frauds < min_frauds:
            continue
        auc = roc_auc_score(labels, scores)
        if auc < min_auc:
            out.append(
                f"{name}: AUC ROC {auc:.4f} < {min_auc} ({len(labels):,} transactions, {frauds:,} frauds)"
            )
    return out
