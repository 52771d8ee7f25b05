"""Lab 12 exercise (solution): the threshold of a multiwindow, multi-burn-rate SLO alert.

Spending `budget_share` of the error budget (1 − slo_target) within `window_hours` is a burn
rate of budget_share × period hours ÷ window_hours (Google SRE Workbook, "Alerting on SLOs");
the threshold is the error ratio at that burn rate.
"""


def burn_rate_threshold(
    slo_target: float, period_days: float, window_hours: float, budget_share: float
) -> float:
    """The error ratio above which `budget_share` of the SLO's error budget goes in `window_hours`.

    Args:
        slo_target: the SLO, a share of good requests in (0, 1), e.g. 0.999.
        period_days: the SLO's period in days, e.g. 28.
        window_hours: the alert's long window in hours, e.g. 1.
        budget_share: the share of the period's budget spent within the window, e.g. 0.02.

    Returns:
        The error ratio threshold, a share of valid requests (0.01344 for 0.999, 28, 1, 0.02).
    """
    budget = 1 - slo_target
    burn_rate = budget_share * period_days * 24 / window_hours
    return burn_rate * budget
