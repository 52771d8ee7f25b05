"""Log redaction: no credential reaches a log line of a `fraudlab` process.

Every `fraudlab` command (cli.py `_settings`) installs `install_redaction` with the secrets its
settings hold: the MLflow admin password, the model repository's admin token, MLflow's client
password and the S3 secret key from the environment. From then on every log record the process
creates (its own loggers, MLflow's client, uvicorn, httpx) passes through `redact` before any
handler formats it. Lab 15's exercise is `redact` (labs/15-security-and-compliance/starter/
redact.py): with `FRAUD_LAB_CODE` naming its folder, the learner's function is the one installed.

Three kinds of leak are masked: a known secret anywhere in the line (OWASP Logging Cheat Sheet,
"Data to exclude": access tokens, passwords, connection strings), a password inside a URL
(`scheme://user:password@host`, RFC 3986 section 3.2.1 deprecates the form for this reason), and
the value of an HTTP `Authorization` header (Basic credentials are only base64: RFC 7617 section 2).

What it does not cover: text a process writes without `logging` (print, a C library, a child
process's own output) and the formatted traceback of a record's `exc_info`. Those are why the
secrets themselves stay out of arguments, URLs and exception messages in the first place.

Example:
    >>> redact("login admin:s3cret-pw@mlflow failed for s3cret-pw", ["s3cret-pw"])
    'login admin:***@mlflow failed for ***'
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable

from .labcode import Exercise

REDACTED = "***"
"""What a masked value becomes."""

REDACT_EXERCISE = Exercise(lab=15, module="redact", function="redact")
"""Lab 15: the learner's `redact` (labs/15-security-and-compliance/starter/redact.py)."""

# --8<-- [start:patterns]
# scheme://user:password@host — the password part (RFC 3986 3.2.1: userinfo).
URL_PASSWORD = re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")
# Authorization: Basic dXNlcjpwdw== / Bearer eyJ… — the credential after the scheme (RFC 7235 4.2).
AUTHORIZATION = re.compile(
    r"(?P<keep>(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:basic|bearer)\s+)[^\s\"',]+"
)
# --8<-- [end:patterns]
ENV_SECRETS = ("MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY", "FRAUD_SERVING_ADMIN_TOKEN")
"""Environment variables whose values are credentials wherever a `fraudlab` process runs."""


# --8<-- [start:redact]
def redact(line: str, secrets: Iterable[str]) -> str:
    """`line` with every credential replaced by `REDACTED`.

    Args:
        line: one log message, already formatted.
        secrets: the credential values this process knows (empty strings are ignored).

    Returns:
        The line with (1) each secret masked wherever it occurs, longest first, so a secret that
        contains another is masked whole; (2) the password of a `scheme://user:password@host`
        URL masked, the user kept; (3) the credential of an `Authorization: Basic|Bearer` header
        masked. A line without any of these comes back unchanged.

    Example:
        >>> redact("Authorization: Bearer abc.def", [])
        'Authorization: Bearer ***'
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        line = line.replace(secret, REDACTED)
    line = URL_PASSWORD.sub(lambda m: f"{m['keep']}{REDACTED}@", line)
    return AUTHORIZATION.sub(lambda m: f"{m['keep']}{REDACTED}", line)


# --8<-- [end:redact]


def secret_values(settings) -> list[str]:
    """The credential values a process with `settings` holds: every `SecretStr` setting (the
    MLflow admin password, the model repository's admin token) and the `ENV_SECRETS` of the
    environment (how `fraudlab up` hands credentials to the servers it starts)."""
    from pydantic import SecretStr

    values = [
        v.get_secret_value()
        for v in (getattr(settings, name) for name in type(settings).model_fields)
        if isinstance(v, SecretStr)
    ]
    values += [os.environ[name] for name in ENV_SECRETS if os.environ.get(name)]
    return [v for v in dict.fromkeys(values) if v]


_secrets: set[str] = set()
_installed: list[Callable] = []  # the redact function the record factory calls (one, or none)


# --8<-- [start:install]
def install_redaction(secrets: Iterable[str]) -> None:
    """Mask `secrets` (and URL passwords, Authorization headers) in every log record this
    process creates from now on: a `logging` record factory that formats the message, passes
    it through `redact` (the learner's with FRAUD_LAB_CODE) and keeps the masked text.

    A second call adds its secrets to the same factory. A redact that raises on a record
    withholds that line rather than let it through unmasked (fail closed).

    Raises:
        labcode.LabCodeError: the learner's redact does not import or is not written yet
            (found here, at install, not at the first log line).
    """
    _secrets.update(s for s in secrets if s)
    function = REDACT_EXERCISE.implementation(redact)
    function("", [])  # a TODO raises LabCodeError now, with the file it is in
    if _installed:
        _installed[0] = function
        return
    _installed.append(function)
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it as it always does
            return record
        try:
            clean = _installed[0](message, sorted(_secrets))
        except Exception as err:  # noqa: BLE001 - never let an unmasked line through
            clean = f"[log line withheld: redaction failed with {type(err).__name__}]"
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(factory)


# --8<-- [end:install]
