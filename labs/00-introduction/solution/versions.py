"""Lab 00 exercise, solved: may this kubectl drive the course's cluster?

`make doctor` asks this function whether the installed kubectl may drive a cluster of the
pinned version (Kubernetes version skew policy: within one minor version of the API server,
https://kubernetes.io/releases/version-skew-policy/#kubectl).

    FRAUD_LAB_CODE=labs/00-introduction/starter make doctor
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
    have, want = VERSION.match(installed.strip()), VERSION.match(pinned.strip())
    if have is None or want is None:
        return "fail"
    if installed.strip().removeprefix("v") == pinned.strip().removeprefix("v"):
        return "pass"
    have_major, have_minor = int(have.group(1)), int(have.group(2))
    want_major, want_minor = int(want.group(1)), int(want.group(2))
    if have_major == want_major and abs(have_minor - want_minor) <= 1:
        return "warn"
    return "fail"
