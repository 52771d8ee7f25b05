"""The fraud model's service SLOs as multiwindow, multi-burn-rate alerts (the one source).

Chapter 01's SLOs for the model's inference API, measured on MLServer's request metrics
(starlette_exporter's `rest_server_requests_total` and `rest_server_request_duration_seconds`,
labelled method, path and status_code; the histogram has prometheus_client's default buckets,
0.1 s among them):

- availability: ≥ 99.9 % of valid inference requests answered without a server error (5xx);
- latency: ≥ 95 % of valid inference requests answered within 100 ms (p95 ≤ 100 ms);

both over a rolling 28 days ("a four-week rolling window", Google SRE Workbook, "Implementing
SLOs"). A *valid* request is one that is not the client's error: 4xx answers count in neither the
numerator nor the denominator.

Alerts follow the Workbook's "Alerting on SLOs" (recommendation 6, multiwindow multi-burn-rate):
a condition fires when the error ratio over a long window *and* over a short window (1/12 of it)
is above the threshold that spends a given share of the period's budget within the long window.
`burn_rate_threshold` is that arithmetic (lab 12's exercise: the learner's function renders the
rules the stack loads); `slo_rule_group` renders the recording and alerting rules.

Example:
    >>> round(burn_rate_threshold(0.999, 30, 1, 0.02), 6)   # the Workbook's 14.4× page
    0.0144
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..labcode import Exercise

MODEL_JOB = "fraud-lab/fraud-detector"
INFER_PATH = ".*/infer"
SLO_PERIOD_DAYS = 28
"""The SLOs' rolling period, in days (chapter 01's table)."""
RUNBOOK_BASE = "https://fraud-lab.github.io/fraud-lab/runbooks/"
RULE_GROUP = "fraud-lab.slo"
PROMETHEUS_RULE = "fraud-lab-slo"
"""The PrometheusRule that `fraudlab slo-rules --apply` writes in kind mode."""
LAB_CODE_ANNOTATION = "fraud-lab.io/lab-code"
"""Annotation of that PrometheusRule: which code rendered it (`Exercise.source()`)."""

BURN_RATE_EXERCISE = Exercise(lab=12, module="burnrate", function="burn_rate_threshold")
"""Lab 12: the learner's `burn_rate_threshold` (labs/12-alerting-and-incidents/starter/burnrate.py)."""


@dataclass(frozen=True)
class SLO:
    """One service SLO.

    Attributes:
        name: "availability" or "latency" (the rules' `slo` label, the recording rules' names).
        target: the share of valid requests that must be good, in (0, 1).
        sli: what counts as good, in words (annotations, the chapter).
        alert: the alert's name stem: `<alert>` pages, `<alert>Ticket` opens a ticket.
        runbook: the runbook page's slug in chapters/runbooks/.
        bad: PromQL of the bad requests' rate, `{window}` for the range.
        valid: PromQL of the valid requests' rate, `{window}` for the range.
    """

    name: str
    target: float
    sli: str
    alert: str
    runbook: str
    bad: str
    valid: str

    def record(self, window: str) -> str:
        """Name of the recording rule of this SLO's error ratio over `window` (e.g. "1h")."""
        return f"fraud_lab:infer_{self.name}_errors:ratio_rate{window}"


# --8<-- [start:slos]
_SELECT = f'job="{MODEL_JOB}", path=~"{INFER_PATH}"'
LATENCY_THRESHOLD_S = 0.1
"""The latency SLO's threshold, in seconds: a histogram bucket bound of MLServer's (le="0.1")."""
AVAILABILITY = SLO(
    name="availability",
    target=0.999,
    sli="valid inference requests answered without a server error (5xx)",
    alert="FraudAvailabilityBudgetBurn",
    runbook="fraud-availability-budget-burn",
    bad=f'sum(rate(rest_server_requests_total{{{_SELECT}, status_code=~"5.."}}[{{window}}]))',
    valid=f'sum(rate(rest_server_requests_total{{{_SELECT}, status_code!~"4.."}}[{{window}}]))',
)
LATENCY = SLO(
    name="latency",
    target=0.95,
    sli=f"valid inference requests answered within {LATENCY_THRESHOLD_S * 1000:g} ms",
    alert="FraudLatencyBudgetBurn",
    runbook="fraud-latency-budget-burn",
    bad=(
        f'sum(rate(rest_server_request_duration_seconds_count{{{_SELECT}, status_code!~"4.."}}[{{window}}]))'
        f' - sum(rate(rest_server_request_duration_seconds_bucket{{{_SELECT}, status_code!~"4..", le="{LATENCY_THRESHOLD_S:g}"}}[{{window}}]))'
    ),
    valid=f'sum(rate(rest_server_request_duration_seconds_count{{{_SELECT}, status_code!~"4.."}}[{{window}}]))',
)
SLOS = (AVAILABILITY, LATENCY)


