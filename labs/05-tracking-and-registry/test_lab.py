"""Lab 05 · Experiment tracking and the model registry: MLflow (PostgreSQL + S3 on the cluster)
answers; training runs carry params, metrics, the data digest and the git commit; the model
`fraud-detector` has a version with alias `champion`.
"""

from __future__ import annotations

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

DEPLOYMENT, CONTAINER = labkit.MLFLOW_DEPLOYMENT, labkit.MLFLOW_CONTAINER
REQUIRED_METRICS = ("auc_roc", "average_precision")
REQUIRED_PARAMS = ("model_type", "train_start", "seed")
MAX_RUNS = 50


def finished_runs(mlflow, experiment_name: str) -> list[dict]:
    experiment = mlflow.experiment(experiment_name)
    if experiment is None:
        return []
    return [
        r
        for r in mlflow.runs(experiment["experiment_id"], MAX_RUNS)
        if r["info"].get("status") == "FINISHED"
    ]


def lineage_problems(run: dict) -> list[str]:
    """What a training run is missing to be reproducible."""
    params, metrics, tags = labkit.run_fields(run)
    problems = [f"param {p}" for p in REQUIRED_PARAMS if p not in params]
    problems += [f"metric {m}" for m in REQUIRED_METRICS if m not in metrics]
    if not labkit.HEX64.match(tags.get("data_digest", "")):
        problems.append(f"tag data_digest ({tags.get('data_digest', 'missing')!r}, not a SHA-256)")
    if not labkit.GIT_SHA.match(tags.get("git_commit", "")):
        problems.append(
            f"tag git_commit ({tags.get('git_commit', 'missing')!r}, not a 40-hex commit)"
        )
    return problems


# --- kind mode: MLflow's deployment ------------------------------------------------------------------
@pytest.mark.cluster("reads the Deployment's spec")
def test_mlflow_deployment_configured(k8s):
    """Deployment `mlflow` keeps runs in PostgreSQL, artifacts in the S3 store, and turns on MLflow's login."""
    dep = k8s.deployment(DEPLOYMENT)
    assert dep is not None, hint(
        f"Deployment {DEPLOYMENT} in {NAMESPACE}",
        "no such Deployment",
        kubectl("apply -k labs/05-tracking-and-registry/starter"),
    )
    container = labkit.find_container(labkit.pod_spec(dep), CONTAINER)
    wanted = {
        "FRAUD_MLFLOW_BACKEND_STORE_URI": lambda v: v.startswith("postgresql://"),
        "FRAUD_MLFLOW_ARTIFACTS_DESTINATION": lambda v: v.startswith("s3://"),
        "MLFLOW_S3_ENDPOINT_URL": lambda v: v.startswith("http"),
        "FRAUD_MLFLOW_AUTH": lambda v: v.lower() == "true",
    }
    wrong = [
        f"{name}={labkit.env_value(container, name) or '(unset)'}"
        for name, ok in wanted.items()
        if not ok(labkit.env_value(container, name) or "")
    ]
    wrong = [
        w.split("@")[0].rsplit(":", 1)[0] + ":…@…" if "postgresql://" in w and "@" in w else w
        for w in wrong
    ]
    assert not wrong, hint(
        "FRAUD_MLFLOW_BACKEND_STORE_URI=postgresql://…, FRAUD_MLFLOW_ARTIFACTS_DESTINATION=s3://mlflow, MLFLOW_S3_ENDPOINT_URL=http://s3:8333, FRAUD_MLFLOW_AUTH=true",
        ", ".join(wrong),
        kubectl(
            f"-n {NAMESPACE} get deployment {DEPLOYMENT} -o jsonpath='{{.spec.template.spec.containers[0].env}}'"
        ),
    )


@pytest.mark.cluster("Deployments run on a cluster")
def test_mlflow_deployment_available(k8s):
    """Deployment `mlflow` in `fraud-lab` has its replica ready."""
    dep = k8s.deployment(DEPLOYMENT)
    status = (dep or {}).get("status") or {}
    found = (
        "no such Deployment"
        if dep is None
        else f"{status.get('readyReplicas') or 0}/{(dep.get('spec') or {}).get('replicas', 1)} ready"
    )
    assert dep is not None and (status.get("readyReplicas") or 0) >= 1, hint(
        "1/1 ready", found, kubectl(f"-n {NAMESPACE} describe deployment {DEPLOYMENT}")
    )


