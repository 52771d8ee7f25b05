"""Lab 12's exercise: the burn-rate threshold of a multiwindow SLO alert.

The learner writes `burn_rate_threshold` in `labs/12-alerting-and-incidents/starter/burnrate.py`;
`fraudlab slo-rules` (the rule group the local Prometheus loads, and the PrometheusRule
`fraud-lab-slo` that the `slo-rules` Job applies on the cluster) writes the alerts' thresholds
with it. Reference: `monitoring.slo.burn_rate_threshold` (Google SRE Workbook, "Alerting on
SLOs", multiwindow multi-burn-rate alerts).
"""

from __future__ import annotations

import re

from ..monitoring import slo
from . import Behaviour, as_lab_code

EXERCISE = slo.BURN_RATE_EXERCISE
REFERENCE = slo.burn_rate_threshold
FILE = "labs/12-alerting-and-incidents/starter/burnrate.py"
CHECK = "make lab-12 TARGET=local"


def _text(x) -> str:
    return f"{x:.6g}" if isinstance(x, int | float) and not isinstance(x, bool) else repr(x)


def _value(*args):
    def check(learner, reference):
        return _text(reference(*args)), _text(learner(*args))

    return check


def _rendered(learner, reference):
    """The alert expressions of the SLO rule group the stack loads, with each function."""

    def alerts(function):
        with as_lab_code(function):
            group = slo.slo_rule_group()
        return "; ".join(
            f"{r['alert']} > {', '.join(dict.fromkeys(re.findall(r'> ([0-9.e-]+)', r['expr'])))}"
            for r in group["rules"]
            if "alert" in r
        )

    return alerts(reference), alerts(learner)


BEHAVIOURS = [
    Behaviour(
        "the Workbook's fast page: 2 % of a 30-day 99.9 % budget in 1 h is an error ratio of 0.0144 (14.4×)",
        _value(0.999, 30, 1, 0.02),
        f"burn rate = budget_share × period hours ÷ window hours; threshold = burn rate × "
        f"(1 − slo_target): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the Workbook's slow page and ticket: 5 % in 6 h is 0.006 (6×), 10 % in 3 days 0.001 (1×)",
        lambda learner, reference: (
            f"{_text(reference(0.999, 30, 6, 0.05))}, {_text(reference(0.999, 30, 72, 0.10))}",
            f"{_text(learner(0.999, 30, 6, 0.05))}, {_text(learner(0.999, 30, 72, 0.10))}",
        ),
        f"use window_hours and budget_share, not the page's 1 h and 2 %: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "chapter 01's period: 2 % of a 28-day budget in 1 h is 13.44×, an error ratio of 0.01344",
        _value(0.999, 28, 1, 0.02),
        f"period hours = period_days × 24, not the Workbook's 30 days: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the latency SLO (95 % within 100 ms): the fast page is a slow share of 0.672",
        _value(0.95, 28, 1, 0.02),
        f"the budget is 1 − slo_target (5 % here, not 0.1 %): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the SLO rule group the stack loads (fraudlab slo-rules) has your thresholds",
        _rendered,
        f"slo_rule_group writes each alert's threshold with your burn_rate_threshold "
        f"(FRAUD_LAB_CODE): {FILE}; then {CHECK}",
    ),
]
