"""What the lab checks share: the names they look for, hints, endpoints, cluster and HTTP access.

The checks (`labs/NN-*/test_lab.py`) read state only: Kubernetes objects through the kubernetes
client (context `kind-fraud-lab`, never another), files inside pods and nodes through testinfra,
MLflow and the model over HTTP, datasets through their manifests. Every wait is bounded.

This module imports no code of the fraud system: the names below are the contract written in
manifests/README.md, and tests/labs checks them against the rendered manifests and the app.

Example:
    >>> print(hint("3 Ready nodes", "2 Ready nodes", kubectl("get nodes")))
    expected: 3 Ready nodes
    found:    2 Ready nodes
    debug:    kubectl --context kind-fraud-lab get nodes
"""

from __future__ import annotations

import json
import os
import re
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- the kind-mode contract (manifests/README.md) ------------------------------------------------
KUBE_CONTEXT = "kind-fraud-lab"
CLUSTER_NAME = "fraud-lab"
NAMESPACE = "fraud-lab"
NODE_COUNT = 3
POOL_LABEL = "fraud-lab.io/pool"
POOLS = ("data", "serving")
# Namespace → value of pod-security.kubernetes.io/enforce.
NAMESPACE_POD_SECURITY = {
    "fraud-lab": "restricted",
    "seldon-system": "baseline",
    "monitoring": "privileged",
}
PSS_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
REGISTRY_URL = "http://localhost:5001"
REGISTRY_HOST = "localhost:5001"
REGISTRY_CONFIGMAP = ("kube-public", "local-registry-hosting")
NODEPORTS = {
    "mlflow": 30500,
    "model_http": 30080,
    "model_grpc": 30081,
    "prometheus": 30090,
    "grafana": 30030,
}
DATA_PVC = "fraud-data"
DATA_MOUNT = "/data"
# Jobs, workloads and services the labs look for, all in NAMESPACE.
SIMULATE_JOB = "simulate"
# The pipeline: Argo WorkflowTemplates (manifests/base/pipeline) and the steps of its DAG.
ARGO_GROUP, ARGO_VERSION = "argoproj.io", "v1alpha1"
PIPELINE_TEMPLATE = "fraud-pipeline"
DATA_TEMPLATE = "data-pipeline"
TRAIN_TEMPLATE = "train-model"
DATA_STEPS = ("simulate", "validate", "features")
TRAIN_STEPS = ("train-logistic-regression", "train-random-forest", "train-mlp")
# The data DAG (lab 03): task → the tasks it depends on.
DATA_DEPENDS = {"simulate": set(), "validate": {"simulate"}, "features": {"validate"}}
# Lasting evidence: the checks read Workflows, which the templates keep 7 days (ttlStrategy).
WORKFLOWS_KEPT = "Workflows are kept 7 days after they finish"
MLFLOW_DEPLOYMENT = "mlflow"
MLFLOW_CONTAINER = "mlflow"
MODEL_SELDONDEPLOYMENT = "fraud-detector"
MODEL_CONTAINER = "fraud-detector"
MODEL_NODEPORT_SERVICE = "fraud-detector-nodeport"
MODEL_POD_SELECTOR = "app.kubernetes.io/name=fraud-detector"
MLFLOW_SECRETS_FILE = REPO_ROOT / "manifests" / "overlays" / "kind" / "secrets" / "mlflow.env"
SELDON_GROUP, SELDON_VERSION, SELDON_PLURAL = "machinelearning.seldon.io", "v1", "seldondeployments"
# Lab 11: monitoring (kube-prometheus-stack in namespace monitoring, release kube-prometheus-stack).
MONITORING_GROUP, MONITORING_VERSION, PODMONITOR_PLURAL = (
    "monitoring.coreos.com",
    "v1",
    "podmonitors",
)
DRIFT_MONITOR_DEPLOYMENT = "drift-monitor"
DRIFT_MONITOR_CONTAINER = "drift-monitor"
DRIFT_MONITOR_POD_SELECTOR = "app.kubernetes.io/name=drift-monitor"
DRIFT_MONITOR_PORT = 8090
METRICS_PORT_NAME = "metrics"
# PodMonitor name → (kind, name, container) of the workload whose pods it scrapes. Prometheus calls
# each PodMonitor's job "<namespace>/<name>" (local mode's prometheus.yml uses the same names).
PODMONITORS = {
    "fraud-detector": ("SeldonDeployment", MODEL_SELDONDEPLOYMENT, MODEL_CONTAINER),
    "drift-monitor": ("Deployment", DRIFT_MONITOR_DEPLOYMENT, DRIFT_MONITOR_CONTAINER),
}
MODEL_JOB = f"{NAMESPACE}/fraud-detector"
DRIFT_JOB = f"{NAMESPACE}/drift-monitor"
SCORE_METRIC = (
    "fraud_score_bucket"  # the model's score histogram (reference_app/monitoring/metrics.py)
)
DRIFT_METRIC = "fraud_drift_psi"  # per feature, and for the served score as feature="fraud_score"
MONITOR_UP_METRIC = "fraud_monitor_up"
SCORE_FEATURE = "fraud_score"
ALERT_RULES = ("FraudFeatureDrift", "FraudModelDown")
PROMETHEUS_RULE = "fraud-lab"
MONITORING_NAMESPACE = "monitoring"
DASHBOARD_CONFIGMAP = "grafana-dashboard-fraud-lab"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
DASHBOARD_UID = "fraud-lab"
GRAFANA_SECRET = "kube-prometheus-stack-grafana"  # "<KPS_RELEASE>-grafana" (scripts/versions.sh)
GRAFANA_SECRET_KEYS = ("admin-user", "admin-password")

