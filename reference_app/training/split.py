"""Train/test split of the Fraud Detection Handbook, ch. 3.5 (with known-compromised cards removed).

Example:
    >>> protocol = EvaluationProtocol.from_settings(Settings())
    >>> train, test = protocol.split(features)                            # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Settings


@dataclass(frozen=True)
class EvaluationProtocol:
    """The handbook's train/delay/test windows and the k of CP@k (Fraud Detection Handbook,
    ch. 3.5 and 4.2). Built from `Settings` (the one source of the defaults).

    Attributes:
        train_start: first training day.
        delta_train, delta_delay, delta_test: window lengths, in days.
        top_k: k of Card Precision top-k.
    """

    train_start: dt.date
    delta_train: int
    delta_delay: int
    delta_test: int
    top_k: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EvaluationProtocol:
        """The protocol `settings` configures (`FRAUD_TRAIN_START`, `FRAUD_DELTA_*`, `FRAUD_TOP_K`)."""
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})

    def starting(self, train_start: dt.date) -> EvaluationProtocol:
        """The same windows moved to start on `train_start` (continuous training's recent window)."""
        return dataclasses.replace(self, train_start=train_start)

    @property
    def key(self) -> str:
        """A stable text form, e.g. `2018-07-25/7/7/7/k100` (part of a training run's identity)."""
        return f"{self.train_start}/{self.delta_train}/{self.delta_delay}/{self.delta_test}/k{self.top_k}"

    def split(self, transactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """`split_train_test` with this protocol's windows."""
        return split_train_test(
            transactions, self.train_start, self.delta_train, self.delta_delay, self.delta_test
        )


def split_train_test(
    transactions: pd.DataFrame,
    train_start: dt.date,
    delta_train: int,
    delta_delay: int,
    delta_test: int,
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
