"""HTTP: read-only calls to MLflow, Prometheus and the model (V2 inference protocol), the curl
command lines hints show, and the status-or-error of a GET that most "it answers" checks need.
"""

from __future__ import annotations

import shlex
from typing import Any

import httpx

from .hints import describe_error
from .names import FEATURE_NAMES, HTTP_TIMEOUT_S, MLFLOW_SECRETS_FILE, REPO_ROOT


def http_get(url: str, **kwargs: Any) -> httpx.Response | str:
    """GET `url` (timeout HTTP_TIMEOUT_S unless given): the response, or why there is none on one
    line (`ConnectError: [Errno 111] Connection refused`) for a hint."""
    kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
    try:
        return httpx.get(url, **kwargs)
    except httpx.HTTPError as err:
        return describe_error(err)


def http_status(url: str, **kwargs: Any) -> int | str:
    """The HTTP status of GET `url`, or why there is none, for a hint (kwargs go to httpx.get).

    Example:
        >>> status = http_status(f"{endpoints.mlflow}/health")  # doctest: +SKIP
        >>> assert status == 200, hint(f"HTTP 200 from {endpoints.mlflow}/health", str(status))  # doctest: +SKIP
    """
    response = http_get(url, **kwargs)
    return response if isinstance(response, str) else response.status_code


def curl(url: str, auth: tuple[str, str] | None = None, data: str | None = None) -> str:
    """A curl command line for a hint (credentials shown as a variable, never in clear)."""
    parts = ["curl", "-s", "-i"]
    if auth:
        parts += ["-u", '"$FRAUD_MLFLOW_ADMIN_USERNAME:$FRAUD_MLFLOW_ADMIN_PASSWORD"']
    if data is not None:
        parts += ["-H", "'content-type: application/json'", "-d", shlex.quote(data)]
    line = " ".join(parts + [shlex.quote(url)])
    if auth:
        line = f"(set -a; . {MLFLOW_SECRETS_FILE.relative_to(REPO_ROOT)}; {line})"
    return line


class MlflowApi:
    """MLflow's REST API (`/api/2.0/mlflow/...`), read-only calls."""

    def __init__(
        self, url: str, auth: tuple[str, str] | None = None, timeout: float = HTTP_TIMEOUT_S
    ):
        self.url, self.auth = url.rstrip("/"), auth
        self.client = httpx.Client(base_url=self.url, auth=auth, timeout=timeout)

    def debug(self, path: str) -> str:
        """The curl command that shows the same answer."""
        return curl(f"{self.url}{path}", self.auth)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params or None)

    def experiment(self, name: str) -> dict | None:
        """The experiment called `name`, or None."""
        r = self.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name=name)
        if r.status_code == 404 or (r.status_code == 400 and "RESOURCE_DOES_NOT_EXIST" in r.text):
            return None
        r.raise_for_status()
        return r.json()["experiment"]

    def runs(self, experiment_id: str, max_results: int = 50) -> list[dict]:
        """Runs of an experiment, newest first."""
        r = self.client.post(
            "/api/2.0/mlflow/runs/search",
            json={
                "experiment_ids": [experiment_id],
                "max_results": max_results,
                "order_by": ["attributes.start_time DESC"],
            },
        )
        r.raise_for_status()
        return r.json().get("runs", [])

    def run(self, run_id: str) -> dict:
        r = self.get("/api/2.0/mlflow/runs/get", run_id=run_id)
        r.raise_for_status()
        return r.json()["run"]

    def version_by_alias(self, model: str, alias: str) -> dict | None:
        """The model version that carries `alias`, or None."""
        r = self.get("/api/2.0/mlflow/registered-models/alias", name=model, alias=alias)
        if r.status_code in (400, 404):
            return None
        r.raise_for_status()
        return r.json()["model_version"]

    def version(self, model: str, version: str) -> dict | None:
        """Model version `version` of `model` (with its tags), or None."""
        r = self.get("/api/2.0/mlflow/model-versions/get", name=model, version=version)
        if r.status_code in (400, 404):
            return None
        r.raise_for_status()
        return r.json()["model_version"]

    def latest_version(self, model: str) -> str | None:
        """The highest version number of a registered model, for a hint: None when it has no
        version or MLflow does not tell."""
        try:
            r = self.get("/api/2.0/mlflow/model-versions/search", filter=f"name='{model}'")
            r.raise_for_status()
            versions = [int(v["version"]) for v in r.json().get("model_versions") or []]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return str(max(versions)) if versions else None


