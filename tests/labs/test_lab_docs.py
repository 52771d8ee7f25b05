"""The lab READMEs: one shape (Goal · Before you start · Steps · Verification · Next), and a
Verification section that is exactly `make lab-NN` and the output of a run where every check
passes, as the validators print it (so the README cannot drift from the checks)."""

from __future__ import annotations

import re

import pytest

from .conftest import LAB_DIRS, LABS, ROOT, lab_env, run_lab

SECTIONS = ["Goal", "Before you start", "Steps", "Verification", "Next"]


def readme(folder) -> str:
    """A lab README without the snippet section markers the chapters include it by."""
    return re.sub(
        r"^<!-- --8<-- \[(start|end):[a-z-]+\] -->\n",
        "",
        (folder / "README.md").read_text(),
        flags=re.M,
    )


@pytest.mark.parametrize("lab", sorted(LAB_DIRS))
def test_readme_has_the_lab_shape(lab):
    text = readme(LAB_DIRS[lab])
    assert text.startswith(f"# Lab {lab:02d} · ")
    assert re.findall(r"^## (.+)$", text, flags=re.M) == SECTIONS
    goal = text.split("## Goal\n", 1)[1].split("\n## ", 1)[0]
    assert goal.strip().startswith("In this lab you will ")


@pytest.mark.parametrize("lab", sorted(LAB_DIRS))
def test_readme_verification_is_the_all_pass_output(lab):
    text = readme(LAB_DIRS[lab])
    verification = text.split("## Verification\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)\n```", verification, flags=re.S)
    assert blocks[:2] == [("bash", f"make lab-{lab:02d}"), ("text", blocks[1][1])], blocks
    listed = run_lab(lab, "--list", "--target", "cluster", env=lab_env())
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert blocks[1][1] == listed.stdout.rstrip("\n"), (
        f"labs/{LAB_DIRS[lab].name}/README.md: Verification differs from the checks"
    )


@pytest.mark.parametrize("lab", sorted(LAB_DIRS))
def test_readme_links_and_files_exist(lab):
    folder = LAB_DIRS[lab]
    text = readme(folder)
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        if not link.startswith("http"):
            assert (folder / link).resolve().exists(), (
                f"{folder.name}/README.md links to missing {link}"
            )
    for path in re.findall(r"labs/[0-9][0-9]-[a-z0-9-]+/[\w./-]*", text):
        assert (ROOT / path).exists(), f"{folder.name}/README.md names missing {path}"


def test_labs_readme_lists_every_lab_and_the_make_targets():
    text = (LABS / "README.md").read_text()
    for folder in LAB_DIRS.values():
        assert f"]({folder.name}/README.md)" in text
    for target in ("make lab-2 TARGET=local", "REPORT=", "make lab-5-solution", "make lab-2-reset"):
        assert target in text
    makefile = (ROOT / "Makefile").read_text()
    for rule in ("lab-%-solution:", "lab-%-reset:", "lab-%:", "labs:", "replay-cluster:"):
        line = next(line for line in makefile.splitlines() if line.startswith(rule))
        assert " ## " in line, f"{rule} has no help comment"
