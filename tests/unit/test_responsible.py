"""Lab 18's pieces on hand-computable inputs: segment metrics and disparity ratios (fairlearn's
MetricFrame), the customers' segments from the simulator's profiles, the review band rule, and the
review queue on a real SQLite file (enqueue, label, feedback rows for the next training window)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from reference_app.config import Settings
from reference_app.responsible import review, segments
from reference_app.responsible.model_card import model_card


def test_segment_metrics_match_a_hand_computed_example():
    # Group a: 4 frauds, 6 genuine; flagged: 3 of the frauds and 1 genuine.
    # Group b: 1 fraud, 9 genuine; flagged: the fraud and 3 genuine.
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0] + [1] + [0] * 9)
    flagged = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0] + [1] + [1, 1, 1, 0, 0, 0, 0, 0, 0])
    groups = np.array(["a"] * 10 + ["b"] * 10)
    out = segments.segment_metrics(y, flagged, groups)
    a, b = out["groups"]["a"], out["groups"]["b"]
    assert (a["precision"], a["recall"], a["false_positive_rate"], a["flag_rate"]) == pytest.approx(
        (3 / 4, 3 / 4, 1 / 6, 4 / 10)
    )
    assert (b["precision"], b["recall"], b["false_positive_rate"], b["flag_rate"]) == pytest.approx(
        (1 / 4, 1.0, 3 / 9, 4 / 10)
    )
    assert (a["transactions"], a["frauds"], b["transactions"], b["frauds"]) == (10, 4, 10, 1)
    # Disparity = min/max over the groups.
    assert out["disparity"] == pytest.approx(
        {
            "precision": (1 / 4) / (3 / 4),
            "recall": 0.75,
            "false_positive_rate": (1 / 6) / (3 / 9),
            "flag_rate": 1.0,
        }
    )
    assert out["overall"]["precision"] == pytest.approx(4 / 8)


def test_equal_fpr_and_equal_precision_cannot_both_hold_with_different_base_rates():
    """The example above, read as the chapter reads it: the same flag rate, different fraud rates
    (40 % vs 10 %): precision and false-positive rate both differ; equalising one moves the other."""
    y = np.array([1] * 4 + [0] * 6 + [1] + [0] * 9)
    flagged = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    out = segments.segment_metrics(y, flagged, np.array(["a"] * 10 + ["b"] * 10))
    assert out["disparity"]["precision"] < 1 and out["disparity"]["false_positive_rate"] < 1


def test_a_group_that_flags_nothing_has_precision_zero_not_an_error():
    out = segments.segment_metrics(
        np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), np.array(["a", "a", "b", "b"])
    )
    assert out["groups"]["a"]["precision"] == 0.0 and out["disparity"]["precision"] == 0.0


def test_customer_segments_from_the_profiles():
    profiles = pd.DataFrame({
        "CUSTOMER_ID": [0, 1, 2],
        "x_customer_id": [10.0, 60.0, 50.0],
        "y_customer_id": [10.0, 90.0, 49.9],
        "mean_amount": [34.99, 35.0, 70.0],
    })  # fmt: skip
    tx = pd.DataFrame({"CUSTOMER_ID": [2, 0, 1], "CUSTOMER_ID_NB_TX_30DAY_WINDOW": [9, 10, 30]})
    seg = segments.customer_segments(tx, profiles)
    assert seg["spending_band"].tolist() == ["high (≥ 70)", "low (< 35)", "mid (35–70)"]
    assert seg["region"].tolist() == ["south-east", "south-west", "north-east"]
    assert seg["customer_history"].tolist() == ["new", "established", "established"]
    with pytest.raises(ValueError, match="without a profile"):
        segments.customer_segments(
            pd.DataFrame({"CUSTOMER_ID": [7], "CUSTOMER_ID_NB_TX_30DAY_WINDOW": [1]}), profiles
        )


def test_the_profiles_are_the_simulators():
    from reference_app.data.simulator import SimulationParams, simulate_transactions

    tx = simulate_transactions(SimulationParams(200, 2000, 10, "2018-04-01", 5, 7))
    profiles = segments.customer_profiles(200, 7)
    # A customer's amounts come from its profile's mean: the profile regenerated from the seed is it.
    means = tx[tx["TX_FRAUD"] == 0].groupby("CUSTOMER_ID")["TX_AMOUNT"].mean()
    expected = profiles.set_index("CUSTOMER_ID")["mean_amount"].reindex(means.index)
    assert np.corrcoef(means, expected)[0, 1] > 0.9


def test_the_band_rule():
    scores = np.array([0.01, 0.30, 0.05, 0.72, 0.49, 0.50, 0.20, 0.05, 0.33, 0.90])
    assert review.select_for_review(scores, 0.05, 0.5, 10).tolist() == [4, 8, 1, 6, 2, 7]
    assert review.select_for_review(scores, 0.05, 0.5, 2).tolist() == [4, 8]
    assert review.select_for_review(scores, 0.05, 0.5, 0).tolist() == []
    assert review.select_for_review(np.array([]), 0.05, 0.5, 3).tolist() == []


def _day(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "TRANSACTION_ID": np.arange(10, 10 + n),
        "TX_DATETIME": pd.Timestamp("2018-08-08 10:00"),
        "CUSTOMER_ID": np.arange(n), "TERMINAL_ID": np.arange(n), "TX_AMOUNT": np.full(n, 20.0),
        "served_score": [0.9, 0.4, 0.1, 0.3, 0.01, 0.2][:n], "served_version": "3",
    })  # fmt: skip


@pytest.fixture
def queue_settings(tmp_path) -> Settings:
    return Settings(
        review_database_uri=f"sqlite:///{tmp_path}/queue.db",
        review_band_low=0.15,
        review_band_high=0.5,
        review_capacity=2,
    )


def test_the_queue_enqueues_labels_and_keeps_labels_over_a_second_replay(queue_settings):
    queue = review.ReviewQueue.from_settings(queue_settings)
    day = dt.date(2018, 8, 8)
    out = queue.enqueue_day(queue_settings, day, _day())
    assert (out["in_band"], out["enqueued"], out["rule"]) == (3, 2, "reference")
    assert [c["transaction_id"] for c in queue.cases()] == [11, 13]  # 0.4, 0.3: the top two
    labelled = queue.label(13, 1, "ana")
    assert (labelled["label"], labelled["analyst"]) == (1, "ana") and labelled["labelled_at"]
    # Replayed again with a capacity of 1: the unlabelled case goes, the labelled one stays.
    queue.enqueue_day(queue_settings.model_copy(update={"review_capacity": 1}), day, _day())
    assert {c["transaction_id"]: c["label"] for c in queue.cases()} == {11: None, 13: 1}
    assert queue.summary() == {
        "queued": 2,
        "reviewed": 1,
        "confirmed_fraud": 1,
        "pending": 1,
        "by_day": {"2018-08-08": {"queued": 2, "reviewed": 1, "confirmed_fraud": 1}},
    }
    assert queue.batches()[0]["enqueued"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((13, 2, "ana"), r"0 \(genuine\) or 1"),
        ((13, 1, ""), "printable"),
        ((13, 1, "x" * 65), "printable"),
        ((99, 1, "ana"), "no queued case"),
    ],
)
def test_a_bad_label_is_refused(queue_settings, args, message):
    queue = review.ReviewQueue.from_settings(queue_settings)
    queue.enqueue_day(queue_settings, dt.date(2018, 8, 8), _day())
    with pytest.raises(review.ReviewError, match=message):
        queue.label(*args)


def test_a_labelled_case_joins_the_next_training_window_only_from_the_label_gap(queue_settings):
    """Labelled cases of the days after the window's test week up to the cycle's day join, with the
    analyst's label; earlier days (delayed labels known) and unlabelled cases do not."""
    queue = review.ReviewQueue.from_settings(queue_settings)
    early, late = _day(), _day()
    early["TRANSACTION_ID"] += 100
    queue.enqueue_day(queue_settings, dt.date(2018, 8, 1), early)
    queue.enqueue_day(queue_settings, dt.date(2018, 8, 8), late)
    queue.label(113, 0, "ana")  # 2018-08-01: the test week's, not joined
    queue.label(13, 0, "ana")  # an analyst says genuine: the label joins as 0
    features = pd.concat([early, late]).assign(TX_FRAUD=1)
    rows = review.reviewed_training_rows(
        queue_settings, features, dt.date(2018, 8, 1), dt.date(2018, 8, 8)
    )
    assert rows["TRANSACTION_ID"].tolist() == [13] and rows["TX_FRAUD"].tolist() == [0]


