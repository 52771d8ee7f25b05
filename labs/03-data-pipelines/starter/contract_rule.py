"""Lab 03 exercise: a row rule of the data contract.

The data contract (a pandera schema) checks every raw transaction before features are built. One
of its row rules ties the label to the fraud scenario the simulator recorded: a fraud
(TX_FRAUD 1) has a scenario from 1 to 4, a genuine transaction (TX_FRAUD 0) has scenario 0. A row
that breaks it is quarantined with the reason `row:scenario_matches_label`, not dropped.

With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from a ConfigMap (the
validate step of the data-pipeline WorkflowTemplate on the cluster), your function is the rule
the validate step runs.

Check your work: `make lab-03 TARGET=local` (one line per behaviour).
"""

import pandas as pd


def scenario_matches_label(frame: pd.DataFrame) -> pd.Series:
    """Whether each row's label and scenario agree.

    Args:
        frame: transactions with the integer columns TX_FRAUD (0 or 1) and TX_FRAUD_SCENARIO
            (0 to 4), on any index.

    Returns:
        A boolean Series on `frame`'s index: True where the row keeps the rule (it passes), False
        where it breaks it (it is quarantined).
    """
    # TODO(lab-03): compare, row by row, "is a fraud" (TX_FRAUD == 1) with "has a fraud
    # scenario" (TX_FRAUD_SCENARIO > 0); the rows where both agree keep the rule.
    raise NotImplementedError("TODO(lab-03): scenario_matches_label")
