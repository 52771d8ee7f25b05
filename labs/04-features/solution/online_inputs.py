"""Lab 04 exercise: the model inputs of a raw transaction, built at serving time.

A client sends a raw transaction: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID,
TX_AMOUNT. The serving path looks up the customer's and the terminal's window features in the
feature store's online store (Feast) and calls your `model_inputs` to build the 15 inputs the
model was trained on, in the order it was trained with (FEATURE_NAMES). Training computed the
three transaction features with `build_features` (reference_app/features/transform.py): compute
them here the same way, or the model sees inputs it never saw in training.

With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from a ConfigMap (the
online scorer on the cluster), your function is the one the serving path runs.

Check your work: `make lab-4 TARGET=local` (one line per behaviour).
"""

import math

import pandas as pd

from reference_app.features.online import MissingFeatureError
from reference_app.features.transform import FEATURE_NAMES


def model_inputs(transaction: dict, online: dict) -> list[float]:
    """The 15 model inputs of `transaction`, in FEATURE_NAMES order.

    Args:
        transaction: the raw fields; TX_DATETIME an ISO 8601 string (local time of the
            transaction, as in the dataset).
        online: {feature name: value} of the 12 window features from the online store; a
            value is None when the store has none.

    Returns:
        15 floats: TX_AMOUNT, TX_DURING_WEEKEND (1.0 on Saturday and Sunday, else 0.0),
        TX_DURING_NIGHT (1.0 when the hour is 6 or less, else 0.0), then the window features.

    Raises:
        MissingFeatureError: a window feature is absent from `online`, None or NaN.
    """
    when = pd.Timestamp(transaction["TX_DATETIME"])
    computed = {
        "TX_AMOUNT": float(transaction["TX_AMOUNT"]),
        "TX_DURING_WEEKEND": 1.0 if when.weekday() >= 5 else 0.0,
        "TX_DURING_NIGHT": 1.0 if when.hour <= 6 else 0.0,
    }
    inputs = []
    for name in FEATURE_NAMES:
        if name in computed:
            inputs.append(computed[name])
            continue
        value = online.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            key = "CUSTOMER_ID" if name.startswith("CUSTOMER_ID") else "TERMINAL_ID"
            raise MissingFeatureError(f"{key}={transaction[key]}", name, "missing")
        inputs.append(float(value))
    return inputs