@dataclass(frozen=True)
class BurnCondition:
    """One multiwindow condition: `budget_share` of the period's budget spent within `long_h`."""

    long: str
    short: str
    long_h: float
    budget_share: float
    severity: str


# The Workbook's three conditions (page: 2 % in 1 h, 5 % in 6 h; ticket: 10 % in 3 days), each
# with a short window of 1/12 of its long one, so the alert stops soon after the burn does.
CONDITIONS = (
    BurnCondition(long="1h", short="5m", long_h=1, budget_share=0.02, severity="critical"),
    BurnCondition(long="6h", short="30m", long_h=6, budget_share=0.05, severity="critical"),
    BurnCondition(long="3d", short="6h", long_h=72, budget_share=0.10, severity="warning"),
)
# --8<-- [end:slos]
WINDOWS = ("5m", "30m", "1h", "6h", "3d")


# --8<-- [start:burn-rate]
def burn_rate_threshold(
    slo_target: float, period_days: float, window_hours: float, budget_share: float
) -> float:
    """The error ratio above which `budget_share` of the SLO's error budget goes in `window_hours`.

    The budget is the share of requests the SLO allows to fail, 1 − slo_target. Spending
    `budget_share` of a `period_days` budget within `window_hours` is a burn rate of
    budget_share × period hours ÷ window hours (Google SRE Workbook, "Alerting on SLOs": 2 % of
    a 30-day budget in 1 h is 14.4×); the error ratio at that burn rate is burn rate × budget.

    Args:
        slo_target: the SLO, a share of good requests in (0, 1) (0.999).
        period_days: the SLO's period in days (28).
        window_hours: the alert's long window in hours (1).
        budget_share: the share of the period's budget spent within the window, in (0, 1] (0.02).

    Returns:
        The error ratio threshold, a share of valid requests (0.01344 for 0.999, 28, 1, 0.02).

    Raises:
        ValueError: a target outside (0, 1), a share outside (0, 1], a non-positive period or
            window, or a window longer than the period.
    """
    if not 0 < slo_target < 1:
        raise ValueError(f"slo_target must be in (0, 1), got {slo_target}")
    if not 0 < budget_share <= 1:
        raise ValueError(f"budget_share must be in (0, 1], got {budget_share}")
    if period_days <= 0 or window_hours <= 0 or window_hours > period_days * 24:
        raise ValueError(
            f"need 0 < window_hours ≤ period hours, got window {window_hours} h, period {period_days} days"
        )
    burn_rate = budget_share * period_days * 24 / window_hours
    return burn_rate * (1 - slo_target)
    # --8<-- [end:burn-rate]


def _number(x: float) -> str:
    """A threshold as the rules write it: 6 significant digits (so 0.01344, not 0.013440000000000002)."""
    return f"{x:.6g}"


def _condition(slo: SLO, c: BurnCondition, threshold: Callable) -> str:
    limit = _number(threshold(slo.target, SLO_PERIOD_DAYS, c.long_h, c.budget_share))
    return f"{slo.record(c.long)} > {limit} and {slo.record(c.short)} > {limit}"


