"""The value domains of the data contract (reference_app/data/domains.py): every model input has
one, real features meet them, and the raw-data schema checks amounts and labels with them."""

from __future__ import annotations

import numpy as np
import pytest

from reference_app.data.contracts import TRANSACTION_SCHEMA, validate_transactions
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


def test_the_raw_data_contract_checks_amounts_and_labels_with_the_domains():
    """`fraudlab validate` and the model server share one definition (data/domains.py)."""
    stats = {
        (column, check.name): check.statistics
        for column in ("TX_AMOUNT", "TX_FRAUD")
        for check in TRANSACTION_SCHEMA.columns[column].checks
    }
    assert stats[("TX_AMOUNT", "greater_than_or_equal_to")] == {"min_value": AMOUNT.minimum}
    assert stats[("TX_AMOUNT", "less_than")] == {"max_value": AMOUNT.below}
    assert stats[("TX_FRAUD", "isin")] == {"allowed_values": list(FLAG.values)}


def test_an_amount_outside_its_domain_is_quarantined(small_transactions):
    frame = small_transactions.head(50).copy()
    frame.loc[3, "TX_AMOUNT"] = -1.0
    frame.loc[7, "TX_AMOUNT"] = 1e6
    result = validate_transactions(frame)
    assert result.reasons == {
        "TX_AMOUNT:greater_than_or_equal_to(0)": 1,
        "TX_AMOUNT:less_than(1000000.0)": 1,
    }
    assert AMOUNT.violations(frame["TX_AMOUNT"].to_numpy()).sum() == 2


def test_feature_violations_equal_each_domains_own(small_transactions):
    """The server's one-pass check over a batch (n, 15) marks exactly what each column's
    `Domain.violations` marks, on real features with values pushed out of every domain."""
    from reference_app.data.domains import FEATURE_DOMAINS, feature_violations
    from reference_app.features import FEATURE_NAMES, build_features

    x = build_features(small_transactions).head(2_000)[FEATURE_NAMES].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(3)
    rows = rng.integers(0, len(x), size=200)
    cols = rng.integers(0, x.shape[1], size=200)
    x[rows, cols] = rng.choice([-1.0, 0.5, 2.0, 1e6, 3.7], size=200)
    expected = np.column_stack(
        [d.violations(x[:, j]) for j, d in enumerate(FEATURE_DOMAINS.values())]
    )
    assert expected.any()
    np.testing.assert_array_equal(feature_violations(x), expected)
