"""Lab 03's exercise: a row rule of the data contract, whose failures are quarantined with a reason.

The learner writes `scenario_matches_label` in `labs/03-data-pipelines/starter/contract_rule.py`;
the contract (`data.contracts.TRANSACTION_SCHEMA`, behind `fraudlab validate` and the validate
step of the data-pipeline WorkflowTemplate) runs it as the check `scenario_matches_label`, and the
rows it refuses go to quarantine with the reason `row:scenario_matches_label`. Reference:
`data.contracts._scenario_matches_label` (Fraud Detection Handbook, ch. 3.2: scenario 0 is a
genuine transaction, 1–3 the simulated fraud scenarios; 4 is this course's night pattern).
"""

from __future__ import annotations

import pandas as pd

from ..data import contracts
from ..data.simulator import SimulationParams, simulate_transactions
from . import Behaviour, as_lab_code

EXERCISE = contracts.SCENARIO_RULE_EXERCISE
REFERENCE = contracts._scenario_matches_label
FILE = "labs/03-data-pipelines/starter/contract_rule.py"
CHECK = "make lab-03 TARGET=local"
REASON = "row:scenario_matches_label"


def _rows(pairs: list[tuple[int, int]], index: list[int] | None = None) -> pd.DataFrame:
    """A frame with TX_FRAUD and TX_FRAUD_SCENARIO from (label, scenario) pairs."""
    fraud, scenario = zip(*pairs, strict=True)
    return pd.DataFrame({"TX_FRAUD": fraud, "TX_FRAUD_SCENARIO": scenario}, index=index)


def _verdicts(function, frame: pd.DataFrame) -> str:
    out = function(frame)
    if not isinstance(out, pd.Series):
        return f"a {type(out).__name__}, not a pandas Series of booleans"
    if not out.index.equals(frame.index):
        return f"a Series on the index {list(out.index)}, not the frame's {list(frame.index)}"
    if out.dtype != bool:
        return f"a Series of {out.dtype}, not of bool"
    return repr([bool(v) for v in out])


def _case(pairs: list[tuple[int, int]], index: list[int] | None = None):
    def check(learner, reference):
        return _verdicts(reference, _rows(pairs, index)), _verdicts(learner, _rows(pairs, index))

    return check


def _validate_step(learner, reference):
    """`validate_transactions` on a simulated month with 3 + 3 rows whose scenario contradicts
    their label: what it keeps, what it quarantines, and why."""
    frame = simulate_transactions(
        SimulationParams(
            n_customers=100, n_terminals=200, nb_days=20, start_date="2018-04-01", radius=5, seed=3
        )
    )
    frauds = frame.index[frame["TX_FRAUD"] == 1][:3]
    genuine = frame.index[frame["TX_FRAUD"] == 0][:3]
    frame.loc[frauds, "TX_FRAUD_SCENARIO"] = 0
    frame.loc[genuine, "TX_FRAUD_SCENARIO"] = 2

    def outcome(function):
        with as_lab_code(function):
            result = contracts.validate_transactions(frame)
        return f"{len(result.valid)} valid, quarantined {result.reasons}"

    return outcome(reference), outcome(learner)


BEHAVIOURS = [
    Behaviour(
        "a genuine transaction (TX_FRAUD 0) with scenario 0 passes",
        _case([(0, 0), (0, 0)]),
        f"a genuine row passes when its scenario is 0: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a fraud with a scenario 1-4 passes",
        _case([(1, 1), (1, 2), (1, 3), (1, 4)]),
        f"a fraud row passes when its scenario is above 0: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a fraud with scenario 0 is refused",
        _case([(1, 0), (0, 0)]),
        f"compare (TX_FRAUD == 1) with (TX_FRAUD_SCENARIO > 0): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a genuine transaction with a fraud scenario is refused",
        _case([(0, 3), (1, 3)]),
        f"the rule goes both ways: a scenario above 0 needs TX_FRAUD 1: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the answer is a boolean Series on the frame's own index",
        _case([(0, 0), (1, 2), (1, 0)], index=[40, 41, 42]),
        f"return the element-wise comparison of two columns (a pandas Series): {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        f"the validate step quarantines exactly the 6 contradicting rows of a month, as {REASON}",
        _validate_step,
        f"validate_transactions runs your rule through the contract (FRAUD_LAB_CODE): {FILE}; "
        f"then {CHECK}",
    ),
]
