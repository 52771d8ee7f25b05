"""The value domains of the data contract (reference_app/data/domains.py): every model input has
one, real features meet them, and the raw-data schema checks amounts and labels with them."""

from __future__ import annotations

import numpy as np
import pytest

from reference_app.data.domains import AMOUNT, COUNT, FEATURE_DOMAINS, FLAG, RISK
from reference_app.features import FEATURE_NAMES, build_features


def test_every_model_input_has_a_domain():
    assert list(FEATURE_DOMAINS) == FEATURE_NAMES
    assert {d.name for d in FEATURE_DOMAINS.values()} == {
        "an amount",
        "a flag",
        "a count",
        "a risk",
    }


def test_built_features_meet_their_domains(small_transactions):
    """The server refuses values outside these domains: real features must never be refused."""
    features = build_features(small_transactions)
    outside = {
        name: int(domain.violations(features[name].to_numpy(dtype=np.float64)).sum())
        for name, domain in FEATURE_DOMAINS.items()
    }
    assert not any(outside.values()), outside


@pytest.mark.parametrize(
    ("domain", "inside", "outside"),
    [
        (AMOUNT, [0.0, 12.5, 999_999.99], [-0.01, 1e6, np.nan, np.inf]),
        (FLAG, [0, 1], [2, -1, 0.5, np.nan]),
        (COUNT, [0, 1, 250], [-1, 2.5, np.inf]),
        (RISK, [0.0, 0.25, 1.0], [-0.1, 1.01, np.nan]),
    ],
    ids=["amount", "flag", "count", "risk"],
)
def test_domain_violations(domain, inside, outside):
    assert not domain.violations(np.array(inside, dtype=np.float64)).any()
    assert domain.violations(np.array(outside, dtype=np.float64)).all()


def test_domains_describe_themselves():
    assert [d.describe() for d in (AMOUNT, FLAG, COUNT, RISK)] == [
        "an amount: a number ≥ 0 and < 1,000,000",
        "a flag: 0 or 1",
        "a count: a whole number ≥ 0",
        "a risk: a number in [0, 1]",
    ]
