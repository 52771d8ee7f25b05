"""Lab 18 exercise: which scored transactions an analyst reviews.

The model scores every transaction. Those it is sure about need no person: a score far below the
flag threshold passes, a flagged one is an alert already. The ones in between — the uncertainty
band [band_low, band_high) — go to a human review queue. Analysts can only look at `capacity`
cases a day (like the k of CP@k), so when more scores fall in the band, the highest go first.

With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from the ConfigMap
lab-code-18 (the pipeline's replay step on the cluster), your function decides what the replay
puts in the queue.

Check your work: `make lab-18 TARGET=local` (one line per behaviour).
"""

import numpy as np


def select_for_review(
    scores: np.ndarray, band_low: float, band_high: float, capacity: int
) -> np.ndarray:
    """The positions of the transactions that go to review, highest score first.

    Args:
        scores: (n,) fraud probabilities of one day's transactions.
        band_low: a score s is uncertain when band_low <= s ...
        band_high: ... and s < band_high.
        capacity: the most cases analysts review in a day (>= 0).

    Returns:
        (m,) integer positions into `scores`, m <= capacity, ordered by score, highest first;
        equal scores keep their order (a stable sort).
    """
    scores = np.asarray(scores, dtype=np.float64)
    # TODO(lab-18): the positions whose score is in the band (np.flatnonzero of a boolean mask);
    # order them by score, highest first, with a stable sort (np.argsort(-s, kind="stable"));
    # keep at most `capacity` of them.
    raise NotImplementedError("TODO(lab-18): select_for_review")
