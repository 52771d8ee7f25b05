"""Lab 06 · Training on Kubernetes: the training Job succeeded on a GPU or the CPU, its run meets
the quality gate and records the device; the promotion step decided the champion through the gate.

The gate is the fraud system's: AUC ROC ≥ FRAUD_GATE_MIN_AUC (0.85) and average precision ≥
FRAUD_GATE_MIN_AP (0.60), read from the same variables as `fraudlab promote`.
"""

from __future__ import annotations

import pytest

import labkit
from labkit import NAMESPACE, POOL_LABEL, hint, kubectl

JOB, CONTAINER, PROMOTE = labkit.TRAIN_JOB, "train", labkit.PROMOTE_JOB
DEVICES = ("cpu", "cuda")
CREDENTIALS = {"MLFLOW_TRACKING_USERNAME": "FRAUD_MLFLOW_ADMIN_USERNAME", "MLFLOW_TRACKING_PASSWORD": "FRAUD_MLFLOW_ADMIN_PASSWORD"}
CREDENTIALS_SECRET = "mlflow-credentials"
MAX_RUNS = 50


def gate() -> tuple[float, float]:
    """(min AUC ROC, min average precision) of the quality gate."""
    return float(labkit.setting("FRAUD_GATE_MIN_AUC")), float(labkit.setting("FRAUD_GATE_MIN_AP"))


def latest_run(mlflow, experiment_name: str) -> dict | None:
    """The newest training run (any status), or None."""
    experiment = mlflow.experiment(experiment_name)
    runs = mlflow.runs(experiment["experiment_id"], MAX_RUNS) if experiment else []
    return runs[0] if runs else None


def debug_train(endpoints) -> str:
    if endpoints.target == "cluster":
        return kubectl(f"-n {NAMESPACE} logs job/{JOB} --tail=20")
    return "make train MODEL=random_forest"


# --- kind mode: the Job -------------------------------------------------------------------------------
@pytest.mark.cluster("reads the Job's spec")
def test_train_job_on_data_pool(k8s):
    """Job `train` runs where the datasets are: required node affinity on fraud-lab.io/pool=data."""
    job = k8s.job(JOB)
    assert job is not None, hint(f"Job {JOB} in {NAMESPACE}", "no such Job (Jobs are deleted 24 h after they finish)", kubectl("apply -f labs/06-training-on-kubernetes/starter/job.train.yaml"))
    pools = labkit.required_pools(labkit.pod_spec(job))
    assert pools == {"data"}, hint(f"{POOL_LABEL} In [data] (required node affinity)", "no rule: it may run on any node" if pools is None else f"pools {sorted(pools)}", kubectl(f"-n {NAMESPACE} get job {JOB} -o jsonpath='{{.spec.template.spec.affinity}}'"))


@pytest.mark.cluster("reads the Job's spec")
@pytest.mark.needs("test_train_job_on_data_pool")
def test_train_job_sets_resources(k8s):
    """Container `train` requests CPU and memory and sets a memory limit."""
    missing = labkit.resource_problems(labkit.find_container(labkit.pod_spec(k8s.job(JOB)), CONTAINER))
    assert not missing, hint("resources.requests.cpu, resources.requests.memory and resources.limits.memory", f"missing {', '.join(missing)}", kubectl(f"-n {NAMESPACE} get job {JOB} -o jsonpath='{{.spec.template.spec.containers[0].resources}}'"))


@pytest.mark.cluster("reads the Job's spec")
@pytest.mark.needs("test_train_job_on_data_pool")
def test_train_job_uses_mlflow_secret(k8s):
    """Job `train` logs in to MLflow with the Secret mlflow-credentials (MLFLOW_TRACKING_USERNAME / PASSWORD from secretKeyRef)."""
    container = labkit.find_container(labkit.pod_spec(k8s.job(JOB)), CONTAINER)
    wrong = [f"{var} ({'a literal value' if labkit.env_value(container, var) else 'not set'})" for var, key in CREDENTIALS.items() if labkit.env_from_secret(container, var) != (CREDENTIALS_SECRET, key)]
    assert not wrong, hint(f"both from secretKeyRef {CREDENTIALS_SECRET}", ", ".join(wrong), kubectl(f"-n {NAMESPACE} get job {JOB} -o jsonpath='{{.spec.template.spec.containers[0].env}}'"))


