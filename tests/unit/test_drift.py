"""PSI and KS drift statistics."""

import numpy as np
import pandas as pd
import pytest

from reference_app.config import Settings
from reference_app.monitoring.drift import drift_table, psi


def test_psi_zero_for_same_sample_and_grows_with_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    small, large = psi(ref, rng.normal(0.1, 1, 20_000)), psi(ref, rng.normal(1.0, 1, 20_000))
    assert small < 0.1 < 0.25 < large


def test_psi_by_hand_on_a_binary_feature():
    ref = np.array([0] * 80 + [1] * 20)
    cur = np.array([0] * 50 + [1] * 50)
    expected = (0.5 - 0.8) * np.log(0.5 / 0.8) + (0.5 - 0.2) * np.log(0.5 / 0.2)
    assert psi(ref, cur) == pytest.approx(expected)


def test_psi_sees_a_flag_that_disappears():
    """A weekend flag (2/7 of days) against a weekday: the shift must show, not vanish in one bin."""
    ref = np.array([1] * 2857 + [0] * 7143)
    cur = np.zeros(1000)
    assert psi(ref, cur) > 1.0
    assert psi(ref, np.array([2.0] * 10)) > 1.0  # a value never seen in the reference


def test_drift_table_flags_the_shifted_feature():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(size=5000), "b": rng.exponential(size=5000)})
    cur = pd.DataFrame({"a": rng.normal(size=5000), "b": rng.exponential(size=5000) * 3})
    table = drift_table(ref, cur, ["a", "b"], alert_threshold=Settings().psi_alert_threshold)
    assert table.loc["a", "status"] == "stable" and table.loc["b", "status"] == "drift"
    assert table.loc["b", "ks_pvalue"] < 1e-6 < table.loc["a", "ks_pvalue"]
    with pytest.raises(ValueError):
        psi(np.array([]), np.array([1.0]))
