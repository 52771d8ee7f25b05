"""Lab 02 exercise, solved: the terminals a simulated customer may pay at (the reference
system's `data.simulator.terminals_near`).

Check it: `make lab-02 TARGET=local` (one line per behaviour).
"""

import numpy as np


def terminals_near(customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float) -> np.ndarray:
    """The terminals within `radius` of one customer.

    Args:
        customer_xy: shape (2,), the customer's (x, y).
        terminal_xy: shape (n_terminals, 2), every terminal's (x, y); row i is terminal i.
        radius: the largest distance the customer travels (a terminal exactly that far counts).

    Returns:
        The row indices of the terminals at a Euclidean distance ≤ radius, ascending, as an
        integer numpy array (empty when none is near).
    """
    distance = np.sqrt(np.sum((terminal_xy - customer_xy) ** 2, axis=1))
    return np.flatnonzero(distance <= radius)
