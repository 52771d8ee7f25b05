"""Where the checks find the target: the local stack's data directory and stack file (written by
`make up`), the URLs of MLflow, the model, Prometheus and Grafana on either target, and MLflow's
admin user from the generated secrets file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hints import describe_error
from .names import MLFLOW_SECRETS_FILE, NODEPORTS, REPO_ROOT, setting


def data_dir() -> Path:
    """FRAUD_DATA_DIR (default ./data), where the local stack keeps datasets, state and reports."""
    return Path(setting("FRAUD_DATA_DIR"))


def stack_file() -> Path:
    """`<data dir>/state/stack.json`, written by `fraudlab up` (make up)."""
    return data_dir() / "state" / "stack.json"


def pid_alive(pid: Any) -> bool:
    """True when a process with this id exists."""
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


@dataclass
class Endpoints:
    """Where the checks find MLflow, the model and Prometheus for a target.

    A URL is None when the target has no such endpoint (e.g. no Prometheus in local mode); then
    `problem` may say why (e.g. the local stack is not running).
    """

    target: str
    mlflow: str | None = None
    model: str | None = None
    model_grpc: str | None = None
    metrics: str | None = None
    prometheus: str | None = None
    alertmanager: str | None = None
    grafana: str | None = None
    mlflow_auth: tuple[str, str] | None = None
    source: str = ""
    problem: str | None = None
    fix: str | None = None
    processes: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def log_command(self, name: str) -> str:
        """The command that shows the end of a local server's log."""
        return f"tail -n 30 {self.logs.get(name) or data_dir() / 'state' / 'logs' / f'{name}.log'}"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def cluster_endpoints() -> Endpoints:
    """The NodePorts that kind maps to 127.0.0.1, with MLflow's admin user from the secrets file."""
    ep = Endpoints(
        target="cluster",
        mlflow=f"http://127.0.0.1:{NODEPORTS['mlflow']}",
        model=f"http://127.0.0.1:{NODEPORTS['model_http']}",
        model_grpc=f"127.0.0.1:{NODEPORTS['model_grpc']}",
        prometheus=f"http://127.0.0.1:{NODEPORTS['prometheus']}",
        grafana=f"http://127.0.0.1:{NODEPORTS['grafana']}",
        source="NodePorts on 127.0.0.1 (kind extraPortMappings)",
    )
    if MLFLOW_SECRETS_FILE.is_file():
        env = read_env_file(MLFLOW_SECRETS_FILE)
        user, password = (
            env.get("FRAUD_MLFLOW_ADMIN_USERNAME"),
            env.get("FRAUD_MLFLOW_ADMIN_PASSWORD"),
        )
        if user and password:
            ep.mlflow_auth = (user, password)
    if ep.mlflow_auth is None:
        ep.problem = f"no MLflow credentials in {MLFLOW_SECRETS_FILE.relative_to(REPO_ROOT)}"
        ep.fix = "make secrets && make deploy"
    return ep


def local_endpoints() -> Endpoints:
    """The local stack's URLs from `<data dir>/state/stack.json` (written by `make up`)."""
    path = stack_file()
    ep = Endpoints(target="local", source=str(path))
    if not path.is_file():
        ep.problem, ep.fix = f"no {path} (the local stack is not running)", "make up"
        return ep
    try:
        stack = json.loads(path.read_text())
        ep.mlflow = stack["mlflow"]["url"].rstrip("/")
        ep.model = stack["mlserver"]["url"].rstrip("/")
        ep.model_grpc = stack["mlserver"].get("grpc")
        ep.metrics = stack["mlserver"].get("metrics_url")
        ep.prometheus = (stack.get("prometheus") or {}).get("url")
        ep.alertmanager = (stack.get("alertmanager") or {}).get("url")
        ep.processes = {
            name: stack[name]["pid"] for name in ("mlflow", "mlserver") if "pid" in stack[name]
        }
        ep.logs = {
            name: entry["log"]
            for name, entry in stack.items()
            if isinstance(entry, dict) and entry.get("log")
        }
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        ep.problem, ep.fix = (
            f"{path} is not a stack file ({describe_error(err)})",
            "make down && make up",
        )
        return ep
    dead = [name for name, pid in ep.processes.items() if not pid_alive(pid)]
    if dead:
        ep.problem = f"{path} lists {', '.join(dead)} but no such process runs (pid {', '.join(str(ep.processes[d]) for d in dead)})"
        ep.fix = "make down && make up"
    return ep
