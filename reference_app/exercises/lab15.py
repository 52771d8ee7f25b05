"""Lab 15's exercise: mask credentials in a log line before any handler writes it.

The learner writes `redact` in `labs/15-security-and-compliance/starter/redact.py`; every
`fraudlab` process installs it (`redaction.install_redaction`, from cli.py `_settings`) as the
logging record factory's filter, locally with `FRAUD_LAB_CODE` and on the cluster in the
model-inventory CronJob, which mounts the file from ConfigMap `lab-code-15`. Reference:
`redaction.redact` (OWASP Logging Cheat Sheet, "Data to exclude").
"""

from __future__ import annotations

import io
import logging

from .. import redaction
from . import Behaviour, as_lab_code

EXERCISE = redaction.REDACT_EXERCISE
REFERENCE = redaction.redact
FILE = "labs/15-security-and-compliance/starter/redact.py"
CHECK = "make lab-15 TARGET=local"
ADMIN_PASSWORD = "adm1n-Pa55-7f3c"


def _masks(line: str, secrets: list[str]):
    def check(learner, reference):
        return repr(reference(line, list(secrets))), repr(learner(line, list(secrets)))

    return check


def _both(*cases: tuple[str, list[str]]):
    def check(learner, reference):
        return (
            "; ".join(repr(reference(line, list(s))) for line, s in cases),
            "; ".join(repr(learner(line, list(s))) for line, s in cases),
        )

    return check


def _logged(learner, reference):
    """A warning through a `fraudlab` process's logging, once the redaction is installed with
    each function (the process's record factory is restored afterwards)."""

    def line(function) -> str:
        factory = logging.getLogRecordFactory()
        installed, secrets = list(redaction._installed), set(redaction._secrets)
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        log = logging.getLogger("fraudlab.lab15")
        log.addHandler(handler)
        log.propagate = False
        try:
            with as_lab_code(function):
                redaction.install_redaction([ADMIN_PASSWORD])
                log.warning(
                    "MLflow at http://admin:%s@127.0.0.1:5000 answered 401 to %s",
                    ADMIN_PASSWORD,
                    f"Authorization: Basic YWRtaW46{ADMIN_PASSWORD}",
                )
        finally:
            log.removeHandler(handler)
            logging.setLogRecordFactory(factory)
            redaction._installed[:] = installed
            redaction._secrets.clear()
            redaction._secrets.update(secrets)
        return repr(stream.getvalue().strip())

    return line(reference), line(learner)


BEHAVIOURS = [
    Behaviour(
        "a known secret is masked wherever it occurs, every time",
        _masks("retry 2 of 3 as admin with hunter22, then hunter22 again", ["hunter22"]),
        f"replace each secret with ***, every occurrence (str.replace): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a secret that contains another is masked whole (the longest first)",
        _masks("S3 key s3-Key-91 and signing key s3-Key-91-sig", ["s3-Key-91", "s3-Key-91-sig"]),
        f"sort the secrets by length, longest first, or '-sig' stays behind: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a password in a URL is masked and its user kept, even when it is no known secret",
        _masks("connect postgresql://mlflow:Zx9q7@postgres:5432/mlflow failed", []),
        f"URL_PASSWORD.sub: keep scheme://user: and @, mask what is between: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the credential of an Authorization header is masked, Basic and Bearer",
        _both(
            ("headers={'Authorization': 'Basic YWRtaW46cHc='}", []),
            ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln", []),
        ),
        f"AUTHORIZATION.sub: keep 'Authorization: Basic ', mask the rest: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a line without credentials comes back unchanged, and an empty secret masks nothing",
        _masks("scored 1,204 transactions in 3.1 s: version 4 (champion)", ["", "hunter22"]),
        f"skip empty secrets ('' is in every string): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a fraudlab process's log line with the MLflow admin password comes out masked",
        _logged,
        f"install_redaction runs your redact on every log record (FRAUD_LAB_CODE): {FILE}; "
        f"then {CHECK}",
    ),
]