@pytest.mark.cluster("Jobs run on a cluster")
@pytest.mark.needs("test_train_job_on_data_pool")
def test_train_job_succeeded(k8s):
    """Job `train` has completed successfully."""
    job = k8s.job(JOB)
    assert labkit.job_succeeded(job), hint("1 succeeded pod", labkit.job_state(job), kubectl(f"-n {NAMESPACE} logs job/{JOB} --tail=20"))


# --- both targets: the run in MLflow ----------------------------------------------------------------------
def test_training_run_finished(endpoints, mlflow, experiment_name):
    """The latest training run in MLflow finished and logged auc_roc and average_precision."""
    run = latest_run(mlflow, experiment_name)
    assert run is not None, hint(f"a run in experiment {experiment_name}", "no run", debug_train(endpoints))
    _, metrics, _ = labkit.run_fields(run)
    status = run["info"].get("status")
    missing = [m for m in ("auc_roc", "average_precision") if m not in metrics]
    assert status == "FINISHED" and not missing, hint("status FINISHED with metrics auc_roc and average_precision", f"run {run['info']['run_id']}: status {status}" + (f", no {', '.join(missing)}" if missing else ""), debug_train(endpoints))


@pytest.mark.needs("test_training_run_finished")
def test_device_recorded(endpoints, mlflow, experiment_name):
    """The latest training run records the device it trained on (tag `device`: cpu or cuda)."""
    run = latest_run(mlflow, experiment_name)
    device = labkit.run_fields(run)[2].get("device")
    assert device in DEVICES, hint(f"tag device in {DEVICES}", f"device {device!r}", mlflow.debug(f"/api/2.0/mlflow/runs/get?run_id={run['info']['run_id']}"))


@pytest.mark.needs("test_training_run_finished")
def test_run_meets_quality_gate(endpoints, mlflow, experiment_name):
    """The latest training run meets the quality gate (AUC ROC ≥ FRAUD_GATE_MIN_AUC, average precision ≥ FRAUD_GATE_MIN_AP)."""
    run = latest_run(mlflow, experiment_name)
    _, metrics, tags = labkit.run_fields(run)
    min_auc, min_ap = gate()
    auc, ap = metrics["auc_roc"], metrics["average_precision"]
    assert auc >= min_auc and ap >= min_ap, hint(
        f"AUC ROC ≥ {min_auc}, average precision ≥ {min_ap}", f"{tags.get('model_type', 'run')} {run['info']['run_id'][:8]}: AUC ROC {auc:.4f}, average precision {ap:.4f}", debug_train(endpoints)
    )


@pytest.mark.needs("test_training_run_finished")
def test_champion_passed_gate(endpoints, mlflow, model_name):
    """The champion version passed the gate when it was promoted (version tag passed_gate=true)."""
    version = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    debug = kubectl(f"-n {NAMESPACE} logs job/{PROMOTE} --tail=20") if endpoints.target == "cluster" else "make train MODEL=random_forest   (train promotes; or: fraudlab promote)"
    assert version is not None, hint(f"models:/{model_name}@{labkit.CHAMPION}", "no champion (has the promote step run?)", debug)
    tags = {t["key"]: t["value"] for t in version.get("tags") or []}
    assert tags.get("passed_gate") == "true", hint("tag passed_gate=true on the champion version", f"version {version['version']}: passed_gate={tags.get('passed_gate')!r}, reason {tags.get('promotion_reason')!r}", debug)
