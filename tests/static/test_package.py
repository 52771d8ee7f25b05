"""The package works when installed: a wheel holds what the code reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "manifests" / "base" / "monitoring" / "prometheusrule.fraud-lab.yaml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the venv's setuptools builds it offline, as `pip install .` would.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (path,) = out.glob("fraud_lab-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_the_alert_rules_as_a_file_equal_to_the_manifest(wheel):
    data = wheel.read("reference_app/monitoring/prometheusrule.fraud-lab.yaml")
    assert data == RULES.read_bytes()


def test_the_wheel_holds_no_manifests_tests_or_labs(wheel):
    names = wheel.namelist()
    assert not [n for n in names if n.startswith(("manifests/", "tests/", "labs/"))]
    assert "reference_app/launchers/prometheus.py" in names


def test_rule_groups_reads_the_package_data_of_an_installed_package(wheel, tmp_path):
    """Installed from the wheel into a folder away from the checkout, the package finds its rules."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         wheel.filename],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    code = (
        "import reference_app, sys; from reference_app.launchers.prometheus import rule_groups; "
        "print(reference_app.__file__); print(sum(len(g['rules']) for g in rule_groups()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    where, count = out.stdout.split()
    assert where.startswith(str(target)), f"imported {where}, not the installed copy"
    assert int(count) > 0
