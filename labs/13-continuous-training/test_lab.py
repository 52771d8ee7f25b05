"""Lab 13 · Continuous training: a drift (or performance) alert started a retraining cycle; the
cycle trained on the newest window whose labels were known (your window.py) and its challenger
was promoted only through the gate.

Cluster: the WorkflowTemplate `retrain` (your manifest: ServiceAccount, trigger, your window.py
mounted), the newest Workflow the ct-controller submitted from it, and MLflow. Local: the local
MLflow, where the ct-controller of `make up-monitoring` records each cycle (experiment
`continuous-training`).
"""

from __future__ import annotations

import datetime as dt

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

TEMPLATE, STEP, SERVICE_ACCOUNT = "retrain", "retrain", "retrain"
TRIGGER_ARGS = ["--trigger", "{{workflow.parameters.trigger}}"]
APPLY = kubectl("apply -k labs/13-continuous-training/starter")
CT_EXPERIMENT = "continuous-training"
RETRAIN_ALERTS = ("FraudFeatureDrift", "FraudCardPrecisionLow")
MAX_RUNS = 50


def alert_cycles(mlflow) -> list[dict]:
    """The finished continuous-training cycles an alert started, newest first."""
    experiment = mlflow.experiment(CT_EXPERIMENT)
    runs = mlflow.runs(experiment["experiment_id"], MAX_RUNS) if experiment else []
    return [
        r
        for r in runs
        if r["info"].get("status") == "FINISHED"
        and labkit.run_fields(r)[2].get("trigger_alert") in RETRAIN_ALERTS
    ]


def expected_window(as_of: dt.date) -> dict[str, str]:
    """The protocol window the label delay allows on `as_of` (FRAUD_DELTA_* as the app reads them)."""
    delay, train, test = (
        int(labkit.setting(f"FRAUD_DELTA_{name}")) for name in ("DELAY", "TRAIN", "TEST")
    )
    test_end = as_of - dt.timedelta(days=delay)
    test_start = test_end - dt.timedelta(days=test - 1)
    train_start = test_start - dt.timedelta(days=delay + train)
    return {
        "train_start": train_start.isoformat(),
        "test_start": test_start.isoformat(),
        "test_end": test_end.isoformat(),
    }


def how_to_start_a_cycle(target: str) -> str:
    if target == "cluster":
        return "scripts/run-pipeline.sh fraud-pipeline through=replay   (a drifted day; see the lab's step 4)"
    return "make up-monitoring && make replay DAY=2018-08-10   (on the drifted data of step 1)"


# --- kind mode: your WorkflowTemplate ---------------------------------------------------------------
def retrain_pod(k8s) -> dict:
    return labkit.template_pod_spec(k8s.workflowtemplate(TEMPLATE), STEP)


@pytest.mark.cluster("reads the WorkflowTemplate")
def test_retrain_template_spec(k8s):
    """WorkflowTemplate `retrain` runs as ServiceAccount `retrain` (it may roll the SeldonDeployment) and passes the alert on: `--trigger {{workflow.parameters.trigger}}`."""
    template = k8s.workflowtemplate(TEMPLATE)
    container = labkit.find_container(retrain_pod(k8s), "main") or {}
    args = container.get("args") or []
    problems = []
    if template is None:
        problems.append(f"no WorkflowTemplate {TEMPLATE}")
    else:
        account = (template.get("spec") or {}).get("serviceAccountName")
        if account != SERVICE_ACCOUNT:
            problems.append(f"serviceAccountName {account!r}")
        if not any(args[i : i + 2] == TRIGGER_ARGS for i in range(len(args))):
            problems.append(f"args {args}")
    assert not problems, hint(
        f"serviceAccountName {SERVICE_ACCOUNT}; args with {' '.join(TRIGGER_ARGS)}",
        "; ".join(problems),
        APPLY,
    )


