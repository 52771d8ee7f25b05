"""The learner-facing output of `make lab-N`, on a small lab of made-up checks run with the real
labs/conftest.py, labs/labkit (its reporter plugin) and labs/pytest.ini: one line per check
(✓ ✗ –), hints under failures, no traceback, the N/M line, the exit status, JUnit XML and the
JSON summary."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from .conftest import LABS, lab_env, parse, run_lab

FORMAT_LAB = '''
import pytest
from labkit import hint


def test_first():
    """The first check passes."""


def test_second():
    """The second check fails with a hint."""
    assert False, hint("3 Ready nodes", "2 Ready nodes", "kubectl --context kind-fraud-lab get nodes")


@pytest.mark.needs("test_second")
def test_third():
    """The third check needs the second."""


@pytest.mark.cluster("Jobs run on a cluster")
def test_cluster_only():
    """A check that needs a cluster."""


@pytest.mark.local("reads the local stack")
def test_local_only():
    """A check of the local stack."""


@pytest.mark.parametrize("namespace", ["fraud-lab", "monitoring"])
def test_namespace(namespace):
    """Namespace `{namespace}` exists."""
    assert namespace == "fraud-lab", hint("namespace monitoring", "no such namespace", f"kubectl get namespace {namespace}")


def test_crash():
    """A check whose code raises."""
    raise ValueError("boom")


def test_uses_cluster(k8s):
    """A check that talks to the cluster."""


def test_uses_cluster_again(k8s):
    """Another check that talks to the cluster."""
'''

ALL_PASS_LAB = '''
import pytest


def test_one():
    """One."""


@pytest.mark.cluster("needs nodes")
def test_two():
    """Two."""
'''

OPTIONAL_LAB = '''
import pytest
import labkit


def test_exercise():
    """The learner's code behaves as the reference."""


def test_server():
    """The optional server answers."""
    labkit.not_deployed("no Deployment llm-server; to do the lab: kubectl apply -k starter")


@pytest.mark.needs("test_server")
def test_streams():
    """A completion streams."""
    raise AssertionError("must not run when the server is not deployed")
