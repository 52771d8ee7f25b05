"""Transaction simulator following the Fraud Detection Handbook's design.

Source: Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection —
Practical Handbook* (2022), ch. 3.2 ("Transaction data simulator"). Implemented from the
handbook's description with numpy; every step is vectorised over customers and transactions.

Example:
    >>> params = SimulationParams.from_settings(Settings(n_customers=50, n_terminals=100, nb_days=3))
    >>> tx = simulate_transactions(params)
    >>> list(tx.columns) == TRANSACTION_COLUMNS
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..config import Settings
from ..labcode import Exercise

SECONDS_PER_DAY = 86_400
GRID_SIZE = 100.0
TIME_OF_DAY_MEAN = SECONDS_PER_DAY / 2
TIME_OF_DAY_STD = 20_000.0
# --8<-- [start:scenarios]
SCENARIO1_AMOUNT = 220.0
SCENARIO2_TERMINALS_PER_DAY = 2
SCENARIO2_DAYS = 28
SCENARIO3_CUSTOMERS_PER_DAY = 3
SCENARIO3_DAYS = 14
SCENARIO3_AMOUNT_FACTOR = 5.0
# --8<-- [end:scenarios]

TRANSACTION_COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
]


@dataclass(frozen=True)
# --8<-- [start:params]
class SimulationParams:
    """Generator parameters, recorded in the dataset manifest. The defaults (the handbook's
    reference run) live in `Settings`: build these with `from_settings`."""

    n_customers: int
    n_terminals: int
    nb_days: int
    start_date: str
    radius: float
    seed: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SimulationParams:
        """The parameters `settings` asks for (`FRAUD_N_CUSTOMERS`, …, `FRAUD_SEED`)."""
        return cls(
            n_customers=settings.n_customers,
            n_terminals=settings.n_terminals,
            nb_days=settings.nb_days,
            start_date=settings.start_date.isoformat(),
            radius=settings.radius,
            seed=settings.seed,
        )

    def to_dict(self) -> dict:
        """Return the parameters as a JSON-ready dict."""
        return asdict(self)


# --8<-- [end:params]


def generate_customer_profiles(n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw customer profiles (handbook ch. 3.2.1).

    Returns:
        DataFrame of `n_customers` rows: `CUSTOMER_ID`, location `x_customer_id`, `y_customer_id`
        on the 100x100 grid, `mean_amount` ~ U(5, 100), `std_amount` = mean / 2, and
        `mean_nb_tx_per_day` ~ U(0, 4) (the Poisson rate λ).
    """
    x, y = rng.uniform(0, GRID_SIZE, size=(2, n_customers))
    mean_amount = rng.uniform(5, 100, size=n_customers)
    return pd.DataFrame(
        {
            "CUSTOMER_ID": np.arange(n_customers, dtype=np.int64),
            "x_customer_id": x,
            "y_customer_id": y,
            "mean_amount": mean_amount,
            "std_amount": mean_amount / 2,
            "mean_nb_tx_per_day": rng.uniform(0, 4, size=n_customers),
        }
    )


