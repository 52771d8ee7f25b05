"""Lab 18 exercise (solved): which scored transactions an analyst reviews.

Scores in the uncertainty band [band_low, band_high) go to the human review queue, at most
`capacity` a day, highest score first (like the k of CP@k). The replay calls this function
(FRAUD_LAB_CODE) on every scored day.
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
    uncertain = np.flatnonzero((scores >= band_low) & (scores < band_high))
    order = np.argsort(-scores[uncertain], kind="stable")
    return uncertain[order][:capacity]
