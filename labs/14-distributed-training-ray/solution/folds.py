"""Lab 14 exercise, solved: the prequential validation folds the tuning selects hyper-parameters
on (the reference system's `training.tune.prequential_folds`; Fraud Detection Handbook, ch. 5.2).

Check it: `make lab-14 TARGET=local` (one line per behaviour).
"""

import datetime as dt


def prequential_folds(
    train_start: dt.date,
    n_folds: int,
    delta_train: int,
    delta_delay: int,
    delta_assessment: int,
) -> list[dict[str, dt.date]]:
    """The validation folds before the protocol's training week, newest first.

    Args:
        train_start: first day of the protocol's training week (2018-07-25).
        n_folds: how many folds (4).
        delta_train: length of each fold's training period, in days (7).
        delta_delay: days between a fold's training and validation periods (7): labels
            arrive this late.
        delta_assessment: days between two folds, and the length of each validation
            period (7).

    Returns:
        A list of n_folds dicts, newest fold first, each
        {"train_start": first training day, "valid_start": first validation day,
         "valid_end": last validation day}, as datetime.date (both ends included).
    """
    newest = train_start - dt.timedelta(days=delta_delay + delta_assessment)
    folds = []
    for fold in range(n_folds):
        start = newest - dt.timedelta(days=fold * delta_assessment)
        valid_start = start + dt.timedelta(days=delta_train + delta_delay)
        valid_end = valid_start + dt.timedelta(days=delta_assessment - 1)
        folds.append({"train_start": start, "valid_start": valid_start, "valid_end": valid_end})
    return folds
