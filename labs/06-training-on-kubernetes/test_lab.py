"""Lab 06 · Training on Kubernetes: the pipeline's train steps (WorkflowTemplate `train-model`,
called once per model) succeeded on a GPU or the CPU, each run meets the quality gate and records
the device; the promote step decided the champion through the gate.

The gate is the fraud system's: AUC ROC ≥ FRAUD_GATE_MIN_AUC (0.85) and average precision ≥
FRAUD_GATE_MIN_AP (0.60), read from the same variables as `fraudlab promote`.
"""

from __future__ import annotations

import pytest

import labkit
from labkit import NAMESPACE, POOL_LABEL, hint, kubectl

TEMPLATE, STEP = labkit.TRAIN_TEMPLATE, "train"
APPLY = kubectl("apply -k labs/06-training-on-kubernetes/starter")
DEVICES = ("cpu", "cuda")
CREDENTIALS = {
    "MLFLOW_TRACKING_USERNAME": "FRAUD_MLFLOW_ADMIN_USERNAME",
    "MLFLOW_TRACKING_PASSWORD": "FRAUD_MLFLOW_ADMIN_PASSWORD",
}
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
        return kubectl(f"-n {NAMESPACE} logs -l app.kubernetes.io/name=train -c main --tail=20")
    return "make train MODEL=random_forest"


# --- kind mode: the train template and the pipeline's train steps ---------------------------------------
def train_pod(k8s) -> dict:
    return labkit.template_pod_spec(k8s.workflowtemplate(TEMPLATE), STEP)


@pytest.mark.cluster("reads the WorkflowTemplate")
def test_train_template_on_data_pool(k8s):
    """Template `train` of WorkflowTemplate `train-model` runs where the datasets are: required node affinity on fraud-lab.io/pool=data."""
    template = k8s.workflowtemplate(TEMPLATE)
    assert template is not None, hint(
        f"WorkflowTemplate {TEMPLATE} in {NAMESPACE}", "no such object", APPLY
    )
    pools = labkit.required_pools(train_pod(k8s))
    assert pools == {"data"}, hint(
        f"{POOL_LABEL} In [data] (required node affinity)",
        "no rule: it may run on any node" if pools is None else f"pools {sorted(pools)}",
        kubectl(f"-n {NAMESPACE} get workflowtemplate {TEMPLATE} -o jsonpath='{{.spec.affinity}}'"),
    )


@pytest.mark.cluster("reads the WorkflowTemplate")
@pytest.mark.needs("test_train_template_on_data_pool")
def test_train_template_sets_resources(k8s):
    """The train container requests CPU and memory and sets a memory limit."""
    missing = labkit.resource_problems(labkit.find_container(train_pod(k8s), "main"))
    assert not missing, hint(
        "resources.requests.cpu, resources.requests.memory and resources.limits.memory",
        f"missing {', '.join(missing)}",
        kubectl(
            f"-n {NAMESPACE} get workflowtemplate {TEMPLATE} -o jsonpath='{{.spec.templates[0].container.resources}}'"
        ),
    )


@pytest.mark.cluster("reads the WorkflowTemplate")
@pytest.mark.needs("test_train_template_on_data_pool")
def test_train_template_uses_mlflow_secret(k8s):
    """The train container logs in to MLflow with the Secret mlflow-credentials (MLFLOW_TRACKING_USERNAME / PASSWORD from secretKeyRef)."""
    container = labkit.find_container(train_pod(k8s), "main")
    wrong = [
        f"{var} ({'a literal value' if labkit.env_value(container, var) else 'not set'})"
        for var, key in CREDENTIALS.items()
        if labkit.env_from_secret(container, var) != (CREDENTIALS_SECRET, key)
    ]
    assert not wrong, hint(
        f"both from secretKeyRef {CREDENTIALS_SECRET}",
        ", ".join(wrong),
        kubectl(
            f"-n {NAMESPACE} get workflowtemplate {TEMPLATE} -o jsonpath='{{.spec.templates[0].container.env}}'"
        ),
    )


@pytest.mark.cluster("Workflows run on a cluster")
@pytest.mark.needs("test_train_template_on_data_pool")
@pytest.mark.parametrize("step", labkit.TRAIN_STEPS)
def test_train_step_succeeded(k8s, step):
    """Step `{step}` of the newest pipeline Workflow has succeeded."""
    workflow = labkit.latest_workflow(k8s.workflows(), labkit.PIPELINE_TEMPLATE)
    node = labkit.workflow_step(workflow, step)
    debug = (
        "scripts/run-pipeline.sh"
        if workflow is None
        else kubectl(
            f"-n {NAMESPACE} logs -l workflows.argoproj.io/workflow={workflow['metadata']['name']} -c main --tail=20"
        )
    )
    assert node is not None and node.get("phase") == "Succeeded", hint(
        f"step {step} Succeeded ({labkit.WORKFLOWS_KEPT})", labkit.step_state(workflow, step), debug
    )