def test_the_learners_rule_is_checked(queue_settings, tmp_path, monkeypatch):
    """A learner's function that returns more than the capacity stops the replay with its reason."""
    (tmp_path / "review_band.py").write_text(
        "import numpy as np\n\ndef select_for_review(scores, band_low, band_high, capacity):\n    return np.arange(len(scores))\n"
    )
    monkeypatch.setenv("FRAUD_LAB_CODE", str(tmp_path))
    from reference_app.labcode import LabCodeError

    with pytest.raises(LabCodeError, match="more than the capacity"):
        review.review_selection(queue_settings, np.array([0.2, 0.3, 0.4]))


def test_the_model_card_has_mitchells_sections():
    report = {
        "threshold": 0.5, "transactions": 20, "frauds": 5,
        "segments": {name: segments.segment_metrics(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]), np.array(["x", "x", "y", "y"])) for name in segments.SEGMENTS},
    }  # fmt: skip
    run = {
        "run_id": "abc",
        "params": {
            "train_start": "2018-07-25",
            "delta_train": "7",
            "delta_delay": "7",
            "delta_test": "7",
            "n_train": "100",
            "top_k": "100",
        },
        "metrics": {"auc_roc": 0.9, "average_precision": 0.6, "card_precision_top_k": 0.3},
        "tags": {"model_type": "random_forest"},
    }
    card = model_card("fraud-detector", "3", run, report, Settings())
    for section in (
        "## Model details",
        "## Intended use",
        "## Factors",
        "## Metrics",
        "## Evaluation data",
        "## Training data",
        "## Quantitative analyses",
        "## Ethical considerations",
        "## Caveats and recommendations",
    ):
        assert section in card
    assert "2018-08-08 … 2018-08-14" in card and "| region | **disparity min/max** |" in card


def test_the_review_page_escapes_what_it_writes():
    from reference_app.responsible.review_app import _row

    case = {
        "day": "<script>alert(1)</script>",
        "transaction_id": '1" onmouseover="x',
        "customer_id": 2,
        "terminal_id": 3,
        "amount": 1.5,
        "score": 0.3,
    }
    row = _row(case, 'tok"en')
    assert "<script>" not in row and "&lt;script&gt;" in row
    assert 'value="1&quot; onmouseover=&quot;x"' in row and 'value="tok&quot;en"' in row
