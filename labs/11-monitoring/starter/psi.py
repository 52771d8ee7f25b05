"""Lab 11 exercise: the population stability index (PSI) of one feature.

The drift monitor bins a feature's values on the training window's deciles, counts the share of
the reference sample (the training window) and of the current sample (today) in each bin, and
calls `psi_from_shares` with the two arrays of shares. With FRAUD_LAB_CODE pointing at this folder
(locally) or this file mounted from a ConfigMap (on the cluster), your function is the one the
drift monitor runs, and the FraudFeatureDrift alert fires on what it returns.

    PSI = Σ over bins of (c − r) · ln(c / r)

where r and c are the reference and current shares of a bin. A bin can be empty (share 0): floor
every share at PSI_EPSILON first, so that the logarithm stays finite.

Check your work: `make lab-11 TARGET=local` (one line per behaviour).
"""

import numpy as np

PSI_EPSILON = 1e-4
"""The smallest share a bin counts with (the reference monitor uses the same floor)."""


def psi_from_shares(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    """PSI of two histograms over the same bins.

    Args:
        reference_share: (bins,) share of the reference sample in each bin (sums to 1).
        current_share: (bins,) share of the current sample in each bin (sums to 1).

    Returns:
        The PSI, a float ≥ 0: 0 for identical histograms, > 0.25 for a significant shift.
    """
    # TODO(lab-11): floor both arrays at PSI_EPSILON (np.maximum), then return the sum over the
    # bins of (c - r) * ln(c / r) as a Python float.
    raise NotImplementedError("TODO(lab-11): psi_from_shares")
