"""Lab 11 exercise, solved: the population stability index (PSI) of one feature.

`make lab-11-solution` copies this file over labs/11-monitoring/starter/psi.py.

    PSI = Σ over bins of (c − r) · ln(c / r)
"""

import numpy as np

PSI_EPSILON = 1e-4
"""The smallest share a bin counts with (the reference monitor uses the same floor)."""


def psi_from_shares(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    """PSI of two histograms over the same bins ((bins,) shares each, summing to 1); ≥ 0."""
    r = np.maximum(np.asarray(reference_share, dtype=float), PSI_EPSILON)
    c = np.maximum(np.asarray(current_share, dtype=float), PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))
