"""Lab 15's redaction where the system runs it: every `fraudlab` command installs it, and a log
line of that process carries no credential; the learner's redact (FRAUD_LAB_CODE) is the one
installed, and one that raises withholds the line instead of letting it through."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from reference_app import labcode, redaction

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-4f1e9c2b7a"


@pytest.fixture
def restored():
    """The process's record factory and installed redaction, put back after the test."""
    factory = logging.getLogRecordFactory()
    installed, secrets = list(redaction._installed), set(redaction._secrets)
    yield
    logging.setLogRecordFactory(factory)
    redaction._installed[:] = installed
    redaction._secrets.clear()
    redaction._secrets.update(secrets)


def logged(caplog, message: str, *args) -> str:
    with caplog.at_level(logging.WARNING, logger="fraudlab.test"):
        logging.getLogger("fraudlab.test").warning(message, *args)
    return caplog.records[-1].getMessage()


def test_a_fraudlab_command_masks_the_admin_password_in_its_logs(tmp_path):
    """A real `fraudlab` process (its _settings installs the redaction) logging the password."""
    code = (
        "import logging, sys\n"
        "from reference_app import cli\n"
        "cli._settings()\n"
        "logging.basicConfig(stream=sys.stdout, format='%(message)s')\n"
        "logging.getLogger('x').warning('MLflow refused admin:%s@127.0.0.1 (password %s)', "
        f"'{PASSWORD}', '{PASSWORD}')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "FRAUD_MLFLOW_ADMIN_PASSWORD": PASSWORD, "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "MLflow refused admin:***@127.0.0.1 (password ***)"
    assert PASSWORD not in out.stdout + out.stderr


def test_secret_values_holds_the_settings_and_environment_secrets(monkeypatch):
    from reference_app.config import Settings

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-1")
    settings = Settings(
        _env_file=None, mlflow_admin_password=PASSWORD, serving_admin_token="tok-123456"
    )
    assert set(redaction.secret_values(settings)) >= {PASSWORD, "tok-123456", "aws-secret-1"}


def test_the_learners_redact_is_the_one_installed(tmp_path, monkeypatch, caplog, restored):
    (tmp_path / "redact.py").write_text(
        "def redact(line, secrets):\n    return line.replace('pw', '[mine]')\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    redaction.install_redaction([])
    assert logged(caplog, "the pw is %s", "here") == "the [mine] is here"


def test_a_redact_that_raises_withholds_the_line(tmp_path, monkeypatch, caplog, restored):
    (tmp_path / "redact.py").write_text(
        "def redact(line, secrets):\n"
        "    if 'boom' in line:\n        raise ValueError('no')\n    return line\n"
    )
    monkeypatch.setenv(labcode.ENV, str(tmp_path))
    redaction.install_redaction([PASSWORD])
    assert logged(caplog, "boom %s", PASSWORD) == (
        "[log line withheld: redaction failed with LabCodeError]"
    )


def test_a_starter_redact_stops_the_command_at_install(monkeypatch, restored):
    monkeypatch.setenv(labcode.ENV, str(ROOT / "labs" / "15-security-and-compliance" / "starter"))
    with pytest.raises(labcode.LabCodeError, match=r"TODO\(lab-15\)"):
        redaction.install_redaction([PASSWORD])
