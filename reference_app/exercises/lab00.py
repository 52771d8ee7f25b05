"""Lab 00's exercise: the doctor's kubectl version rule.

The learner writes `kubectl_verdict` in `labs/00-introduction/starter/versions.py`; `make doctor`
(scripts/doctor.sh, through `python -m reference_app.doctor`) runs it for the installed kubectl
when `FRAUD_LAB_CODE` names that folder. Reference: `doctor.kubectl_verdict` (Kubernetes version
skew policy: kubectl within one minor version of the API server).
"""

from __future__ import annotations

from ..doctor import VERSION_EXERCISE, kubectl_verdict, verdict
from . import Behaviour, as_lab_code

EXERCISE = VERSION_EXERCISE
REFERENCE = kubectl_verdict
FILE = "labs/00-introduction/starter/versions.py"
CHECK = "make lab-00 TARGET=local"
PIN = "v1.35.9"


def _answers(*cases: tuple[str, str]):
    """Each (installed, pinned) case's answer, as `installed → answer` lines joined by commas."""

    def check(learner, reference):
        def answers(function):
            return ", ".join(f"{have} → {function(have, pin)!r}" for have, pin in cases)

        return answers(reference), answers(learner)

    return check


def _the_doctor(learner, reference):
    """What the doctor's kubectl line gets (`doctor.verdict`) for a kubectl one minor behind."""

    def ask(function):
        with as_lab_code(function):
            return verdict("v1.34.2", PIN)[0]

    return ask(reference), ask(learner)


BEHAVIOURS = [
    Behaviour(
        "the pinned version passes, with or without its leading v",
        _answers(("v1.35.9", PIN), ("1.35.9", PIN)),
        f'equal once a leading "v" is removed: "pass": {FILE}; then {CHECK}',
    ),
    Behaviour(
        "another patch release of the pinned minor is supported: warn",
        _answers(("v1.35.2", PIN), ("v1.35.12", PIN)),
        f'same major and minor, not the pin: "warn": {FILE}; then {CHECK}',
    ),
    Behaviour(
        "one minor version older or newer is supported: warn",
        _answers(("v1.34.2", PIN), ("v1.36.0", PIN)),
        f"the skew policy allows one minor either way: abs(minor − pinned minor) <= 1: {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        "two minor versions away fails",
        _answers(("v1.33.11", PIN), ("v1.37.1", PIN)),
        f'more than one minor away is outside the skew policy: "fail": {FILE}; then {CHECK}',
    ),
    Behaviour(
        "versions compare as numbers, not as text (1.9 is one minor before 1.10)",
        _answers(("v1.9.11", "v1.10.0"), ("v1.8.0", "v1.10.0"), ("v1.11.0", "v1.10.0")),
        f"convert major and minor with int(...) before comparing: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a vendor build's suffix is read, not rejected",
        _answers(("v1.34.2-dispatcher", PIN), ("v1.35.9+k3s1", PIN)),
        f"match with VERSION (it allows a suffix) and compare major and minor: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "another major version, or a version that does not read, fails",
        _answers(("v2.35.9", PIN), ("", PIN), ("unknown", PIN)),
        f'no match, or another major: "fail": {FILE}; then {CHECK}',
    ),
    Behaviour(
        "make doctor's kubectl check uses your rule (FRAUD_LAB_CODE)",
        _the_doctor,
        f"the doctor calls your kubectl_verdict: {FILE}; then {CHECK}",
    ),
]
