"""Lab 00 exercise: may this kubectl drive the course's cluster?

`make doctor` checks your machine before you create the cluster. For kubectl it asks your
function whether the installed client may drive a cluster of the pinned version (the pin is
KUBECTL_VERSION in scripts/versions.sh, the same minor as the kind node image). Kubernetes'
version skew policy: kubectl is supported within one minor version (older or newer) of the API
server (https://kubernetes.io/releases/version-skew-policy/#kubectl).

With FRAUD_LAB_CODE pointing at this folder, your function is the one the doctor runs:

    FRAUD_LAB_CODE=labs/00-introduction/starter make doctor

Check your work: `make lab-00 TARGET=local` (one line per behaviour).
"""

import re

VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(.*)$")
"""MAJOR.MINOR.PATCH with an optional leading "v" and any suffix ("-dispatcher", "+k3s1")."""


def kubectl_verdict(installed: str, pinned: str) -> str:
    """Whether kubectl `installed` may drive a cluster of version `pinned`.

    Args:
        installed: what `kubectl version --client` reports, e.g. "v1.34.2", "1.35.9", or a
            vendor build such as "v1.34.2-dispatcher" (Google Cloud SDK's kubectl).
        pinned: the course's pin, e.g. "v1.35.9".

    Returns:
        "pass": `installed` is the pin (the leading "v" is optional);
        "warn": another build of the same major version within one minor version of the pin
                (supported, but not what the course tested);
        "fail": anything else, including a version that does not read as MAJOR.MINOR.PATCH.
    """
    # TODO(lab-00): match both strings with VERSION (None: "fail"); equal once a leading "v" is
    # removed: "pass"; then compare major and minor AS NUMBERS (int(...)): "1.9" is one minor
    # before "1.10", though "1.9" > "1.10" as text. Same major, minor at most 1 away: "warn".
    raise NotImplementedError("TODO(lab-00): kubectl_verdict")
