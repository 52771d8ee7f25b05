"""Feature transformation of the Fraud Detection Handbook, ch. 3.4, vectorised with numpy.

Every window aggregate is computed with sorted keys and cumulative sums: transactions are sorted by
(entity, time); for each transaction, `np.searchsorted` finds where its time window starts and
ends inside its entity's block, and cumulative sums give counts, amounts and frauds in the window.
That is O(n log n), with no per-row or per-entity Python.

Windows are on `TX_DATETIME`, in seconds:
- customer, n days: (t − n, t] — includes the current transaction (and any at the same second);
- terminal, n days, delay d = 7: (t − (d + n), t − d] — a label newer than t − d is never read.

Example:
    >>> features = build_features(transactions)      # doctest: +SKIP
    >>> features[FEATURE_NAMES].shape                 # doctest: +SKIP
    (n_transactions, 15)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import FEATURE_DELAY_DAYS

SECONDS_PER_DAY = 86_400
WINDOWS_DAYS = (1, 7, 30)
NIGHT_LAST_HOUR = 6

# --8<-- [start:names]
CUSTOMER_FEATURES = [
    f"CUSTOMER_ID_{stat}_{n}DAY_WINDOW" for n in WINDOWS_DAYS for stat in ("NB_TX", "AVG_AMOUNT")
]
TERMINAL_FEATURES = [
    f"TERMINAL_ID_{stat}_{n}DAY_WINDOW" for n in WINDOWS_DAYS for stat in ("NB_TX", "RISK")
]
FEATURE_NAMES = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *CUSTOMER_FEATURES,
    *TERMINAL_FEATURES,
]
# --8<-- [end:names]
"""The 15 model inputs, in the order models and the V2 inference protocol use."""


def _window_sums(
    keys: np.ndarray, seconds: np.ndarray, values: list[np.ndarray], lo: float, hi: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Count rows and sum `values` over the same-key rows with time in (t − lo, t − hi].

    Args:
        keys: (n,) int64 entity ids; seconds: (n,) int64 event times, in seconds.
        values: arrays of shape (n,) to sum inside each window.
        lo, hi: window bounds before each row's time, in seconds (lo > hi ≥ 0).

    Returns:
        `(counts, sums)` in the input row order: counts (n,) int64, one (n,) float64 sum per value.
    """
    order = np.lexsort((seconds, keys))
    k, s = keys[order], seconds[order]
    # One monotone axis for every entity: blocks of a key never overlap because the spacing
    # between keys exceeds the whole time range plus the longest window.
    spacing = int(s.max() - s.min()) + int(lo) + 1 if len(s) else 1
    axis = (k - k.min() if len(k) else k).astype(np.int64) * spacing + (
        s - (s.min() if len(s) else 0)
    )
    start = np.searchsorted(axis, axis - lo, side="right")
    end = np.searchsorted(axis, axis - hi, side="right")
    counts = np.empty(len(keys), dtype=np.int64)
    counts[order] = end - start
    sums = []
    for v in values:
        c = np.concatenate([[0.0], np.cumsum(v[order], dtype=np.float64)])
        out = np.empty(len(keys), dtype=np.float64)
        out[order] = c[end] - c[start]
        sums.append(out)
    return counts, sums


def build_features(
    transactions: pd.DataFrame, delay_days: int = FEATURE_DELAY_DAYS
) -> pd.DataFrame:
    """Add the handbook's 15 features to a frame of transactions (handbook ch. 3.4).

    Features of a transaction depend only on transactions of the same customer or terminal at or
    before its time; terminal risk uses labels of transactions at least `delay_days` old.

    Args:
        transactions: (n, ≥ 7) frame with `TX_DATETIME`, `CUSTOMER_ID`, `TERMINAL_ID`, `TX_AMOUNT`
            and `TX_FRAUD`; the history the windows need (30 + delay days) must be in it.
        delay_days: d, the label delay of the terminal features, in days.

    Returns:
        A copy of `transactions` (same row order) with the `FEATURE_NAMES` columns added:
        counts as int64, averages and risks as float64 (0 for an empty window).

    Raises:
        KeyError: if a needed column is missing.
    """
    out = transactions.copy()
    when = pd.to_datetime(out["TX_DATETIME"])
    out["TX_DURING_WEEKEND"] = (when.dt.weekday >= 5).astype(np.int64)
    out["TX_DURING_NIGHT"] = (when.dt.hour <= NIGHT_LAST_HOUR).astype(np.int64)
    seconds = when.to_numpy(dtype="datetime64[s]").astype(np.int64)
    amount = out["TX_AMOUNT"].to_numpy(dtype=np.float64)
    fraud = out["TX_FRAUD"].to_numpy(dtype=np.float64)
    customers = out["CUSTOMER_ID"].to_numpy(dtype=np.int64)
    terminals = out["TERMINAL_ID"].to_numpy(dtype=np.int64)
    # --8<-- [start:windows]
    delay = delay_days * SECONDS_PER_DAY
    for n in WINDOWS_DAYS:
        count, (total,) = _window_sums(customers, seconds, [amount], n * SECONDS_PER_DAY, 0)
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = total / np.maximum(count, 1)
    for n in WINDOWS_DAYS:
        count, (frauds,) = _window_sums(
            terminals, seconds, [fraud], (delay_days + n) * SECONDS_PER_DAY, delay
        )
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = np.where(
            count > 0, frauds / np.maximum(count, 1), 0.0
        )
    # --8<-- [end:windows]
    return out
