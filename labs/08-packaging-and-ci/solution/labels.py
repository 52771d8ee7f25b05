"""Lab 08 exercise: the labels the app image is built with.

An image that reaches a cluster should say, without being started, which code it holds and
which serving runtime: `make images` (and `make images-podman`) ask `fraudlab image-labels` for
the labels and pass each one to the build as `--label KEY=VALUE`. With FRAUD_LAB_CODE pointing
at this folder, your function is the one that labels the build:

    FRAUD_LAB_CODE=labs/08-packaging-and-ci/starter make images

The image then carries, besides your labels, `io.fraud-lab.lab-code=lab-08/labels.py sha256:…`:
which file labelled it. Check your work: `make lab-8 TARGET=local` (one line per behaviour).
"""

import re

REVISION_LABEL = "org.opencontainers.image.revision"
RUNTIME_LABEL_PREFIX = "io.fraud-lab.runtime."
RUNTIME_PACKAGES = ("mlserver", "onnxruntime", "scikit-learn")


def canonical(name: str) -> str:
    """`name` as pip compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_version(lock: str, package: str) -> str:
    """The version `lock` (the text of requirements.lock) pins `package` to.

    A pin is a line `name==version`; a line may also carry a comment (`# via …`) or an
    environment marker (`; python_version >= "3.11"`). pip compares names in their canonical
    form (PEP 503): lowercase, every run of `-`, `_` and `.` as one `-`, so `Scikit_Learn` and
    `scikit-learn` are one package, and `mlserver-sklearn` is not `mlserver`.

    Raises:
        ValueError: no line pins `package`; the message names it.
    """
    for line in lock.splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0]
        name, sep, version = requirement.partition("==")
        if sep and canonical(name.strip()) == canonical(package):
            return version.strip()
    raise ValueError(f"requirements.lock pins no {package}")


def image_labels(commit: str, lock: str) -> dict[str, str]:
    """The labels of an app image built from `commit` with the dependencies `lock` pins.

    Args:
        commit: the work tree's commit as scripts/versions.sh `app_commit` gives it: 40 hex
            digits, plus `-dirty` when uncommitted changes go into the image.
        lock: the text of requirements.lock (the Dockerfile installs with --constraint on it).

    Returns:
        {REVISION_LABEL: the commit, as given;
         RUNTIME_LABEL_PREFIX + package: its pinned version, for each of RUNTIME_PACKAGES}.
    """
    labels = {REVISION_LABEL: commit}
    for package in RUNTIME_PACKAGES:
        labels[RUNTIME_LABEL_PREFIX + package] = pinned_version(lock, package)
    return labels
