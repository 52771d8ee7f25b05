"""Prometheus metrics of the fraud runtime, exposed on MLServer's metrics port (`/metrics`).

Metrics are created lazily (on the first call), after MLServer has configured prometheus_client,
so they also work in MLServer's multiprocess mode.

Example:
    >>> record_scores(np.array([0.1, 0.9]), threshold=0.5, model_version="3")  # doctest: +SKIP
"""

from __future__ import annotations

from functools import cache

import numpy as np
from prometheus_client import Counter, Histogram

# --8<-- [start:metrics]
SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@cache
def runtime_metrics() -> tuple[Histogram, Counter, Counter]:
    """Return (score histogram, scored counter, flagged counter), created once per process."""
    labels = ["model_name", "model_version"]
    return (
        Histogram(
            "fraud_score",
            "Fraud probability of each scored transaction.",
            labels,
            buckets=SCORE_BUCKETS,
        ),
        Counter("fraud_scored_transactions", "Transactions scored by the fraud model.", labels),
        Counter(
            "fraud_flagged_transactions",
            "Transactions whose fraud probability reached the flag threshold.",
            labels,
        ),
    )


# --8<-- [end:metrics]


@cache
def batch_metrics() -> Histogram:
    """Requests scored in one model call (the runtime's micro-batcher), created once per process."""
    return Histogram(
        "fraud_batch_requests",
        "Requests scored together in one model call (1 when the runtime does not merge).",
        ["model_name", "model_version"],
        buckets=(1, 2, 4, 8, 16, 32, 64, 128),
    )


@cache
def gate_refusals() -> Counter:
    """Requests the serving gate refused before MLServer saw them, by protocol (rest/grpc) and
    status code: oversized bodies, compression bombs, unknown models, the closed repository API.
    MLServer's own request metrics never count them (the gate answers first)."""
    return Counter(
        "fraud_gate_refusals",
        "Requests refused by the serving gate before MLServer read them.",
        ["protocol", "code"],
    )


def record_scores(
    scores: np.ndarray, threshold: float, model_name: str, model_version: str
) -> None:
    """Observe a batch of fraud probabilities (n,) in the score histogram and the counters."""
    histogram, scored, flagged = runtime_metrics()
    labels = {"model_name": model_name, "model_version": model_version}
    child = histogram.labels(**labels)
    for value in scores.tolist():
        child.observe(value)
    scored.labels(**labels).inc(len(scores))
    flagged.labels(**labels).inc(int((scores >= threshold).sum()))