# --- the fraud system (reference_app/config.py defaults; FRAUD_* variables override them) -------
DEFAULTS = {
    "FRAUD_DATA_DIR": "data",
    "FRAUD_MODEL_NAME": "fraud-detector",
    "FRAUD_EXPERIMENT": "fraud-detection",
    "FRAUD_GATE_MIN_AUC": "0.85",
    "FRAUD_GATE_MIN_AP": "0.60",
}
CHAMPION = "champion"
DATASETS = ("raw", "validated", "features")
# The model's 15 inputs (reference_app/features), in order.
FEATURE_NAMES = (
    "TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT",
    "CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_7DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_30DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "TERMINAL_ID_NB_TX_1DAY_WINDOW", "TERMINAL_ID_RISK_1DAY_WINDOW",
    "TERMINAL_ID_NB_TX_7DAY_WINDOW", "TERMINAL_ID_RISK_7DAY_WINDOW",
    "TERMINAL_ID_NB_TX_30DAY_WINDOW", "TERMINAL_ID_RISK_30DAY_WINDOW",
)  # fmt: skip
OUTPUT_NAME = "fraud_probability"
SKEW_TOLERANCE = 1e-6
# Lab 09's service SLO (chapter 01's template): p95 latency of one request ≤ 100 ms.
SLO_P95_MS = 100.0
LATENCY_REQUESTS = 50
MAX_QUARANTINE_SHARE = 0.001  # the pipeline's --max-quarantine (manifests/base/data)

HTTP_TIMEOUT_S = 10.0
MAX_WAIT_S = 60.0  # no check waits longer than this (STYLE.md §4)
HEX64 = re.compile(r"^[0-9a-f]{64}$")
GIT_SHA = re.compile(r"^[0-9a-f]{40}(-dirty)?$")  # scripts/images.sh marks uncommitted changes


# --- hints --------------------------------------------------------------------------------------
def hint(expected: str, found: str, debug: str | None = None) -> str:
    """The message of a failed check: what was expected, what was found, the command to debug.

    Example:
        >>> assert job_ok, hint("Job simulate succeeded", "0 succeeded pods", kubectl("-n fraud-lab logs job/simulate"))  # doctest: +SKIP
    """
    pad = "\n" + " " * 10  # continuation lines align under the first
    lines = [f"expected: {expected}".replace("\n", pad), f"found:    {found}".replace("\n", pad)]
    if debug:
        lines.append(f"debug:    {debug}".replace("\n", pad))
    return "\n".join(lines)


def kubectl(args: str) -> str:
    """A kubectl command line for a hint, always with the course's context."""
    return f"kubectl --context {KUBE_CONTEXT} {args}"


def setting(name: str) -> str:
    """A `FRAUD_*` setting as the fraud system reads it: environment, then `.env`, then default."""
    if name in os.environ:
        return os.environ[name]
    env_file = Path(".env")
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return DEFAULTS[name]


