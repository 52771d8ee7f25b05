"""The features in a feature store: Feast's offline sources, and a raw transaction's model inputs.

Training reads the features dataset (`build_features`: every transaction with its 15 features).
Serving gets a raw transaction (`RAW_FIELDS`) and must build the same 15 inputs: the three
transaction features it computes itself (`TX_AMOUNT`, `TX_DURING_WEEKEND`, `TX_DURING_NIGHT`),
the twelve window features it looks up by entity in the feature store's online store. Both come
from the same rows: `entity_tables` turns the features dataset into the point-in-time entity
tables Feast reads as offline sources (reference_app/feature_repo), and `feast materialize` copies
the newest row of each entity into the online store.

Example:
    >>> tables = entity_tables(build_features(transactions))      # doctest: +SKIP
    >>> tables["customer_windows"].columns.tolist()[:2]          # doctest: +SKIP
    ['CUSTOMER_ID', 'event_timestamp']
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import FEATURE_DELAY_DAYS
from ..labcode import Exercise
from .transform import (
    CUSTOMER_FEATURES,
    FEATURE_NAMES,
    NIGHT_LAST_HOUR,
    TERMINAL_FEATURES,
    WINDOWS_DAYS,
)

# --8<-- [start:names]
VIEWS = {
    "customer_windows": ("CUSTOMER_ID", CUSTOMER_FEATURES),
    "terminal_risk": ("TERMINAL_ID", TERMINAL_FEATURES),
}
"""Feast feature view → (its entity's join key, its features): reference_app/feature_repo."""


def ttl_days(delay_days: int = FEATURE_DELAY_DAYS) -> dict[str, int]:
    """{view: how old a row may be, in days, and still be served}: beyond it, the window it
    describes has emptied. The terminal windows end `delay_days` before the transaction (the
    label delay the features dataset was built with: `Settings.delta_delay`), so their ttl is
    longer by it (reference_app/feature_repo/features.py reads the same delay from
    FEAST_REPO_DELAY_DAYS, which `launchers.feast.feast_env` sets from `delta_delay`)."""
    return {
        "customer_windows": max(WINDOWS_DAYS),
        "terminal_risk": delay_days + max(WINDOWS_DAYS),
    }


TTL_DAYS = ttl_days()
"""`ttl_days` at the default delay (`FEATURE_DELAY_DAYS`)."""
RAW_FIELDS = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")
"""What a client sends to score a transaction (no feature: the serving path builds them)."""
# --8<-- [end:names]
TRANSACTION_FEATURES = ("TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT")
"""The model inputs computed from the transaction itself, at serving time."""
EVENT_TIMESTAMP = "event_timestamp"
SOURCE_FILE = "{view}.parquet"


class MissingFeatureError(LookupError):
    """The online store has no value of a feature for an entity: a transaction cannot be scored
    (never with a NaN or a 0 in its place).

    Attributes:
        entity: e.g. "CUSTOMER_ID=4242"; feature: the feature's name; status: Feast's field
            status ("NOT_FOUND", "OUTSIDE_MAX_AGE", or "missing" when the answer lacks it).
    """

    def __init__(self, entity: str, feature: str, status: str):
        self.entity, self.feature, self.status = entity, feature, status
        super().__init__(
            f"no online value of {feature} for {entity} (feature store status: {status}): the "
            "feature pipeline has not materialized this entity (`fraudlab up --features`), "
            "or the id is unknown"
        )


def entity_tables(features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The point-in-time entity tables of the features dataset: Feast's offline sources.

    One row per entity and transaction time: `<join key>`, `event_timestamp` (UTC) and the
    view's features as of that time (the values the features dataset gives the transaction).
    Rows of one entity at the same second are one row: their windows are equal (a customer
    window includes every transaction at its end second; a terminal window depends on the time
    only), so the point-in-time join is never ambiguous.

    Args:
        features: (n, ≥ 16) the features dataset (`TX_DATETIME`, the ids, `FEATURE_NAMES`).

    Returns:
        {view: frame} for the views of `VIEWS`, rows sorted by (key, time).
    """
    when = pd.to_datetime(features["TX_DATETIME"]).dt.tz_localize("UTC")
    tables = {}
    for view, (key, names) in VIEWS.items():
        table = pd.DataFrame(
            {key: features[key].to_numpy(dtype=np.int64), EVENT_TIMESTAMP: when.to_numpy()}
        )
        for name in names:
            table[name] = features[name].to_numpy()
        table = table.drop_duplicates([key, EVENT_TIMESTAMP], keep="last")
        tables[view] = table.sort_values([key, EVENT_TIMESTAMP], kind="stable").reset_index(
            drop=True
        )
    return tables


def export_sources(features: pd.DataFrame, folder: str | Path) -> dict[str, Path]:
    """Write `entity_tables(features)` as Parquet files `<view>.parquet` in `folder`.

    Returns:
        {view: path of its file}.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for view, table in entity_tables(features).items():
        paths[view] = folder / SOURCE_FILE.format(view=view)
        table.to_parquet(paths[view], index=False)
    return paths


def online_values(answer: dict, row: int = 0) -> dict[str, float | None]:
    """The features of row `row` of a Feast feature server's `/get-online-features` answer.

    The answer is `{"metadata": {"feature_names": [...]}, "results": [{"values": [...],
    "statuses": [...]}, ...]}`, one result per name (join keys included), one value per entity
    row (feast/feature_server.py, `convert_response_to_dict`). A value whose status is not
    "PRESENT" is None.

    Returns:
        {name: value or None}.
    """
    names = answer["metadata"]["feature_names"]
    out = {}
    for name, result in zip(names, answer["results"], strict=True):
        status = (result.get("statuses") or ["PRESENT"] * len(result["values"]))[row]
        out[name] = result["values"][row] if status == "PRESENT" else None
    return out


# --8<-- [start:model-inputs]
def model_inputs(transaction: dict, online: dict) -> list[float]:
    """The 15 model inputs of a raw transaction, in `FEATURE_NAMES` order, as training saw them.

    Args:
        transaction: the raw fields (`RAW_FIELDS`); `TX_DATETIME` an ISO 8601 string or a
            datetime, the time of day where the transaction happened (as in the dataset).
        online: {feature name: value} of the customer and terminal window features, as the
            online store returned them (None: no value).

    Returns:
        15 floats: `TX_AMOUNT`, `TX_DURING_WEEKEND` (1.0 on Saturday and Sunday),
        `TX_DURING_NIGHT` (1.0 when the hour is ≤ 6), then the 12 window features.

    Raises:
        MissingFeatureError: a window feature is absent or None (names the entity and feature).

    Source: Fraud Detection Handbook, ch. 3.4 (the same definitions as `build_features`).
    """
    when = pd.Timestamp(transaction["TX_DATETIME"])
    computed = {
        "TX_AMOUNT": float(transaction["TX_AMOUNT"]),
        "TX_DURING_WEEKEND": float(when.weekday() >= 5),
        "TX_DURING_NIGHT": float(when.hour <= NIGHT_LAST_HOUR),
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


# --8<-- [end:model-inputs]

INPUTS_EXERCISE = Exercise(
    lab=4, module="online_inputs", function="model_inputs", raises=(MissingFeatureError,)
)
"""Lab 04's exercise: the learner's `model_inputs` builds the inputs the serving path scores; its
MissingFeatureError (a missing entity, named) is part of the contract and reaches the caller."""


def raw_transaction(row: pd.Series | dict) -> dict:
    """The raw fields of a dataset row, as a client would send them (`TX_DATETIME` in ISO 8601)."""
    when = row["TX_DATETIME"]
    return {
        "TRANSACTION_ID": int(row["TRANSACTION_ID"]),
        "TX_DATETIME": pd.Timestamp(when).isoformat() if not isinstance(when, str) else when,
        "CUSTOMER_ID": int(row["CUSTOMER_ID"]),
        "TERMINAL_ID": int(row["TERMINAL_ID"]),
        "TX_AMOUNT": float(row["TX_AMOUNT"]),
    }


def check_raw(transaction: object) -> dict:
    """`transaction` if it is a raw transaction; else ValueError naming what is wrong.

    Raises:
        ValueError: not an object, a field of `RAW_FIELDS` missing, or a value of the wrong type
            (`TX_DATETIME`: a string pandas reads as a time; None, "", "NaT" and non-strings
            are refused).
    """
    if not isinstance(transaction, dict):
        raise ValueError(f"a transaction is a JSON object with {list(RAW_FIELDS)}")
    missing = [f for f in RAW_FIELDS if f not in transaction]
    if missing:
        raise ValueError(
            f"the transaction lacks {missing} (a raw transaction has {list(RAW_FIELDS)})"
        )
    for field in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        if isinstance(transaction[field], bool) or not isinstance(transaction[field], int):
            raise ValueError(f"{field} must be an integer, got {transaction[field]!r}")
    amount = transaction["TX_AMOUNT"]
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
        raise ValueError(f"TX_AMOUNT must be a finite number, got {amount!r}")
    when = transaction["TX_DATETIME"]
    # pd.Timestamp(None), pd.Timestamp("") and pd.Timestamp("NaT") return NaT without raising,
    # and NaT's weekday/hour would pass as an ordinary time: refuse anything but a real time.
    try:
        stamp = pd.Timestamp(when) if isinstance(when, str) else None
    except (ValueError, TypeError, OverflowError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise ValueError(
            f"TX_DATETIME must be an ISO 8601 time string (e.g. '2018-05-15T10:00:00'), got {when!r}"
        )
    return transaction


def as_utc(when: dt.datetime | pd.Timestamp | str) -> pd.Timestamp:
    """A dataset time (naive, as `TX_DATETIME`) as the UTC timestamp Feast stores."""
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
