"""The handbook's split: 7-day delay, known-compromised cards removed from the test days."""

import datetime as dt

import pandas as pd
import pytest

from reference_app.training.split import split_train_test


def tx(rows):
    return pd.DataFrame(rows, columns=["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD"]).assign(
        TX_DATETIME=lambda d: pd.to_datetime(d["TX_DATETIME"])
    )


def test_known_compromised_cards_leave_the_test_set():
    # train 07-25..07-31 (7 days), delay 08-01..08-07, test 08-08..08-14 (delta 7/7/7).
    data = tx([
        ("2018-07-26 10:00", 1, 1),   # card 1 defrauded in training → known for every test day
        ("2018-07-27 10:00", 2, 0),
        ("2018-08-01 10:00", 3, 1),   # delay day 0 → known from test day 1 (08-09)
        ("2018-08-03 10:00", 4, 1),   # delay day 2 → known from test day 3 (08-11)
        ("2018-08-08 10:00", 1, 1),   # removed (card 1 known)
        ("2018-08-08 11:00", 3, 0),   # kept: card 3's fraud label not yet known on test day 0
        ("2018-08-09 11:00", 3, 1),   # removed: known from test day 1
        ("2018-08-10 11:00", 4, 0),   # kept: test day 2, card 4 known only from day 3
        ("2018-08-11 11:00", 4, 1),   # removed
        ("2018-08-12 11:00", 2, 1),   # kept
        ("2018-08-15 11:00", 2, 0),   # after the test week
    ])  # fmt: skip
    train, test = split_train_test(data, dt.date(2018, 7, 25), 7, 7, 7)
    assert train["CUSTOMER_ID"].tolist() == [1, 2]
    assert list(
        zip(test["TX_DATETIME"].dt.strftime("%m-%d"), test["CUSTOMER_ID"], strict=True)
    ) == [("08-08", 3), ("08-10", 4), ("08-12", 2)]


def test_empty_window_is_an_error():
    with pytest.raises(ValueError, match="empty training window"):
        split_train_test(tx([("2018-08-08 10:00", 1, 1)]), dt.date(2018, 7, 25), 7, 7, 7)
