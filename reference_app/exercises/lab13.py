"""Lab 13's exercise: the window a continuous-training cycle retrains on.

The learner writes `retraining_window` in `labs/13-continuous-training/starter/window.py`; the
retrain step (`fraudlab retrain`, behind the ct-controller's alerts locally and the `retrain`
WorkflowTemplate on the cluster) trains and tests on the window it returns. Reference:
`orchestration.continuous_training.retraining_window` (Fraud Detection Handbook, ch. 3.5: a
training period, a delay period, a test period, labels known `delay` days late).
"""

from __future__ import annotations

import datetime as dt

from ..config import Settings
from ..orchestration.continuous_training import WINDOW_EXERCISE, recent_window, retraining_window
from . import Behaviour, as_lab_code

EXERCISE = WINDOW_EXERCISE
REFERENCE = retraining_window
FILE = "labs/13-continuous-training/starter/window.py"
CHECK = "make lab-13 TARGET=local"
ALERT_DAY, DRIFT_START = dt.date(2018, 6, 10), dt.date(2018, 5, 25)


def _text(window) -> str:
    if not isinstance(window, dict):
        return f"a {type(window).__name__}, not a dict"
    return ", ".join(
        f"{k} {window[k].isoformat() if isinstance(window.get(k), dt.date) else window.get(k)!r}"
        for k in ("train_start", "test_start", "test_end")
    )


def _field(name: str, as_of: dt.date, *protocol: int):
    def check(learner, reference):
        got = learner(as_of, *protocol)
        value = got.get(name) if isinstance(got, dict) else got
        expected = reference(as_of, *protocol)[name].isoformat()
        return expected, (value.isoformat() if isinstance(value, dt.date) else repr(value))

    return check


def _whole(as_of: dt.date, *protocol: int):
    def check(learner, reference):
        return _text(reference(as_of, *protocol)), _text(learner(as_of, *protocol))

    return check


def _first_drifted_training(learner, reference):
    """The first day on which a cycle's training week starts on or after the drift began."""

    def first(function):
        day = DRIFT_START
        while function(day, 7, 7, 7)["train_start"] < DRIFT_START:
            day += dt.timedelta(days=1)
            if day > DRIFT_START + dt.timedelta(days=120):
                return "never within 120 days"
        return f"{day.isoformat()} ({(day - DRIFT_START).days} days after the drift began)"

    return first(reference), first(learner)


def _retrain_step(learner, reference):
    """What the retrain step (`recent_window` with the course's settings) trains on."""

    def window(function):
        with as_lab_code(function):
            return _text(recent_window(Settings(), ALERT_DAY))

    return window(reference), window(learner)


BEHAVIOURS = [
    Behaviour(
        "the test week ends delay days before as_of (the newest labelled day)",
        _field("test_end", ALERT_DAY, 7, 7, 7),
        f"test_end = as_of − delay_days: labels arrive delay_days late: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the test week is test_days long, both ends included",
        _field("test_start", ALERT_DAY, 7, 7, 7),
        f"test_start = test_end − (test_days − 1): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a delay period separates the training week from the test week",
        _field("train_start", ALERT_DAY, 7, 7, 7),
        f"train_start = test_start − (delay_days + train_days): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "other protocol lengths: 28 training days, a 14-day delay, a 7-day test",
        _whole(dt.date(2018, 9, 1), 14, 28, 7),
        f"use the arguments, not the defaults 7/7/7: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a cycle first trains on drifted days 27 days after the drift began",
        _first_drifted_training,
        f"with the default protocol the training week starts as_of − 27 days: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the retrain step on the drift alert's day (2018-06-10) uses your window",
        _retrain_step,
        f"recent_window calls your retraining_window (FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