def short(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_error(err: BaseException) -> str:
    """`ConnectError: [Errno 111] Connection refused` — an exception on one line."""
    return short(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)


# --- local stack ---------------------------------------------------------------------------------
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


# --- HTTP ----------------------------------------------------------------------------------------
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

    def ready(self) -> int:
        """The HTTP status of GET /-/ready."""
        return self.client.get("/-/ready").status_code

    def query(self, expr: str) -> list[dict]:
        """The instant vector of a PromQL expression: `[{"metric": {...}, "value": [t, "v"]}, …]`."""
        r = self.client.get("/api/v1/query", params={"query": expr})
        r.raise_for_status()
        return r.json()["data"]["result"]

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


# --- bounded calls -------------------------------------------------------------------------------
class Timeout(RuntimeError):
    """A call did not return within its bound."""


def bounded(fn: Callable[[], Any], seconds: float = 30.0, what: str = "the call") -> Any:
    """Run `fn` in a daemon thread; raise `Timeout` if it takes longer than `seconds` (≤ 60)."""
    seconds = min(seconds, MAX_WAIT_S)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Timeout(f"{what} did not answer within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_until(predicate: Callable[[], bool], seconds: float, interval: float = 1.0) -> bool:
    """Poll `predicate` until it is true or `seconds` (≤ 60) have passed."""
    deadline = time.monotonic() + min(seconds, MAX_WAIT_S)
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- cluster -------------------------------------------------------------------------------------
class ClusterError(RuntimeError):
    """The checks cannot (or refuse to) talk to the cluster; `fix` is the command that helps."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


def kubeconfig_paths() -> list[Path]:
    """The kubeconfig files kubectl reads: $KUBECONFIG (a list) or ~/.kube/config."""
    raw = os.environ.get("KUBECONFIG", "")
    paths = [p for p in raw.split(os.pathsep) if p] if raw else ["~/.kube/config"]
    return [Path(p).expanduser() for p in paths]


LOCAL_API_SERVER = re.compile(r"^https://(127\.0\.0\.1|localhost|\[::1\]):\d+/?$")


class Cluster:
    """Kubernetes API clients for the kind cluster, built from context `kind-fraud-lab` only."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.server = api_client.configuration.host

    def to_dict(self, obj: Any) -> dict:
        """An API object as the JSON the API server sends (camelCase keys, like the YAML manifests)."""
        return self.api_client.sanitize_for_serialization(obj)

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a read API method with a request timeout; None when the object does not exist."""
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, _request_timeout=HTTP_TIMEOUT_S, **kwargs)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def _get(self, fn: Callable[..., Any], *args: Any) -> dict | None:
        obj = self.read(fn, *args)
        if obj is None:
            return None
        return obj if isinstance(obj, dict) else self.to_dict(obj)

    # Objects by name, as dicts: the checks use only these (tests/labs replays them on the
    # rendered manifests).
    def job(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.batch.read_namespaced_job, name, namespace)

    def cronjob(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.batch.read_namespaced_cron_job, name, namespace)

    def deployment(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.apps.read_namespaced_deployment, name, namespace)

    def service(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.core.read_namespaced_service, name, namespace)

    def namespace(self, name: str) -> dict | None:
        return self._get(self.core.read_namespace, name)

    def configmap(self, name: str, namespace: str) -> dict | None:
        return self._get(self.core.read_namespaced_config_map, name, namespace)

    def workflowtemplate(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """An Argo WorkflowTemplate; None when it or its CRD does not exist."""
        return self._get(
            self.custom.get_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            "workflowtemplates",
            name,
        )

    def workflows(self, namespace: str = NAMESPACE) -> list[dict]:
        """Every Argo Workflow of the namespace (the pipeline's runs), as dicts."""
        out = self.read(
            self.custom.list_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            "workflows",
        )
        return list((out or {}).get("items") or [])

    def seldondeployment(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(
            self.custom.get_namespaced_custom_object,
            SELDON_GROUP,
            SELDON_VERSION,
            namespace,
            SELDON_PLURAL,
            name,
        )

    def podmonitor(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """A PodMonitor (kube-prometheus-stack's CRD); None when it or its CRD does not exist."""
        return self._get(
            self.custom.get_namespaced_custom_object,
            MONITORING_GROUP,
            MONITORING_VERSION,
            namespace,
            PODMONITOR_PLURAL,
            name,
        )

    def secret(self, name: str, namespace: str) -> dict | None:
        """A Secret, its values decoded (the checks never print them)."""
        import base64

        obj = self._get(self.core.read_namespaced_secret, name, namespace)
        if obj is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}

    def nodes(self) -> list[dict]:
        out = self.read(self.core.list_node)
        return [self.to_dict(n) for n in (out.items if out else [])]

    def node(self, name: str) -> dict | None:
        return self._get(self.core.read_node, name)

    def pods(self, namespace: str, selector: str) -> list[dict]:
        out = self.read(self.core.list_namespaced_pod, namespace, label_selector=selector)
        return [self.to_dict(p) for p in (out.items if out else [])]

    def pod_log(self, name: str, namespace: str = NAMESPACE, container: str | None = None) -> str:
        return (
            self.read(
                self.core.read_namespaced_pod_log,
                name,
                namespace,
                container=container,
                tail_lines=200,
            )
            or ""
        )


def connect(context: str = KUBE_CONTEXT) -> Cluster:
    """A `Cluster` for `context`, after checking it exists, is a local kind API server and answers.

    Raises:
        ClusterError: with a one-line reason and the command that fixes it.
    """
    paths = kubeconfig_paths()
    if not any(p.is_file() for p in paths):
        raise ClusterError(
            f"no kubeconfig file ({', '.join(map(str, paths))}); the checks use context {context} only",
            "make cluster",
        )
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, _ = config.list_kube_config_contexts()
    except (ConfigException, OSError, ValueError) as err:
        raise ClusterError(
            f"cannot read your kubeconfig: {describe_error(err)}", "kubectl config get-contexts"
        ) from None
    names = sorted(c["name"] for c in contexts or [])
    if context not in names:
        raise ClusterError(
            f"your kubeconfig has no context {context} (it has: {', '.join(names) or 'none'}); the checks refuse any other cluster",
            "make cluster",
        )
    try:
        api_client = config.new_client_from_config(context=context)
    except (ConfigException, OSError, ValueError) as err:
        raise ClusterError(
            f"context {context} cannot be loaded: {describe_error(err)}",
            f"kubectl config view --minify --context {context}",
        ) from None
    server = api_client.configuration.host or ""
    if not LOCAL_API_SERVER.match(server):
        raise ClusterError(
            f"context {context} points at {server or 'nothing'}, not a local kind API server",
            "make cluster-down && make cluster",
        )
    try:
        client.VersionApi(api_client).get_code(_request_timeout=5)
    except Exception as err:  # noqa: BLE001 - any failure means "does not answer"
        raise ClusterError(
            f"the API server of {context} ({server}) does not answer: {describe_error(err)}",
            f"docker ps --filter name={CLUSTER_NAME}   (then: make cluster)",
        ) from None
    return Cluster(api_client)


def pod_host(pod: str, container: str, namespace: str = NAMESPACE) -> Any:
    """A testinfra host for a container of a running pod (`kubectl://` backend, explicit context)."""
    import shutil

    import testinfra

    assert shutil.which("kubectl"), hint(
        "kubectl on your PATH (testinfra runs kubectl exec)",
        "no kubectl",
        "make doctor   (prints the install command)",
    )

    return testinfra.get_host(
        f"kubectl://{pod}?namespace={namespace}&container={container}&context={KUBE_CONTEXT}"
    )


def node_host(node: str) -> Any:
    """A testinfra host for a kind node (a Docker container named like the node)."""
    import testinfra

    return testinfra.get_host(f"docker://{node}")


def run_in(host: Any, command: str, seconds: float = 30.0) -> Any:
    """`host.run(command)` bounded to `seconds`."""
    return bounded(lambda: host.run(command), seconds, f"`{command}`")


# --- manifests: pure functions on objects as the API returns them (camelCase dicts) -------------
def pod_spec(obj: dict) -> dict:
    """The pod spec inside a Job, CronJob, Deployment, StatefulSet or SeldonDeployment (first component)."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if kind == "SeldonDeployment":
        predictors = spec.get("predictors") or [{}]
        components = predictors[0].get("componentSpecs") or [{}]
        return components[0].get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def template_pod_spec(workflow_template: dict | None, name: str) -> dict:
    """The pod spec a container template of a WorkflowTemplate runs with: the workflow-level
    affinity, nodeSelector and securityContext (a template's own take precedence, as in Argo) and
    its container, named `main` as Argo names it. `{}` when there is no such template."""
    template = template_named(workflow_template, name)
    if template is None or "container" not in template:
        return {}
    spec = (workflow_template or {}).get("spec") or {}
    pod = {
        k: spec[k] for k in ("affinity", "nodeSelector", "securityContext", "volumes") if k in spec
    }
    pod.update({k: template[k] for k in ("affinity", "nodeSelector") if k in template})
    pod["containers"] = [{"name": "main", **template["container"]}]
    return pod


def find_container(podspec: dict, name: str) -> dict | None:
    """The container called `name` (or the only container when there is one), or None."""
    containers = podspec.get("containers") or []
    for c in containers:
        if c.get("name") == name:
            return c
    return containers[0] if len(containers) == 1 else None


def required_pools(podspec: dict) -> set[str] | None:
    """Pools (values of fraud-lab.io/pool) a pod may run on, or None when it may run anywhere.

    Reads required node affinity (`requiredDuringSchedulingIgnoredDuringExecution`, operator In)
    and `nodeSelector`.
    """
    allowed: set[str] | None = None
    selector = (podspec.get("nodeSelector") or {}).get(POOL_LABEL)
    if selector:
        allowed = {selector}
    required = ((podspec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        # Terms are ORed: the pod is confined to a pool only if every term confines it.
        per_term = []
        for term in terms:
            values = None
            for expr in term.get("matchExpressions") or []:
                if expr.get("key") == POOL_LABEL and expr.get("operator") == "In":
                    values = set(expr.get("values") or [])
            per_term.append(values)
        if all(v is not None for v in per_term):
            union = set().union(*per_term)
            allowed = union if allowed is None else allowed & union
    return allowed


def resource_problems(container: dict | None) -> list[str]:
    """What is missing among requests.cpu, requests.memory and limits.memory."""
    if container is None:
        return ["no such container"]
    res = container.get("resources") or {}
    return [
        f"resources.{what}.{key}"
        for what, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))
        if key not in (res.get(what) or {})
    ]


def env_value(container: dict | None, name: str) -> str | None:
    """The literal value of an env variable of a container (None if absent or from a Secret)."""
    for env in (container or {}).get("env") or []:
        if env.get("name") == name:
            return env.get("value")
    return None


def env_from_secret(container: dict | None, name: str) -> tuple[str, str] | None:
    """`(secret, key)` when an env variable comes from a Secret, else None."""
    for env in (container or {}).get("env") or []:
        if env.get("name") == name:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            return (ref.get("name"), ref.get("key")) if ref else None
    return None


def latest_workflow(workflows: list[dict], *templates: str) -> dict | None:
    """The newest Workflow made from one of `templates` (workflowTemplateRef), or None."""
    runs = [
        w
        for w in workflows
        if ((w.get("spec") or {}).get("workflowTemplateRef") or {}).get("name") in templates
    ]
    return max(
        runs, key=lambda w: (w.get("metadata") or {}).get("creationTimestamp") or "", default=None
    )


def workflow_step(workflow: dict | None, step: str) -> dict | None:
    """The status node of a DAG task (by display name) in a Workflow, or None."""
    nodes = ((workflow or {}).get("status") or {}).get("nodes") or {}
    found = [
        n
        for n in nodes.values()
        if n.get("displayName") == step and n.get("type") in {"Pod", "Retry"}
    ]
    return found[0] if found else None


def step_state(workflow: dict | None, step: str) -> str:
    """A step's phase and message (or why there is none), for a hint."""
    if workflow is None:
        return "no Workflow from the template yet"
    node = workflow_step(workflow, step)
    name = (workflow.get("metadata") or {}).get("name")
    if node is None:
        return f"workflow {name} ({((workflow.get('status') or {}).get('phase')) or 'Pending'}) has no step {step} yet"
    message = f": {node['message']}" if node.get("message") else ""
    return f"step {step} of workflow {name} is {node.get('phase')}{message}"


def dag_depends(template: dict | None) -> dict[str, set[str]]:
    """`{task: tasks it depends on}` of a WorkflowTemplate's entrypoint DAG (`depends` or
    `dependencies`; task names are read from the `depends` expression)."""
    import re

    spec = (template or {}).get("spec") or {}
    dags = [
        t.get("dag")
        for t in spec.get("templates") or []
        if t.get("name") == spec.get("entrypoint") and t.get("dag")
    ]
    out = {}
    for task in (dags[0].get("tasks") or []) if dags else []:
        names = set(task.get("dependencies") or []) | set(
            re.findall(r"[A-Za-z0-9][\w-]*(?=\.|\s|&|\||\)|$)", task.get("depends") or "")
        )
        out[task["name"]] = {
            n
            for n in names
            if n
            not in {
                "Succeeded",
                "Failed",
                "Errored",
                "Skipped",
                "Omitted",
                "Daemoned",
                "AnySucceeded",
                "AllFailed",
            }
        }
    return out


def template_named(template: dict | None, name: str) -> dict | None:
    """One template (by name) of a WorkflowTemplate, or None."""
    found = [
        t
        for t in ((template or {}).get("spec") or {}).get("templates") or []
        if t.get("name") == name
    ]
    return found[0] if found else None


def job_succeeded(job: dict | None) -> bool:
    """True when a Job has a succeeded pod or its Complete condition is true."""
    status = (job or {}).get("status") or {}
    if (status.get("succeeded") or 0) >= 1:
        return True
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def job_state(job: dict | None) -> str:
    """Active / succeeded / failed pod counts and the last condition, for a hint."""
    status = (job or {}).get("status") or {}
    conds = [
        f"{c.get('type')}: {c.get('reason') or c.get('message') or c.get('status')}"
        for c in status.get("conditions") or []
    ]
    counts = f"{status.get('active') or 0} active, {status.get('succeeded') or 0} succeeded, {status.get('failed') or 0} failed pods"
    return counts + (f" ({conds[-1]})" if conds else "")


def pv_location(pv: dict) -> tuple[str | None, str | None]:
    """`(node, path)` of a local-path PersistentVolume (hostPath or local volume) on a kind node."""
    spec = pv.get("spec") or {}
    path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
    node = None
    for term in ((spec.get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms"
    ) or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == "kubernetes.io/hostname" and expr.get("values"):
                node = expr["values"][0]
    node = node or ((pv.get("metadata") or {}).get("annotations") or {}).get(
        "local.path.provisioner/selected-node"
    )
    return node, path


# --- datasets -------------------------------------------------------------------------------------
class DatasetsUnavailable(RuntimeError):
    """The dataset volume cannot be read; `fix` is the command that shows why."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


class LocalDatasets:
    """Dataset manifests under the local data directory (FRAUD_DATA_DIR)."""

    def __init__(self, root: Path | None = None):
        self.root = root or data_dir()

    def where(self, name: str) -> str:
        return f"{self.root}/{name}"

    def manifest(self, name: str) -> dict | None:
        path = self.root / name / "manifest.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def missing_files(self, name: str, files: list[str]) -> list[str]:
        return [f for f in files if not (self.root / name / f).is_file()]

    def show(self, name: str) -> str:
        return f"cat {self.where(name)}/manifest.json"


class ClusterDatasets:
    """Dataset manifests on the `fraud-data` volume, read on its kind node with testinfra (docker://).

    No pod needs to run: kind's local-path volumes are folders on the node container.
    """

    def __init__(self, cluster: Cluster):
        pvc = cluster.read(
            cluster.core.read_namespaced_persistent_volume_claim, DATA_PVC, NAMESPACE
        )
        if pvc is None:
            raise DatasetsUnavailable(
                f"PersistentVolumeClaim {DATA_PVC} does not exist in {NAMESPACE}",
                kubectl(f"-n {NAMESPACE} get pvc"),
            )
        volume = (pvc.spec.volume_name or "") if pvc.spec else ""
        if not volume:
            raise DatasetsUnavailable(
                f"PersistentVolumeClaim {DATA_PVC} is not bound yet (no pod has used it)",
                kubectl(f"-n {NAMESPACE} describe pvc {DATA_PVC}"),
            )
        pv = cluster.to_dict(cluster.read(cluster.core.read_persistent_volume, volume))
        self.node, self.path = pv_location(pv or {})
        if not (self.node and self.path):
            raise DatasetsUnavailable(
                f"PersistentVolume {volume} is not a local-path volume on a kind node",
                kubectl(f"get pv {volume} -o yaml"),
            )
        self.host = node_host(self.node)
        probe = run_in(self.host, f"ls {shlex.quote(self.path)}")
        if probe.rc != 0:
            raise DatasetsUnavailable(
                f"cannot read {self.path} on node {self.node}: {short(probe.stderr or probe.stdout or f'exit status {probe.rc}', 120)}",
                f"docker exec {self.node} ls {self.path}",
            )

    def where(self, name: str) -> str:
        return f"{DATA_MOUNT}/{name} (volume {DATA_PVC} at {self.node}:{self.path}/{name})"

    def _file(self, name: str, file: str) -> str:
        return f"{self.path}/{name}/{file}"

    def manifest(self, name: str) -> dict | None:
        result = run_in(self.host, f"cat {shlex.quote(self._file(name, 'manifest.json'))}")
        if result.rc != 0:
            if "No such file" in (result.stderr or "") or result.rc == 1:
                return None
            raise DatasetsUnavailable(
                f"cannot read the volume on node {self.node}: {short(result.stderr)}",
                f"docker exec {self.node} ls {self.path}",
            )
        return json.loads(result.stdout)

    def missing_files(self, name: str, files: list[str]) -> list[str]:
        listing = run_in(self.host, f"ls -1 {shlex.quote(f'{self.path}/{name}')}")
        present = set(listing.stdout.split()) if listing.rc == 0 else set()
        return [f for f in files if f not in present]

    def show(self, name: str) -> str:
        return f"docker exec {self.node} cat {self._file(name, 'manifest.json')}"


# --- object status -------------------------------------------------------------------------------
def condition(obj: dict | None, kind: str) -> str | None:
    """The status ("True", "False", …) of a condition of an object, or None."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("status")
    return None


def labels(obj: dict | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def pod_ready(pod: dict) -> bool:
    return ((pod.get("status") or {}).get("phase") == "Running") and condition(
        pod, "Ready"
    ) == "True"


def ready_pods(pods: list[dict]) -> list[dict]:
    return [p for p in pods if pod_ready(p)]


def pod_state(pods: list[dict]) -> str:
    """`name: phase (reason)` for each pod, for a hint."""
    out = []
    for p in pods:
        status = p.get("status") or {}
        waiting = [
            (cs.get("state") or {}).get("waiting", {}).get("reason")
            for cs in status.get("containerStatuses") or []
            if (cs.get("state") or {}).get("waiting")
        ]
        out.append(
            f"{p['metadata']['name']}: {status.get('phase')}"
            + (f" ({', '.join(w for w in waiting if w)})" if any(waiting) else "")
        )
    return "; ".join(out) or "no pod"


def manifest_problems(manifest: dict) -> list[str]:
    """What is wrong with a dataset manifest: rows, digest, and per-file rows that add up."""
    problems = []
    rows = manifest.get("rows")
    if not isinstance(rows, int) or rows <= 0:
        problems.append(f"rows is {rows!r}")
    if not HEX64.match(str(manifest.get("digest", ""))):
        problems.append(f"digest is {manifest.get('digest')!r}, not a SHA-256")
    files = manifest.get("files") or []
    if not files:
        problems.append("no file listed")
    elif isinstance(rows, int) and sum(int(f.get("rows", 0)) for f in files) != rows:
        problems.append(
            f"its {len(files)} files hold {sum(int(f.get('rows', 0)) for f in files):,} rows, the manifest says {rows:,}"
        )
    return problems


def latest_replay(reports: Path | None = None) -> tuple[Path | None, dict | None]:
    """The newest `replay-<day>.json` written by `fraudlab replay` under the reports folder."""
    folder = reports or data_dir() / "reports"
    found = (
        sorted(folder.glob("replay-*.json"), key=lambda p: p.stat().st_mtime)
        if folder.is_dir()
        else []
    )
    if not found:
        return None, None
    try:
        return found[-1], json.loads(found[-1].read_text())
    except ValueError:
        return found[-1], None
