"""The labs' Python exercises: behaviours fail on the starter and pass on the solution; the
learner's function is what the app runs when FRAUD_LAB_CODE names its folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reference_app import labcode
from reference_app.config import Settings
from reference_app.exercises import LABS, describe, run
from reference_app.monitoring import drift

ROOT = Path(__file__).resolve().parents[2]


def lab_dir(lab: int) -> Path:
    (folder,) = ROOT.glob(f"labs/{lab:02d}-*")
    return folder


@pytest.mark.parametrize("lab", LABS)
def test_starter_fails_every_behaviour_and_names_the_todo(lab):
    results = run(lab, lab_dir(lab) / "starter")
    assert results and not any(r.passed for r in results)
    assert all(f"TODO(lab-{lab:02d})" in r.found for r in results), results
    assert all(r.expected and "make lab-" in r.hint for r in results)
    for solved in (lab_dir(lab) / "solution").glob("*.py"):  # each solved file has its starter
        assert f"TODO(lab-{lab:02d})" in (lab_dir(lab) / "starter" / solved.name).read_text()


@pytest.mark.parametrize("lab", LABS)
def test_solution_passes_every_behaviour(lab):
    results = run(lab, lab_dir(lab) / "solution")
    assert [r.behaviour for r in results] == [d["behaviour"] for d in describe(lab)]
    assert all(r.passed for r in results), [r for r in results if not r.passed]


WRONG_PSI = {
    "no floor for empty bins": "float(np.sum((c - r) * np.log(c / r)))",
    "log of the wrong ratio": "float(np.sum((c - r) * np.log(np.maximum(r, 1e-4) / np.maximum(c, 1e-4))))",
    "the mean instead of the sum": "float(np.mean((np.maximum(c, 1e-4) - np.maximum(r, 1e-4)) * np.log(np.maximum(c, 1e-4) / np.maximum(r, 1e-4))))",
    "one direction only": "float(np.sum(np.maximum(c, 1e-4) * np.log(np.maximum(c, 1e-4) / np.maximum(r, 1e-4))))",
}


@pytest.mark.parametrize("mistake", WRONG_PSI, ids=list(WRONG_PSI))
def test_a_wrong_psi_fails_a_behaviour(tmp_path, mistake):
    (tmp_path / "psi.py").write_text(
        f"import numpy as np\n\n\ndef psi_from_shares(r, c):\n    return {WRONG_PSI[mistake]}\n"
    )
    failed = [r for r in run(11, tmp_path) if not r.passed]
    assert failed, mistake
    assert all(r.found != r.expected for r in failed)


def test_a_module_that_does_not_import_fails_with_its_error(tmp_path):
    (tmp_path / "psi.py").write_text(
        "import numpy as np\n\ndef psi_from_shares(r, c)\n    return 0\n"
    )
    results = run(11, tmp_path)
    assert not any(r.passed for r in results)
    assert "does not import: SyntaxError" in results[0].found


def test_the_drift_monitor_runs_the_learners_psi_when_lab_code_names_it(tmp_path, monkeypatch):
    (tmp_path / "psi.py").write_text("def psi_from_shares(r, c):\n    return 42.0\n")
    rng = np.random.default_rng(0)
    before, after = rng.normal(size=500), rng.normal(0.3, size=500)
    reference = drift.psi(before, after)
    monkeypatch.setenv(labcode.ENV, f"/no/such/folder:{tmp_path}")
    assert drift.psi(before, after) == 42.0
    monkeypatch.delenv(labcode.ENV)
    assert drift.psi(before, after) == reference


def test_an_unwritten_exercise_stops_the_command_and_names_the_lab(monkeypatch):
    monkeypatch.setenv(labcode.ENV, str(lab_dir(11) / "starter"))
    with pytest.raises(
        labcode.LabCodeError,
        match=r"lab 11: psi_from_shares in .*starter/psi.py is not written yet",
    ) as err:
        drift.psi(np.arange(100.0), np.arange(100.0) + 5)
    assert "TODO(lab-11)" in str(err.value) and f"unset {labcode.ENV}" in str(err.value)


def test_a_module_without_the_function_is_refused(tmp_path, monkeypatch):
    (tmp_path / "psi.py").write_text("def psi(r, c):\n    return 0.0\n")
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with pytest.raises(labcode.LabCodeError, match="defines no function psi_from_shares"):
        drift.psi(np.arange(100.0), np.arange(100.0))


def test_lab_code_is_the_settings_field():
    assert labcode.ENV == "FRAUD_" + "lab_code".upper()
    assert Settings.model_fields["lab_code"].default == ""
