"""The app image's labels: which commit it was built from and which serving runtime it carries.

`make images` (scripts/images.sh) and `make images-podman` (scripts/podman-image.sh) build the
Dockerfile with one `--label KEY=VALUE` per line of `fraudlab image-labels`: the OCI revision
(the commit of the work tree, `-dirty` when uncommitted changes go into the image; scripts/
versions.sh `app_commit`) and the versions of the serving runtime (MLServer, onnxruntime,
scikit-learn) that `requirements.lock` pins, so `docker inspect`, the registry and `make lab-8`
tell which code and which runtime a pod runs without starting it. Lab 08's exercise stands in
for `image_labels` (`LABELS_EXERCISE`): with `FRAUD_LAB_CODE` naming its folder, the learner's
function labels the build, and the label `io.fraud-lab.lab-code` records which file did.

Label keys follow the OCI image spec's annotation keys (`org.opencontainers.image.revision`:
"Source control revision identifier for the packaged software",
https://github.com/opencontainers/image-spec/blob/main/annotations.md) and, for the project's
own, a reverse-DNS prefix as the spec asks (`io.fraud-lab.`).

Example:
    >>> labels = image_labels("1a2b" * 10, "mlserver==1.7.1\\nonnxruntime==1.32.0\\nscikit-learn==1.9.1\\n")
    >>> labels["io.fraud-lab.runtime.scikit-learn"]
    '1.9.1'
"""

from __future__ import annotations

import re
from pathlib import Path

from .labcode import Exercise, LabCodeError

REVISION_LABEL = "org.opencontainers.image.revision"
RUNTIME_LABEL_PREFIX = "io.fraud-lab.runtime."
RUNTIME_PACKAGES = ("mlserver", "onnxruntime", "scikit-learn")
"""The serving runtime: the model server, the ONNX scorer and the library of the sklearn models."""
LAB_CODE_IMAGE_LABEL = "io.fraud-lab.lab-code"
"""Which `image_labels` labelled the build: "reference" or the learner's file and its digest."""
# A label key as Docker accepts it: lowercase alphanumerics, dots and dashes (reverse DNS).
LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
# A pin in a pip requirements file: `name==version`, optionally with extras and markers.
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#\\]+)")

LABELS_EXERCISE = Exercise(lab=8, module="labels", function="image_labels")
"""Lab 08: the learner's `image_labels` (labs/08-packaging-and-ci/starter/labels.py) stands in
for this module's when `FRAUD_LAB_CODE` has it (`labcode`): the image build runs it."""


def canonical_name(name: str) -> str:
    """A distribution name as pip compares names (PEP 503: runs of `-`, `_`, `.` become one `-`,
    lowercase): `Scikit_Learn` → `scikit-learn`."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --8<-- [start:image-labels]
def pinned_version(lock: str, package: str) -> str:
    """The version `lock` (a pip requirements file, one `name==version` a line) pins `package` to.

    Comments, blank lines and options are skipped; names compare as pip compares them (PEP 503),
    so `mlserver-sklearn==…` is not a pin of `mlserver`.

    Raises:
        ValueError: `lock` does not pin `package` with `==`.
    """
    wanted = canonical_name(package)
    for line in lock.splitlines():
        match = PIN.match(line.split("#", 1)[0])
        if match and canonical_name(match.group(1)) == wanted:
            return match.group(2)
    raise ValueError(f"the lock file pins no {package} (a line {package}==VERSION)")


def image_labels(commit: str, lock: str) -> dict[str, str]:
    """The labels of an app image built from `commit` with the dependencies `lock` pins.

    Args:
        commit: the work tree's commit as `app_commit` gives it (40 hex digits, `-dirty` when
            uncommitted changes go into the image); recorded as it is.
        lock: the text of requirements.lock, which the Dockerfile installs with `--constraint`.

    Returns:
        {"org.opencontainers.image.revision": commit,
         "io.fraud-lab.runtime.<package>": its pinned version, for each of RUNTIME_PACKAGES}.

    Raises:
        ValueError: the lock does not pin one of RUNTIME_PACKAGES.
    """
    labels = {REVISION_LABEL: commit}
    for package in RUNTIME_PACKAGES:
        labels[RUNTIME_LABEL_PREFIX + package] = pinned_version(lock, package)
    return labels


# --8<-- [end:image-labels]


def build_labels(commit: str, lock_path: Path) -> dict[str, str]:
    """The labels `fraudlab image-labels` gives the image build: `image_labels` (the learner's
    when `FRAUD_LAB_CODE` has lab 08's module) and `LAB_CODE_IMAGE_LABEL`, which records whose.

    Raises:
        ValueError: `commit` is empty, the lock file is missing or lacks a runtime's pin.
        LabCodeError: the learner's function is not written, raises, or returns something that
            cannot be a set of labels (not a dict of label keys to one-line strings).
    """
    if not commit.strip():
        raise ValueError("no commit: pass --commit (scripts/versions.sh app_commit)")
    if not lock_path.is_file():
        raise ValueError(f"no lock file {lock_path}")
    labels = LABELS_EXERCISE.implementation(image_labels)(commit, lock_path.read_text())
    problem = label_problem(labels)
    if problem:
        raise LabCodeError(
            f"lab 08: image_labels returned {problem}; check it with: fraudlab exercise check 8 "
            f"--code {LABELS_EXERCISE.path().parent if LABELS_EXERCISE.path() else '.'}"
        )
    return {**labels, LAB_CODE_IMAGE_LABEL: LABELS_EXERCISE.source()}


def label_problem(labels: object) -> str | None:
    """Why `labels` cannot be passed as `--label KEY=VALUE` lines, or None."""
    if not isinstance(labels, dict):
        return f"a {type(labels).__name__}, not a dict"
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            return f"the key {key!r} (label keys: lowercase letters, digits, dots and dashes)"
        if not isinstance(value, str) or "\n" in value or not value:
            return f"the value {value!r} for {key} (a non-empty one-line string)"
    return None