# --- both targets: the run in MLflow ----------------------------------------------------------------------
def test_training_run_finished(endpoints, mlflow, experiment_name):
    """The latest training run in MLflow finished and logged auc_roc and average_precision."""
    run = latest_run(mlflow, experiment_name)
    assert run is not None, hint(
        f"a run in experiment {experiment_name}", "no run", debug_train(endpoints)
    )
    _, metrics, _ = labkit.run_fields(run)
    status = run["info"].get("status")
    missing = [m for m in ("auc_roc", "average_precision") if m not in metrics]
    assert status == "FINISHED" and not missing, hint(
        "status FINISHED with metrics auc_roc and average_precision",
        f"run {run['info']['run_id']}: status {status}"
        + (f", no {', '.join(missing)}" if missing else ""),
        debug_train(endpoints),
    )


@pytest.mark.needs("test_training_run_finished")
def test_device_recorded(endpoints, mlflow, experiment_name):
    """The latest training run records the device it trained on (tag `device`: cpu or cuda)."""
    run = latest_run(mlflow, experiment_name)
    device = labkit.run_fields(run)[2].get("device")
    assert device in DEVICES, hint(
        f"tag device in {DEVICES}",
        f"device {device!r}",
        mlflow.debug(f"/api/2.0/mlflow/runs/get?run_id={run['info']['run_id']}"),
    )


@pytest.mark.needs("test_training_run_finished")
def test_run_meets_quality_gate(endpoints, mlflow, experiment_name):
    """The latest training run meets the quality gate (AUC ROC ≥ FRAUD_GATE_MIN_AUC, average precision ≥ FRAUD_GATE_MIN_AP)."""
    run = latest_run(mlflow, experiment_name)
    _, metrics, tags = labkit.run_fields(run)
    min_auc, min_ap = gate()
    auc, ap = metrics["auc_roc"], metrics["average_precision"]
    assert auc >= min_auc and ap >= min_ap, hint(
        f"AUC ROC ≥ {min_auc}, average precision ≥ {min_ap}",
        f"{tags.get('model_type', 'run')} {run['info']['run_id'][:8]}: AUC ROC {auc:.4f}, average precision {ap:.4f}",
        debug_train(endpoints),
    )


@pytest.mark.needs("test_training_run_finished")
def test_champion_passed_gate(endpoints, mlflow, model_name):
    """The champion version passed the gate when it was promoted (version tag passed_gate=true)."""
    version = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    debug = (
        kubectl(f"-n {NAMESPACE} logs -l app.kubernetes.io/name=promote -c main --tail=20")
        if endpoints.target == "cluster"
        else "make train MODEL=random_forest   (train promotes; or: fraudlab promote)"
    )
    assert version is not None, hint(
        f"models:/{model_name}@{labkit.CHAMPION}",
        "no champion (has the promote step run?)",
        labkit.promote_command(
            endpoints.target, model_name, mlflow.latest_version(model_name), mlflow.url
        ),
    )
    tags = {t["key"]: t["value"] for t in version.get("tags") or []}
    assert tags.get("passed_gate") == "true", hint(
        "tag passed_gate=true on the champion version",
        f"version {version['version']}: passed_gate={tags.get('passed_gate')!r}, reason {tags.get('promotion_reason')!r}",
        debug,
    )


# --- your gate: the quality gate of each run --------------------------------------------------------------------------------
EXERCISE_WORKLOAD = f"WorkflowTemplate {TEMPLATE}, step {STEP}"
"""The workload that runs the learner's gate.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return train_pod(k8s)


@pytest.mark.cluster("reads the WorkflowTemplate")
def test_train_step_runs_your_gate(k8s):
    """The train step of WorkflowTemplate `train-model` runs your gate.py: its ConfigMap (`lab-code-06-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 6, "gate.py", APPLY)


@pytest.mark.cluster("reads the WorkflowTemplate, a ConfigMap and MLflow")
@pytest.mark.needs("test_training_run_finished", "test_train_step_runs_your_gate")
def test_run_gated_by_your_gate(k8s, mlflow, experiment_name):
    """The latest training run was gated by your gate.py: its tags quality_gate (the SHA-256 of the file the train step mounts) and passed_gate."""
    files = labkit.mounted_lab_code(k8s, exercise_pod(k8s))
    expected = labkit.lab_code_source(6, "gate.py", files.get("gate.py"))
    run = latest_run(mlflow, experiment_name)
    _, _, tags = labkit.run_fields(run)
    found = f"quality_gate={tags.get('quality_gate')}, passed_gate={tags.get('passed_gate')}"
    assert tags.get("quality_gate") == expected and tags.get("passed_gate") in (
        "true",
        "false",
    ), hint(
        f"quality_gate={expected}, passed_gate=true|false on run {run['info']['run_id'][:8]}",
        found + " (a run trained before your gate.py was applied, or reused: the run key "
        "does not change with it)",
        "scripts/run-pipeline.sh fraud-pipeline through=promote",
    )


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(6))
def test_exercise(exercise, behaviour):
    """Your gate_failures: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
