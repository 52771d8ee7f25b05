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

import math  # noqa: F401 (math.isnan)

import pandas as pd  # noqa: F401 (pd.Timestamp)

from reference_app.features.online import MissingFeatureError  # noqa: F401
from reference_app.features.transform import FEATURE_NAMES  # noqa: F401


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
    # TODO(lab-04): TX_DURING_WEEKEND and TX_DURING_NIGHT from TX_DATETIME, exactly as
    # build_features defines them (pd.Timestamp(...).weekday(): Monday = 0; .hour).
    # TODO(lab-04): the 15 values in FEATURE_NAMES order: the three transaction features you
    # computed, then each window feature from `online`; a window feature that is absent, None
    # or NaN raises MissingFeatureError(f"{key}={transaction[key]}", name, "missing"), where
    # key is CUSTOMER_ID or TERMINAL_ID (the entity the feature belongs to): never a 0 or a NaN.
    raise NotImplementedError("TODO(lab-04): model_inputs")
