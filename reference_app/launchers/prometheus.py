"""Local Prometheus and Alertmanager (Debian's `prometheus` and `prometheus-alertmanager`).

The scrape jobs carry the names that kube-prometheus-stack gives the kind mode's PodMonitors
and ServiceMonitor (`fraud-lab/fraud-detector`, `fraud-lab/drift-monitor`, `mlflow`), so the
same alert rules — read from the PrometheusRule manifest — work in both modes; the SLO burn-rate
group (`monitoring.slo`, lab 12's exercise) is rendered into the same rule file, as the `slo-rules`
Job applies it in kind mode. Alerts labelled `action=retrain` go to the continuous-training
controller's webhook.

Example:
    >>> folder = write_prometheus_config(Settings(), Path("/tmp/prom"))   # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import yaml

from ..config import Settings
from ..monitoring.slo import slo_rule_group

# Package data: in a checkout, a symbolic link to manifests/base/monitoring/ (the one source, what
# kind mode applies); an installed package (the app image, a wheel) holds a copy of its content.
RULES_RESOURCE = "prometheusrule.fraud-lab.yaml"
PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")


class MonitoringToolMissing(RuntimeError):
    """Prometheus or Alertmanager is not installed."""


def find_binary(names: tuple[str, ...], package: str) -> str:
    """Path of the first binary found on PATH.

    Raises:
        MonitoringToolMissing: with the install command when none is found.
    """
    for name in names:
        if path := shutil.which(name):
            return path
    raise MonitoringToolMissing(
        f"{names[0]} not found: install it with `sudo apt-get install {package}` (Debian/Ubuntu)"
    )


def rule_groups(manifest: Path | None = None) -> list[dict]:
    """The alert rule groups (`spec.groups`) of a PrometheusRule manifest.

    Args:
        manifest: the manifest to read; default the fraud system's rules, shipped with the package
            (`reference_app/monitoring/prometheusrule.fraud-lab.yaml`).
    """
    if manifest is None:
        text = resources.files("reference_app.monitoring").joinpath(RULES_RESOURCE).read_text()
    else:
        text = manifest.read_text()
    return yaml.safe_load(text)["spec"]["groups"]


def write_prometheus_config(
    settings: Settings, folder: Path, mlflow_url: str | None = None
) -> Path:
    """Write prometheus.yml and rules.yml for the local stack; return the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    # The SLO burn-rate group is rendered here, with lab 12's burn_rate_threshold where
    # FRAUD_LAB_CODE has it (a TODO stops the stack with the message naming the file).
    groups = [*rule_groups(), slo_rule_group()]
    (folder / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    interval = f"{settings.scrape_interval_s:g}s"
    jobs = [
        {
            "job_name": "fraud-lab/fraud-detector",
            "static_configs": [{"targets": [f"127.0.0.1:{settings.metrics_port}"]}],
        },
        {
            "job_name": "fraud-lab/drift-monitor",
            "static_configs": [{"targets": [f"127.0.0.1:{settings.monitor_port}"]}],
        },
    ]
    if mlflow_url:
        host = mlflow_url.split("://", 1)[-1].rstrip("/")
        jobs.append({"job_name": "mlflow", "static_configs": [{"targets": [host]}]})
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(folder / "rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{settings.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": jobs,
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_alertmanager_config(settings: Settings, folder: Path) -> Path:
    """Write alertmanager.yml: `action=retrain` alerts to the controller's webhook, the rest to a null receiver."""
    folder.mkdir(parents=True, exist_ok=True)
    # --8<-- [start:alertmanager-route]
    config = {
        "route": {
            "receiver": "null",
            "group_by": ["alertname"],
            # Local mode reacts within seconds; kind mode uses Alertmanager's defaults (30 s / 5 min).
            "group_wait": "1s",
            "group_interval": "5s",
            "repeat_interval": "1h",
            "routes": [{"receiver": "ct-controller", "matchers": ['action="retrain"']}],
        },
        "receivers": [
            {"name": "null"},
            {
                "name": "ct-controller",
                "webhook_configs": [
                    {"url": f"http://127.0.0.1:{settings.ct_port}/alerts", "send_resolved": False}
                ],
            },
        ],
    }
    # --8<-- [end:alertmanager-route]
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prometheus_command(
    settings: Settings, folder: Path, mlflow_url: str | None = None
) -> list[str]:
    """The command line of a local Prometheus on 127.0.0.1:`prometheus_port`."""
    config = write_prometheus_config(settings, folder, mlflow_url)
    return [
        find_binary(PROMETHEUS_BINARIES, "prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        "--storage.tsdb.retention.time=2d",
    ]


def alertmanager_command(settings: Settings, folder: Path) -> list[str]:
    """The command line of a local Alertmanager on 127.0.0.1:`alertmanager_port` (no clustering)."""
    config = write_alertmanager_config(settings, folder)
    return [
        find_binary(ALERTMANAGER_BINARIES, "prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
        "--cluster.listen-address=",
    ]
