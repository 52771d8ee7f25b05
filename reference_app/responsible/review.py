"""The human review queue: uncertain transactions wait for an analyst's label (lab 18).

Where transactions are scored (the replay, `serving.replay.replay_day`), the scores in the
uncertainty band [`review_band_low`, `review_band_high`) go to the queue, at most
`review_capacity` a day, highest score first: analysts look at k cases a day, as the handbook's
investigators check k cards (Fraud Detection Handbook, ch. 4.3, CP@k). Which scores go is the
learner's rule in lab 18 (`select_for_review`, `REVIEW_EXERCISE`).

An analyst's label (`fraudlab review label`, or the review page) is stored with who labelled it
and when. Labels come back two ways:

- the next retraining window (`reviewed_training_rows`): the labelled cases of the days whose
  delayed labels are not in yet (after the window's test week, up to the cycle's day) join the
  training set with the analyst's label — early feedback beside the delayed labels (Dal Pozzolo
  et al., "Credit Card Fraud Detection: A Realistic Modeling and a Novel Learning Strategy",
  IEEE TNNLS 2018: feedbacks from investigated alerts, delayed labels for the rest);
- the monitoring (`review_summary`): how many cases were queued and reviewed, and the share an
  analyst confirmed as fraud, before the delayed labels arrive.

The queue is two tables: in the MLflow backend's database locally (SQLite), in schema `review`
of the PostgreSQL database on the cluster (`review_database_uri`). SQLAlchemy Core, the
SQLAlchemy MLflow already brings.

Example:
    >>> queue = ReviewQueue.from_settings(Settings())                      # doctest: +SKIP
    >>> queue.label(123, 1, analyst="ana")                                   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..config import Settings
from ..labcode import Exercise, LabCodeError

REVIEW_EXERCISE = Exercise(lab=18, module="review_band", function="select_for_review")
"""Lab 18: the learner's `select_for_review` (labs/18-responsible-ai/starter/review_band.py)
stands in for the reference when `FRAUD_LAB_CODE` has it: the replay enqueues with it."""

LABELS = {0: "genuine", 1: "fraud"}
"""The labels an analyst may give."""
MAX_ANALYST_CHARS = 64

metadata = sa.MetaData()
cases = sa.Table(
    "review_cases",
    metadata,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.String(10), nullable=False, index=True),
    sa.Column("tx_datetime", sa.String(32), nullable=False),
    sa.Column("customer_id", sa.BigInteger, nullable=False),
    sa.Column("terminal_id", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("enqueued_at", sa.String(32), nullable=False),
    sa.Column("label", sa.Integer, nullable=True),
    sa.Column("analyst", sa.String(MAX_ANALYST_CHARS), nullable=True),
    sa.Column("labelled_at", sa.String(32), nullable=True),
)
batches = sa.Table(
    "review_batches",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("scored", sa.Integer, nullable=False),
    sa.Column("in_band", sa.Integer, nullable=False),
    sa.Column("enqueued", sa.Integer, nullable=False),
    sa.Column("band_low", sa.Float, nullable=False),
    sa.Column("band_high", sa.Float, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)


class ReviewError(ValueError):
    """Bad input for the queue: an unknown case, a label that is not 0/1, a bad analyst name."""


# --8<-- [start:band]
def select_for_review(
    scores: np.ndarray, band_low: float, band_high: float, capacity: int
) -> np.ndarray:
    """The transactions an analyst reviews: scores in the uncertainty band, at most `capacity`.

    A score s is uncertain when band_low ≤ s < band_high. With more uncertain transactions than
    analysts can look at in a day (`capacity`, like the k of CP@k: Fraud Detection Handbook,
    ch. 4.3), the highest scores go first; equal scores keep their order.

    Args:
        scores: (n,) fraud probabilities of one day's transactions.
        band_low, band_high: the band, band_low inclusive, band_high exclusive.
        capacity: cases a day (≥ 0).

    Returns:
        (m,) int64 positions into `scores`, m ≤ capacity, highest score first.

    Example:
        >>> select_for_review(np.array([0.1, 0.3, 0.6, 0.4]), 0.2, 0.5, 1).tolist()
        [3]
    """
    scores = np.asarray(scores, dtype=np.float64)
    uncertain = np.flatnonzero((scores >= band_low) & (scores < band_high))
    order = np.argsort(-scores[uncertain], kind="stable")
    return uncertain[order][:capacity].astype(np.int64)


# --8<-- [end:band]


def review_selection(settings: Settings, scores: np.ndarray) -> np.ndarray:
    """`select_for_review` (or the learner's, lab 18) with the band and capacity of `settings`.

    Raises:
        LabCodeError: the learner's function is not written yet, or returns positions that are
            not unique integers within `scores`, or more than the capacity.
    """
    chosen = REVIEW_EXERCISE.implementation(select_for_review)(
        np.asarray(scores, dtype=np.float64),
        settings.review_band_low,
        settings.review_band_high,
        settings.review_capacity,
    )
    chosen = np.asarray(chosen)
    n = len(scores)
    if chosen.ndim != 1 or (len(chosen) and not np.issubdtype(chosen.dtype, np.integer)):
        raise LabCodeError(
            f"lab 18: select_for_review returned {chosen!r}; expected integer positions"
        )
    if len(set(chosen.tolist())) != len(chosen) or (
        len(chosen) and (chosen.min() < 0 or chosen.max() >= n)
    ):
        raise LabCodeError(
            "lab 18: select_for_review returned repeated positions or positions outside the day"
        )
    if len(chosen) > settings.review_capacity:
        raise LabCodeError(
            f"lab 18: select_for_review returned {len(chosen)} cases, more than the capacity {settings.review_capacity}"
        )
    return chosen.astype(np.int64)


def database_uri(settings: Settings) -> str:
    """The queue's database: `review_database_uri`, else the MLflow backend store, else the local
    MLflow SQLite file under `state_dir` (the one `fraudlab up` starts MLflow on)."""
    if settings.review_database_uri:
        return settings.review_database_uri
    if settings.mlflow_backend_store_uri:
        return settings.mlflow_backend_store_uri
    return f"sqlite:///{(Path(settings.state_dir) / 'mlflow.db').resolve()}"


def queue_available(settings: Settings) -> bool:
    """Whether there is a queue database to use: one configured, or the local MLflow's SQLite."""
    uri = database_uri(settings)
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class ReviewQueue:
    """The queue's tables in one database (SQLite file or PostgreSQL schema)."""

    engine: sa.Engine

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewQueue:
        """Connect (and create the tables when missing). PostgreSQL: in schema `review_schema`,
        created when missing; SQLAlchemy's `schema_translate_map` puts the schema-less tables
        there (SQLAlchemy 2.x docs, "Translation of Schema Names")."""
        uri = database_uri(settings)
        if uri.startswith("sqlite"):
            engine = sa.create_engine(uri, connect_args={"timeout": 30})
        else:
            engine = sa.create_engine(uri, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{settings.review_schema}"'))
            engine = engine.execution_options(schema_translate_map={None: settings.review_schema})
        metadata.create_all(engine)
        return cls(engine)

    # --8<-- [start:enqueue]
    def enqueue_day(self, settings: Settings, day: dt.date, scored: pd.DataFrame) -> dict:
        """Queue the uncertain transactions of one scored day (the replay's output).

        A day replayed again replaces its cases that nobody labelled yet; labelled cases stay.

        Args:
            settings: band, capacity.
            day: the scored day.
            scored: (n, ·) frame with `TRANSACTION_ID`, `TX_DATETIME`, `CUSTOMER_ID`,
                `TERMINAL_ID`, `TX_AMOUNT`, `served_score`, `served_version`.

        Returns:
            `day`, `scored`, `in_band` (scores in the band), `enqueued`, `band`, `capacity`, `rule`.
        """
        scores = scored["served_score"].to_numpy(dtype=np.float64)
        chosen = review_selection(settings, scores)
        in_band = int(
            ((scores >= settings.review_band_low) & (scores < settings.review_band_high)).sum()
        )
        rows = scored.iloc[chosen]
        now = _now()
        records = [
            {
                "transaction_id": int(r.TRANSACTION_ID),
                "day": day.isoformat(),
                "tx_datetime": pd.Timestamp(r.TX_DATETIME).isoformat(),
                "customer_id": int(r.CUSTOMER_ID),
                "terminal_id": int(r.TERMINAL_ID),
                "amount": float(r.TX_AMOUNT),
                "score": float(r.served_score),
                "model_version": str(r.served_version),
                "enqueued_at": now,
            }
            for r in rows.itertuples(index=False)
        ]
        rule = REVIEW_EXERCISE.source()
        with self.engine.begin() as conn:
            conn.execute(
                cases.delete().where(cases.c.day == day.isoformat(), cases.c.label.is_(None))
            )
            kept = {
                t
                for (t,) in conn.execute(
                    sa.select(cases.c.transaction_id).where(cases.c.day == day.isoformat())
                )
            }
            new = [r for r in records if r["transaction_id"] not in kept]
            if new:
                conn.execute(cases.insert(), new)
            conn.execute(batches.delete().where(batches.c.day == day.isoformat()))
            conn.execute(batches.insert(), [{
                "day": day.isoformat(), "scored": len(scores), "in_band": in_band,
                "enqueued": len(records), "band_low": settings.review_band_low,
                "band_high": settings.review_band_high, "capacity": settings.review_capacity,
                "rule": rule, "model_version": str(scored["served_version"].mode().iat[0]) if len(scored) else "",
                "created_at": now,
            }])  # fmt: skip
        return {
            "day": day.isoformat(),
            "scored": len(scores),
            "in_band": in_band,
            "enqueued": len(records),
            "band": [settings.review_band_low, settings.review_band_high],
            "capacity": settings.review_capacity,
            "rule": rule,
        }

    # --8<-- [end:enqueue]

    def cases(
        self, *, day: str | None = None, pending: bool | None = None, limit: int = 1000
    ) -> list[dict]:
        """Queued cases, highest score first; `pending` True: unlabelled only, False: labelled only."""
        query = sa.select(cases).order_by(cases.c.day, cases.c.score.desc(), cases.c.transaction_id)
        if day is not None:
            query = query.where(cases.c.day == day)
        if pending is True:
            query = query.where(cases.c.label.is_(None))
        elif pending is False:
            query = query.where(cases.c.label.is_not(None))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.limit(limit))]

    def batches(self) -> list[dict]:
        """What each replayed day sent to the queue (`enqueue_day`'s answers), oldest first."""
        with self.engine.connect() as conn:
            return [
                dict(r._mapping) for r in conn.execute(sa.select(batches).order_by(batches.c.day))
            ]

    # --8<-- [start:label]
    def label(self, transaction_id: int, label: int, analyst: str) -> dict:
        """Store an analyst's label for a queued case (a new label replaces an earlier one).

        Raises:
            ReviewError: `label` not 0 or 1, an empty or too long analyst name, or no such case.
        """
        if label not in LABELS:
            raise ReviewError(f"label must be 0 (genuine) or 1 (fraud), not {label!r}")
        analyst = (analyst or "").strip()
        if not analyst or len(analyst) > MAX_ANALYST_CHARS or not analyst.isprintable():
            raise ReviewError(f"analyst: 1 to {MAX_ANALYST_CHARS} printable characters")
        with self.engine.begin() as conn:
            done = conn.execute(
                cases.update()
                .where(cases.c.transaction_id == int(transaction_id))
                .values(label=int(label), analyst=analyst, labelled_at=_now())
            )
            if done.rowcount != 1:
                raise ReviewError(f"no queued case with transaction id {transaction_id}")
            row = conn.execute(
                sa.select(cases).where(cases.c.transaction_id == int(transaction_id))
            ).one()
        return dict(row._mapping)

    # --8<-- [end:label]

    def summary(self) -> dict:
        """`queued`, `reviewed`, `confirmed_fraud`, `pending` over every day, and `by_day`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    cases.c.day,
                    sa.func.count().label("queued"),
                    sa.func.count(cases.c.label).label("reviewed"),
                    sa.func.coalesce(sa.func.sum(cases.c.label), 0).label("confirmed_fraud"),
                )
                .group_by(cases.c.day)
                .order_by(cases.c.day)
            ).all()
        by_day = {
            r.day: {
                "queued": r.queued,
                "reviewed": r.reviewed,
                "confirmed_fraud": int(r.confirmed_fraud),
            }
            for r in rows
        }
        total = {
            k: sum(d[k] for d in by_day.values()) for k in ("queued", "reviewed", "confirmed_fraud")
        }
        return {**total, "pending": total["queued"] - total["reviewed"], "by_day": by_day}


def review_summary(settings: Settings) -> dict | None:
    """The queue's `ReviewQueue.summary`, or None when there is no queue database (the monitor
    and the report show it when there is one)."""
    if not queue_available(settings):
        return None
    return ReviewQueue.from_settings(settings).summary()


# --8<-- [start:feedback]
def reviewed_training_rows(
    settings: Settings, features: pd.DataFrame, after: dt.date, through: dt.date
) -> pd.DataFrame:
    """The reviewed cases that join a retraining window: labelled cases of the days after `after`
    (the window's test week ends there; later days' delayed labels are not in yet) up to
    `through` (the cycle's day), with their features and the analyst's label as `TX_FRAUD`.

    Days up to `after` are left out: their delayed labels are known (and the test week must not
    train on its own transactions).

    Returns:
        (m, ·) rows of `features` (m = such labelled cases found in it), `TX_FRAUD` replaced by
        the analyst's label; empty without a queue.
    """
    if not queue_available(settings):
        return features.iloc[0:0]
    queue = ReviewQueue.from_settings(settings)
    labelled = [
        c
        for c in queue.cases(pending=False, limit=1_000_000)
        if after < dt.date.fromisoformat(c["day"]) <= through
    ]
    labels = pd.Series({c["transaction_id"]: c["label"] for c in labelled}, dtype="int64")
    rows = features[features["TRANSACTION_ID"].isin(labels.index)].copy()
    rows["TX_FRAUD"] = labels.reindex(rows["TRANSACTION_ID"]).to_numpy()
    return rows


# --8<-- [end:feedback]
