"""The simulator against the Fraud Detection Handbook's figures (ch. 3.2), at a tenth of the scale."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from reference_app.data.simulator import SECONDS_PER_DAY, TRANSACTION_COLUMNS, simulate_transactions
from tests.conftest import SMALL, simulation

# P(Normal(43 200, 20 000) falls outside [0, 86 400)) ≈ 3.1 %: those draws are dropped.
KEPT_SHARE = 0.969


def test_columns_and_types(small_transactions):
    tx = small_transactions
    assert list(tx.columns) == TRANSACTION_COLUMNS
    assert tx["TRANSACTION_ID"].is_unique and tx["TRANSACTION_ID"].is_monotonic_increasing
    assert tx["TX_DATETIME"].is_monotonic_increasing
    assert pd.api.types.is_datetime64_any_dtype(tx["TX_DATETIME"])
    assert (tx["TX_TIME_DAYS"] == tx["TX_TIME_SECONDS"] // SECONDS_PER_DAY).all()
    assert (
        tx["TX_DATETIME"] - pd.to_timedelta(tx["TX_TIME_SECONDS"], unit="s")
        == pd.Timestamp("2018-04-01")
    ).all()
    assert tx["TX_TIME_DAYS"].between(0, SMALL["nb_days"] - 1).all()


def test_same_seed_same_data_other_seed_other_data(small_transactions):
    again = simulate_transactions(simulation(**SMALL))
    pd.testing.assert_frame_equal(small_transactions, again)
    other = simulate_transactions(simulation(**{**SMALL, "seed": SMALL["seed"] + 1}))
    assert len(other) != len(small_transactions) or not other["TX_AMOUNT"].equals(
        small_transactions["TX_AMOUNT"]
    )


def test_transactions_per_day_match_poisson_rates(small_transactions):
    # λ ~ U(0, 4) → 2 transactions per customer per day on average, minus dropped times.
    per_day = len(small_transactions) / SMALL["nb_days"]
    expected = SMALL["n_customers"] * 2 * KEPT_SHARE
    assert per_day == pytest.approx(expected, rel=0.10)


def test_time_of_day_is_truncated_normal(small_transactions):
    tod = small_transactions["TX_TIME_SECONDS"] % SECONDS_PER_DAY
    assert tod.mean() == pytest.approx(SECONDS_PER_DAY / 2, rel=0.01)
    # Truncating N(σ = 20 000) to ±2.16σ shrinks the standard deviation to ≈ 18 900.
    assert 18_000 < tod.std() < 19_800


def test_genuine_amounts(small_transactions):
    genuine = small_transactions[small_transactions["TX_FRAUD_SCENARIO"] != 3]["TX_AMOUNT"]
    assert (genuine >= 0).all()
    assert (np.round(genuine, 2) == genuine).all()
    # Customer means ~ U(5, 100) → 52.5 on average.
    assert genuine.mean() == pytest.approx(52.5, rel=0.10)


def test_fraud_scenarios(small_transactions):
    tx = small_transactions
    s1 = tx[tx["TX_FRAUD_SCENARIO"] == 1]
    assert (s1["TX_AMOUNT"] > 220).all()
    # Scenario 1 is ≈ 0.055 % of transactions in the handbook's run (973 / 1 754 155).
    assert 0.0003 < len(s1) / len(tx) < 0.0009
    assert ((tx["TX_FRAUD"] == 1) == (tx["TX_FRAUD_SCENARIO"] > 0)).all()
    frauds_per_day = tx.groupby("TX_TIME_DAYS")["TX_FRAUD"].sum()
    # Handbook: ≈ 57 frauds/day in the first 30 days, ≈ 85/day after (density kept, so same counts).
    assert frauds_per_day.iloc[:30].mean() == pytest.approx(57, rel=0.25)
    assert frauds_per_day.iloc[30:].mean() == pytest.approx(85, rel=0.20)


def test_compromised_terminals_and_customers(small_transactions):
    tx = small_transactions
    s2 = tx[tx["TX_FRAUD_SCENARIO"] == 2]
    # 2 terminals drawn per day (with repeats across days): ≈ 213 distinct among 1 000 over 120 days.
    assert 150 <= s2["TERMINAL_ID"].nunique() <= 2 * SMALL["nb_days"]
    # A compromised terminal's frauds last 28 days from the day it was drawn.
    first_day = s2.groupby("TERMINAL_ID")["TX_TIME_DAYS"].min()
    late = s2.join(first_day.rename("first"), on="TERMINAL_ID")
    single_window = late.groupby("TERMINAL_ID").filter(
        lambda g: g["TX_TIME_DAYS"].max() - g["first"].iloc[0] < 28
    )
    assert len(single_window) > 0.5 * len(s2)
    s3 = tx[tx["TX_FRAUD_SCENARIO"] == 3]
    # 3 customers drawn per day, a third of their transactions for 14 days, amounts x 5.
    assert s3["TX_AMOUNT"].mean() > 3 * tx.loc[tx["TX_FRAUD"] == 0, "TX_AMOUNT"].mean()
    assert 200 <= s3["CUSTOMER_ID"].nunique() <= 3 * SMALL["nb_days"]


def test_rejects_non_positive_sizes():
    with pytest.raises(ValueError):
        simulate_transactions(dataclasses.replace(simulation(), n_customers=0))
