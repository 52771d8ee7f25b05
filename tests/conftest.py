"""Shared fixtures: small simulated datasets at the handbook's customer/terminal density."""

from __future__ import annotations

import pytest

from reference_app.config import Settings
from reference_app.data.simulator import SimulationParams, simulate_transactions

# --8<-- [start:datasets]
# Same density as the handbook's reference run (1 customer : 2 terminals on the 100x100 grid),
# so per-terminal traffic and frauds per day match its figures at a tenth of the size.
SMALL = {"n_customers": 500, "n_terminals": 1_000, "nb_days": 120, "seed": 7}


def simulation(**overrides) -> SimulationParams:
    """The generator parameters of `Settings` (the handbook's reference run) with `overrides`."""
    return SimulationParams.from_settings(Settings(**overrides))


@pytest.fixture(scope="session")
def small_transactions():
    """≈ 116 000 transactions over 120 days from 2018-04-01."""
    return simulate_transactions(simulation(**SMALL))


@pytest.fixture(scope="session")
def tiny_transactions():
    """≈ 1 500 transactions over 45 days: small enough for O(n²) reference implementations."""
    return simulate_transactions(
        simulation(n_customers=20, n_terminals=15, nb_days=45, radius=40, seed=3)
    )


# --8<-- [end:datasets]
