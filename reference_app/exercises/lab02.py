"""Lab 02's exercise: the terminals a simulated customer may pay at.

The learner writes `terminals_near` in `labs/02-kubernetes-for-ml/starter/nearby.py`; the
simulator (`data.simulator.terminals_within_radius`, behind `fraudlab simulate` and the simulate
Job on the cluster) calls it for every customer and draws each customer's transactions among the
terminals it returns. Reference: `data.simulator.terminals_near` (Fraud Detection Handbook,
ch. 3.2.3: a customer uses the terminals within a radius r of its location).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.simulator import (
    NEARBY_EXERCISE,
    SimulationParams,
    simulate_transactions,
    terminals_near,
)
from . import Behaviour, as_lab_code

EXERCISE = NEARBY_EXERCISE
REFERENCE = terminals_near
FILE = "labs/02-kubernetes-for-ml/starter/nearby.py"
CHECK = "make lab-02 TARGET=local"
GRID = np.array([[10.0, 10.0], [13.0, 14.0], [20.0, 10.0], [9.0, 11.0], [50.0, 50.0], [10.0, 14.9]])


def _answer(function, customer, grid, radius) -> str:
    out = function(np.asarray(customer, dtype=float), grid, radius)
    if not isinstance(out, np.ndarray):
        return f"a {type(out).__name__}, not a numpy array"
    if out.dtype.kind not in "iu":
        return f"an array of {out.dtype}, not of integer indices"
    return repr(out.astype(np.int64).tolist())


def _case(customer, radius, grid=GRID):
    def check(learner, reference):
        return _answer(reference, customer, grid, radius), _answer(learner, customer, grid, radius)

    return check


def _simulation(learner, reference):
    """A small population simulated with the function: the transactions it writes."""
    params = SimulationParams(
        n_customers=80, n_terminals=160, nb_days=10, start_date="2018-04-01", radius=5, seed=2
    )

    def transactions(function):
        with as_lab_code(function):
            frame = simulate_transactions(params)
        digest = int(pd.util.hash_pandas_object(frame, index=False).sum() % 10**12)
        return f"{len(frame)} transactions, {int(frame['TX_FRAUD'].sum())} frauds, hash {digest}"

    return transactions(reference), transactions(learner)


BEHAVIOURS = [
    Behaviour(
        "a terminal at the customer's own location is near",
        _case([10.0, 10.0], 0.5),
        f"compute every terminal's distance to the customer (Euclidean): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "terminals within the radius are listed, those beyond it are not",
        _case([10.0, 10.0], 5.0),
        f"keep the terminals whose distance is ≤ radius: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a terminal exactly at the radius is near (distance ≤ r)",
        _case([10.0, 10.0], 5.0, np.array([[13.0, 14.0], [14.0, 13.0], [16.0, 10.0]])),
        f"≤, not <: a terminal 5 units away is within a radius of 5: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the answer is the terminals' row indices, ascending, as an integer array",
        _case([11.0, 12.0], 4.0),
        f"return np.flatnonzero(mask) (indices), not the mask or the distances: {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        "a customer with no terminal near gets an empty array",
        _case([90.0, 90.0], 5.0),
        f"an empty selection is still an integer array: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the simulator with your function writes the reference's transactions (80 customers)",
        _simulation,
        f"simulate_transactions draws among the terminals you return (FRAUD_LAB_CODE): {FILE}; "
        f"then {CHECK}",
    ),
]