EXERCISE_WORKLOAD = f"WorkflowTemplate {TEMPLATE}, step {STEP}"
"""The workload that runs the learner's window.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return retrain_pod(k8s)


@pytest.mark.cluster("reads the WorkflowTemplate")
def test_retrain_step_runs_your_window(k8s):
    """The retrain step of WorkflowTemplate `retrain` runs your window.py: its ConfigMap (`lab-code-13-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 13, "window.py", APPLY)


@pytest.mark.cluster("reads the Workflows")
@pytest.mark.needs("test_retrain_template_spec")
def test_retrain_workflow_succeeded(k8s):
    """The newest Workflow from WorkflowTemplate `retrain` (one the ct-controller submitted for an alert) has succeeded."""
    workflow = labkit.latest_workflow(k8s.workflows(), TEMPLATE)
    phase = ((workflow or {}).get("status") or {}).get("phase")
    assert phase == "Succeeded", hint(
        f"a Workflow from {TEMPLATE}, phase Succeeded",
        "no Workflow from it yet"
        if workflow is None
        else f"{workflow['metadata']['name']}: {phase}",
        kubectl(
            f"-n {NAMESPACE} get workflows -l workflows.argoproj.io/workflow-template={TEMPLATE}"
        )
        if workflow is None
        else kubectl(f"-n {NAMESPACE} logs -l app.kubernetes.io/name=retrain -c main --tail=20"),
    )


# --- both targets: the cycles in MLflow ---------------------------------------------------------------
def test_cycle_started_by_an_alert(endpoints, mlflow):
    """MLflow's experiment `continuous-training` has a finished cycle started by a drift or performance alert (tag trigger_alert)."""
    cycles = alert_cycles(mlflow)
    assert cycles, hint(
        f"a FINISHED run in {CT_EXPERIMENT} with trigger_alert in {', '.join(RETRAIN_ALERTS)}",
        "none: no alert has started a cycle yet",
        how_to_start_a_cycle(endpoints.target),
    )


@pytest.mark.needs("test_cycle_started_by_an_alert")
def test_cycle_trained_on_the_labelled_window(mlflow):
    """The newest alert cycle trained and tested on the window the label delay allows: its test week ends FRAUD_DELTA_DELAY days before the day it ran for."""
    run = alert_cycles(mlflow)[0]
    params, _, _ = labkit.run_fields(run)
    as_of = dt.date.fromisoformat(params["as_of"])
    expected = expected_window(as_of)
    found = {k: params.get(k) for k in expected}
    assert found == expected, hint(
        f"as of {as_of}: " + ", ".join(f"{k} {v}" for k, v in expected.items()),
        ", ".join(f"{k} {v}" for k, v in found.items()),
        f"your retraining_window in labs/13-continuous-training/starter/window.py: "
        f".venv/bin/fraudlab exercise check 13 --code labs/13-continuous-training/starter; "
        f"run {run['info']['run_id'][:8]}: "
        + mlflow.debug(f"/api/2.0/mlflow/runs/get?run_id={run['info']['run_id']}"),
    )


@pytest.mark.needs("test_cycle_started_by_an_alert")
def test_challenger_promoted_only_through_the_gate(mlflow, model_name):
    """The newest alert cycle's challenger got the alias the registry recorded, and `champion` only with passed_gate=true."""
    run = alert_cycles(mlflow)[0]
    _, _, tags = labkit.run_fields(run)
    number = tags.get("challenger_version", "")
    version = mlflow.version(model_name, number) if number else None
    version_tags = {t["key"]: t["value"] for t in (version or {}).get("tags") or []}
    decision, passed = version_tags.get("promotion_decision"), version_tags.get("passed_gate")
    problems = []
    if version is None:
        problems.append(f"no version {number!r} of {model_name}")
    elif decision != tags.get("decision"):
        problems.append(f"cycle decided {tags.get('decision')!r}, the version says {decision!r}")
    elif decision == labkit.CHAMPION and passed != "true":
        problems.append(f"version {number} is champion with passed_gate={passed!r}")
    assert not problems, hint(
        f"version {number}: promotion_decision = the cycle's decision; champion only with "
        "passed_gate=true",
        "; ".join(problems) + f" (reason: {tags.get('decision_reason')!r})",
        mlflow.debug(f"/api/2.0/mlflow/model-versions/get?name={model_name}&version={number}"),
    )


# --- your Python: the retraining window ----------------------------------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(13))
def test_exercise(exercise, behaviour):
    """Your retraining_window: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
