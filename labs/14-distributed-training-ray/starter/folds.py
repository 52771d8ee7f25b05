"""Lab 14 exercise: the prequential validation folds the tuning selects hyper-parameters on.

A search that picks its best configuration on the test week has tested nothing: the test week
must stay unseen until the chosen model is trained. So the tuning validates on folds BEFORE the
test week, each laid out like the protocol itself (Fraud Detection Handbook, ch. 5.2):

    fold 2: [ train ][ delay ][ valid ]
    fold 1:        [ train ][ delay ][ valid ]
    fold 0:               [ train ][ delay ][ valid ]
    protocol:                             [ train ][ delay ][ test ]
                                          ^ train_start

The newest fold (fold 0) validates on the end of the protocol's training period (with 7-day
periods: on the training week itself), whose labels are all known before the test week starts;
every older fold is the same window moved delta_assessment days back. With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from the
ConfigMap lab-code-14 in the RayJob's driver (on the cluster), `fraudlab tune` builds its folds
with your function.

Check your work: `make lab-14 TARGET=local` (one line per behaviour), or
`fraudlab exercise check 14 --code labs/14-distributed-training-ray/starter`.
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
    # TODO(lab-14): fold 0's validation period (delta_assessment days) ends on the last day of
    # the protocol's training period, train_start + delta_train - 1; its training period
    # (delta_train days) ends delta_delay days before its validation starts. Fold i is fold 0
    # moved i * delta_assessment days back. Use dt.timedelta(days=...).
    raise NotImplementedError("TODO(lab-14): prequential_folds")
