"""Lab 15 exercise: mask credentials in a log line before it is written.

Every `fraudlab` process installs a logging record factory (reference_app/redaction.py) that
passes each formatted log message through `redact` with the secrets the process holds (the
MLflow admin password, the model repository's admin token, MLflow's client password, the S3
secret key). With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from its
ConfigMap (the model-inventory CronJob on the cluster), your function is the one installed.

Three kinds of leak:
    a known secret anywhere:           "retry with hunter2"            → "retry with ***"
    a password inside a URL:           "postgresql://mlflow:pw@pg/db"  → "postgresql://mlflow:***@pg/db"
    an Authorization header's value:   "Authorization: Basic YWRt…"    → "Authorization: Basic ***"

Check your work: `make lab-15 TARGET=local` (one line per behaviour).
"""

import re

REDACTED = "***"
URL_PASSWORD = re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")
AUTHORIZATION = re.compile(
    r"(?P<keep>(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:basic|bearer)\s+)[^\s\"',]+"
)


def redact(line, secrets):
    """`line` with every credential replaced by "***".

    Args:
        line: one log message, already formatted (str).
        secrets: the credential values the process knows (an iterable of str; ignore empty ones).

    Returns:
        The line with each secret masked wherever it occurs (longest first, so a secret that
        contains another is masked whole), the password of a `scheme://user:password@host` URL
        masked (the user kept), and the credential after `Authorization: Basic` or `Bearer`
        masked. A line with none of these comes back unchanged.
    """
    # TODO(lab-15): mask each non-empty secret wherever it occurs, the longest first; then
    # the password of a scheme://user:password@host URL (URL_PASSWORD, keep the user) and the
    # credential of an Authorization header (AUTHORIZATION, keep "Authorization: Basic ").
    raise NotImplementedError("TODO(lab-15): redact")