'''


@pytest.fixture
def fake_labs(tmp_path) -> Path:
    """A labs/ folder with the real framework files and two made-up labs."""
    labs = tmp_path / "labs"
    labs.mkdir()
    for name in ("conftest.py", "pytest.ini"):
        shutil.copy(LABS / name, labs / name)
    shutil.copytree(LABS / "labkit", labs / "labkit", ignore=shutil.ignore_patterns("__pycache__"))
    for folder, source in (
        ("98-format", FORMAT_LAB),
        ("97-all-pass", ALL_PASS_LAB),
        ("96-optional", OPTIONAL_LAB),
    ):
        (labs / folder).mkdir()
        (labs / folder / "test_lab.py").write_text(textwrap.dedent(source))
    return labs


def run_fake(labs: Path, lab: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_lab(
        labs / lab,
        *args,
        env=lab_env({"KUBECONFIG": str(labs / "no-kubeconfig"), "HOME": str(labs), **env}),
        cwd=labs.parent,
    )


def test_one_line_per_check_with_hints_and_reasons(fake_labs):
    result = run_fake(fake_labs, "98-format", "--target", "local")
    assert result.returncode == 1
    assert (
        "Traceback" not in result.stdout + result.stderr
        and "ValueError('boom')" not in result.stdout
    )
    assert result.stdout.splitlines() == [
        "Lab 98-format · target local (local stack, data in data)",
        "✓ The first check passes.",
        "✗ The second check fails with a hint.",
        "    expected: 3 Ready nodes",
        "    found:    2 Ready nodes",
        "    debug:    kubectl --context kind-fraud-lab get nodes",
        "– The third check needs the second. (skipped because an earlier check failed: The second check fails with a hint.)",
        "– A check that needs a cluster. (needs a cluster: Jobs run on a cluster)",
        "✓ A check of the local stack.",
        "✓ Namespace `fraud-lab` exists.",
        "✗ Namespace `monitoring` exists.",
        "    expected: namespace monitoring",
        "    found:    no such namespace",
        "    debug:    kubectl get namespace monitoring",
        "✗ A check whose code raises.",
        "    the check could not run: ValueError: boom",
        "✗ A check that talks to the cluster.",
        "    expected: context kind-fraud-lab in your kubeconfig, pointing at the kind cluster, answering",
        "    found:    the local target has no cluster",
        "    debug:    make lab-N TARGET=cluster",
        "– Another check that talks to the cluster. (skipped because an earlier check failed: A check that talks to the cluster.)",
        "",
        "3/9 checks passed (4 failed, 2 skipped because an earlier check failed, 1 not for target local)",
    ]


def test_cluster_target_skips_local_checks_and_refuses_a_missing_kubeconfig(fake_labs):
    result = run_fake(fake_labs, "98-format")
    out = parse(result.stdout)
    assert result.returncode == 1
    by_text = {c["text"].split(" (")[0]: c for c in out["checks"]}
    assert by_text["A check that needs a cluster."]["symbol"] == "✓"
    assert (
        out["checks"][4]["text"]
        == "A check of the local stack. (local mode only: reads the local stack)"
    )
    cluster = by_text["A check that talks to the cluster."]
    assert cluster["symbol"] == "✗"
    assert (
        cluster["hint"][1]
        == f"found:    no kubeconfig file ({fake_labs / 'no-kubeconfig'}); the checks use context kind-fraud-lab only"
    )
    assert cluster["hint"][2] == "debug:    make cluster"
    assert out["summary"] == (
        "3",
        "9",
        "4 failed, 2 skipped because an earlier check failed, 1 not for target cluster",
    )


def test_exit_zero_only_when_every_applicable_check_passes(fake_labs):
    local = run_fake(fake_labs, "97-all-pass", "--target", "local")
    assert local.returncode == 0, local.stdout
    assert local.stdout.splitlines()[-2:] == [
        "1/1 checks passed (1 not for target local)",
        "Lab 97-all-pass done on target local.",
    ]
    cluster = run_fake(fake_labs, "97-all-pass", "--target", "cluster")
    assert cluster.returncode == 0 and "2/2 checks passed" in cluster.stdout


def test_an_optional_part_not_deployed_does_not_fail_the_lab(fake_labs, tmp_path):
    summary = tmp_path / "optional.json"
    result = run_fake(fake_labs, "96-optional", "--target", "local", f"--lab-json={summary}")
    assert result.returncode == 0, result.stdout
    assert (
        "– The optional server answers. (optional, not deployed: no Deployment llm-server; "
        "to do the lab: kubectl apply -k starter)" in result.stdout
    )
    assert "– A completion streams. (optional, not deployed: it needs: The optional server" in (
        result.stdout
    )
    assert result.stdout.splitlines()[-2:] == [
        "1/1 checks passed (2 of an optional part that is not deployed)",
        "Lab 96-optional done on target local.",
    ]
    data = json.loads(summary.read_text())
    assert (data["ok"], data["skipped_optional"], data["skipped_earlier_failed"]) == (True, 2, 0)
    assert {c["skip"] for c in data["checks"]} == {"", "optional"}


def test_an_unloadable_lab_fails_in_one_line(fake_labs):
    (fake_labs / "98-format" / "test_lab.py").write_text("import no_such_module\n")
    result = run_fake(fake_labs, "98-format", "--target", "local")
    assert result.returncode != 0
    assert "Traceback" not in result.stdout
    assert any(
        line.startswith("✗ could not load") and "No module named 'no_such_module'" in line
        for line in result.stdout.splitlines()
    ), result.stdout


def test_tracebacks_on_request(fake_labs):
    result = run_fake(fake_labs, "98-format", "--target", "local", "--tracebacks")
    assert "raise ValueError" in result.stdout


def test_list_prints_the_all_pass_transcript_without_running(fake_labs):
    result = run_fake(fake_labs, "98-format", "--target", "local", "--list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert (
        lines[1] == "✓ The first check passes."
        and lines[2] == "✓ The second check fails with a hint."
    )
    assert "– A check that needs a cluster. (needs a cluster: Jobs run on a cluster)" in lines
    assert lines[-2:] == [
        "9/9 checks passed (1 not for target local)",
        "Lab 98-format done on target local.",
    ]


def test_report_files_for_instructors(fake_labs, tmp_path):
    xml, summary = tmp_path / "out" / "ada.xml", tmp_path / "out" / "ada.json"
    result = run_fake(
        fake_labs, "98-format", "--target", "local", f"--junitxml={xml}", f"--lab-json={summary}"
    )
    assert result.returncode == 1
    data = json.loads(summary.read_text())
    assert (
        data["lab"],
        data["target"],
        data["passed"],
        data["total"],
        data["failed"],
        data["ok"],
        data["exit_status"],
    ) == ("98-format", "local", 3, 9, 4, False, 1)
    assert (data["skipped_earlier_failed"], data["skipped_target"]) == (2, 1)
    second = next(c for c in data["checks"] if c["check"] == "The second check fails with a hint.")
    assert (
        second["outcome"] == "failed"
        and second["message"].splitlines()[0] == "expected: 3 Ready nodes"
    )
    third = next(c for c in data["checks"] if c["check"].startswith("The third"))
    assert (third["outcome"], third["skip"]) == ("skipped", "earlier-failed")
    text = xml.read_text()
    # The sentence the learner read is a property; the hint (not a traceback) the failure message.
    assert '<property name="check" value="The second check fails with a hint." />' in text
    assert 'message="expected: 3 Ready nodes&#10;found:    2 Ready nodes' in text
    assert "Traceback" not in text and 'File "' not in text


def test_make_resolves_lab_numbers_and_refuses_unknown_ones():
    listing = subprocess.run(
        ["make", "--no-print-directory", "labs"],
        cwd=LABS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert "make lab-9   Lab 09 · Serving with Seldon Core and MLServer" in listing.stdout
    assert (
        "make lab-11  Lab 11 · Monitoring and observability" in listing.stdout
        and "monitoring work" not in listing.stdout
    )
    unknown = subprocess.run(
        ["make", "--no-print-directory", "lab-42"],
        cwd=LABS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        unknown.returncode != 0
        and "error: no lab '42'; the labs: 00-introduction 02-kubernetes-for-ml" in unknown.stdout
    )
    bad_target = subprocess.run(
        ["make", "--no-print-directory", "lab-9", "TARGET=staging"],
        cwd=LABS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        bad_target.returncode != 0
        and "error: TARGET=staging; use TARGET=cluster or TARGET=local" in bad_target.stdout
    )
