"""Value domains of the data contract: the one definition of what an amount, a flag, a count and
a risk may hold.

`fraudlab validate` builds the raw-transaction schema's checks from these (`TX_AMOUNT`,
`TX_FRAUD`; `data.contracts`), and the model server refuses a request whose inputs leave their
domain (`FEATURE_DOMAINS`, read by `serving.runtime.FraudRuntime._check_request`), so a value the
contract would quarantine in a batch file is a 400 at the API, naming the domain it left.

Example:
    >>> AMOUNT.violations(np.array([12.5, -1.0]))
    array([False,  True])
    >>> FEATURE_DOMAINS["TX_DURING_NIGHT"].describe()
    'a flag: 0 or 1'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features.transform import FEATURE_NAMES


# --8<-- [start:domain]
@dataclass(frozen=True)
class Domain:
    """The values one column may hold: a range, whole numbers only, or a set of values.

    Attributes:
        name: what the column is ("an amount").
        minimum: smallest allowed value (inclusive); None: unbounded.
        maximum: largest allowed value (inclusive); None: unbounded.
        below: values must be strictly below this; None: no such bound.
        integer: only whole numbers.
        values: the only allowed values; None: any value in the range.
    """

    name: str
    minimum: float | None = None
    maximum: float | None = None
    below: float | None = None
    integer: bool = False
    values: tuple[int, ...] | None = None

    def violations(self, x: np.ndarray) -> np.ndarray:
        """Which values (n,) leave the domain: a boolean mask (n,). NaN always does."""
        bad = ~np.isfinite(x)
        if self.values is not None:
            bad |= ~np.isin(x, self.values)
        if self.minimum is not None:
            bad |= x < self.minimum
        if self.maximum is not None:
            bad |= x > self.maximum
        if self.below is not None:
            bad |= x >= self.below
        if self.integer:
            bad |= x != np.floor(x)
        return bad

    def describe(self) -> str:
        """The domain in words, for messages: "a risk: a number in [0, 1]"."""
        if self.values is not None:
            return f"{self.name}: {' or '.join(map(str, self.values))}"
        kind = "a whole number" if self.integer else "a number"
        low = "" if self.minimum is None else f"≥ {self.minimum:g}"
        if self.maximum is not None and self.minimum is not None:
            return f"{self.name}: {kind} in [{self.minimum:g}, {self.maximum:g}]"
        high = "" if self.below is None else f"< {self.below:,.0f}"
        return f"{self.name}: {kind} {' and '.join(p for p in (low, high) if p)}".rstrip()


AMOUNT = Domain("an amount", minimum=0, below=1e6)
"""Transaction amounts and their averages, in currency units (the handbook's are below 1 000)."""
FLAG = Domain("a flag", values=(0, 1))
"""Yes/no columns: fraud label, weekend, night."""
COUNT = Domain("a count", minimum=0, integer=True)
"""Numbers of transactions in a window."""
RISK = Domain("a risk", minimum=0, maximum=1)
"""Share of a terminal's labelled transactions that were fraud."""
# --8<-- [end:domain]


def _feature_domain(name: str) -> Domain:
    if name == "TX_AMOUNT" or "_AVG_AMOUNT_" in name:
        return AMOUNT
    if name in ("TX_DURING_WEEKEND", "TX_DURING_NIGHT"):
        return FLAG
    if "_NB_TX_" in name:
        return COUNT
    if "_RISK_" in name:
        return RISK
    raise KeyError(f"no domain for feature {name}")


FEATURE_DOMAINS: dict[str, Domain] = {name: _feature_domain(name) for name in FEATURE_NAMES}
"""The domain of each of the 15 model inputs, in `FEATURE_NAMES` order."""


def _bounds(attr: str, missing: float) -> np.ndarray:
    return np.array(
        [
            missing if getattr(d, attr) is None else getattr(d, attr)
            for d in FEATURE_DOMAINS.values()
        ],
        dtype=np.float64,
    )


_LOW, _HIGH, _BELOW = (
    _bounds("minimum", -np.inf),
    _bounds("maximum", np.inf),
    _bounds("below", np.inf),
)
_INTEGER = np.array([d.integer for d in FEATURE_DOMAINS.values()])
_VALUED = [
    (np.array([j for j, d in enumerate(FEATURE_DOMAINS.values()) if d.values == values]), values)
    for values in dict.fromkeys(d.values for d in FEATURE_DOMAINS.values() if d.values is not None)
]
"""(columns, allowed values) for each distinct value set (the flags: one group)."""


def feature_violations(features: np.ndarray) -> np.ndarray:
    """Which values of (n, 15) finite features, columns in `FEATURE_NAMES` order, leave their
    feature's domain: a boolean mask (n, 15), equal to each column's `Domain.violations`, in a
    few array operations over the whole batch (the model server checks every request with it)."""
    bad = (features < _LOW) | (features > _HIGH) | (features >= _BELOW)
    bad |= _INTEGER & (features != np.floor(features))
    for columns, values in _VALUED:  # a few allowed values: compare with each (np.isin sorts)
        bad[:, columns] |= (features[:, columns, None] != np.array(values)).all(axis=-1)
    return bad
