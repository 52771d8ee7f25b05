"""Settings that must agree with each other."""

from __future__ import annotations

import json

from reference_app.config import Settings
from reference_app.features import build_features
from reference_app.serving.replay import v2_request


def test_a_full_batch_fits_under_the_body_cap(small_transactions):
    """A request of `max_batch_rows` real transactions, as the replay sends them (V2 JSON), is
    below `max_body_bytes`: the row limit (400) is the one a client meets, not the cap (413)."""
    s = Settings()
    features = build_features(small_transactions)
    # The widest rows: large amounts and counts make the longest numbers.
    rows = features.sort_values("TX_AMOUNT", ascending=False).head(s.max_batch_rows)
    body = json.dumps(v2_request(rows)).encode()
    assert len(rows) == s.max_batch_rows
    assert len(body) < s.max_body_bytes, f"{len(body):,} bytes ≥ cap {s.max_body_bytes:,}"


def test_child_environment_recreates_the_settings():
    s = Settings(http_port=9123, drift_amount_factor=1.5, mlflow_auth=True)
    again = Settings(**{k.removeprefix("FRAUD_").lower(): v for k, v in s.as_env().items()})
    assert again == s.model_copy(
        update={"mlflow_admin_password": None, "serving_admin_token": None}
    )
    assert "FRAUD_MLFLOW_ADMIN_PASSWORD" not in Settings(mlflow_admin_password="x").as_env()
