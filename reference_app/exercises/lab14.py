"""Lab 14's exercise: the prequential validation folds the tuning selects hyper-parameters on.

The learner writes `prequential_folds` in `labs/14-distributed-training-ray/starter/folds.py`;
`fraudlab tune` (locally, and the RayJob's driver on the cluster) validates every trial on the
folds it returns. Reference: `training.tune.prequential_folds` (Fraud Detection Handbook, ch. 5.2:
folds before the test week, each a training period, a delay and a validation period).
"""

from __future__ import annotations

import datetime as dt

from ..config import Settings
from ..training.split import EvaluationProtocol
from ..training.tune import FOLDS_EXERCISE, prequential_folds, validation_folds
from . import Behaviour, as_lab_code

EXERCISE = FOLDS_EXERCISE
REFERENCE = prequential_folds
FILE = "labs/14-distributed-training-ray/starter/folds.py"
CHECK = "make lab-14 TARGET=local"
TRAIN_START = dt.date(2018, 7, 25)
DEFAULT = (TRAIN_START, 4, 7, 7, 7)


def _fold(fold) -> str:
    if not isinstance(fold, dict):
        return f"a {type(fold).__name__}, not a dict"
    return ", ".join(
        f"{k} {fold[k].isoformat() if isinstance(fold.get(k), dt.date) else fold.get(k)!r}"
        for k in ("train_start", "valid_start", "valid_end")
    )


def _text(folds) -> str:
    if not isinstance(folds, list):
        return f"a {type(folds).__name__}, not a list"
    return "; ".join(f"fold {i}: {_fold(f)}" for i, f in enumerate(folds)) or "no fold"


def _count(*args):
    def check(learner, reference):
        got = learner(*args)
        return str(len(reference(*args))), (
            str(len(got)) if isinstance(got, list) else f"a {type(got).__name__}, not a list"
        )

    return check


def _newest(learner, reference):
    """Fold 0, the newest: where it trains and validates."""
    got = learner(*DEFAULT)
    return _fold(reference(*DEFAULT)[0]), _fold(got[0]) if isinstance(got, list) and got else _text(
        got
    )


def _spacing(learner, reference):
    """The first training day of every fold: one delta_assessment apart, newest first."""

    def starts(folds) -> str:
        if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
            return _text(folds)
        return ", ".join(str(f.get("train_start")) for f in folds)

    return starts(reference(TRAIN_START, 4, 7, 7, 3)), starts(learner(TRAIN_START, 4, 7, 7, 3))


def _before_test(learner, reference):
    """Days validated on after the training period's last day (the delay period's labels are
    not all known before the test week starts; the test week must stay unseen)."""
    last = TRAIN_START + dt.timedelta(days=6)

    def late(folds) -> str:
        if not isinstance(folds, list):
            return _text(folds)
        bad = [
            f"fold {i} validates up to {f.get('valid_end')}"
            for i, f in enumerate(folds)
            if not isinstance(f, dict)
            or not isinstance(f.get("valid_end"), dt.date)
            or f["valid_end"] > last
        ]
        return "; ".join(bad) or f"none: every fold validates on or before {last}"

    return late(reference(*DEFAULT)), late(learner(*DEFAULT))


def _whole(*args):
    def check(learner, reference):
        return _text(reference(*args)), _text(learner(*args))

    return check


def _tune_step(learner, reference):
    """The folds `fraudlab tune` builds (`validation_folds`) with the course's settings."""

    def folds(function) -> str:
        s = Settings()
        with as_lab_code(function):
            return _text(validation_folds(s, EvaluationProtocol.from_settings(s)))

    return folds(reference), folds(learner)


BEHAVIOURS = [
    Behaviour(
        "n_folds folds: 4 for n_folds=4",
        _count(*DEFAULT),
        f"return one dict per fold, a list of n_folds: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the newest fold (fold 0) validates on the training week, 2018-07-25 … 2018-07-31",
        _newest,
        f"fold 0's validation ends on train_start + delta_train − 1 and lasts delta_assessment "
        f"days; its training ends delta_delay days before: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "no fold validates on the delay period or the test week",
        _before_test,
        f"the test week (2018-08-08 …) and the delay before it stay unseen: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "each older fold starts delta_assessment days earlier (3 days here)",
        _spacing,
        f"fold i = fold 0 moved i × delta_assessment days back, newest first: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "other protocol lengths: 14 training days, a 14-day delay, 3 folds of 7 days",
        _whole(TRAIN_START, 3, 14, 14, 7),
        f"use the arguments, not the defaults 7/7/7: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the tune step (`fraudlab tune`) uses your folds",
        _tune_step,
        f"validation_folds calls your prequential_folds (FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