class PrometheusApi:
    """Prometheus's HTTP API (`/api/v1/...`), read-only calls."""

    def __init__(self, url: str, timeout: float = HTTP_TIMEOUT_S):
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=timeout)

    def debug(self, query: str | None = None, path: str = "/api/v1/query") -> str:
        """The curl command that shows the same answer."""
        if query is None:
            return f"curl -s {shlex.quote(self.url + path)}"
        return f"curl -s -G {shlex.quote(self.url + path)} --data-urlencode {shlex.quote('query=' + query)}"

    def query(self, expr: str) -> list[dict]:
        """The instant vector of a PromQL expression: `[{"metric": {...}, "value": [t, "v"]}, …]`."""
        r = self.client.get("/api/v1/query", params={"query": expr})
        r.raise_for_status()
        return r.json()["data"]["result"]

    def alerts(self) -> list[dict]:
        """The pending and firing alerts (`/api/v1/alerts`): labels, annotations, state, activeAt."""
        r = self.client.get("/api/v1/alerts")
        r.raise_for_status()
        return r.json()["data"]["alerts"]

    def rule_groups(self) -> list[dict]:
        """The rule groups Prometheus has loaded (`/api/v1/rules`): name, file, rules (each with
        name, query, labels, annotations, type)."""
        r = self.client.get("/api/v1/rules")
        r.raise_for_status()
        return r.json()["data"]["groups"]

    def alert_rules(self) -> list[str]:
        """The names of the alerting rules Prometheus has loaded."""
        r = self.client.get("/api/v1/rules", params={"type": "alert"})
        r.raise_for_status()
        return [
            rule.get("name")
            for group in r.json()["data"]["groups"]
            for rule in group.get("rules") or []
        ]


def run_fields(run: dict) -> tuple[dict, dict, dict]:
    """`(params, metrics, tags)` of a run from MLflow's REST API, as plain dicts."""
    data = run.get("data", {})
    params = {p["key"]: p["value"] for p in data.get("params", [])}
    metrics = {m["key"]: m["value"] for m in data.get("metrics", [])}
    tags = {t["key"]: t["value"] for t in data.get("tags", [])}
    return params, metrics, tags


def v2_request(rows: list[dict[str, float]]) -> dict:
    """A V2 inference request: one FP64 input of shape [n] per feature."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows)],
                "datatype": "FP64",
                "data": [float(r[name]) for r in rows],
            }
            for name in FEATURE_NAMES
        ]
    }


def sample_transaction(i: int = 0) -> dict[str, float]:
    """A plausible transaction's 15 features (a small amount at a quiet terminal), varied by `i`."""
    return {
        "TX_AMOUNT": 40.0 + i % 50, "TX_DURING_WEEKEND": float(i % 2), "TX_DURING_NIGHT": 0.0,
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 2.0, "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW": 45.0,
        "CUSTOMER_ID_NB_TX_7DAY_WINDOW": 12.0, "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW": 50.0,
        "CUSTOMER_ID_NB_TX_30DAY_WINDOW": 50.0, "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW": 52.0,
        "TERMINAL_ID_NB_TX_1DAY_WINDOW": 1.0, "TERMINAL_ID_RISK_1DAY_WINDOW": 0.0,
        "TERMINAL_ID_NB_TX_7DAY_WINDOW": 7.0, "TERMINAL_ID_RISK_7DAY_WINDOW": 0.0,
        "TERMINAL_ID_NB_TX_30DAY_WINDOW": 30.0, "TERMINAL_ID_RISK_30DAY_WINDOW": 0.0,
    }  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation, like numpy's default."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
