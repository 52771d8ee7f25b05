"""The kind-mode contract: the cluster, namespaces, object names, labels and ports the checks look
for, and the fraud system's names and settings (features, model, quality gate, SLO).

These are the names written in manifests/README.md; tests/labs checks them against the rendered
manifests, the scripts and the app (this package imports no code of the fraud system).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

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
# Lab 14: KubeRay (chart kuberay-operator, namespace ray-system) and its RayJob.
RAY_GROUP, RAY_VERSION, RAYJOB_PLURAL = "ray.io", "v1", "rayjobs"
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
# The model's score histogram (reference_app/monitoring/metrics.py).
SCORE_METRIC = "fraud_score_bucket"
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
    "FRAUD_MAX_BODY_BYTES": "1000000",
    "FRAUD_DELTA_TRAIN": "7",
    "FRAUD_DELTA_DELAY": "7",
    "FRAUD_DELTA_TEST": "7",
    "FRAUD_LLM_URL": "http://127.0.0.1:8000",
    "FRAUD_LLM_MAX_TTFT_S": "5.0",
    "FRAUD_LLM_MIN_TOKENS_PER_S": "5.0",
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
MAX_WAIT_S = 60.0  # no check waits longer than this
HEX64 = re.compile(r"^[0-9a-f]{64}$")
GIT_SHA = re.compile(r"^[0-9a-f]{40}(-dirty)?$")  # scripts/images.sh marks uncommitted changes


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