def slo_rule_group(threshold: Callable | None = None) -> dict:
    """The SLO rule group: recording rules (each SLO's error ratio over 5m … 3d) and, per SLO, a
    page (`<alert>`, critical: 2 % of the budget in 1 h or 5 % in 6 h) and a ticket
    (`<alert>Ticket`, warning: 10 % in 3 days).

    Args:
        threshold: the `burn_rate_threshold` to use; default the learner's where `FRAUD_LAB_CODE`
            has lab 12's module, else the reference.

    Returns:
        {"name": "fraud-lab.slo", "rules": [...]}, a Prometheus rule group.

    Raises:
        labcode.LabCodeError: the learner's function is not written yet or raises.
    """
    threshold = threshold or BURN_RATE_EXERCISE.implementation(burn_rate_threshold)
    rules: list[dict] = []
    for slo in SLOS:
        for window in WINDOWS:
            rules.append(
                {
                    "record": slo.record(window),
                    "expr": f"({slo.bad.replace('{window}', window)}) / {slo.valid.replace('{window}', window)}",
                }
            )
    for slo in SLOS:
        budget = f"{(1 - slo.target) * 100:.3g} %"
        for suffix, severity, pace in (("", "critical", "fast"), ("Ticket", "warning", "steadily")):
            conditions = [c for c in CONDITIONS if c.severity == severity]
            spends = " or ".join(f"{c.budget_share * 100:g} % in {c.long}" for c in conditions)
            rules.append(
                {
                    "alert": slo.alert + suffix,
                    "expr": "\n".join(
                        f"({_condition(slo, c, threshold)})"
                        + (" or" if i < len(conditions) - 1 else "")
                        for i, c in enumerate(conditions)
                    ),
                    "labels": {"severity": severity, "slo": slo.name},
                    "annotations": {
                        "summary": f"The {slo.name} SLO's error budget burns {pace}: {spends} of "
                        f"{SLO_PERIOD_DAYS} days' budget.",
                        "description": f"SLO: {slo.target * 100:g} % of {slo.sli} over "
                        f"{SLO_PERIOD_DAYS} days (budget {budget} of valid requests).",
                        "runbook_url": f"{RUNBOOK_BASE}{slo.runbook}/",
                    },
                }
            )
    return {"name": RULE_GROUP, "rules": rules}


def slo_prometheus_rule(namespace: str = "fraud-lab") -> dict:
    """`slo_rule_group()` as the PrometheusRule `fraud-lab-slo` of kind mode, annotated with the
    code that rendered it (`fraud-lab.io/lab-code`: "reference" or the learner's file digest)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": PROMETHEUS_RULE,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "fraud-lab-slo-alerts",
                "app.kubernetes.io/part-of": "fraud-lab",
            },
            "annotations": {LAB_CODE_ANNOTATION: BURN_RATE_EXERCISE.source()},
        },
        "spec": {"groups": [slo_rule_group()]},
    }


def apply_prometheus_rule() -> tuple[str, int, str]:
    """Server-side apply `slo_prometheus_rule()` in the pod's namespace with the pod's
    ServiceAccount, as the `slo-rules` Job does in kind mode (field manager `fraudlab-slo-rules`;
    Kubernetes API: a PATCH with `application/apply-patch+yaml` creates or updates the object).

    Returns:
        ("<namespace>/fraud-lab-slo", the API server's HTTP status (200 or 201), the code that
        rendered the thresholds).

    Raises:
        FileNotFoundError: not inside a pod (no ServiceAccount files).
        httpx.HTTPStatusError: the API server refused (e.g. 403 without the Role `slo-rules`).
        labcode.LabCodeError: the learner's function is not written yet or raises.
    """
    import json

    import httpx

    from ..orchestration.continuous_training import SERVICE_ACCOUNT

    namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip()
    token = (SERVICE_ACCOUNT / "token").read_text().strip()
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    rule = slo_prometheus_rule(namespace)
    url = (
        f"https://{host}:{port}/apis/monitoring.coreos.com/v1/namespaces/{namespace}/"
        f"prometheusrules/{PROMETHEUS_RULE}?fieldManager=fraudlab-slo-rules&force=true"
    )
    response = httpx.patch(
        url,
        content=json.dumps(rule),  # JSON is YAML: the apply-patch content type takes both
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/apply-patch+yaml",
        },
        verify=str(SERVICE_ACCOUNT / "ca.crt"),
        timeout=30,
    )
    response.raise_for_status()
    source = rule["metadata"]["annotations"][LAB_CODE_ANNOTATION]
    return f"{namespace}/{PROMETHEUS_RULE}", response.status_code, source
