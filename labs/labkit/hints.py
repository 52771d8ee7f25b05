"""Hints: the message of a failed check (expected / found / debug) and the pieces it is made of —
one-line text, one-line exceptions, and the exact commands a learner runs to look closer or fix.

Example:
    >>> print(hint("3 Ready nodes", "2 Ready nodes", kubectl("get nodes")))
    expected: 3 Ready nodes
    found:    2 Ready nodes
    debug:    kubectl --context kind-fraud-lab get nodes
"""

from __future__ import annotations

from .names import KUBE_CONTEXT, MLFLOW_SECRETS_FILE, NODEPORTS, REPO_ROOT


def hint(expected: str, found: str, debug: str | None = None) -> str:
    """The message of a failed check: what was expected, what was found, the command to debug.

    Example:
        >>> assert job_ok, hint("Job simulate succeeded", "0 succeeded pods", kubectl("-n fraud-lab logs job/simulate"))  # doctest: +SKIP
    """
    pad = "\n" + " " * 10  # continuation lines align under the first
    lines = [f"expected: {expected}".replace("\n", pad), f"found:    {found}".replace("\n", pad)]
    if debug:
        lines.append(f"debug:    {debug}".replace("\n", pad))
    return "\n".join(lines)


def kubectl(args: str) -> str:
    """A kubectl command line for a hint, always with the course's context."""
    return f"kubectl --context {KUBE_CONTEXT} {args}"


def short(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_error(err: BaseException) -> str:
    """`ConnectError: [Errno 111] Connection refused` — an exception on one line."""
    return short(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)


def promote_command(target: str, model: str, version: str | None, mlflow_url: str = "") -> str:
    """The command that gives a registered version the alias `champion`: `fraudlab promote
    --version N` (champion if the version passes the quality gate and beats the current
    champion, if any). Locally, `fraudlab model-test --version N` runs first: a version without
    passed model tests gets no alias (lab 07), and one trained with `--no-promote` has not been
    tested. On the cluster the versions come from the pipeline, whose model-tests step tested
    them; the command runs on this machine against the cluster's MLflow with the admin user, as
    in lab 05's step 4.

    Args:
        target: `cluster` or `local`.
        model: the registered model's name.
        version: the version to promote (the latest registered one, when the check could read
            it); None: the hint says where to find one.
        mlflow_url: MLflow's URL, to find a version in its UI.

    Example:
        >>> promote_command("local", "fraud-detector", "3")
        '.venv/bin/fraudlab model-test --version 3 && .venv/bin/fraudlab promote --version 3'
    """
    command = f".venv/bin/fraudlab promote --version {version or 'N'}"
    if target != "cluster":
        command = f".venv/bin/fraudlab model-test --version {version or 'N'} && {command}"
    else:
        command = (
            f"(set -a; . {MLFLOW_SECRETS_FILE.relative_to(REPO_ROOT)}; set +a; "
            'MLFLOW_TRACKING_USERNAME="$FRAUD_MLFLOW_ADMIN_USERNAME" '
            'MLFLOW_TRACKING_PASSWORD="$FRAUD_MLFLOW_ADMIN_PASSWORD" '
            f"FRAUD_MLFLOW_TRACKING_URI=http://127.0.0.1:{NODEPORTS['mlflow']} {command})"
        )
    if version is None:
        where = f"the MLflow UI ({mlflow_url})" if mlflow_url else "the MLflow UI"
        command += f"   (N = a version of {model} from `fraudlab train`'s output or {where})"
    return command