@pytest.mark.cluster("reads the environment inside the MLflow pod")
@pytest.mark.needs("test_mlflow_deployment_available", "test_mlflow_deployment_configured")
def test_mlflow_uses_postgres_and_s3(k8s):
    """Inside the MLflow pod: runs go to PostgreSQL, artifacts to the S3 store (s3://mlflow via MLFLOW_S3_ENDPOINT_URL)."""
    pods = labkit.ready_pods(k8s.pods(NAMESPACE, f"app.kubernetes.io/name={DEPLOYMENT}"))
    assert pods, hint(
        "a ready MLflow pod",
        labkit.pod_state(k8s.pods(NAMESPACE, f"app.kubernetes.io/name={DEPLOYMENT}")),
        kubectl(f"-n {NAMESPACE} get pods -l app.kubernetes.io/name={DEPLOYMENT}"),
    )
    host = labkit.pod_host(pods[0]["metadata"]["name"], CONTAINER)
    # Only the URL scheme of the backend store: the full URI holds the database password.
    scheme = labkit.run_in(
        host, 'printf "%s" "${FRAUD_MLFLOW_BACKEND_STORE_URI%%:*}"'
    ).stdout.strip()
    artifacts = labkit.run_in(
        host, 'printf "%s" "$FRAUD_MLFLOW_ARTIFACTS_DESTINATION"'
    ).stdout.strip()
    endpoint = labkit.run_in(host, 'printf "%s" "$MLFLOW_S3_ENDPOINT_URL"').stdout.strip()
    found = f"backend store {scheme or '(unset: SQLite in the pod)'}, artifacts {artifacts or '(unset: the pod disk)'}, S3 endpoint {endpoint or '(unset)'}"
    assert scheme.startswith("postgresql") and artifacts.startswith("s3://") and endpoint, hint(
        "FRAUD_MLFLOW_BACKEND_STORE_URI=postgresql://…, FRAUD_MLFLOW_ARTIFACTS_DESTINATION=s3://mlflow, MLFLOW_S3_ENDPOINT_URL=http://s3:8333",
        found,
        kubectl(
            f"-n {NAMESPACE} exec deploy/{DEPLOYMENT} -- printenv FRAUD_MLFLOW_ARTIFACTS_DESTINATION MLFLOW_S3_ENDPOINT_URL"
        ),
    )


# --- both targets: MLflow over HTTP -------------------------------------------------------------------
def test_mlflow_answers(endpoints):
    """MLflow answers on its URL (GET /health → 200)."""
    status = labkit.http_status(f"{endpoints.mlflow}/health")
    debug = (
        kubectl(f"-n {NAMESPACE} logs deploy/{DEPLOYMENT} --tail=30")
        if endpoints.target == "cluster"
        else endpoints.log_command("mlflow")
    )
    assert status == 200, hint(f"HTTP 200 from {endpoints.mlflow}/health", str(status), debug)


@pytest.mark.cluster("local MLflow runs without auth on 127.0.0.1")
@pytest.mark.needs("test_mlflow_answers")
def test_mlflow_requires_login(endpoints):
    """MLflow refuses anonymous API calls (401) and accepts the admin user of Secret mlflow-credentials."""
    url = f"{endpoints.mlflow}/api/2.0/mlflow/experiments/search?max_results=1"
    anonymous, admin = labkit.http_status(url), labkit.http_status(url, auth=endpoints.mlflow_auth)
    assert (anonymous, admin) == (401, 200), hint(
        "401 without credentials, 200 as admin",
        f"{anonymous} without, {admin} as admin",
        labkit.curl(url, endpoints.mlflow_auth),
    )


@pytest.mark.needs("test_mlflow_answers")
def test_training_runs_logged(mlflow, experiment_name):
    """Experiment `fraud-detection` has finished training runs."""
    runs = finished_runs(mlflow, experiment_name)
    assert runs, hint(
        f"≥ 1 FINISHED run in experiment {experiment_name}",
        "no experiment" if mlflow.experiment(experiment_name) is None else "no finished run",
        "make train   (kind mode: see this lab's README, step 4)",
    )


