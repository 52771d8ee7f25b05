"""Lab 18's queue on a real PostgreSQL (Debian's, on a free 127.0.0.1 port), as the cluster keeps
it: tables in schema `review` (created when missing, through SQLAlchemy's schema_translate_map),
a replayed day queued, a label stored, the summary and the training rows read back; MLflow's own
tables in the same database are untouched (public schema)."""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reference_app.config import Settings
from reference_app.launchers.stack import free_port
from reference_app.responsible.review import ReviewQueue, reviewed_training_rows

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.fixture(scope="module")
def postgres_uri():
    if not POSTGRES_BIN:
        pytest.fail("PostgreSQL is not installed: run scripts/system-packages.sh")
    try:
        import psycopg  # noqa: F401 - SQLAlchemy 2.1's driver for postgresql:// URIs
    except ImportError:
        pytest.fail("psycopg is not in this venv: make install (pyproject pins psycopg[binary])")
    bin_dir, port = POSTGRES_BIN[-1], free_port()
    root = Path(tempfile.mkdtemp(prefix="fraudlab-review-pg-"))
    root.chmod(0o755)
    (root / "pw").write_text("queue-pw")
    subprocess.run(["chown", "-R", "postgres:postgres", str(root)], check=True)
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "mlflow", f"--pwfile={root / 'pw'}",
                    "--auth-host=scram-sha-256", "--auth-local=trust"], check=True, capture_output=True)  # fmt: skip
    proc = subprocess.Popen([*as_postgres, str(bin_dir / "postgres"), "-D", str(root / "data"), "-k", str(root),
                             "-c", "listen_addresses=127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    uri = f"postgresql://mlflow:queue-pw@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 60
    try:
        yield from _ready(uri, proc, deadline)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _ready(uri: str, proc: subprocess.Popen, deadline: float):
    while True:
        try:
            with sa.create_engine(uri).connect() as conn:
                conn.execute(
                    sa.text("CREATE TABLE IF NOT EXISTS experiments (id int)")
                )  # MLflow's stand-in
                conn.commit()
            break
        except sa.exc.OperationalError:
            assert proc.poll() is None and time.monotonic() < deadline, "PostgreSQL did not start"
            time.sleep(0.3)
    yield uri


def test_the_queue_lives_in_schema_review_of_postgres(postgres_uri):
    settings = Settings(
        review_database_uri=postgres_uri,
        review_band_low=0.1,
        review_band_high=0.5,
        review_capacity=2,
    )
    queue = ReviewQueue.from_settings(settings)
    day = pd.DataFrame({
        "TRANSACTION_ID": [1, 2, 3, 4], "TX_DATETIME": pd.Timestamp("2018-08-08 09:00"), "CUSTOMER_ID": [1, 2, 3, 4],
        "TERMINAL_ID": [1, 2, 3, 4], "TX_AMOUNT": [5.0, 6.0, 7.0, 8.0], "served_score": [0.2, 0.9, 0.4, 0.3],
        "served_version": "2",
    })  # fmt: skip
    out = queue.enqueue_day(settings, dt.date(2018, 8, 8), day)
    assert (out["in_band"], out["enqueued"]) == (3, 2)
    queue.label(3, 1, "ana")
    # A second connection, as the review page and the retrain step make their own.
    again = ReviewQueue.from_settings(settings)
    assert again.summary()["reviewed"] == 1 and [c["transaction_id"] for c in again.cases()] == [
        3,
        4,
    ]
    rows = reviewed_training_rows(
        settings, day.assign(TX_FRAUD=0), dt.date(2018, 8, 1), dt.date(2018, 8, 8)
    )
    assert rows["TRANSACTION_ID"].tolist() == [3] and rows["TX_FRAUD"].tolist() == [1]
    with sa.create_engine(postgres_uri).connect() as conn:
        tables = {
            (s, t)
            for s, t in conn.execute(
                sa.text(
                    "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name LIKE 'review_%' OR table_name = 'experiments'"
                )
            )
        }
    assert tables == {
        ("review", "review_cases"),
        ("review", "review_batches"),
        ("public", "experiments"),
    }
    assert np.isfinite(again.cases()[0]["score"])
