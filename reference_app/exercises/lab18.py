"""Lab 18's exercise: which scored transactions go to the human review queue.

The learner writes `select_for_review` in `labs/18-responsible-ai/starter/review_band.py`; the
replay (`serving.replay.replay_day`, behind `fraudlab replay` and the pipeline's replay step on
the cluster) calls it on every scored day and queues what it returns
(`responsible.review.ReviewQueue.enqueue_day`). Reference: `responsible.review.select_for_review`
(an uncertainty band, and a daily capacity like the k of CP@k: Fraud Detection Handbook, ch. 4.3).
"""

from __future__ import annotations

import datetime as dt
import tempfile

import numpy as np
import pandas as pd

from ..config import Settings
from ..responsible import review
from . import Behaviour, as_lab_code

EXERCISE = review.REVIEW_EXERCISE
REFERENCE = review.select_for_review
FILE = "labs/18-responsible-ai/starter/review_band.py"
CHECK = "make lab-18 TARGET=local"
SCORES = np.array([0.01, 0.30, 0.05, 0.72, 0.49, 0.50, 0.20, 0.05, 0.33, 0.90])


def _positions(value) -> str:
    try:
        return str([int(v) for v in np.asarray(value).reshape(-1)])
    except (TypeError, ValueError):
        return f"not positions: {value!r}"


def _case(scores: np.ndarray, low: float, high: float, capacity: int):
    def check(learner, reference):
        return _positions(reference(scores.copy(), low, high, capacity)), _positions(
            learner(scores.copy(), low, high, capacity)
        )

    return check


def _a_day(learner, reference):
    """1,000 scores of a day (a fixed draw, many ties at two decimals), band 0.05–0.5, 25 a day."""
    scores = np.round(np.random.default_rng(18).beta(0.3, 6, size=1000), 2)
    return _case(scores, 0.05, 0.5, 25)(learner, reference)


def _the_replay_queues(learner, reference):
    """What `ReviewQueue.enqueue_day` (the replay's call) queues with the function, on a fresh
    SQLite queue: the transaction ids, highest score first."""

    def queued(function):
        with tempfile.TemporaryDirectory() as folder, as_lab_code(function):
            settings = Settings(
                review_database_uri=f"sqlite:///{folder}/queue.db",
                review_band_low=0.05,
                review_band_high=0.5,
                review_capacity=3,
            )
            queue = review.ReviewQueue.from_settings(settings)
            n = len(SCORES)
            day = pd.DataFrame({
                "TRANSACTION_ID": np.arange(100, 100 + n), "TX_DATETIME": pd.Timestamp("2018-08-08 12:00"),
                "CUSTOMER_ID": np.arange(n), "TERMINAL_ID": np.arange(n), "TX_AMOUNT": np.full(n, 10.0),
                "served_score": SCORES, "served_version": "1",
            })  # fmt: skip
            out = queue.enqueue_day(settings, dt.date(2018, 8, 8), day)
            ids = [c["transaction_id"] for c in queue.cases()]
            queue.engine.dispose()
            return f"{out['enqueued']} queued: {ids}"

    return queued(reference), queued(learner)


BEHAVIOURS = [
    Behaviour(
        "scores inside the band go to review, the others do not",
        _case(np.array([0.01, 0.3, 0.9, 0.4]), 0.2, 0.5, 10),
        f"keep the positions whose score s has band_low ≤ s < band_high: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the band's low end is included, its high end is not",
        _case(np.array([0.2, 0.5, 0.35, 0.19999]), 0.2, 0.5, 10),
        f"band_low ≤ s (inclusive) and s < band_high (exclusive): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "highest score first",
        _case(SCORES, 0.05, 0.8, 10),
        f"order the uncertain positions by score, highest first (np.argsort(-s, kind='stable')): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "no more than the capacity a day, the highest scores kept",
        _case(SCORES, 0.05, 0.8, 3),
        f"after ordering, keep the first `capacity` positions: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "equal scores keep their order (a stable sort)",
        _case(np.array([0.3, 0.3, 0.4, 0.3]), 0.2, 0.5, 3),
        f"a stable sort (kind='stable') keeps the earlier of equal scores first: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "capacity 0 or an empty band queues nothing",
        lambda learner, reference: tuple(
            "; ".join(
                _positions(f(SCORES.copy(), lo, hi, k))
                for lo, hi, k in ((0.05, 0.8, 0), (0.6, 0.7, 5))
            )
            for f in (reference, learner)
        ),
        f"return an empty array when nothing is in the band or capacity is 0: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a day of 1,000 scores with ties: band 0.05–0.5, 25 cases",
        _a_day,
        f"the same rule on a real-sized day: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the replay queues what your function selects",
        _the_replay_queues,
        f"ReviewQueue.enqueue_day calls your select_for_review (FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
