"""Features against a slow, obviously correct reference; the 7-day label delay (no leakage)."""

import numpy as np
import pandas as pd

from reference_app.features import FEATURE_NAMES, build_features

DAY = pd.Timedelta(days=1)


def reference_features(tx: pd.DataFrame, delay_days: int = 7) -> pd.DataFrame:
    """Row by row, straight from the handbook's definitions (ch. 3.4). O(n²): small data only."""
    rows = []
    for _, t in tx.iterrows():
        now = t["TX_DATETIME"]
        row = {
            "TX_AMOUNT": t["TX_AMOUNT"],
            "TX_DURING_WEEKEND": int(now.weekday() >= 5),
            "TX_DURING_NIGHT": int(now.hour <= 6),
        }
        same_customer = tx[tx["CUSTOMER_ID"] == t["CUSTOMER_ID"]]
        for n in (1, 7, 30):
            window = same_customer[
                (same_customer["TX_DATETIME"] > now - n * DAY)
                & (same_customer["TX_DATETIME"] <= now)
            ]
            row[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = len(window)
            row[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = (
                window["TX_AMOUNT"].mean() if len(window) else 0.0
            )
        same_terminal = tx[tx["TERMINAL_ID"] == t["TERMINAL_ID"]]
        for n in (1, 7, 30):
            lo, hi = now - (delay_days + n) * DAY, now - delay_days * DAY
            window = same_terminal[
                (same_terminal["TX_DATETIME"] > lo) & (same_terminal["TX_DATETIME"] <= hi)
            ]
            row[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = len(window)
            row[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = (
                window["TX_FRAUD"].sum() / len(window) if len(window) else 0.0
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=FEATURE_NAMES)


def test_feature_names_are_the_handbooks_15():
    assert len(FEATURE_NAMES) == 15 and len(set(FEATURE_NAMES)) == 15


def test_features_equal_reference(tiny_transactions):
    assert 800 < len(tiny_transactions) < 3000
    fast = build_features(tiny_transactions)[FEATURE_NAMES].reset_index(drop=True)
    slow = reference_features(tiny_transactions)
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False, rtol=1e-9, atol=1e-9)
    # The windows are not trivially empty on this data.
    assert (fast["TERMINAL_ID_NB_TX_30DAY_WINDOW"] > 0).mean() > 0.5
    assert (fast["TERMINAL_ID_RISK_30DAY_WINDOW"] > 0).any()


def test_row_order_does_not_matter(tiny_transactions):
    shuffled = tiny_transactions.sample(frac=1.0, random_state=0)
    out = (
        build_features(shuffled).sort_values("TRANSACTION_ID")[FEATURE_NAMES].reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        out, build_features(tiny_transactions)[FEATURE_NAMES].reset_index(drop=True)
    )


# --8<-- [start:leakage]
def test_terminal_risk_never_uses_labels_newer_than_t_minus_7_days(tiny_transactions):
    tx = tiny_transactions.reset_index(drop=True)
    base = build_features(tx)
    target = len(tx) * 3 // 4
    now = tx.loc[target, "TX_DATETIME"]
    terminal_cols = [c for c in FEATURE_NAMES if c.startswith("TERMINAL_ID_RISK")]
    # Flip every label newer than t − 7 days (all of (t − 7d, end]): t's features must not move.
    recent = tx["TX_DATETIME"] > now - 7 * DAY
    flipped = tx.copy()
    flipped.loc[recent, "TX_FRAUD"] = 1 - flipped.loc[recent, "TX_FRAUD"]
    after = build_features(flipped)
    for i in np.flatnonzero(tx["TX_DATETIME"] <= now):
        assert after.loc[i, terminal_cols].tolist() == base.loc[i, terminal_cols].tolist(), (
            f"row {i} read a label newer than t − 7 days"
        )
    # Flipping labels older than t − 7 days does move some features: the test can fail.
    old = (tx["TX_DATETIME"] <= now - 7 * DAY) & (tx["TX_DATETIME"] > now - 37 * DAY)
    flipped_old = tx.copy()
    flipped_old.loc[old, "TX_FRAUD"] = 1 - flipped_old.loc[old, "TX_FRAUD"]
    assert not build_features(flipped_old)[terminal_cols].equals(base[terminal_cols])


# --8<-- [end:leakage]


def test_features_do_not_depend_on_future_transactions(tiny_transactions):
    tx = tiny_transactions.reset_index(drop=True)
    cut = tx["TX_DATETIME"].iloc[len(tx) // 2]
    past = tx[tx["TX_DATETIME"] <= cut]
    pd.testing.assert_frame_equal(
        build_features(past)[FEATURE_NAMES], build_features(tx)[FEATURE_NAMES].iloc[: len(past)]
    )


def test_features_step_uses_the_label_delay_setting(tmp_path):
    """FRAUD_DELTA_DELAY moves the terminal-risk windows too (not only the train/test split): a
    different delay changes the terminal features, and the dataset is recomputed, not reused."""
    from reference_app.config import Settings
    from reference_app.data import store
    from reference_app.orchestration.pipeline import features_step, simulate_step, validate_step

    base = Settings(data_dir=str(tmp_path), n_customers=100, n_terminals=200, nb_days=60)
    simulate_step(base)
    validate_step(base)
    seven, reused = features_step(base)
    assert not reused and seven["delay_days"] == 7
    terminal = [
        c for c in store.read_dataset(base.features_dir).columns if c.startswith("TERMINAL_ID_RISK")
    ]
    first = store.read_dataset(base.features_dir)[terminal].to_numpy()
    assert features_step(base)[1], "same input and delay: reused"
    three, reused = features_step(base.model_copy(update={"delta_delay": 3}))
    assert not reused and three["delay_days"] == 3
    second = store.read_dataset(base.features_dir)[terminal].to_numpy()
    assert first.shape == second.shape and (first != second).any()


def test_features_equal_the_previous_implementation_bit_for_bit(small_transactions):
    """The same frame, to the last bit, as `build_features` before it shared one sort per entity
    (kept as the bench's reference), for rows in time order and shuffled."""
    from reference_app.bench import previous_build_features

    shuffled = small_transactions.sample(frac=1.0, random_state=1)
    for frame in (small_transactions, shuffled):
        pd.testing.assert_frame_equal(
            build_features(frame), previous_build_features(frame), check_exact=True
        )


def test_window_bound_searches_equal_numpy_searchsorted():
    """The merge and run-end searches give `np.searchsorted(..., side="right")`, ties included."""
    from reference_app.features.transform import _run_ends, _searchsorted_right

    rng = np.random.default_rng(0)
    axis = np.sort(rng.integers(0, 500, 5_000))  # many equal values
    for lo in (0, 1, 7, 100, 1_000):
        np.testing.assert_array_equal(
            _searchsorted_right(axis, axis - lo), np.searchsorted(axis, axis - lo, side="right")
        )
    np.testing.assert_array_equal(_run_ends(axis), np.searchsorted(axis, axis, side="right"))
    assert len(_run_ends(axis[:0])) == 0 and len(_searchsorted_right(axis[:0], axis[:0])) == 0
