"""CP@k on a hand-computed example (Fraud Detection Handbook, ch. 4.3)."""

import numpy as np
import pandas as pd
import pytest

from reference_app.training.evaluation import card_precision_top_k, evaluate_scores


def frame(rows):
    return pd.DataFrame(rows, columns=["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD", "score"]).assign(
        TX_DATETIME=lambda d: pd.to_datetime(d["TX_DATETIME"])
    )


def test_card_precision_top_k_by_hand():
    tx = frame([
        # day 1: card A (fraud) 0.9 and 0.3, B (genuine) 0.8, C (fraud) 0.1
        ("2018-08-08 10:00", "A", 1, 0.9), ("2018-08-08 11:00", "A", 1, 0.3),
        ("2018-08-08 12:00", "B", 0, 0.8), ("2018-08-08 13:00", "C", 1, 0.1),
        # day 2: A again (already detected → removed), C 0.7, D (genuine) 0.6, B 0.2
        ("2018-08-09 09:00", "A", 1, 0.95), ("2018-08-09 10:00", "C", 1, 0.7),
        ("2018-08-09 11:00", "D", 0, 0.6), ("2018-08-09 12:00", "B", 0, 0.2),
    ])  # fmt: skip
    mean, per_day = card_precision_top_k(tx, tx["score"].to_numpy(), k=2)
    # Day 1: top 2 cards by max score = A (0.9), B (0.8) → 1 fraud / 2 = 0.5; A is detected.
    # Day 2: A removed; top 2 = C (0.7), D (0.6) → 1 / 2 = 0.5. Without removal it would be 1.0.
    assert per_day == [0.5, 0.5]
    assert mean == 0.5


def test_card_precision_divides_by_k_even_with_few_cards():
    tx = frame([("2018-08-08 10:00", "A", 1, 0.9)])
    assert card_precision_top_k(tx, tx["score"].to_numpy(), k=100)[0] == pytest.approx(0.01)


def test_evaluate_scores_perfect_and_random():
    rng = np.random.default_rng(0)
    n = 2000
    tx = pd.DataFrame({
        "TX_DATETIME": pd.Timestamp("2018-08-08") + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s"),
        "CUSTOMER_ID": rng.integers(0, 500, n),
        "TX_FRAUD": (rng.random(n) < 0.05).astype(int),
    })  # fmt: skip
    perfect = evaluate_scores(tx, tx["TX_FRAUD"].to_numpy(float), k=10)
    assert perfect["auc_roc"] == 1.0 and perfect["average_precision"] == 1.0
    assert perfect["card_precision_top_k"] == perfect["card_precision_top_k_perfect"]
    noise = evaluate_scores(tx, rng.random(n), k=10)
    assert 0.4 < noise["auc_roc"] < 0.6 and noise["average_precision"] < 0.15
    assert noise["card_precision_top_k"] < perfect["card_precision_top_k_perfect"]
    with pytest.raises(ValueError):
        evaluate_scores(tx.assign(TX_FRAUD=0), rng.random(n))
