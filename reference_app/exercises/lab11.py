"""Lab 11's exercise: the population stability index from two histograms' shares.

The learner writes `psi_from_shares` in `labs/11-monitoring/starter/psi.py`; the drift monitor
(`monitoring.drift.psi`, behind `fraudlab monitor` and the cluster's drift-monitor Deployment)
calls it for every feature once the bins are counted. Reference: `monitoring.drift`
(Siddiqi, *Credit Risk Scorecards*, 2006; the handbook's drift chapter reads it the same way).
"""

from __future__ import annotations

import numpy as np

from ..monitoring import drift
from . import Behaviour

EXERCISE = drift.PSI_EXERCISE
REFERENCE = drift.psi_from_shares
FILE = "labs/11-monitoring/starter/psi.py"
CHECK = "make lab-11 TARGET=local"


def _same(value: float, reference: float, tolerance: float = 1e-9) -> tuple[str, str]:
    expected = f"{reference:.9f}"
    found = expected if abs(value - reference) <= tolerance else f"{float(value):.9f}"
    return expected, found


def _identical(learner, reference):
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    return _same(learner(shares, shares.copy()), reference(shares, shares))


def _known(learner, reference):
    r, c = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    return _same(learner(r, c), reference(r, c))


def _empty_bin(learner, reference):
    r, c = np.array([0.25, 0.25, 0.5, 0.0]), np.array([0.25, 0.25, 0.25, 0.25])
    value = learner(r, c)
    if not np.isfinite(value):
        return (
            f"{reference(r, c):.9f}",
            f"{value} (an empty bin needs the floor of {drift.PSI_EPSILON})",
        )
    return _same(value, reference(r, c))


def _symmetric(learner, reference):
    r, c = np.array([0.7, 0.2, 0.1]), np.array([0.2, 0.3, 0.5])
    return _same(learner(c, r), learner(r, c))


def _amount_shift(learner, reference):
    """The drift monitor's PSI of TX_AMOUNT when every amount grows by 20 % (deciles)."""
    rng = np.random.default_rng(7)
    before = rng.lognormal(3.5, 0.8, 20_000)
    after = rng.lognormal(3.5, 0.8, 5_000) * 1.2
    return _same(drift.psi(before, after, from_shares=learner), drift.psi(before, after))


BEHAVIOURS = [
    Behaviour(
        "PSI of a histogram with itself is 0",
        _identical,
        f"Σ (c − r) · ln(c / r) is 0 when c = r: edit psi_from_shares in {FILE}, then {CHECK}",
    ),
    Behaviour(
        f"PSI of shares [0.5, 0.5] → [0.9, 0.1] is {drift.psi_from_shares(np.array([0.5, 0.5]), np.array([0.9, 0.1])):.6f}",
        _known,
        f"sum (c - r) * np.log(c / r) over the bins, as a float: {FILE}; then {CHECK}",
    ),
    Behaviour(
        f"an empty bin counts as a share of {drift.PSI_EPSILON} (no infinite PSI)",
        _empty_bin,
        f"floor both share arrays at PSI_EPSILON = {drift.PSI_EPSILON} (np.maximum) before the "
        f"logarithm: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "PSI is symmetric: psi(r, c) = psi(c, r)",
        _symmetric,
        f"use both shares the same way in the formula: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the drift monitor's PSI of TX_AMOUNT after a 20 % price rise equals the reference's",
        _amount_shift,
        f"monitoring.drift.psi bins the values, then calls your function: {FILE}; then {CHECK}",
    ),
]
