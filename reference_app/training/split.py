"""Train/test split of the Fraud Detection Handbook, ch. 3.5 (with known-compromised cards removed).

Example:
    >>> train, test = split_train_test(features, dt.date(2018, 7, 25))   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def split_train_test(
    transactions: pd.DataFrame,
    train_start: dt.date,
    delta_train: int = 7,
    delta_delay: int = 7,
    delta_test: int = 7,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split transactions into a training week and a test week separated by the label delay.

    Test day k (k = 0 … delta_test − 1) keeps only the transactions of customers not already known
    to be compromised: the known set starts as the customers with a fraud in the training window,
    and before test day k it gains the customers with a fraud on day k − 1 of the delay period
    (their labels arrive `delta_delay` days late). Fraud Detection Handbook, ch. 3.5.

    Args:
        transactions: frame with `TX_DATETIME`, `CUSTOMER_ID`, `TX_FRAUD` (and features).
        train_start: first training day.
        delta_train, delta_delay, delta_test: window lengths, in days.

    Returns:
        `(train, test)` frames, each sorted by `TX_DATETIME`, index reset.

    Raises:
        ValueError: if the training or test window holds no transaction.
    """
    day = pd.to_datetime(transactions["TX_DATETIME"]).dt.normalize()
    start = pd.Timestamp(train_start)
    offset = ((day - start) // pd.Timedelta(days=1)).to_numpy()
    in_train = (offset >= 0) & (offset < delta_train)
    fraud = transactions["TX_FRAUD"].to_numpy() == 1
    customer = transactions["CUSTOMER_ID"].to_numpy()
    # --8<-- [start:known]
    known = set(customer[in_train & fraud].tolist())
    test_parts = []
    for k in range(delta_test):
        # Labels of delay-period day k − 1 are known by test day k.
        known |= set(customer[(offset == delta_train + k - 1) & fraud].tolist())
        test_day = offset == delta_train + delta_delay + k
        keep = test_day & ~np.isin(
            customer, np.fromiter(known, dtype=customer.dtype, count=len(known))
        )
        test_parts.append(np.flatnonzero(keep))
    # --8<-- [end:known]
    train = (
        transactions.loc[in_train].sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)
    )
    test = (
        transactions.iloc[np.concatenate(test_parts)]
        .sort_values("TX_DATETIME", kind="stable")
        .reset_index(drop=True)
    )
    if train.empty or test.empty:
        raise ValueError(
            f"empty {'training' if train.empty else 'test'} window for train_start={train_start}: "
            "check the dates against the simulated period"
        )
    return train, test
