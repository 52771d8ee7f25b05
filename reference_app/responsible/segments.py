"""Segment report: how the flag decision treats customer segments, with fairlearn's MetricFrame.

Three segmentations of the simulated customers (Fraud Detection Handbook, ch. 3.2: customer
profiles on a 100 × 100 grid, mean amount ~ U(5, 100)):

- `spending_band`: the customer's mean amount in the simulator's profile (low < 35, mid 35–70,
  high ≥ 70; the profile is regenerated from the seed, as the simulator drew it);
- `region`: the quadrant of the grid the customer lives in (the profile's x, y);
- `customer_history`: "new" when the customer made fewer than `NEW_CUSTOMER_MAX_TX` transactions
  in the 30 days up to the transaction (the model input CUSTOMER_ID_NB_TX_30DAY_WINDOW), else
  "established". The simulator has no account-opening date, so a thin history stands in for
  "new": a proxy, and the chapter says so.

For each segment and each group: precision, recall, false-positive rate and flag rate (the share
of transactions flagged, fairlearn's `selection_rate`) of the decision score ≥ `flag_threshold`,
and per metric the disparity ratio min/max over the groups (`MetricFrame.ratio(method=
"between_groups")`, fairlearn 0.15.0 fairlearn/metrics/_metric_frame.py: group_min / group_max;
1.0 = every group alike).

Example:
    >>> report = segment_report(test, scores, 0.5, profiles)     # doctest: +SKIP
    >>> report["segments"]["region"]["disparity"]["recall"]      # doctest: +SKIP
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate
from sklearn.metrics import precision_score, recall_score

from ..data.simulator import GRID_SIZE, generate_customer_profiles

SPENDING_BANDS = ((35.0, "low (< 35)"), (70.0, "mid (35–70)"), (float("inf"), "high (≥ 70)"))
"""Upper bounds (exclusive) of the mean-amount bands, and their names (currency units)."""
NEW_CUSTOMER_MAX_TX = 10
"""A customer with fewer transactions than this in the last 30 days counts as "new"."""
HISTORY_FEATURE = "CUSTOMER_ID_NB_TX_30DAY_WINDOW"
SEGMENTS = ("spending_band", "region", "customer_history")
"""The segmentations every report holds, in order."""
METRICS = ("precision", "recall", "false_positive_rate", "flag_rate")
"""The metrics per group, in order."""


def customer_profiles(n_customers: int, seed: int) -> pd.DataFrame:
    """The simulator's customer profiles for `n_customers` and `seed` (the simulator's first draws
    from the seeded generator, so the same rows it simulated from).

    Returns:
        (n_customers, 6) frame: `CUSTOMER_ID`, `x_customer_id`, `y_customer_id`, `mean_amount`, …
    """
    return generate_customer_profiles(n_customers, np.random.default_rng(seed))


# --8<-- [start:segments]
def customer_segments(transactions: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """The segment of each transaction's customer, one column per segmentation.

    Args:
        transactions: (n, ·) frame with `CUSTOMER_ID` and `CUSTOMER_ID_NB_TX_30DAY_WINDOW`.
        profiles: the simulator's customer profiles (`customer_profiles`).

    Returns:
        (n, 3) frame with columns `SEGMENTS`, aligned with `transactions`' rows.

    Raises:
        ValueError: a transaction's customer has no profile.
    """
    profile = profiles.set_index("CUSTOMER_ID").reindex(transactions["CUSTOMER_ID"].to_numpy())
    if profile["mean_amount"].isna().any():
        missing = profile.index[profile["mean_amount"].isna()][:5].tolist()
        raise ValueError(f"customers without a profile (wrong n_customers or seed?): {missing}")
    bounds = [b for b, _ in SPENDING_BANDS]
    band = np.searchsorted(bounds, profile["mean_amount"].to_numpy(), side="right")
    half = GRID_SIZE / 2
    north = np.where(profile["y_customer_id"].to_numpy() >= half, "north", "south")
    east = np.where(profile["x_customer_id"].to_numpy() >= half, "east", "west")
    history = transactions[HISTORY_FEATURE].to_numpy()
    return pd.DataFrame(
        {
            "spending_band": np.array([name for _, name in SPENDING_BANDS])[band],
            "region": np.char.add(np.char.add(north, "-"), east),
            "customer_history": np.where(history < NEW_CUSTOMER_MAX_TX, "new", "established"),
        },
        index=transactions.index,
    )


# --8<-- [end:segments]


# --8<-- [start:report]
def segment_metrics(
    y_true: np.ndarray, flagged: np.ndarray, groups: pd.Series | np.ndarray
) -> dict:
    """Precision, recall, false-positive rate and flag rate per group, and their disparity ratios.

    Args:
        y_true: (n,) 0/1 labels (TX_FRAUD).
        flagged: (n,) 0/1 decisions (score ≥ threshold).
        groups: (n,) the group of each row.

    Returns:
        `groups` {group: {metric: value, "transactions": n, "frauds": n}}, `overall` {metric:
        value}, `disparity` {metric: min/max over groups} (None when a group's value is undefined
        or every group is 0). Precision of a group that flagged nothing is reported as 0.
    """
    metrics = {
        "precision": functools.partial(precision_score, zero_division=0),
        "recall": functools.partial(recall_score, zero_division=0),
        "false_positive_rate": false_positive_rate,
        "flag_rate": selection_rate,
    }
    frame = MetricFrame(
        metrics=metrics,
        y_true=np.asarray(y_true, dtype=int),
        y_pred=np.asarray(flagged, dtype=int),
        sensitive_features=pd.Series(np.asarray(groups), name="group"),
    )
    ratio = frame.ratio(method="between_groups")
    counts = pd.DataFrame({"y": np.asarray(y_true, dtype=int), "g": np.asarray(groups)})
    sizes = counts.groupby("g")["y"].agg(["size", "sum"])
    by_group = {
        str(group): {
            **{m: float(frame.by_group.loc[group, m]) for m in METRICS},
            "transactions": int(sizes.loc[group, "size"]),
            "frauds": int(sizes.loc[group, "sum"]),
        }
        for group in frame.by_group.index
    }
    return {
        "groups": by_group,
        "overall": {m: float(frame.overall[m]) for m in METRICS},
        "disparity": {m: (None if pd.isna(ratio[m]) else float(ratio[m])) for m in METRICS},
    }


def segment_report(
    transactions: pd.DataFrame, scores: np.ndarray, threshold: float, profiles: pd.DataFrame
) -> dict:
    """The segment report of a model's scores on `transactions` (typically its test week).

    Args:
        transactions: (n, ·) frame with `CUSTOMER_ID`, `TX_FRAUD` and the 30-day count feature.
        scores: (n,) fraud probabilities.
        threshold: a transaction is flagged when its score ≥ threshold (`flag_threshold`).
        profiles: the simulator's customer profiles.

    Returns:
        `threshold`, `transactions`, `frauds`, `metrics` (names), and `segments` {segmentation:
        `segment_metrics`}, in `SEGMENTS` order.
    """
    flagged = (np.asarray(scores) >= threshold).astype(int)
    y = transactions["TX_FRAUD"].to_numpy()
    segments = customer_segments(transactions, profiles)
    return {
        "threshold": threshold,
        "transactions": int(len(transactions)),
        "frauds": int(y.sum()),
        "metrics": list(METRICS),
        "segments": {name: segment_metrics(y, flagged, segments[name]) for name in SEGMENTS},
    }


# --8<-- [end:report]


def report_table(report: dict) -> pd.DataFrame:
    """The report as one table: a row per (segment, group) and one per segment's disparity."""
    rows = []
    for name, seg in report["segments"].items():
        for group, values in seg["groups"].items():
            rows.append({"segment": name, "group": group, **values})
        rows.append({"segment": name, "group": "disparity (min/max)", **seg["disparity"]})
    return pd.DataFrame(rows).astype({"transactions": "Int64", "frauds": "Int64"})
