"""Lab 03 exercise, solved: a row rule of the data contract (the reference system's
`data.contracts._scenario_matches_label`).

Check it: `make lab-03 TARGET=local` (one line per behaviour).
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
    return (frame["TX_FRAUD"] == 1) == (frame["TX_FRAUD_SCENARIO"] > 0)
