"""Lab 13 exercise: the window a continuous-training cycle retrains on.

When an alert starts a cycle, the retrain step trains a challenger on the newest data whose
labels are known, and tests it on the week after a delay, as the handbook's protocol does:

    [ training: train_days ][ delay: delay_days ][ test: test_days ]  ... labels known up to
                                                                          as_of − delay_days

Labels arrive delay_days late, so the test week must end delay_days before as_of. With
FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from a ConfigMap (the
retrain WorkflowTemplate on the cluster), your function is the one the retrain step runs.

Check your work: `make lab-13 TARGET=local` (one line per behaviour).
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
    # TODO(lab-13): test_end is delay_days before as_of; the test period has test_days days
    # ending on test_end; the training period ends delay_days before the test period starts,
    # and lasts train_days (use dt.timedelta(days=...)).
    raise NotImplementedError("TODO(lab-13): retraining_window")
