"""Feast definitions of the fraud features: two entities, their offline sources, two feature views.

This folder is a Feast feature repository, imported by `feast apply` in `.venv-feast` (Feast runs
in an environment of its own: its FastAPI/Starlette pins conflict with MLServer's, see the
Makefile), never by the app. So it does not import `reference_app`; the names below are the
ones of `reference_app.features.transform` (`CUSTOMER_FEATURES`, `TERMINAL_FEATURES`) and
`reference_app.features.online` (views, ttl), and tests/unit/test_feature_repo.py checks them
equal.

The offline sources are the point-in-time entity tables `fraudlab feature-store export` writes
from the features dataset (one row per entity and transaction time, the features as of that
time) into $FEAST_REPO_SOURCE. Feast joins them point-in-time for training
(`get_historical_features`: the newest row at or before each entity row's time, within the ttl)
and copies the newest row per entity into the online store (`materialize`).

Feast 0.67 API: `Entity(name, join_keys, value_type)` (feast/entity.py), `FileSource(path,
timestamp_field)` (feast/infra/offline_stores/file_source.py), `FeatureView(name, entities, ttl,
schema, source)` (feast/feature_view.py).
"""

import os
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

SOURCE = os.environ.get("FEAST_REPO_SOURCE", "data/feast/source")
WINDOWS_DAYS = (1, 7, 30)
DELAY_DAYS = int(os.environ.get("FEAST_REPO_DELAY_DAYS", "7"))

# --8<-- [start:views]
customer = Entity(name="customer", join_keys=["CUSTOMER_ID"], value_type=ValueType.INT64)
terminal = Entity(name="terminal", join_keys=["TERMINAL_ID"], value_type=ValueType.INT64)

customer_windows = FeatureView(
    name="customer_windows",
    entities=[customer],
    # Older than the longest window, a row describes a window that has emptied since: not served.
    ttl=timedelta(days=max(WINDOWS_DAYS)),
    schema=[
        Field(name=f"CUSTOMER_ID_{stat}_{n}DAY_WINDOW", dtype=dtype)
        for n in WINDOWS_DAYS
        for stat, dtype in (("NB_TX", Int64), ("AVG_AMOUNT", Float64))
    ],
    source=FileSource(path=f"{SOURCE}/customer_windows.parquet", timestamp_field="event_timestamp"),
)

terminal_risk = FeatureView(
    name="terminal_risk",
    entities=[terminal],
    ttl=timedelta(days=DELAY_DAYS + max(WINDOWS_DAYS)),
    schema=[
        Field(name=f"TERMINAL_ID_{stat}_{n}DAY_WINDOW", dtype=dtype)
        for n in WINDOWS_DAYS
        for stat, dtype in (("NB_TX", Int64), ("RISK", Float64))
    ],
    source=FileSource(path=f"{SOURCE}/terminal_risk.parquet", timestamp_field="event_timestamp"),
)
# --8<-- [end:views]
