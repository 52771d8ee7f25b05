"""The monitoring job: data drift, score drift and delayed-label performance of the served model.

Inputs are what serving leaves behind: `reports/replay-<day>.parquet` (features, served scores
and the labels, which only count once they are `delta_delay` days old — the handbook's label
delay, ch. 3.5). The reference is the champion's training window in the features dataset.

Example:
    >>> result = compute_monitoring(Settings())      # doctest: +SKIP
    >>> result["drift"]["TX_AMOUNT"]["psi"]           # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from sklearn.metrics import average_precision_score

from ..config import Settings
from ..data import store
from ..features import FEATURE_NAMES
from ..responsible.review import review_summary
from ..training.evaluation import card_precision_top_k
from .drift import drift_table

REPLAY_GLOB = "replay-*.parquet"
# One served day against a training week always differs on a calendar flag: not evidence of drift.
CALENDAR_FEATURES = {"TX_DURING_WEEKEND"}


class NothingToMonitorError(RuntimeError):
    """No served transactions (replay files) yet."""


def served_days(settings: Settings) -> dict[dt.date, Path]:
    """Replay files by day, oldest first."""
    files = sorted(Path(settings.reports_dir).glob(REPLAY_GLOB))
    return {dt.date.fromisoformat(f.stem.removeprefix("replay-")): f for f in files}


def inputs_signature(settings: Settings) -> tuple:
    """Changes whenever a replay file or the features dataset changes (for caching)."""
    manifest = store.read_manifest(settings.features_dir) or {}
    return (
        manifest.get("digest"),
        tuple((str(p), p.stat().st_mtime_ns) for p in served_days(settings).values()),
    )


def day_performance(day: dt.date, frame: pd.DataFrame, top_k: int) -> dict:
    """Realised AP and CP@k of the served scores of one day (frame: replay output with labels)."""
    y, s = frame["TX_FRAUD"].to_numpy(), frame["served_score"].to_numpy()
    return {
        "day": day.isoformat(),
        "transactions": int(len(frame)),
        "frauds": int(y.sum()),
        "average_precision": float(average_precision_score(y, s)) if 0 < y.sum() < len(y) else None,
        "card_precision_top_k": card_precision_top_k(frame, s, top_k)[0],
    }


def compute_monitoring(settings: Settings, reference: pd.DataFrame | None = None) -> dict:
    """Compute drift on the latest served day and realised performance on labelled days.

    Args:
        settings: data locations, protocol (`train_start`, `delta_train`, `delta_delay`), `top_k`.
        reference: the reference features (default: the training window of the features dataset).

    Returns:
        `as_of` (latest served day), `current_day`, `transactions`, `drift` {feature: {psi,
        ks_statistic, ks_pvalue, status}} including `fraud_score` (served scores of the latest
        day vs the first served day's), `max_psi` and `drifted_features` (calendar features
        left out), and `performance`: the
        latest day whose labels are known (≤ as_of − delay) with `average_precision` and
        `card_precision_top_k`, or None when no served day is old enough; `performance_by_day`
        has the same for every labelled served day, oldest first; `review`: the review queue's
        counts (`responsible.review.review_summary`, lab 18), None without a queue.

    Raises:
        NothingToMonitorError: if nothing was served yet.
    """
    days = served_days(settings)
    if not days:
        raise NothingToMonitorError(
            f"no served transactions yet ({settings.reports_dir}/{REPLAY_GLOB}): run `fraudlab replay` first"
        )
    as_of = max(days)
    current = pd.read_parquet(days[as_of])
    # --8<-- [start:reference-window]
    if reference is None:
        start = settings.train_start
        reference = store.read_dataset(
            settings.features_dir, days=(start, start + dt.timedelta(days=settings.delta_train - 1))
        )
    table = drift_table(reference, current, FEATURE_NAMES, settings.psi_alert_threshold)
    first = pd.read_parquet(days[min(days)])
    score = drift_table(
        first.rename(columns={"served_score": "fraud_score"}),
        current.rename(columns={"served_score": "fraud_score"}),
        ["fraud_score"],
        settings.psi_alert_threshold,
    )
    table = pd.concat([table, score])
    # --8<-- [end:reference-window]
    drift = table[["psi", "ks_statistic", "ks_pvalue", "status"]].to_dict(orient="index")
    # --8<-- [start:label-delay]
    labelled = [d for d in days if d <= as_of - dt.timedelta(days=settings.delta_delay)]
    by_day = [day_performance(d, pd.read_parquet(days[d]), settings.top_k) for d in labelled]
    performance = by_day[-1] if by_day else None
    # --8<-- [end:label-delay]
    features_only = {
        k: v for k, v in drift.items() if k != "fraud_score" and k not in CALENDAR_FEATURES
    }
    return {
        "as_of": as_of.isoformat(),
        "current_day": as_of.isoformat(),
        "transactions": int(len(current)),
        "drift": drift,
        "max_psi": float(max(v["psi"] for v in features_only.values())),
        "drifted_features": sorted(
            k for k, v in features_only.items() if v["psi"] > settings.psi_alert_threshold
        ),
        "performance": performance,
        "performance_by_day": by_day,
        "psi_alert_threshold": settings.psi_alert_threshold,
        # Lab 18: the human review queue (queued, reviewed, confirmed fraud per day), the labels
        # that come in before the delayed ones; None without a queue database.
        "review": review_summary(settings),
    }
