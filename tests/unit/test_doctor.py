"""The doctor's kubectl version rule (lab 00's exercise): the reference, typical wrong rules, and
scripts/doctor.sh running the learner's rule through `python -m reference_app.doctor`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reference_app.doctor import kubectl_verdict, main, verdict
from reference_app.exercises import run
from reference_app.labcode import LabCodeError

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "labs" / "00-introduction"
PIN = "v1.35.9"


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ("v1.35.9", "pass"),
        ("1.35.9", "pass"),
        ("v1.35.0", "warn"),
        ("v1.34.2-dispatcher", "warn"),
        ("v1.36.1", "warn"),
        ("v1.33.4", "fail"),
        ("v1.37.0", "fail"),
        ("v2.35.9", "fail"),
        ("", "fail"),
        ("kubectl", "fail"),
    ],
)
def test_reference_rule_is_the_skew_policy(installed, expected):
    assert kubectl_verdict(installed, PIN) == expected


def test_versions_compare_as_numbers():
    assert kubectl_verdict("v1.9.0", "v1.10.0") == "warn"
    assert kubectl_verdict("v1.8.0", "v1.10.0") == "fail"


WRONG_RULES = {
    "compares versions as text": (
        "    h, w = installed.lstrip('v'), pinned.lstrip('v')\n"
        "    if h == w: return 'pass'\n"
        "    return 'warn' if h[:4] >= w[:4] or h[:4] == w[:4] else 'fail'\n"
    ),
    "allows two minors of skew": (
        "    h, w = VERSION.match(installed), VERSION.match(pinned)\n"
        "    if not h or not w: return 'fail'\n"
        "    if installed.lstrip('v') == pinned.lstrip('v'): return 'pass'\n"
        "    ok = h[1] == w[1] and abs(int(h[2]) - int(w[2])) <= 2\n"
        "    return 'warn' if ok else 'fail'\n"
    ),
    "rejects vendor suffixes": (
        "    s = re.fullmatch(r'v?(\\d+)\\.(\\d+)\\.(\\d+)', installed)\n"
        "    w = VERSION.match(pinned)\n"
        "    if not s: return 'fail'\n"
        "    if installed.lstrip('v') == pinned.lstrip('v'): return 'pass'\n"
        "    return 'warn' if s[1] == w[1] and abs(int(s[2]) - int(w[2])) <= 1 else 'fail'\n"
    ),
    "needs the leading v": (
        "    if installed == pinned: return 'pass'\n"
        "    h, w = VERSION.match(installed), VERSION.match(pinned)\n"
        "    if not h or not w: return 'fail'\n"
        "    return 'warn' if h[1] == w[1] and abs(int(h[2]) - int(w[2])) <= 1 else 'fail'\n"
    ),
}


@pytest.mark.parametrize("mistake", WRONG_RULES, ids=list(WRONG_RULES))
def test_a_wrong_rule_fails_a_behaviour(tmp_path, mistake):
    (tmp_path / "versions.py").write_text(
        "import re\n\nVERSION = re.compile(r'^v?(\\d+)\\.(\\d+)\\.(\\d+)(.*)$')\n\n\n"
        f"def kubectl_verdict(installed, pinned):\n{WRONG_RULES[mistake]}"
    )
    failed = [r for r in run(0, tmp_path) if not r.passed]
    assert failed, mistake
    assert all(r.found != r.expected for r in failed)


def test_doctor_runs_the_learners_rule_and_refuses_a_non_verdict(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FRAUD_LAB_CODE", str(LAB / "solution"))
    answer, source = verdict("v1.34.2", PIN)
    assert answer == "warn" and source.startswith("lab-00/versions.py sha256:")
    (tmp_path / "versions.py").write_text(
        "def kubectl_verdict(installed, pinned):\n    return True\n"
    )
    monkeypatch.setenv("FRAUD_LAB_CODE", str(tmp_path))
    with pytest.raises(LabCodeError, match="returned True; a verdict is one of pass, warn, fail"):
        verdict("v1.34.2", PIN)
    assert main(["kubectl-verdict", "v1.34.2", PIN]) == 2
    assert "a verdict is one of" in capsys.readouterr().err


def doctor_kubectl_lines(tmp_path: Path, client: str, lab_code: Path | None) -> list[str]:
    """scripts/doctor.sh's kubectl line and hints, with a stub kubectl reporting `client`."""
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "kubectl").write_text(f'#!/bin/sh\necho "Client Version: {client}"\n')
    (stub / "kubectl").chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{stub}:{os.environ['PATH']}",
        DOCKER_HOST="unix:///nonexistent/fraud-lab-doctor.sock",
    )
    env.pop("FRAUD_LAB_CODE", None)
    if lab_code is not None:
        env["FRAUD_LAB_CODE"] = str(lab_code)
    out = subprocess.run(
        ["bash", "scripts/doctor.sh"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    ).stdout.splitlines()
    start = next(i for i, line in enumerate(out) if line[2:].startswith("kubectl "))
    end = next(i for i in range(start + 1, len(out)) if not out[i].startswith("    "))
    return out[start:end]


def test_doctor_sh_asks_the_rule_and_names_the_learners_file(tmp_path):
    reference = doctor_kubectl_lines(tmp_path, "v1.34.2", None)
    assert reference[0].startswith("! kubectl") and "within one minor" in reference[0]
    assert "rule:" not in reference[0]
    far = doctor_kubectl_lines(tmp_path, "v1.30.0", None)
    assert far[0].startswith("✗ kubectl") and "more than one minor" in far[0]
    solved = doctor_kubectl_lines(tmp_path, "v1.34.2", LAB / "solution")
    assert solved[0].startswith("! kubectl") and "(rule: lab-00/versions.py sha256:" in solved[0]
    starter = doctor_kubectl_lines(tmp_path, "v1.34.2", LAB / "starter")
    assert starter[0].startswith("✗ kubectl") and "not written yet" in starter[0]
    assert starter[1].strip() == (
        f"check it: .venv/bin/fraudlab exercise check 0 --code {LAB / 'starter'}"
    )
