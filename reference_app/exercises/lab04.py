"""Lab 04's exercise: the model inputs of a raw transaction, built at serving time.

The learner writes `model_inputs` in `labs/04-features/starter/online_inputs.py`; the online
serving path (`serving.online.score_transaction`: `fraudlab feature-store score`, the lab's
parity check) builds the 15 inputs it scores with it, from the raw transaction and the window
features Feast's online store returns. Reference: `features.online.model_inputs` (the
definitions of `features.transform.build_features`, Fraud Detection Handbook ch. 3.4).
"""

from __future__ import annotations

import math

from ..data.simulator import SimulationParams, simulate_transactions
from ..features.online import INPUTS_EXERCISE, MissingFeatureError, model_inputs, raw_transaction
from ..features.transform import CUSTOMER_FEATURES, FEATURE_NAMES, TERMINAL_FEATURES, build_features
from . import Behaviour, as_lab_code

EXERCISE = INPUTS_EXERCISE
REFERENCE = model_inputs
FILE = "labs/04-features/starter/online_inputs.py"
CHECK = "make lab-4 TARGET=local"
WINDOWS = CUSTOMER_FEATURES + TERMINAL_FEATURES
ONLINE = {name: 100.0 + i for i, name in enumerate(WINDOWS)}  # every feature a distinct value


def _raw(when: str, amount: float = 57.25) -> dict:
    return {
        "TRANSACTION_ID": 1,
        "TX_DATETIME": when,
        "CUSTOMER_ID": 4242,
        "TERMINAL_ID": 77,
        "TX_AMOUNT": amount,
    }


def _text(inputs) -> str:
    if not isinstance(inputs, list | tuple):
        return f"a {type(inputs).__name__}, not a list"
    return f"{len(inputs)} values: " + ", ".join(
        f"{name}={float(value):g}" for name, value in zip(FEATURE_NAMES, inputs, strict=False)
    )


def _inputs(when: str, names: tuple[str, ...]):
    def check(learner, reference):
        def pick(function):
            got = function(_raw(when), dict(ONLINE))
            if not isinstance(got, list | tuple) or len(got) != len(FEATURE_NAMES):
                return _text(got)
            return ", ".join(f"{n}={float(got[FEATURE_NAMES.index(n)]):g}" for n in names)

        return pick(reference), pick(learner)

    return check


def _whole(learner, reference):
    return _text(reference(_raw("2018-05-16T14:03:00"), dict(ONLINE))), _text(
        learner(_raw("2018-05-16T14:03:00"), dict(ONLINE))
    )


def _missing(name: str, value):
    def check(learner, reference):
        def outcome(function):
            online = dict(ONLINE)
            if value == "absent":
                del online[name]
            else:
                online[name] = value
            try:
                got = function(_raw("2018-05-16T14:03:00"), online)
            except MissingFeatureError as err:
                return f"MissingFeatureError naming {err.entity} and {err.feature}"
            return f"no error: {_text(got)}"

        return outcome(reference), outcome(learner)

    return check


def _training_rows(learner, reference):
    """The inputs of simulated transactions (raw fields + their window features) equal the rows
    `build_features` gave training."""
    features = build_features(
        simulate_transactions(SimulationParams(60, 120, 12, "2018-04-01", 5, 4))
    )
    rows = features.iloc[::37]

    def worst(function):
        diff = 0.0
        for _, row in rows.iterrows():
            got = function(raw_transaction(row), {n: row[n] for n in WINDOWS})
            diff = max(
                diff,
                max(abs(float(g) - float(row[n])) for g, n in zip(got, FEATURE_NAMES, strict=True)),
            )
        return (
            f"max |inputs − training row| over {len(rows)} transactions ≤ 1e-9"
            if diff <= 1e-9
            else f"max |inputs − training row| = {diff:.3g}"
        )

    return worst(reference), worst(learner)


def _serving_path(learner, reference):
    """What the serving path (`serving_inputs`) builds, with the lab code of `function`."""
    from ..serving.online import serving_inputs

    def built(function):
        with as_lab_code(function):
            return _text(serving_inputs(_raw("2018-05-19T03:10:00"), dict(ONLINE)))

    return built(reference), built(learner)


BEHAVIOURS = [
    Behaviour(
        "the 15 inputs come in FEATURE_NAMES order, the window features as looked up",
        _whole,
        f"loop over FEATURE_NAMES; window features come from `online`: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "TX_DURING_WEEKEND is 1 on Saturday and Sunday, 0 on Friday",
        lambda learner, reference: tuple(
            "; ".join(
                _inputs(when, ("TX_DURING_WEEKEND",))(f, f)[0]
                for when in ("2018-05-18T12:00:00", "2018-05-19T12:00:00", "2018-05-20T23:59:59")
            )
            for f in (reference, learner)
        ),
        f"weekday() is 5 or 6 on weekends (Monday = 0): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "TX_DURING_NIGHT is 1 up to 06:59:59 and 0 from 07:00",
        lambda learner, reference: tuple(
            "; ".join(
                _inputs(when, ("TX_DURING_NIGHT",))(f, f)[0]
                for when in ("2018-05-16T00:00:00", "2018-05-16T06:59:59", "2018-05-16T07:00:00")
            )
            for f in (reference, learner)
        ),
        f"the hour is ≤ 6 at night, as build_features says: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a window feature absent online raises MissingFeatureError naming the terminal",
        _missing("TERMINAL_ID_RISK_7DAY_WINDOW", "absent"),
        f"raise MissingFeatureError(f'{{key}}={{transaction[key]}}', name, 'missing'): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a None (Feast's NOT_FOUND) or NaN is missing too, never a 0",
        lambda learner, reference: tuple(
            " | ".join(
                _missing(name, value)(f, f)[0]
                for name, value in (
                    ("CUSTOMER_ID_NB_TX_1DAY_WINDOW", None),
                    ("CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW", math.nan),
                )
            )
            for f in (reference, learner)
        ),
        f"test `value is None or math.isnan(value)` before float(value): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the inputs of simulated transactions equal their training rows",
        _training_rows,
        f"compute the calendar features from TX_DATETIME as build_features does: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the online serving path builds its inputs with your model_inputs",
        _serving_path,
        f"serving_inputs calls your model_inputs (FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
