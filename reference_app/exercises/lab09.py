"""Lab 09's exercise: a request check of the model server, on the names of a request's inputs.

The learner writes `input_problem` in `labs/09-serving/starter/request_check.py`; the model server
(`serving.runtime.FraudRuntime`, behind `fraudlab serve` and the SeldonDeployment on the cluster)
runs it on every V2 inference request before decoding any value, and answers 400 with its message
when it returns one. Reference: `serving.runtime.input_problem` (the Open Inference Protocol names
each input tensor; a request with a missing, unknown or repeated name is the client's error).
"""

from __future__ import annotations

from ..features import FEATURE_NAMES
from ..serving.runtime import INPUTS_EXERCISE, checked_input_problem, input_problem
from . import Behaviour, as_lab_code

EXERCISE = INPUTS_EXERCISE
REFERENCE = input_problem
FILE = "labs/09-serving/starter/request_check.py"
CHECK = "make lab-09 TARGET=local"
EXPECTED = tuple(FEATURE_NAMES)


def _accepts(names: list[str]):
    def check(learner, reference):
        found = learner(list(names), EXPECTED)
        return "None (the request goes on)", (
            "None (the request goes on)" if found is None else f"refused: {found!r}"
        )

    return check


def _names(names: list[str], *named: str):
    """The answer refuses the request with a message that names each of `named`."""

    def check(learner, reference):
        expected = f"a message naming {', '.join(named)}"
        found = learner(list(names), EXPECTED)
        if not isinstance(found, str) or not found:
            return expected, f"{found!r} (the request would go on)"
        missing = [n for n in named if n not in found]
        return expected, (expected if not missing else f"{found!r}, without {', '.join(missing)}")

    return check


def _server_load(learner, reference):
    """What the model server's load does with the check: it tries it on a complete request."""

    def outcome(function):
        with as_lab_code(function):
            check = checked_input_problem()
        refused = bool(check([], EXPECTED))
        return "loads; an empty request gets 400" if refused else "loads; an empty request goes on"

    return outcome(reference), outcome(learner)


SHUFFLED = list(reversed(EXPECTED))
WITHOUT_AMOUNT = [n for n in EXPECTED if n != "TX_AMOUNT"]

BEHAVIOURS = [
    Behaviour(
        "the 15 inputs, in any order, pass",
        _accepts(SHUFFLED),
        f"return None when the names are exactly the expected ones, in any order: {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        "a missing input is refused, naming it",
        _names(WITHOUT_AMOUNT, "TX_AMOUNT"),
        f"name every expected input the request lacks: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "an unknown input is refused, naming it",
        _names([*EXPECTED, "TX_AMOUNT_EUR"], "TX_AMOUNT_EUR"),
        f"name every input the model does not read: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a repeated input is refused, naming it",
        _names([*EXPECTED, "TX_AMOUNT"], "TX_AMOUNT"),
        f"a name given twice is refused even when none is missing: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a misspelt input is refused, naming both the missing and the unknown name",
        _names([*WITHOUT_AMOUNT, "tx_amount"], "TX_AMOUNT", "tx_amount"),
        f"names are case-sensitive; report the missing and the unknown together: {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        "the model server loads with your check and refuses an empty request",
        _server_load,
        f"the server runs your input_problem (FRAUD_LAB_CODE) on a complete request at load: "
        f"{FILE}; then {CHECK}",
    ),
]