def generate_terminal_profiles(n_terminals: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw terminal locations uniformly on the 100x100 grid (handbook ch. 3.2.2).

    Returns:
        DataFrame of `n_terminals` rows: `TERMINAL_ID`, `x_terminal_id`, `y_terminal_id`.
    """
    x, y = rng.uniform(0, GRID_SIZE, size=(2, n_terminals))
    return pd.DataFrame(
        {
            "TERMINAL_ID": np.arange(n_terminals, dtype=np.int64),
            "x_terminal_id": x,
            "y_terminal_id": y,
        }
    )


NEARBY_EXERCISE = Exercise(lab=2, module="nearby", function="terminals_near")
"""Lab 02: the learner's `terminals_near` (labs/02-kubernetes-for-ml/starter/nearby.py) stands in
for the spatial index when `FRAUD_LAB_CODE` has it (`labcode`): the simulate Job runs it."""


# --8<-- [start:terminals-near]
def terminals_near(customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float) -> np.ndarray:
    """The terminals one customer may use: those within `radius` of it (handbook ch. 3.2.3).

    Args:
        customer_xy: (2,) the customer's location on the 100x100 grid.
        terminal_xy: (n_terminals, 2) every terminal's location; row i is terminal i.
        radius: the distance a customer travels to pay (`Settings.radius`, 5 grid units).

    Returns:
        (k,) int64 indices of the terminals at a Euclidean distance ≤ `radius`, ascending.
    """
    distance = np.sqrt(np.sum((terminal_xy - customer_xy) ** 2, axis=1))
    return np.flatnonzero(distance <= radius).astype(np.int64)


# --8<-- [end:terminals-near]


def terminals_within_radius(
    customers: pd.DataFrame, terminals: pd.DataFrame, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """List, for each customer, the terminals within `radius` (handbook ch. 3.2.3).

    A k-d tree answers all customers at once (scipy's `cKDTree.query_ball_point`: points at
    distance ≤ r); with the learner's `terminals_near` (lab 02), each customer is asked in turn.

    Returns:
        `(offsets, flat)` in CSR form: customer `i` may use terminals
        `flat[offsets[i]:offsets[i + 1]]`; `offsets` has shape (n_customers + 1,).
    """
    if NEARBY_EXERCISE.path() is not None:
        near = NEARBY_EXERCISE.implementation(terminals_near)
        grid = terminals[["x_terminal_id", "y_terminal_id"]].to_numpy()
        lists = [
            np.asarray(near(xy, grid, radius), dtype=np.int64)
            for xy in customers[["x_customer_id", "y_customer_id"]].to_numpy()
        ]
        offsets = np.concatenate([[0], np.cumsum([len(ids) for ids in lists])]).astype(np.int64)
        return offsets, np.concatenate([np.empty(0, np.int64), *lists])
    tree = cKDTree(terminals[["x_terminal_id", "y_terminal_id"]].to_numpy())
    lists = tree.query_ball_point(
        customers[["x_customer_id", "y_customer_id"]].to_numpy(), r=radius
    )
    lengths = np.fromiter((len(ids) for ids in lists), dtype=np.int64, count=len(lists))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.fromiter(
        (t for ids in lists for t in sorted(ids)), dtype=np.int64, count=int(offsets[-1])
    )
    return offsets, flat


def _generate_legitimate(
    customers: pd.DataFrame,
    offsets: np.ndarray,
    flat: np.ndarray,
    nb_days: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Draw every customer's transactions for every day at once (handbook ch. 3.2.4)."""
    n_cust = len(customers)
    n_terminals_of = np.diff(offsets)
    lam = customers["mean_nb_tx_per_day"].to_numpy()
    counts = rng.poisson(np.broadcast_to(lam, (nb_days, n_cust)))  # (days, customers)
    counts[:, n_terminals_of == 0] = 0  # a customer with no terminal in range makes no transaction
    day_idx, cust_idx = np.nonzero(counts)
    reps = counts[day_idx, cust_idx]
    tx_day = np.repeat(day_idx, reps).astype(np.int64)
    tx_cust = np.repeat(cust_idx, reps).astype(np.int64)
    n = tx_day.size

    time_of_day = np.rint(rng.normal(TIME_OF_DAY_MEAN, TIME_OF_DAY_STD, size=n)).astype(np.int64)
    mean = customers["mean_amount"].to_numpy()[tx_cust]
    std = customers["std_amount"].to_numpy()[tx_cust]
    amount = rng.normal(mean, std)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    amount = np.round(amount, 2)
    pick = np.floor(rng.random(n) * np.maximum(n_terminals_of[tx_cust], 1)).astype(np.int64)
    terminal = (
        flat[np.minimum(offsets[tx_cust] + pick, max(flat.size - 1, 0))] if flat.size else pick
    )

    keep = (time_of_day >= 0) & (time_of_day < SECONDS_PER_DAY)
    return pd.DataFrame(
        {
            "TX_TIME_SECONDS": (tx_day * SECONDS_PER_DAY + time_of_day)[keep],
            "TX_TIME_DAYS": tx_day[keep],
            "CUSTOMER_ID": tx_cust[keep],
            "TERMINAL_ID": terminal[keep],
            "TX_AMOUNT": amount[keep],
        }
    )


def add_frauds(
    transactions: pd.DataFrame,
    customer_ids: np.ndarray,
    terminal_ids: np.ndarray,
    nb_days: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Label transactions with the handbook's three fraud scenarios (ch. 3.2.5), in place.

    1. every transaction with amount > 220 is fraud;
    2. each day, 2 random terminals are compromised for 28 days: all their transactions then are fraud;
    3. each day, 3 random customers are compromised for 14 days: a third of their transactions in
       that window (drawn at random) get amount x 5 and are fraud.

    Args:
        transactions: output of the legitimate generator, sorted by `TX_TIME_SECONDS`.
        customer_ids, terminal_ids: the ids to draw compromised customers and terminals from.
        nb_days: number of simulated days.

    Returns:
        The same frame with `TX_FRAUD` (0/1) and `TX_FRAUD_SCENARIO` (0–3) columns.
    """
    n = len(transactions)
    fraud = np.zeros(n, dtype=np.int64)
    scenario = np.zeros(n, dtype=np.int64)
    amount = transactions["TX_AMOUNT"].to_numpy().copy()
    tx_days = transactions["TX_TIME_DAYS"].to_numpy()

    # Scenario 1: large amounts.
    s1 = amount > SCENARIO1_AMOUNT
    fraud[s1], scenario[s1] = 1, 1

    # --8<-- [start:scenario2]
    # Scenario 2: compromised terminals. A transaction on day t at terminal m is fraud when m was
    # drawn on a day in (t - 28, t]. Encode (terminal, day) pairs as one integer and use isin.
    per_day = min(SCENARIO2_TERMINALS_PER_DAY, len(terminal_ids))
    drawn = np.stack([rng.choice(terminal_ids, per_day, replace=False) for _ in range(nb_days)])
    start_day = np.repeat(np.arange(nb_days), per_day)
    offsets = np.arange(SCENARIO2_DAYS)
    pair_days = (start_day[:, None] + offsets[None, :]).ravel()
    pair_terms = np.repeat(drawn.ravel(), SCENARIO2_DAYS)
    span = nb_days + SCENARIO2_DAYS
    keys = np.unique(pair_terms * span + pair_days)
    s2 = np.isin(transactions["TERMINAL_ID"].to_numpy() * span + tx_days, keys)
    fraud[s2], scenario[s2] = 1, 2
    # --8<-- [end:scenario2]

    # Scenario 3: compromised customers. Index transactions by customer once (CSR), then for each
    # day's draw take the customers' transactions in [day, day + 14) and mark a third of them.
    cust = transactions["CUSTOMER_ID"].to_numpy()
    order = np.argsort(cust, kind="stable")  # within a customer, still sorted by time
    bounds = np.searchsorted(
        cust[order], np.arange(customer_ids.max() + 2 if len(customer_ids) else 1)
    )
    for day in range(nb_days):
        chosen = rng.choice(
            customer_ids, size=min(SCENARIO3_CUSTOMERS_PER_DAY, len(customer_ids)), replace=False
        )
        rows = np.concatenate([order[bounds[c] : bounds[c + 1]] for c in chosen])
        rows = rows[(tx_days[rows] >= day) & (tx_days[rows] < day + SCENARIO3_DAYS)]
        if rows.size == 0:
            continue
        hit = rng.choice(rows, size=rows.size // 3, replace=False)
        amount[hit] = np.round(amount[hit] * SCENARIO3_AMOUNT_FACTOR, 2)
        fraud[hit], scenario[hit] = 1, 3

    transactions["TX_AMOUNT"] = amount
    transactions["TX_FRAUD"] = fraud
    transactions["TX_FRAUD_SCENARIO"] = scenario
    return transactions


def simulate_transactions(
    params: SimulationParams, progress: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """Simulate labelled card transactions (Fraud Detection Handbook, ch. 3.2).

    `Settings()`'s parameters are the handbook's reference run (≈ 1.75 M transactions, ≈ 0.84 %
    fraud). The result depends only on `params`: the same seed gives the same frame.

    Args:
        params: population sizes (`n_customers`, `n_terminals`), `nb_days` simulated from
            `start_date`, the `radius` within which customers use terminals on the 100x100 grid,
            and the `seed` of numpy's PCG64 generator.
        progress: optional callback called with the name of each finished stage.

    Returns:
        DataFrame with `TRANSACTION_COLUMNS`, one row per transaction, sorted by time;
        `TX_AMOUNT` in currency units (cents precision), `TX_TIME_SECONDS` since `start_date`.

    Raises:
        ValueError: if a size is not positive.
    """
    n_customers, n_terminals, nb_days, radius = (
        params.n_customers,
        params.n_terminals,
        params.nb_days,
        params.radius,
    )
    if min(n_customers, n_terminals, nb_days) <= 0 or radius <= 0:
        raise ValueError("n_customers, n_terminals, nb_days and radius must be positive")
    step = progress or (lambda _stage: None)
    rng = np.random.default_rng(params.seed)
    customers = generate_customer_profiles(n_customers, rng)
    terminals = generate_terminal_profiles(n_terminals, rng)
    offsets, flat = terminals_within_radius(customers, terminals, radius)
    step("profiles")
    tx = _generate_legitimate(customers, offsets, flat, nb_days, rng)
    tx = tx.sort_values(["TX_TIME_SECONDS", "CUSTOMER_ID"], kind="stable", ignore_index=True)
    step("transactions")
    tx = add_frauds(
        tx, customers["CUSTOMER_ID"].to_numpy(), terminals["TERMINAL_ID"].to_numpy(), nb_days, rng
    )
    step("frauds")
    start = pd.Timestamp(params.start_date)
    tx["TX_DATETIME"] = start + pd.to_timedelta(tx["TX_TIME_SECONDS"], unit="s")
    tx["TRANSACTION_ID"] = np.arange(len(tx), dtype=np.int64)
    return tx[TRANSACTION_COLUMNS]