@pytest.mark.needs("test_training_runs_logged")
def test_runs_carry_lineage(mlflow, experiment_name):
    """The latest finished run carries its params, metrics (auc_roc, average_precision), data digest and git commit."""
    run = finished_runs(mlflow, experiment_name)[0]
    problems = lineage_problems(run)
    assert not problems, hint(
        "params, metrics, tags data_digest and git_commit",
        f"run {run['info']['run_id']} lacks " + ", ".join(problems),
        mlflow.debug(f"/api/2.0/mlflow/runs/get?run_id={run['info']['run_id']}"),
    )


@pytest.mark.needs("test_mlflow_answers")
def test_champion_alias(mlflow, model_name):
    """Registered model `fraud-detector` has a version with alias `champion`."""
    version = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    assert version is not None, hint(
        f"models:/{model_name}@{labkit.CHAMPION}",
        f"no version of {model_name} carries the alias (or the model does not exist)",
        mlflow.debug(f"/api/2.0/mlflow/registered-models/get?name={model_name}"),
    )


@pytest.mark.needs("test_champion_alias")
def test_champion_has_lineage(mlflow, model_name):
    """The champion version comes from a run with the same lineage (data digest, git commit, metrics)."""
    version = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    run = mlflow.run(version["run_id"]) if version.get("run_id") else None
    problems = ["no run_id"] if run is None else lineage_problems(run)
    assert not problems, hint(
        "the champion's run with params, metrics, data_digest and git_commit",
        f"version {version['version']}: " + ", ".join(problems),
        mlflow.debug(f"/api/2.0/mlflow/runs/get?run_id={version.get('run_id')}"),
    )


# --- your Python: the promotion rule -----------------------------------------------------------------
LAB_CODE_CONFIGMAP, LAB_CODE_FILE = "lab-code-05", "promotion.py"
EXERCISE_WORKLOAD = f"ConfigMap {LAB_CODE_CONFIGMAP}"
"""Where the cluster keeps the learner's promotion.py: the pipeline's promote step (lab 06) mounts
it when it exists."""
APPLY = kubectl("apply -k labs/05-tracking-and-registry/starter")


def exercise_files(k8s) -> dict[str, str]:
    """The files of `EXERCISE_WORKLOAD` ({} when it is missing or not a lab's)."""
    return labkit.configmap_lab_code(k8s, LAB_CODE_CONFIGMAP, 5)[0]


@pytest.mark.cluster("reads a ConfigMap")
def test_your_promotion_rule_is_on_the_cluster(k8s):
    """ConfigMap `lab-code-05` holds your promotion.py (labelled fraud-lab.io/lab-code=05): the pipeline's promote step runs it."""
    labkit.assert_configmap_holds(k8s, LAB_CODE_CONFIGMAP, 5, LAB_CODE_FILE, APPLY)


@pytest.mark.cluster("reads a ConfigMap and the registry")
@pytest.mark.needs("test_champion_alias", "test_your_promotion_rule_is_on_the_cluster")
def test_champion_decided_by_your_rule(k8s, mlflow, model_name):
    """The champion was decided by your promotion.py: its version tag promotion_rule names the file in ConfigMap `lab-code-05` by its SHA-256."""
    files = exercise_files(k8s)
    expected = labkit.lab_code_source(5, LAB_CODE_FILE, files.get(LAB_CODE_FILE))
    version = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    tags = {t["key"]: t["value"] for t in version.get("tags") or []}
    found = tags.get("promotion_rule", "no tag promotion_rule")
    assert found == expected, hint(
        f"tag promotion_rule={expected} on version {version['version']}",
        found,
        "(set -a; . manifests/overlays/kind/secrets/mlflow.env; set +a; "
        "export MLFLOW_TRACKING_USERNAME=$FRAUD_MLFLOW_ADMIN_USERNAME "
        "MLFLOW_TRACKING_PASSWORD=$FRAUD_MLFLOW_ADMIN_PASSWORD; "
        "FRAUD_LAB_CODE=labs/05-tracking-and-registry/starter "
        f"FRAUD_MLFLOW_TRACKING_URI={mlflow.url} .venv/bin/fraudlab promote "
        f"--version {version['version']})",
    )


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(5))
def test_exercise(exercise, behaviour):
    """Your choose_alias: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
