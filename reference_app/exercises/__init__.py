"""Behaviour checks of the labs' Python exercises, check50-style: `fraudlab exercise check N`.

Each lab with an exercise has a module here (`lab11.py`) with its `EXERCISE`
(`labcode.Exercise`: the learner's module and function), the reference function, and its
`BEHAVIOURS`: one line each, run against the learner's function on small real inputs and
compared with the reference's answer (expected / found). `make lab-N` runs them on the
learner's file (local target) or on the file the cluster runs (the lab's ConfigMap), one check
line per behaviour.

Example:
    >>> from reference_app.exercises import run
    >>> [r.passed for r in run(11, "labs/11-monitoring/starter")]   # doctest: +SKIP
    [False, False, False, False, False]
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..labcode import ENV, Exercise, LabCodeError, load

LABS = (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
"""Labs with a Python exercise (a module `labNN` here)."""


@dataclass(frozen=True)
class Behaviour:
    """One behaviour of an exercise: `check(learner, reference)` returns (expected, found) as
    text, equal when the learner's function behaves."""

    name: str
    check: Callable[[Callable, Callable], tuple[str, str]]
    hint: str


@dataclass
class Result:
    """A behaviour's outcome, as `make lab-N` prints it."""

    behaviour: str
    passed: bool
    expected: str
    found: str
    hint: str

    def as_dict(self) -> dict:
        return asdict(self)


@contextmanager
def as_lab_code(function: Callable) -> Iterator[None]:
    """Run the system with `function`'s module as the lab code (`FRAUD_LAB_CODE` = its folder),
    or with none when `function` is the reference's: how a behaviour checks the learner's
    function where the system calls it (the validate step, the model server, the promote step).
    """
    source = Path(function.__code__.co_filename)
    package = Path(__file__).resolve().parents[1]
    before = os.environ.get(ENV)
    if package in source.resolve().parents:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = str(source.parent)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def lab_module(lab: int):
    """The behaviours module of lab `lab` (`reference_app.exercises.labNN`).

    Raises:
        ValueError: the lab has no Python exercise.
    """
    if lab not in LABS:
        raise ValueError(f"lab {lab:02d} has no Python exercise (labs with one: {list(LABS)})")
    return importlib.import_module(f"{__name__}.lab{lab:02d}")


def run(lab: int, folder: str | Path) -> list[Result]:
    """Run lab `lab`'s behaviours against the learner's module in `folder`.

    A module that is missing or does not import fails every behaviour with that reason; a
    behaviour whose function raises (NotImplementedError for a TODO) fails with the error.
    """
    spec = lab_module(lab)
    exercise: Exercise = spec.EXERCISE
    path = Path(folder) / exercise.filename
    learner, problem = None, None
    if not path.is_file():
        problem = f"no file {path}"
    else:
        try:
            learner = load(str(path.resolve()), exercise.function, lab)  # afresh: it gets edited
        except LabCodeError as err:
            problem = str(err)
    results = []
    for behaviour in spec.BEHAVIOURS:
        expected, found = None, problem
        if learner is not None:
            try:
                expected, found = behaviour.check(learner, spec.REFERENCE)
            except NotImplementedError as err:
                found = f"NotImplementedError: {err or 'TODO'} (not written yet)"
            except Exception as err:  # the learner's code raised: show where, in their file
                frames = [
                    f
                    for f in traceback.extract_tb(err.__traceback__)
                    if f.filename == str(path.resolve())
                ]
                where = f" at {path.name}:{frames[-1].lineno}" if frames else ""
                found = f"{type(err).__name__}: {err}{where}"
        if expected is None:  # no answer from the learner's code: show the reference's
            expected = behaviour.check(spec.REFERENCE, spec.REFERENCE)[0]
        results.append(Result(behaviour.name, expected == found, expected, found, behaviour.hint))
    return results


def describe(lab: int) -> list[dict]:
    """The behaviours of lab `lab`'s exercise (names and hints), for `make lab-N` to list."""
    spec = lab_module(lab)
    return [{"behaviour": b.name, "hint": b.hint} for b in spec.BEHAVIOURS]
