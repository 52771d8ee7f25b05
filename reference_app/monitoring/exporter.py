"""`fraudlab monitor`: the monitoring job's results as Prometheus metrics.

A custom collector recomputes `compute_monitoring` when its inputs change (new replay files, a
new features dataset) and serves the latest values on `/metrics`:

- `fraud_drift_psi{feature}`, `fraud_drift_ks_statistic{feature}`, `fraud_drift_ks_pvalue{feature}`
  (the served score is `feature="fraud_score"`);
- `fraud_realised_average_precision`, `fraud_realised_card_precision_top_k` (latest labelled day);
- `fraud_monitor_current_day_timestamp_seconds`, `fraud_monitor_labelled_day_timestamp_seconds`,
  `fraud_monitor_up` (1 when the last computation succeeded).

Example:
    >>> serve_metrics(Settings(), port=8090)   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import threading

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily

from ..config import Settings
from .monitor import NothingToMonitorError, compute_monitoring, inputs_signature


def _timestamp(day: str) -> float:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.UTC).timestamp()


class MonitoringCollector:
    """Prometheus collector over `compute_monitoring`, cached on its inputs."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._signature = None
        self._result: dict | None = None
        self._error: str | None = None

    # --8<-- [start:collector-cache]
    def latest(self) -> dict | None:
        """The current monitoring result (recomputed if the inputs changed), or None."""
        with self._lock:
            signature = inputs_signature(self.settings)
            if signature != self._signature:
                try:
                    self._result, self._error = compute_monitoring(self.settings), None
                except NothingToMonitorError as err:
                    self._result, self._error = None, str(err)
                self._signature = signature
            return self._result

    # --8<-- [end:collector-cache]

    def collect(self):
        """Yield the metric families (called on every scrape)."""
        result = self.latest()
        up = GaugeMetricFamily(
            "fraud_monitor_up", "1 when the monitoring job has served data to compare."
        )
        up.add_metric([], 1.0 if result else 0.0)
        yield up
        if not result:
            return
        psi = GaugeMetricFamily(
            "fraud_drift_psi",
            "Population stability index, training window vs latest served day.",
            labels=["feature"],
        )
        ks = GaugeMetricFamily(
            "fraud_drift_ks_statistic",
            "Two-sample Kolmogorov-Smirnov statistic, training window vs latest served day.",
            labels=["feature"],
        )
        pv = GaugeMetricFamily(
            "fraud_drift_ks_pvalue", "p-value of the KS test.", labels=["feature"]
        )
        for feature, row in result["drift"].items():
            psi.add_metric([feature], row["psi"])
            ks.add_metric([feature], row["ks_statistic"])
            pv.add_metric([feature], row["ks_pvalue"])
        yield from (psi, ks, pv)
        day = GaugeMetricFamily(
            "fraud_monitor_current_day_timestamp_seconds", "The latest served day (simulated date)."
        )
        day.add_metric([], _timestamp(result["current_day"]))
        yield day
        perf = result["performance"]
        if perf:
            labelled = GaugeMetricFamily(
                "fraud_monitor_labelled_day_timestamp_seconds",
                "The latest served day whose labels are known.",
            )
            labelled.add_metric([], _timestamp(perf["day"]))
            yield labelled
            cp = GaugeMetricFamily(
                "fraud_realised_card_precision_top_k",
                "Realised CP@k of the served scores on the latest labelled day.",
            )
            cp.add_metric([], perf["card_precision_top_k"])
            yield cp
            if perf["average_precision"] is not None:
                ap = GaugeMetricFamily(
                    "fraud_realised_average_precision",
                    "Realised average precision on the latest labelled day.",
                )
                ap.add_metric([], perf["average_precision"])
                yield ap


def serve_metrics(settings: Settings, port: int | None = None, host: str = "127.0.0.1"):
    """Serve the monitoring metrics on http://host:port/metrics in a background thread.

    Returns:
        `(server, thread)` from prometheus_client; call `server.shutdown()` to stop.
    """
    registry = CollectorRegistry()
    registry.register(MonitoringCollector(settings))
    return start_http_server(port or settings.monitor_port, addr=host, registry=registry)
