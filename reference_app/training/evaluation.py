"""Fraud detection metrics: AUC ROC, average precision and Card Precision top-k.

Source: Fraud Detection Handbook, ch. 4.2 (threshold-free metrics) and ch. 4.3 (CP@k).

Example:
    >>> card_precision_top_k(frame, scores, k=100)   # doctest: +SKIP
    0.28
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def card_precision_top_k(
    transactions: pd.DataFrame, scores: np.ndarray, k: int = 100
) -> tuple[float, list[float]]:
    """Card Precision top-k, the handbook's operational metric (ch. 4.3).

    Each day, cards (customers) are ranked by their highest transaction score; precision is the
    share of fraudulent cards among the top k (always divided by k). Fraudulent cards found in a
    day's top k are removed from the following days. Ties in score keep the lower customer id first.

    Args:
        transactions: (n, ≥ 3) frame with `TX_DATETIME`, `CUSTOMER_ID`, `TX_FRAUD`.
        scores: (n,) fraud scores aligned with `transactions`' rows.
        k: number of cards investigators can check per day.

    Returns:
        `(mean over days, per-day values)`.
    """
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(transactions["TX_DATETIME"]).dt.normalize().to_numpy(),
            "card": transactions["CUSTOMER_ID"].to_numpy(),
            "fraud": transactions["TX_FRAUD"].to_numpy(),
            "score": np.asarray(scores, dtype=np.float64),
        }
    )
    # --8<-- [start:cpk]
    detected: set = set()
    per_day = []
    for _, day in frame.groupby("day", sort=True):
        day = day[~day["card"].isin(detected)]
        cards = day.groupby("card", sort=True).agg(score=("score", "max"), fraud=("fraud", "max"))
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        per_day.append(float(top["fraud"].sum()) / k)
        detected |= set(top.index[top["fraud"] == 1].tolist())
    return (float(np.mean(per_day)) if per_day else 0.0), per_day
    # --8<-- [end:cpk]


def evaluate_scores(test: pd.DataFrame, scores: np.ndarray, k: int = 100) -> dict[str, float]:
    """Compute the handbook's metrics for scores on a test set.

    Args:
        test: (n, ≥ 3) frame with `TX_DATETIME`, `CUSTOMER_ID`, `TX_FRAUD`.
        scores: (n,) fraud probabilities.
        k: k of CP@k.

    Returns:
        `auc_roc`, `average_precision`, `card_precision_top_k` and `card_precision_top_k_perfect`
        (the CP@k a perfect model reaches on the same test set, an upper bound below 1).

    Raises:
        ValueError: if the test set has a single class.
    """
    y = test["TX_FRAUD"].to_numpy()
    if len(np.unique(y)) < 2:
        raise ValueError("the test set needs both frauds and genuine transactions")
    return {
        "auc_roc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "card_precision_top_k": card_precision_top_k(test, scores, k)[0],
        "card_precision_top_k_perfect": card_precision_top_k(test, y.astype(np.float64), k)[0],
    }
