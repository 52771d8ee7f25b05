"""Lab 13 exercise, solved: the window a continuous-training cycle retrains on (the reference
system's `orchestration.continuous_training.retraining_window`).

Check it: `make lab-13 TARGET=local` (one line per behaviour).
"""

import datetime as dt


def retraining_window(
    as_of: dt.date, delay_days: int, train_days: int, test_days: int
) -> dict[str, dt.date]:
    """The newest training and test window whose test labels are known on `as_of`.

    Args:
        as_of: the day of the cycle (the newest served day).
        delay_days: how late labels arrive, and the gap between training and test (7).
        train_days: the length of the training period (7).
        test_days: the length of the test period (7).

    Returns:
        {"train_start": first training day, "test_start": first test day,
         "test_end": last test day}, as datetime.date; both ends of a period are included.
    """
    test_end = as_of - dt.timedelta(days=delay_days)
    test_start = test_end - dt.timedelta(days=test_days - 1)
    train_start = test_start - dt.timedelta(days=delay_days + train_days)
    return {"train_start": train_start, "test_start": test_start, "test_end": test_end}
