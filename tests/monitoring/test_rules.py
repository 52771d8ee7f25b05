"""Alert rules: `promtool test rules` shows every alert firing and not firing; each links a runbook."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "manifests" / "base" / "monitoring" / "prometheusrule.fraud-lab.yaml"


def groups() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["spec"]["groups"]


def write_tests(tmp_path: Path, rule_groups: list[dict]) -> None:
    """rules.yaml and rules.test.yaml in tmp_path; missing exp_annotations come from the rules."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups}))
    annotations = {
        r["alert"]: r["annotations"] for g in groups() for r in g["rules"] if "alert" in r
    }
    spec = yaml.safe_load(Path(__file__).with_name("rules.test.yaml").read_text())
    for case in spec["tests"]:
        for check in case["alert_rule_test"]:
            for alert in check["exp_alerts"]:
                alert.setdefault("exp_annotations", annotations[check["alertname"]])
    (tmp_path / "rules.test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def test_promtool_unit_tests_cover_every_alert(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install prometheus (.ci/run does)"
    write_tests(tmp_path, groups())
    result = subprocess.run(
        [promtool, "test", "rules", "rules.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        t["alertname"]
        for case in yaml.safe_load((tmp_path / "rules.test.yaml").read_text())["tests"]
        for t in case["alert_rule_test"]
    }
    alerts = {r["alert"] for g in groups() for r in g["rules"] if "alert" in r}
    assert alerts == tested, f"alerts without a promtool test: {alerts - tested}"


def test_a_broken_rule_fails_promtool(tmp_path):
    broken = groups()
    broken[1]["rules"][0]["expr"] = (
        "max by (feature) (fraud_drift_psi) > 2.5"  # would never fire at PSI 0.6
    )
    write_tests(tmp_path, broken)
    result = subprocess.run(
        [shutil.which("promtool"), "test", "rules", "rules.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "FraudFeatureDrift" in result.stdout + result.stderr


def test_every_alert_has_a_runbook_page():
    for g in groups():
        for rule in g["rules"]:
            url = rule["annotations"]["runbook_url"]
            slug = url.rstrip("/").rsplit("/", 1)[-1]
            page = ROOT / "chapters" / "runbooks" / f"{slug}.md"
            assert page.exists(), f"{rule['alert']}: runbook {page.relative_to(ROOT)} missing"
            text = page.read_text()
            for section in ("## Symptom", "## Impact", "## Diagnosis", "## Mitigation"):
                assert section in text, f"{page.name}: no '{section}' section"


def test_rule_thresholds_equal_the_settings():
    """The PrometheusRule's drift and CP@100 thresholds are the app's settings (one source each):
    FRAUD_PSI_ALERT_THRESHOLD and FRAUD_CP_FLOOR, which the monitor and the report use."""
    import re

    from reference_app.config import Settings

    settings = Settings()
    rules = {r["alert"]: r for g in groups() for r in g["rules"] if "alert" in r}
    drift = rules["FraudFeatureDrift"]
    assert (
        float(re.search(r"\)\s*>\s*([\d.]+)\s*$", drift["expr"].strip()).group(1))
        == settings.psi_alert_threshold
    )
    assert f"> {settings.psi_alert_threshold}" in drift["annotations"]["summary"]
    floor = rules["FraudCardPrecisionLow"]
    assert (
        float(re.search(r"<\s*([\d.]+)\s*$", floor["expr"].strip()).group(1)) == settings.cp_floor
    )
    assert f"the {settings.cp_floor} floor" in floor["annotations"]["summary"]
