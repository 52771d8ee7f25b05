"""What the lab checks share: the names they look for, hints, endpoints, cluster and HTTP access.

The checks (`labs/NN-*/test_lab.py`) read state only: Kubernetes objects through the kubernetes
client (context `kind-fraud-lab`, never another), files inside pods and nodes through testinfra,
MLflow and the model over HTTP, datasets through their manifests. Every wait is bounded.

This package imports no code of the fraud system: the names are the contract written in
manifests/README.md, and tests/labs checks them against the rendered manifests and the app.
The checks use `labkit.X` (or `from labkit import X`); the parts:

    names       the kind-mode contract and the fraud system's names and settings
    hints       hint(expected, found, debug) and the commands hints show
    endpoints   the local stack's data directory and stack file; URLs of each target
    http        MLflow, Prometheus and the model over HTTP; http_status; curl lines
    waits       Timeout, bounded, wait_until (no check waits more than 60 s)
    cluster     Cluster, connect (context kind-fraud-lab only), testinfra hosts
    objects     pure functions on API objects: pod specs, Workflow steps, pod and Job states
    datasets    dataset manifests (local folder or the cluster's volume), replay reports
    exercises   the labs' Python exercises, run through `fraudlab exercise` (the app's .venv)
    images      the app image: local engine, kind registry, the work tree's commit and labels
    security    lab 15: restricted pods, the probe, listening sockets, leaked secrets
    reporter    the learner's output (a pytest plugin, registered by labs/conftest.py)

Example:
    >>> print(hint("3 Ready nodes", "2 Ready nodes", kubectl("get nodes")))
    expected: 3 Ready nodes
    found:    2 Ready nodes
    debug:    kubectl --context kind-fraud-lab get nodes
"""

# ruff: noqa: F401 - the package re-exports the public names of its parts

from __future__ import annotations

from .cluster import (
    LOCAL_API_SERVER,
    Cluster,
    ClusterError,
    connect,
    kubeconfig_paths,
    node_host,
    pod_host,
    run_in,
)
from .datasets import (
    ClusterDatasets,
    DatasetsUnavailable,
    LocalDatasets,
    latest_replay,
)
from .endpoints import (
    Endpoints,
    cluster_endpoints,
    data_dir,
    local_endpoints,
    pid_alive,
    read_env_file,
    stack_file,
)
from .exercises import (
    EXERCISE_DIR_ENV,
    LAB_CODE_LABEL,
    LAB_CODE_MOUNT,
    ExerciseUnavailable,
    assert_behaviour,
    assert_configmap_holds,
    assert_runs_lab_code,
    configmap_lab_code,
    lab_code_problem,
    lab_code_source,
    lab_code_volume,
    mounted_lab_code,
    starter_dir,
)
from .exercises import behaviours as exercise_behaviours
from .exercises import results as exercise_results
from .hints import (
    describe_error,
    hint,
    kubectl,
    promote_command,
    short,
)
from .http import (
    MlflowApi,
    PrometheusApi,
    curl,
    http_get,
    http_status,
    percentile,
    run_fields,
    sample_transaction,
    v2_request,
)
from .images import (
    APP_REPOSITORY,
    ENGINES,
    LAB_CODE_IMAGE_LABEL,
    REVISION_LABEL,
    RUNTIME_LABEL_PREFIX,
    Image,
    app_commit,
    app_image_tag,
    engine_images,
    expected_labels,
    local_image,
    numeric_uid,
    registry_image,
)
from .names import (
    ALERT_RULES,
    ARGO_GROUP,
    ARGO_VERSION,
    CHAMPION,
    CLUSTER_NAME,
    DASHBOARD_CONFIGMAP,
    DASHBOARD_LABEL,
    DASHBOARD_UID,
    DATA_DEPENDS,
    DATA_MOUNT,
    DATA_PVC,
    DATA_STEPS,
    DATA_TEMPLATE,
    DATASETS,
    DEFAULTS,
    DRIFT_JOB,
    DRIFT_METRIC,
    DRIFT_MONITOR_CONTAINER,
    DRIFT_MONITOR_DEPLOYMENT,
    DRIFT_MONITOR_POD_SELECTOR,
    DRIFT_MONITOR_PORT,
    FEATURE_NAMES,
    GIT_SHA,
    GRAFANA_SECRET,
    GRAFANA_SECRET_KEYS,
    HEX64,
    HTTP_TIMEOUT_S,
    KUBE_CONTEXT,
    LATENCY_REQUESTS,
    MAX_QUARANTINE_SHARE,
    MAX_WAIT_S,
    METRICS_PORT_NAME,
    MLFLOW_CONTAINER,
    MLFLOW_DEPLOYMENT,
    MLFLOW_SECRETS_FILE,
    MODEL_CONTAINER,
    MODEL_JOB,
    MODEL_NODEPORT_SERVICE,
    MODEL_POD_SELECTOR,
    MODEL_SELDONDEPLOYMENT,
    MONITOR_UP_METRIC,
    MONITORING_GROUP,
    MONITORING_NAMESPACE,
    MONITORING_VERSION,
    NAMESPACE,
    NAMESPACE_POD_SECURITY,
    NODE_COUNT,
    NODEPORTS,
    OUTPUT_NAME,
    PIPELINE_TEMPLATE,
    PODMONITOR_PLURAL,
    PODMONITORS,
    POOL_LABEL,
    POOLS,
    PROMETHEUS_RULE,
    PSS_ENFORCE_LABEL,
    RAY_GROUP,
    RAY_VERSION,
    RAYJOB_PLURAL,
    REGISTRY_CONFIGMAP,
    REGISTRY_HOST,
    REGISTRY_URL,
    REPO_ROOT,
    SCORE_FEATURE,
    SCORE_METRIC,
    SELDON_GROUP,
    SELDON_PLURAL,
    SELDON_VERSION,
    SIMULATE_JOB,
    SKEW_TOLERANCE,
    SLO_P95_MS,
    TRAIN_STEPS,
    TRAIN_TEMPLATE,
    WORKFLOWS_KEPT,
    setting,
)
from .objects import (
    condition,
    dag_depends,
    env_from_secret,
    env_value,
    find_container,
    job_state,
    job_succeeded,
    labels,
    latest_workflow,
    manifest_problems,
    pod_ready,
    pod_spec,
    pod_state,
    pv_location,
    ready_pods,
    required_pools,
    resource_problems,
    step_state,
    template_named,
    template_pod_spec,
    workflow_step,
)
from .reporter import not_deployed
from .security import (
    found_secrets,
    is_loopback,
    listening_sockets,
    privileged_pod,
    probe_command,
    restricted_problems,
)
from .waits import (
    Timeout,
    bounded,
    wait_until,
)
