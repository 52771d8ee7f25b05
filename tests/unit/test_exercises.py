"""The labs' Python exercises: behaviours fail on the starter and pass on the solution; the
learner's function is what the app runs when FRAUD_LAB_CODE names its folder."""

from __future__ import annotations

import os
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


# Wrong answers a learner writes: each fails at least one behaviour (found ≠ expected).
WRONG = {
    2: (
        "nearby.py",
        {
            "< instead of ≤": "np.flatnonzero(np.sqrt(((terminal_xy - customer_xy) ** 2).sum(axis=1)) < radius)",
            "the mask, not indices": "np.sqrt(((terminal_xy - customer_xy) ** 2).sum(axis=1)) <= radius",
            "Manhattan distance": "np.flatnonzero(np.abs(terminal_xy - customer_xy).sum(axis=1) <= radius)",
        },
        "import numpy as np\n\n\ndef terminals_near(customer_xy, terminal_xy, radius):\n    return {}\n",
    ),
    5: (
        "promotion.py",
        {
            "≥ instead of >": "'challenger' if not passed_gate else ('champion' if champion_ap is None or candidate_ap >= champion_ap else 'challenger')",
            "no gate without a champion": "'champion' if champion_ap is None else ('champion' if passed_gate and candidate_ap > champion_ap else 'challenger')",
            "the gate alone": "'champion' if passed_gate else 'challenger'",
        },
        "def choose_alias(passed_gate, candidate_ap, champion_ap):\n    return {}\n",
    ),
    3: (
        "contract_rule.py",
        {
            "one direction only": "(frame['TX_FRAUD'] == 0) | (frame['TX_FRAUD_SCENARIO'] > 0)",
            "scenario 0 for frauds": "(frame['TX_FRAUD'] == 1) == (frame['TX_FRAUD_SCENARIO'] >= 0)",
            "a numpy array": "((frame['TX_FRAUD'] == 1) == (frame['TX_FRAUD_SCENARIO'] > 0)).to_numpy()",
            "a fresh index": "((frame['TX_FRAUD'] == 1) == (frame['TX_FRAUD_SCENARIO'] > 0)).reset_index(drop=True)",
        },
        "import pandas as pd\n\n\ndef scenario_matches_label(frame):\n    return {}\n",
    ),
    6: (
        "gate.py",
        {
            "≤ instead of <": "[s for s, bad in [(f\"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}\", metrics['auc_roc'] <= min_auc), (f\"average precision {metrics['average_precision']:.4f} < {min_ap}\", metrics['average_precision'] <= min_ap)] if bad]",
            "only the first failure": "[s for s, bad in [(f\"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}\", metrics['auc_roc'] < min_auc), (f\"average precision {metrics['average_precision']:.4f} < {min_ap}\", metrics['average_precision'] < min_ap)] if bad][:1]",
            "AUC only": "[f\"AUC ROC {metrics['auc_roc']:.4f} < {min_auc}\"] if metrics['auc_roc'] < min_auc else []",
        },
        "def gate_failures(metrics, min_auc, min_ap):\n    return {}\n",
    ),
    9: (
        "request_check.py",
        {
            "missing only": "(', '.join(n for n in expected if n not in names) or None)",
            "sets only (no repeats)": "(None if set(names) == set(expected) else 'wrong inputs: ' + ', '.join(sorted(set(names) ^ set(expected))))",
            "refuses everything": "'bad request'",
        },
        "def input_problem(names, expected):\n    return {}\n",
    ),
}
WRONG_CASES = [(lab, name) for lab, (_, cases, _) in WRONG.items() for name in cases]


@pytest.mark.parametrize(
    ("lab", "mistake"), WRONG_CASES, ids=[f"{lab}-{m}" for lab, m in WRONG_CASES]
)
def test_a_wrong_answer_fails_a_behaviour(tmp_path, lab, mistake):
    filename, cases, template = WRONG[lab]
    (tmp_path / filename).write_text(template.format(cases[mistake]))
    failed = [r for r in run(lab, tmp_path) if not r.passed]
    assert failed, mistake
    assert all(r.found != r.expected for r in failed)


