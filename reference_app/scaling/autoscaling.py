"""Lab 16's autoscaler, the one source of its numbers: the KEDA ScaledObject that Seldon Core
makes from the SeldonDeployment's `kedaSpec` (manifests/components/autoscaling; tests/static
checks the manifest equal to these).

Replicas = ceil(inference requests/s ÷ TARGET_RPS_PER_REPLICA), between MIN_REPLICAS and
MAX_REPLICAS (the HPA's AverageValue rule, which KEDA's Prometheus scaler feeds). The load test's
top (Settings.load_users × load_user_rps = 100 requests/s by default) asks for 3 replicas.
"""

from __future__ import annotations

from ..monitoring.slo import INFER_PATH, MODEL_JOB

MIN_REPLICAS = 2
"""One pod may go (chaos, a drain, a rollout) while another serves."""
MAX_REPLICAS = 4
TARGET_RPS_PER_REPLICA = 40
"""Inference requests per second per replica (KEDA `threshold`)."""
SCALE_DOWN_WINDOW_S = 60
"""Seconds below the target before the HPA removes a replica (its default is 300)."""
PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
"""kube-prometheus-stack's Prometheus Service (release kube-prometheus-stack, namespace monitoring)."""
REQUEST_RATE_QUERY = (
    f'sum(rate(rest_server_requests_total{{job="{MODEL_JOB}", path=~"{INFER_PATH}"}}[1m]))'
)
"""The SLOs' requests (monitoring.slo), all replicas together, per second."""
SCALED_OBJECT = "fraud-detector-default-0-fraud-detector"
"""The ScaledObject (and the Deployment) Seldon names after predictor `default`, componentSpec 0,
container fraud-detector (machinelearningv1.GetDeploymentName)."""
HPA = f"keda-hpa-{SCALED_OBJECT}"
"""The HPA KEDA makes for the ScaledObject (KEDA names it keda-hpa-<ScaledObject>)."""
