"""Lab 12 exercise: the threshold of a multiwindow, multi-burn-rate SLO alert.

An SLO of 99.9 % leaves an error budget of 0.1 % of the valid requests in its period. An alert
asks how fast that budget burns: spending `budget_share` of it within `window_hours` is a burn
rate of budget_share × (period in hours) ÷ window_hours, and the error ratio that burns at that
rate is the threshold the alert compares the measured ratio with:

    2 % of a 30-day budget in 1 h  →  burn rate 0.02 × 720 ÷ 1 = 14.4  →  error ratio 14.4 × 0.001

With FRAUD_LAB_CODE pointing at this folder (locally) or this file mounted from a ConfigMap (the
`slo-rules` Job on the cluster), your function writes the thresholds of the SLO alerts that
Prometheus loads (`fraudlab slo-rules`).

Check your work: `make lab-12 TARGET=local` (one line per behaviour).
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
    # TODO(lab-12): the budget is 1 − slo_target; the burn rate is budget_share times the
    # period in hours divided by window_hours; return burn rate × budget.
    raise NotImplementedError("TODO(lab-12): burn_rate_threshold")
