"""The doctor's version rule: may this kubectl drive the course's cluster? (`make doctor`)

`scripts/doctor.sh` checks the machine for kind mode in Bash; for kubectl it asks this module
whether the installed client may drive a cluster of the pinned version (the pin is
`KUBECTL_VERSION` in scripts/versions.sh, the same minor as the kind node image):

    python -m reference_app.doctor kubectl-verdict v1.34.2 v1.35.9
    warn	reference

The rule is Kubernetes' version skew policy: "kubectl is supported within one minor version
(older or newer) of kube-apiserver" (kubernetes.io/releases/version-skew-policy, "kubectl").
It is lab 00's exercise (`labs/00-introduction/starter/versions.py`, `kubectl_verdict`): with
`FRAUD_LAB_CODE` naming the learner's folder, the doctor runs the learner's function, and its
line names the file (`rule: lab-00/versions.py sha256:…`).

Standard library only: the doctor runs before anything is installed (`python3` is enough).
"""

from __future__ import annotations

import re
import sys

from .labcode import Exercise, LabCodeError

VERSION_EXERCISE = Exercise(lab=0, module="versions", function="kubectl_verdict")
"""Lab 00's exercise: the learner's `kubectl_verdict` in `versions.py`."""

VERDICTS = ("pass", "warn", "fail")
"""What a version rule answers: the pin itself; supported but not the pin; unsupported."""

MAX_MINOR_SKEW = 1
"""Minor versions kubectl may be away from the API server (Kubernetes version skew policy)."""

# --8<-- [start:rule]
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(.*)$")


def kubectl_verdict(installed: str, pinned: str) -> str:
    """Whether kubectl `installed` may drive a cluster of version `pinned`.

    Args:
        installed: what `kubectl version --client` reports, e.g. "v1.34.2", "1.35.9" or a
            vendor build such as "v1.34.2-dispatcher" (Google Cloud SDK) or "v1.35.0+k3s1".
        pinned: the course's pin, e.g. "v1.35.9" (the cluster's minor version).

    Returns:
        "pass" when `installed` is the pin (a leading "v" optional); "warn" when it is another
        build of the same major within `MAX_MINOR_SKEW` minor versions of the pin (supported,
        not what the course tested); "fail" otherwise, and for a version that does not read as
        MAJOR.MINOR.PATCH. Versions compare as numbers: 1.9 is one minor before 1.10.

    Source: Kubernetes version skew policy, "kubectl"
    (https://kubernetes.io/releases/version-skew-policy/#kubectl).
    """
    have, want = _VERSION.match(installed.strip()), _VERSION.match(pinned.strip())
    if have is None or want is None:
        return "fail"
    if installed.strip().removeprefix("v") == pinned.strip().removeprefix("v"):
        return "pass"
    (have_major, have_minor), (want_major, want_minor) = (
        (int(m.group(1)), int(m.group(2))) for m in (have, want)
    )
    if have_major == want_major and abs(have_minor - want_minor) <= MAX_MINOR_SKEW:
        return "warn"
    return "fail"


# --8<-- [end:rule]


def verdict(installed: str, pinned: str) -> tuple[str, str]:
    """The doctor's verdict for kubectl `installed` against `pinned`, and which rule gave it
    (`labcode.Exercise.source`: "reference" or the learner's file and digest).

    Raises:
        LabCodeError: the learner's rule is not written, raises, or answers something that is
            not one of `VERDICTS`.
    """
    rule = VERSION_EXERCISE.implementation(kubectl_verdict)
    answer = rule(installed, pinned)
    if answer not in VERDICTS:
        raise LabCodeError(
            f"lab 00: kubectl_verdict({installed!r}, {pinned!r}) returned {answer!r}; "
            f"a verdict is one of {', '.join(VERDICTS)}"
        )
    return answer, VERSION_EXERCISE.source()


def main(argv: list[str]) -> int:
    """`python -m reference_app.doctor kubectl-verdict INSTALLED PINNED`: prints the verdict and
    the rule's source separated by a tab; exit 0, or 2 with the reason on stderr when the rule
    fails (a learner's TODO, an error in it) or the arguments are wrong."""
    if len(argv) != 3 or argv[0] != "kubectl-verdict":
        print(
            "usage: python -m reference_app.doctor kubectl-verdict INSTALLED PINNED",
            file=sys.stderr,
        )
        return 2
    try:
        answer, source = verdict(argv[1], argv[2])
    except LabCodeError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"{answer}\t{source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
