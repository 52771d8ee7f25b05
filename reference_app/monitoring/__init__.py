"""Monitoring: Prometheus metric definitions, drift statistics and reports."""
