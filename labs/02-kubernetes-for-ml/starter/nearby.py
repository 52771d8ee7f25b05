"""Lab 02 exercise: the terminals a simulated customer may pay at.

The simulator places customers and payment terminals on a 100x100 grid; a customer pays only at
terminals within a radius r of where it lives (Fraud Detection Handbook, ch. 3.2.3). For every
customer it calls `terminals_near` and draws the customer's transactions among the terminals
you return.

With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from a ConfigMap (the
simulate Job on the cluster), your function is the one the simulator runs: a wrong one changes
every transaction of the dataset.

Check your work: `make lab-02 TARGET=local` (one line per behaviour).
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
    # TODO(lab-02): compute the distance of every terminal to the customer in one vectorised
    # expression (no Python loop over terminals), then return the indices where it is ≤ radius
    # (np.flatnonzero).
    raise NotImplementedError("TODO(lab-02): terminals_near")
