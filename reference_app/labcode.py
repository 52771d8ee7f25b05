"""The learner's code in the running system: each lab's exercise stands in for one function.

Every lab's `labs/NN-*/starter/` holds a small Python module with `TODO(lab-NN)` gaps (lab 11:
`psi.py`). Where the reference system calls the function an exercise replaces, it asks
`implementation` for it: with the setting `lab_code` (`FRAUD_LAB_CODE`: folders, separated by
`:`) naming a folder that has the exercise's module, the learner's function runs; without it, the
reference function does. So the learner's code is what scores drift, gates a model or checks a
request, in local mode (`FRAUD_LAB_CODE=labs/11-monitoring/starter fraudlab monitor`) and on the
cluster, where a lab's kustomization turns the learner's file into a ConfigMap mounted at
`/lab-code` in the pods that run it (`FRAUD_LAB_CODE=/lab-code`).

A module that cannot be loaded, or a function still marked `TODO` (raising NotImplementedError),
stops the command with a message naming the lab and the file: it never falls back silently.

`reference_app.exercises` checks a learner's module behaviour by behaviour (`fraudlab exercise`),
which is what `make lab-N` runs on both targets.

Example:
    >>> from reference_app.labcode import Exercise
    >>> PSI = Exercise(lab=11, module="psi", function="psi_from_shares")
    >>> PSI.implementation(psi_from_shares)(r, c)   # the learner's, when FRAUD_LAB_CODE has it  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "FRAUD_LAB_CODE"
"""Folders (`:`-separated) holding the learner's exercise modules; empty: the reference runs.
It is `Settings.lab_code` (the one definition), read here from the environment because the
functions exercises replace take no settings."""


class LabCodeError(RuntimeError):
    """The learner's module is missing its function, cannot be imported, or is not written yet."""


@dataclass(frozen=True)
class Exercise:
    """One lab's exercise: the function `function` of module `module`.py in the learner's folder.

    Attributes:
        lab: the lab's number (messages, the lab's folder).
        module: the module's file name without `.py` (e.g. "psi").
        function: the function it defines (e.g. "psi_from_shares").
        raises: exceptions that are part of the function's contract (lab 04's
            MissingFeatureError): they reach the caller as they are, where any other exception
            becomes a `LabCodeError` naming the learner's file and line.
    """

    lab: int
    module: str
    function: str
    raises: tuple[type[Exception], ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.module}.py"

    def path(self, folders: str | None = None) -> Path | None:
        """The learner's file: the first folder of `folders` (default: `FRAUD_LAB_CODE`) that
        holds `<module>.py`; None when none does."""
        for folder in (os.environ.get(ENV, "") if folders is None else folders).split(":"):
            if folder and (Path(folder) / self.filename).is_file():
                return Path(folder) / self.filename
        return None

    def source(self) -> str:
        """Which code runs for this exercise, as the registry records it: "reference", or
        `lab-NN/<module>.py sha256:<first 12 hex digits of the file's SHA-256>` for the learner's
        file (the same digest the lab checks compute from the ConfigMap the pods mount)."""
        path = self.path()
        if path is None:
            return "reference"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return f"lab-{self.lab:02d}/{self.filename} sha256:{digest}"

    def implementation(self, reference: Callable) -> Callable:
        """The learner's function when `FRAUD_LAB_CODE` has this exercise's module, else `reference`.

        Raises:
            LabCodeError: the module cannot be imported or lacks the function.
        """
        path = self.path()
        if path is None:
            return reference
        return _guarded(self, _load(str(path.resolve()), self.function, self.lab))


def load(path: str, function: str, lab: int) -> Callable:
    """Import the learner's file at `path` afresh and return its `function`.

    Raises:
        LabCodeError: the file does not import, or defines no such function.
    """
    spec = importlib.util.spec_from_file_location(f"lab_code_{lab:02d}_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise LabCodeError(
            f"lab {lab:02d}: {path} does not import: {type(err).__name__}: {err}"
        ) from err
    found = getattr(module, function, None)
    if not callable(found):
        raise LabCodeError(f"lab {lab:02d}: {path} defines no function {function}")
    return found


@cache
def _load(path: str, function: str, lab: int) -> Callable:
    """`load`, once per process: what the running system calls (the file does not change under it)."""
    found = load(path, function, lab)
    log.info("lab %02d: %s from %s (FRAUD_LAB_CODE)", lab, function, path)
    return found


def _guarded(exercise: Exercise, function: Callable) -> Callable:
    """`function` (the learner's), its errors told as `LabCodeError`: a TODO as "not written yet",
    anything else with the line of the learner's file that raised it."""
    source = function.__code__.co_filename

    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except NotImplementedError as err:
            raise LabCodeError(
                f"lab {exercise.lab:02d}: {exercise.function} in {source} is not "
                f"written yet ({err or 'NotImplementedError'}): fill in its TODO(lab-"
                f"{exercise.lab:02d}) gaps, or unset {ENV} to run the reference"
            ) from None
        except LabCodeError:
            raise
        except exercise.raises:
            raise
        except Exception as err:
            lines = [
                f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == source
            ]
            where = f" at line {lines[-1]}" if lines else ""
            raise LabCodeError(
                f"lab {exercise.lab:02d}: {exercise.function} in {source} raised "
                f"{type(err).__name__}: {err}{where}; check it with: fraudlab exercise check "
                f"{exercise.lab} --code {Path(source).parent}"
            ) from err

    call.__name__ = exercise.function
    call.__wrapped__ = function
    return call