def test_the_validate_step_runs_the_learners_contract_rule(tmp_path, monkeypatch):
    from reference_app.data import contracts
    from reference_app.data.simulator import SimulationParams, simulate_transactions

    frame = simulate_transactions(SimulationParams(60, 120, 10, "2018-04-01", 5, 4))
    (tmp_path / "contract_rule.py").write_text(
        "def scenario_matches_label(frame):\n    return frame['TX_FRAUD_SCENARIO'] < 2\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    result = contracts.validate_transactions(frame)
    refused = int((frame["TX_FRAUD_SCENARIO"] >= 2).sum())
    assert refused > 0 and result.reasons == {"row:scenario_matches_label": refused}
    assert len(result.valid) + len(result.quarantined) == len(frame)
    monkeypatch.setenv(labcode.ENV, str(lab_dir(3) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 03: .* is not written yet"):
        contracts.validate_transactions(frame)
    monkeypatch.delenv(labcode.ENV)
    assert contracts.validate_transactions(frame).reasons == {}


def test_promotion_runs_the_learners_gate(tmp_path, monkeypatch):
    from reference_app.training.promotion import QualityGate, decide_promotion

    (tmp_path / "gate.py").write_text(
        "def gate_failures(metrics, min_auc, min_ap):\n    return ['too good to be true']\n"
    )
    good = {"auc_roc": 0.9, "average_precision": 0.8}
    gate = QualityGate(0.85, 0.6)
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    decision = decide_promotion(good, None, gate)
    assert (decision.alias, decision.passed_gate) == ("challenger", False)
    assert decision.reason == "fails the quality gate: too good to be true"
    monkeypatch.delenv(labcode.ENV)
    assert decide_promotion(good, None, gate).alias == "champion"


def test_the_model_server_loads_only_a_written_request_check(tmp_path, monkeypatch):
    from reference_app.serving import runtime

    monkeypatch.setenv(labcode.ENV, str(lab_dir(9) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 09: .* is not written yet"):
        runtime.checked_input_problem()
    (tmp_path / "request_check.py").write_text(
        "def input_problem(names, expected):\n    return 'no'\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with pytest.raises(labcode.LabCodeError, match="refuses a request with exactly the 15 inputs"):
        runtime.checked_input_problem()
    monkeypatch.delenv(labcode.ENV)
    assert runtime.checked_input_problem() is runtime.input_problem


def test_the_simulator_runs_the_learners_terminals(tmp_path, monkeypatch):
    from reference_app.data.simulator import SimulationParams, simulate_transactions

    params = SimulationParams(40, 80, 5, "2018-04-01", 5, 1)
    reference = simulate_transactions(params)
    (tmp_path / "nearby.py").write_text(
        "import numpy as np\n\n\ndef terminals_near(customer_xy, terminal_xy, radius):\n"
        "    return np.arange(3)\n"  # every customer pays at terminals 0, 1 and 2
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    assert set(simulate_transactions(params)["TERMINAL_ID"]) <= {0, 1, 2}  # fraud scenarios aside
    monkeypatch.setenv(labcode.ENV, str(lab_dir(2) / "solution"))
    assert simulate_transactions(params).equals(reference)
    monkeypatch.setenv(labcode.ENV, str(lab_dir(2) / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"lab 02: .* is not written yet"):
        simulate_transactions(params)


def test_promotion_records_which_rule_decided(tmp_path, monkeypatch):
    from reference_app.training.promotion import PROMOTION_EXERCISE, QualityGate, decide_promotion

    (tmp_path / "promotion.py").write_text(
        "def choose_alias(passed_gate, candidate_ap, champion_ap):\n    return 'champion'\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    decision = decide_promotion(
        {"auc_roc": 0.5, "average_precision": 0.1}, 0.7, QualityGate(0.85, 0.6)
    )
    assert (decision.alias, decision.passed_gate) == ("champion", False)  # the learner's rule
    assert decision.reason.startswith("fails the quality gate")  # the facts, as they are
    assert PROMOTION_EXERCISE.source().startswith("lab-05/promotion.py sha256:")
    (tmp_path / "b").mkdir()  # another file: the running system loads a file once
    (tmp_path / "b" / "promotion.py").write_text(
        "def choose_alias(passed_gate, candidate_ap, champion_ap):\n    return 'best'\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path / "b"))
    with pytest.raises(labcode.LabCodeError, match="choose_alias returned 'best'"):
        decide_promotion({"auc_roc": 0.9, "average_precision": 0.7}, None, QualityGate(0.85, 0.6))


def test_an_unwritten_exercise_ends_the_command_with_its_message(tmp_path):
    import subprocess
    import sys

    env = {
        **os.environ,
        labcode.ENV: str(lab_dir(2) / "starter"),
        "FRAUD_DATA_DIR": str(tmp_path),
        "FRAUD_N_CUSTOMERS": "20",
        "FRAUD_N_TERMINALS": "40",
        "FRAUD_NB_DAYS": "3",
    }
    out = subprocess.run(
        [sys.executable, "-m", "reference_app", "simulate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "error: lab 02: terminals_near in" in out.stdout and "TODO(lab-02)" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "raw").exists()  # nothing written from an unwritten function


def test_an_error_in_the_learners_code_names_its_line(tmp_path, monkeypatch):
    (tmp_path / "psi.py").write_text(
        "def psi_from_shares(r, c):\n    shares = {}\n    return shares['current']\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    with pytest.raises(labcode.LabCodeError) as err:
        drift.psi(np.arange(100.0), np.arange(100.0) + 5)
    message = str(err.value)
    assert message.startswith("lab 11: psi_from_shares in ") and "psi.py raised KeyError" in message
    assert "at line 3" in message and "fraudlab exercise check 11 --code" in message
