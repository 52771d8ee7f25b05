"""Drift scenarios injected into simulated transactions, so the monitoring loop can be shown.

From a chosen day on, any mix of:
- more compromised terminals: extra terminals per day are compromised for 28 days (the
  handbook's scenario 2 at a higher rate, ch. 3.2.5) — terminal risk features drift;
- an amount shift: every amount is multiplied by a factor (the handbook's scenario-1 rule,
  amount > 220 → fraud, is applied again to the new amounts) — amount features drift;
- a new fraud pattern, scenario 4 "night card testing": chosen customers make 3–5 small
  transactions (1–5 currency units) between 01:00 and 05:00 at random terminals — a pattern the
  models never saw.

Example:
    >>> drifted = inject_drift(transactions, DriftScenario(start_day=50, amount_factor=1.5), seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .simulator import SCENARIO1_AMOUNT, SCENARIO2_DAYS, SECONDS_PER_DAY, TRANSACTION_COLUMNS

SCENARIO4_NIGHT_TESTING = 4
NIGHT_START_S, NIGHT_END_S = 1 * 3600, 5 * 3600


@dataclass(frozen=True)
class DriftScenario:
    """What changes from `start_day` (offset from the first simulated day) on."""

    start_day: int
    extra_compromised_terminals: int = 0
    amount_factor: float = 1.0
    night_testing_customers: int = 0

    def to_dict(self) -> dict:
        """JSON-ready parameters (recorded in the dataset manifest)."""
        return asdict(self)

    @property
    def active(self) -> bool:
        """True when the scenario changes anything."""
        return bool(
            self.extra_compromised_terminals
            or self.amount_factor != 1.0
            or self.night_testing_customers
        )


def inject_drift(
    transactions: pd.DataFrame, scenario: DriftScenario, seed: int = 0
) -> pd.DataFrame:
    """Apply a drift scenario to simulated transactions (output of `simulate_transactions`).

    Args:
        transactions: (n, 9) frame in the handbook's schema, sorted by time.
        scenario: what to change, from `scenario.start_day`.
        seed: seed of the scenario's own random draws (the base data is not re-drawn).

    Returns:
        A new frame in the same schema, sorted by time, `TRANSACTION_ID` renumbered 0 … n' − 1.

    Raises:
        ValueError: if the start day is outside the simulated period or a parameter is negative.
    """
    days = transactions["TX_TIME_DAYS"].to_numpy()
    if not 0 <= scenario.start_day <= days.max():
        raise ValueError(
            f"drift start day {scenario.start_day} is outside the simulated days 0 … {days.max()}"
        )
    if (
        scenario.extra_compromised_terminals < 0
        or scenario.night_testing_customers < 0
        or scenario.amount_factor <= 0
    ):
        raise ValueError("drift parameters must be non-negative (amount factor positive)")
    rng = np.random.default_rng([seed, 4242])
    tx = transactions.copy()
    after = days >= scenario.start_day
    origin = tx["TX_DATETIME"].iloc[0].normalize() - pd.Timedelta(days=int(days[0]))

    if scenario.amount_factor != 1.0:
        tx.loc[after, "TX_AMOUNT"] = np.round(
            tx.loc[after, "TX_AMOUNT"].to_numpy() * scenario.amount_factor, 2
        )
        big = (
            after
            & (tx["TX_AMOUNT"].to_numpy() > SCENARIO1_AMOUNT)
            & (tx["TX_FRAUD"].to_numpy() == 0)
        )
        tx.loc[big, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 1]

    if scenario.extra_compromised_terminals:
        terminals = tx["TERMINAL_ID"].unique()
        last_day = int(days.max())
        pairs = set()
        for day in range(scenario.start_day, last_day + 1):
            for t in rng.choice(
                terminals,
                size=min(scenario.extra_compromised_terminals, len(terminals)),
                replace=False,
            ):
                pairs.update((int(t), d) for d in range(day, day + SCENARIO2_DAYS))
        span = last_day + SCENARIO2_DAYS + 1
        keys = np.fromiter((t * span + d for t, d in pairs), dtype=np.int64, count=len(pairs))
        hit = (
            after
            & np.isin(tx["TERMINAL_ID"].to_numpy() * span + days, keys)
            & (tx["TX_FRAUD"].to_numpy() == 0)
        )
        tx.loc[hit, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 2]

    extra = []
    if scenario.night_testing_customers:
        customers = tx["CUSTOMER_ID"].unique()
        terminals = tx["TERMINAL_ID"].unique()
        for day in range(scenario.start_day, int(days.max()) + 1):
            for c in rng.choice(
                customers, size=min(scenario.night_testing_customers, len(customers)), replace=False
            ):
                n = int(rng.integers(3, 6))
                seconds = day * SECONDS_PER_DAY + rng.integers(NIGHT_START_S, NIGHT_END_S, size=n)
                extra.append(pd.DataFrame({
                    "TX_TIME_SECONDS": seconds, "TX_TIME_DAYS": day, "CUSTOMER_ID": int(c),
                    "TERMINAL_ID": rng.choice(terminals, size=n), "TX_AMOUNT": np.round(rng.uniform(1, 5, size=n), 2),
                    "TX_FRAUD": 1, "TX_FRAUD_SCENARIO": SCENARIO4_NIGHT_TESTING,
                }))  # fmt: skip
    if extra:
        new = pd.concat(extra, ignore_index=True)
        new["TX_DATETIME"] = origin + pd.to_timedelta(new["TX_TIME_SECONDS"], unit="s")
        tx = pd.concat(
            [tx, new[[c for c in TRANSACTION_COLUMNS if c != "TRANSACTION_ID"]]], ignore_index=True
        )
    tx = tx.sort_values(["TX_TIME_SECONDS", "CUSTOMER_ID"], kind="stable", ignore_index=True)
    tx["TRANSACTION_ID"] = np.arange(len(tx), dtype=np.int64)
    return tx[TRANSACTION_COLUMNS]
