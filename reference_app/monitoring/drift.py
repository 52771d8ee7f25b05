"""Drift statistics between a reference sample (training window) and a current sample.

PSI (population stability index) on quantile bins of the reference; the two-sample
Kolmogorov–Smirnov statistic and p-value from scipy.

Example:
    >>> psi(np.random.normal(size=1000), np.random.normal(0.5, size=1000)) > 0.1   # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from ..labcode import Exercise

# --8<-- [start:thresholds]
PSI_BINS = 10
PSI_EPSILON = 1e-4
PSI_WARN = 0.1
"""Above this PSI a feature is reported as "moderate" (Siddiqi's common reading). The alert
threshold is a setting, FRAUD_PSI_ALERT_THRESHOLD (config.Settings.psi_alert_threshold): the one
source for this module, the report and the PrometheusRule (tests/monitoring checks the rule)."""
# --8<-- [end:thresholds]


PSI_EXERCISE = Exercise(lab=11, module="psi", function="psi_from_shares")
"""Lab 11: the learner's `psi_from_shares` (labs/11-monitoring/starter/psi.py) stands in for
this module's when `FRAUD_LAB_CODE` has it (`labcode`)."""


def psi(
    reference: np.ndarray,
    current: np.ndarray,
    bins: int = PSI_BINS,
    from_shares: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> float:
    """Population stability index: Σ (c − r) · ln(c / r) over bins of the reference.

    Bins are the reference's deciles; a feature with at most `bins` distinct values gets one bin
    per value (plus one for unseen values); empty bins get `PSI_EPSILON` share. Common reading: < 0.1 stable, 0.1–0.25 moderate,
    > 0.25 significant shift (Siddiqi, *Credit Risk Scorecards*, 2006).

    Args:
        reference, current: 1-D arrays of one feature's values.
        bins: number of quantile bins.
        from_shares: the formula on the two histograms' shares; default `psi_from_shares`, or
            the learner's (`PSI_EXERCISE`).

    Returns:
        PSI ≥ 0 (0 for identical distributions).

    Raises:
        ValueError: if either sample is empty.
    """
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if reference.size == 0 or current.size == 0:
        raise ValueError("psi needs two non-empty samples")
    # --8<-- [start:psi-bins]
    values = np.unique(reference)
    if values.size <= bins:
        # Discrete feature (flags, small counts): one bin per reference value, plus one for
        # values the reference never took.
        def share(x: np.ndarray) -> np.ndarray:
            pos = np.searchsorted(values, x)
            known = (pos < values.size) & (values[np.minimum(pos, values.size - 1)] == x)
            return (
                np.bincount(np.where(known, pos, values.size), minlength=values.size + 1) / x.size
            )

        r, c = share(reference), share(current)
    else:
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))[1:-1]
        r = (
            np.bincount(np.searchsorted(inner, reference, side="right"), minlength=inner.size + 1)
            / reference.size
        )
        c = (
            np.bincount(np.searchsorted(inner, current, side="right"), minlength=inner.size + 1)
            / current.size
        )
    # --8<-- [end:psi-bins]
    return float((from_shares or PSI_EXERCISE.implementation(psi_from_shares))(r, c))


# --8<-- [start:psi-from-shares]
def psi_from_shares(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    """PSI of two histograms over the same bins: Σ (c − r) · ln(c / r), each share floored at
    `PSI_EPSILON` so that an empty bin adds a large but finite term (Siddiqi, 2006).

    Args:
        reference_share, current_share: (bins,) shares of each bin, each summing to 1.

    Returns:
        PSI ≥ 0, symmetric in its two arguments.
    """
    r = np.maximum(reference_share, PSI_EPSILON)
    c = np.maximum(current_share, PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


# --8<-- [end:psi-from-shares]


def drift_table(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], alert_threshold: float
) -> pd.DataFrame:
    """PSI and KS per column.

    Args:
        alert_threshold: PSI above which a column's status is "drift" (Settings.psi_alert_threshold).

    Returns:
        Frame indexed by column with `psi`, `ks_statistic`, `ks_pvalue`, `reference_mean`,
        `current_mean` and `status` ("stable", "moderate", "drift").
    """
    rows = []
    for col in columns:
        ref, cur = reference[col].to_numpy(float), current[col].to_numpy(float)
        ks = stats.ks_2samp(ref, cur)
        value = psi(ref, cur)
        status = (
            "drift" if value > alert_threshold else "moderate" if value > PSI_WARN else "stable"
        )
        rows.append(
            {
                "feature": col,
                "psi": value,
                "ks_statistic": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
                "reference_mean": float(ref.mean()),
                "current_mean": float(cur.mean()),
                "status": status,
            }
        )
    return pd.DataFrame(rows).set_index("feature")
