"""The SLO burn-rate rules: `promtool test rules` shows each alert firing on a burn that matters
and quiet on one that does not; the rules' numbers are the SLO module's; each links its runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from reference_app.monitoring import slo

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).with_name("slo.test.yaml")


def promtool(tmp_path: Path, group: dict) -> subprocess.CompletedProcess:
    """Write `group` as rules.yaml and the SLO cases (annotations filled in from the rules) into
    tmp_path, and run `promtool test rules` there."""
    exe = shutil.which("promtool")
    assert exe, "promtool not found: apt-get install prometheus (.ci/run does)"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    annotations = {r["alert"]: r["annotations"] for r in group["rules"] if "alert" in r}
    spec = yaml.safe_load(TESTS.read_text())
    for case in spec["tests"]:
        for check in case["alert_rule_test"]:
            for alert in check["exp_alerts"]:
                alert.setdefault("exp_annotations", annotations.get(check["alertname"], {}))
    (tmp_path / "slo.test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return subprocess.run(
        [exe, "test", "rules", "slo.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_promtool_burn_rate_alerts_fire_and_stay_quiet(tmp_path):
    result = promtool(tmp_path, slo.slo_rule_group(slo.burn_rate_threshold))
    assert result.returncode == 0, result.stdout + result.stderr
    spec = yaml.safe_load(TESTS.read_text())
    fired, quiet = set(), set()
    for case in spec["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {
        r["alert"] for r in slo.slo_rule_group(slo.burn_rate_threshold)["rules"] if "alert" in r
    }
    assert alerts == fired, f"burn-rate alerts never shown firing: {alerts - fired}"
    assert alerts == quiet, f"burn-rate alerts never shown quiet: {alerts - quiet}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda t, p, w, s: s * p * 24 / w, id="burn rate without the budget"),
        pytest.param(lambda t, p, w, s: s * p / w * (1 - t), id="days over hours"),
    ],
)
def test_a_wrong_threshold_fails_promtool(tmp_path, wrong):
    """Typical mistakes in the arithmetic make a case fail: the tests can tell."""
    result = promtool(tmp_path, slo.slo_rule_group(wrong))
    assert result.returncode != 0 and "BudgetBurn" in result.stdout + result.stderr


@pytest.mark.slow
def test_counting_4xx_as_valid_fails_promtool(tmp_path, monkeypatch):
    """The availability page case needs 4xx out of the denominator (chapter 01: valid requests)."""
    valid = slo.AVAILABILITY.valid.replace(', status_code!~"4.."', "")
    monkeypatch.setattr(
        slo, "SLOS", (slo.SLO(**{**slo.AVAILABILITY.__dict__, "valid": valid}), slo.LATENCY)
    )
    result = promtool(tmp_path, slo.slo_rule_group(slo.burn_rate_threshold))
    assert result.returncode != 0 and "FraudAvailabilityBudgetBurn" in result.stdout + result.stderr


def test_workbook_numbers():
    """The Workbook's table for a 99.9 % SLO over 30 days: 14.4×, 6× and 1× as error ratios; and
    chapter 01's 28 days."""
    assert slo.burn_rate_threshold(0.999, 30, 1, 0.02) == pytest.approx(0.0144)
    assert slo.burn_rate_threshold(0.999, 30, 6, 0.05) == pytest.approx(0.006)
    assert slo.burn_rate_threshold(0.999, 30, 72, 0.10) == pytest.approx(0.001)
    assert slo.burn_rate_threshold(0.999, 28, 1, 0.02) == pytest.approx(0.01344)
    assert slo.burn_rate_threshold(0.95, 28, 1, 0.02) == pytest.approx(0.672)


@pytest.mark.parametrize(
    "args, word",
    [((1.0, 28, 1, 0.02), "slo_target"), ((0.999, 28, 1, 0), "budget_share"),
     ((0.999, 28, 0, 0.02), "window"), ((0.999, 1, 48, 0.02), "window")],
)  # fmt: skip
def test_bad_input_is_named(args, word):
    with pytest.raises(ValueError, match=word):
        slo.burn_rate_threshold(*args)


def test_rule_thresholds_equal_the_slos():
    """Every number in the rendered alerts is burn_rate_threshold of the module's SLO, period and
    conditions (one source); the latency bucket is the SLO's threshold."""
    rules = {
        r["alert"]: r for r in slo.slo_rule_group(slo.burn_rate_threshold)["rules"] if "alert" in r
    }
    for s in slo.SLOS:
        for name, severity in ((s.alert, "critical"), (s.alert + "Ticket", "warning")):
            wanted = {
                float(
                    f"{slo.burn_rate_threshold(s.target, slo.SLO_PERIOD_DAYS, c.long_h, c.budget_share):.6g}"
                )
                for c in slo.CONDITIONS
                if c.severity == severity
            }
            found = {float(x) for x in re.findall(r">\s*([\d.e-]+)", rules[name]["expr"])}
            assert found == wanted, name
    assert f'le="{slo.LATENCY_THRESHOLD_S:g}"' in slo.LATENCY.bad
    assert (slo.AVAILABILITY.target, slo.LATENCY.target, slo.SLO_PERIOD_DAYS) == (0.999, 0.95, 28)


def test_every_slo_alert_links_a_runbook_page():
    for rule in slo.slo_rule_group(slo.burn_rate_threshold)["rules"]:
        if "alert" not in rule:
            continue
        slug = rule["annotations"]["runbook_url"].rstrip("/").rsplit("/", 1)[-1]
        page = ROOT / "chapters" / "runbooks" / f"{slug}.md"
        assert page.exists(), f"{rule['alert']}: runbook {page.relative_to(ROOT)} missing"
        for section in ("## Symptom", "## Impact", "## Diagnosis", "## Mitigation"):
            assert section in page.read_text(), f"{page.name}: no '{section}' section"


def test_rules_pass_promtool_check(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [slo.slo_rule_group(slo.burn_rate_threshold)]}))
    result = subprocess.run(
        [shutil.which("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
