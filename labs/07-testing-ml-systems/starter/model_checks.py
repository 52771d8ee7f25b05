"""Lab 07 exercise: the slice test of the model test suite (write it here).

The pipeline's model-tests step scores each new candidate on the test week and calls
`slice_failures` with the labels and scores of two slices: the night transactions
(TX_DURING_NIGHT = 1) and the high amounts (TX_AMOUNT ≥ 100). With FRAUD_LAB_CODE pointing at this
folder (locally) or this file mounted from the ConfigMap lab-code-07 (the model-tests template on
the cluster), your function is the one that runs: the run is tagged model_tests_passed=true/false
with your sentences in model_test_failures, and the promote step refuses `champion` to a candidate
that fails.

Check your work: `make lab-07 TARGET=local` (one line per behaviour).
"""

import numpy as np
from sklearn.metrics import roc_auc_score  # noqa: F401 - yours to use


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
    # TODO(lab-07): for each slice, in order: count its frauds (labels are 0/1); skip a slice
    # with fewer than min_frauds frauds or fewer than min_frauds legitimate transactions;
    # otherwise compute its AUC ROC (roc_auc_score(labels, scores)) and, when it is strictly
    # below min_auc, append the slice's sentence. Return the list.
    raise NotImplementedError("TODO(lab-07): slice_failures")
