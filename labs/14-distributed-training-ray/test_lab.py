"""Lab 14 · Distributed tuning with Ray: `fraudlab tune` searched the hyper-parameters with Ray
Tune on prequential folds (your folds.py), ASHA stopped the weak trials early, every trial's fold
metrics are in MLflow, and the tuned model went through the quality gate like any other.

Cluster: the RayJob `tune` (your manifest: entrypoint, worker group, your folds.py mounted on the
head, where the driver runs), its status (KubeRay keeps it on the RayJob after it deletes the
RayCluster), and MLflow. Local: the local MLflow, where `fraudlab tune` records the search
(experiment `fraud-tuning`) on a local Ray.
"""

from __future__ import annotations

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

RAYJOB, HEAD_CONTAINER, WORKER_GROUP = "tune", "ray-head", "trials"
ENTRYPOINT = "fraudlab tune"
APPLY = (
    kubectl(f"-n {NAMESPACE} delete rayjob {RAYJOB} --ignore-not-found")
    + " && "
    + kubectl("apply -k labs/14-distributed-training-ray/starter")
)
TUNE_EXPERIMENT = "fraud-tuning"
"""Settings.tune_experiment (FRAUD_TUNE_EXPERIMENT): the tuning runs and their trials."""
FOLD_METRICS = ("auc_roc", "average_precision", "card_precision_top_k")
DECISIONS = ("champion", "challenger", "blocked")
MAX_RUNS = 500
WORKER_REQUESTS = ("requests.cpu", "requests.memory", "limits.memory")


def tuning_runs(mlflow) -> list[dict]:
    """The finished tuning runs (tag fraud_tuning=parent), newest first."""
    experiment = mlflow.experiment(TUNE_EXPERIMENT)
    runs = mlflow.runs(experiment["experiment_id"], MAX_RUNS) if experiment else []
    return [
        r
        for r in runs
        if r["info"].get("status") == "FINISHED"
        and labkit.run_fields(r)[2].get("fraud_tuning") == "parent"
    ]


def trials_of(mlflow, parent: dict) -> list[dict]:
    """The trial runs nested under a tuning run (tag mlflow.parentRunId)."""
    runs = mlflow.runs(parent["info"]["experiment_id"], MAX_RUNS)
    return [
        r
        for r in runs
        if labkit.run_fields(r)[2].get("mlflow.parentRunId") == parent["info"]["run_id"]
        and labkit.run_fields(r)[2].get("fraud_tuning") == "trial"
    ]


def how_to_tune(target: str) -> str:
    if target == "cluster":
        return APPLY
    return "FRAUD_LAB_CODE=labs/14-distributed-training-ray/starter .venv/bin/fraudlab tune --model lightgbm"


# --- kind mode: your RayJob -----------------------------------------------------------------------
def head_pod(k8s) -> dict:
    """The pod template of the RayJob's head group ({} when there is no RayJob)."""
    job = k8s.rayjob(RAYJOB) or {}
    spec = (job.get("spec") or {}).get("rayClusterSpec") or {}
    return ((spec.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}


def worker_group(job: dict) -> dict | None:
    groups = ((job.get("spec") or {}).get("rayClusterSpec") or {}).get("workerGroupSpecs") or []
    return next((g for g in groups if g.get("groupName") == WORKER_GROUP), None)


def worker_problems(group: dict | None, concurrency: int) -> list[str]:
    """What keeps the worker group from running `concurrency` trials at once."""
    if group is None:
        return [f"no worker group {WORKER_GROUP}"]
    problems = []
    replicas = group.get("replicas", 0)
    if replicas < 1 or group.get("minReplicas", 0) < 1:
        problems.append(f"replicas {replicas}, minReplicas {group.get('minReplicas', 0)}")
    cpus = (group.get("rayStartParams") or {}).get("num-cpus")
    if cpus is None or not cpus.isdigit() or int(cpus) * max(replicas, 0) < concurrency:
        problems.append(f"num-cpus {cpus!r} (the trials run at once: {concurrency})")
    pod = (group.get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or [{}]
    resources = containers[0].get("resources") or {}
    missing = [
        f"resources.{key}"
        for key in WORKER_REQUESTS
        if key.split(".")[1] not in (resources.get(key.split(".")[0]) or {})
    ]
    if missing:
        problems.append("missing " + ", ".join(missing))
    return problems


@pytest.mark.cluster("reads the RayJob")
def test_rayjob_spec(k8s):
    """RayJob `tune` runs `fraudlab tune` as its entrypoint and has a worker group that can run the trials at once: a replica, num-cpus ≥ the head's FRAUD_TUNE_CONCURRENCY, requests and a memory limit."""
    job = k8s.rayjob(RAYJOB)
    problems = []
    if job is None:
        problems.append(f"no RayJob {RAYJOB}")
    else:
        head = labkit.find_container(head_pod(k8s), HEAD_CONTAINER)
        concurrency = int(labkit.env_value(head, "FRAUD_TUNE_CONCURRENCY") or 2)
        entrypoint = (job["spec"].get("entrypoint") or "").strip()
        if not entrypoint.startswith(ENTRYPOINT):
            problems.append(f"entrypoint {entrypoint!r}")
        problems += worker_problems(worker_group(job), concurrency)
    assert not problems, hint(
        f"entrypoint {ENTRYPOINT}; worker group {WORKER_GROUP}: ≥ 1 replica, num-cpus ≥ the trials at "
        "once, resources.requests cpu and memory, resources.limits.memory",
        "; ".join(problems),
        APPLY,
    )


EXERCISE_WORKLOAD = f"RayJob {RAYJOB}, container {HEAD_CONTAINER}"
"""The workload that runs the learner's folds.py (mounted from its ConfigMap at /lab-code): the
Ray head, where the job's driver (`fraudlab tune`) runs."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return head_pod(k8s)


@pytest.mark.cluster("reads the RayJob")
def test_rayjob_runs_your_folds(k8s):
    """The head of RayJob `tune` runs your folds.py: its ConfigMap (`lab-code-14-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code (the driver runs on the head)."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 14, "folds.py", APPLY)


@pytest.mark.cluster("reads the RayJob's status")
@pytest.mark.needs("test_rayjob_spec")
def test_rayjob_succeeded(k8s):
    """RayJob `tune` has finished: jobStatus SUCCEEDED (Ray's job) and jobDeploymentStatus Complete (KubeRay's)."""
    status = (k8s.rayjob(RAYJOB) or {}).get("status") or {}
    found = (status.get("jobStatus"), status.get("jobDeploymentStatus"))
    assert found == ("SUCCEEDED", "Complete"), hint(
        "jobStatus SUCCEEDED, jobDeploymentStatus Complete",
        f"jobStatus {found[0]!r}, jobDeploymentStatus {found[1]!r}"
        + (
            f" ({status['reason']}: {status.get('message', '')[:200]})"
            if status.get("reason")
            else ""
        ),
        # The submitter Job has the RayJob's name and keeps the driver's log after the cluster is gone.
        kubectl(f"-n {NAMESPACE} logs job/{RAYJOB} --tail=30"),
    )


# --- both targets: the search in MLflow -----------------------------------------------------------------
def test_tuning_run_finished(endpoints, mlflow):
    """MLflow's experiment `fraud-tuning` has a finished tuning run (tag fraud_tuning=parent)."""
    runs = tuning_runs(mlflow)
    assert runs, hint(
        f"a FINISHED run in {TUNE_EXPERIMENT} tagged fraud_tuning=parent",
        "none: fraudlab tune has not finished a search yet",
        how_to_tune(endpoints.target),
    )


@pytest.mark.needs("test_tuning_run_finished")
def test_trials_have_fold_metrics(endpoints, mlflow):
    """The newest search's trials are nested runs with every fold's metrics and their means (fold{i}_auc_roc, …, mean_average_precision)."""
    parent = tuning_runs(mlflow)[0]
    params, _, _ = labkit.run_fields(parent)
    folds = int(params.get("folds") or 0)
    expected = [f"fold{i}_{m}" for i in range(folds) for m in FOLD_METRICS] + [
        f"mean_{m}" for m in FOLD_METRICS
    ]
    trials = trials_of(mlflow, parent)
    incomplete = {
        labkit.run_fields(t)[2].get("trial_id", t["info"]["run_id"][:8]): [
            m for m in expected if m not in labkit.run_fields(t)[1]
        ]
        for t in trials
    }
    incomplete = {trial: missing for trial, missing in incomplete.items() if missing}
    assert folds > 0 and trials and not incomplete, hint(
        f"≥ 1 trial under run {parent['info']['run_id'][:8]}, each with {len(expected)} metrics "
        f"over {folds} folds",
        f"{len(trials)} trials; missing: "
        + ("; ".join(f"{t}: {', '.join(m[:3])}…" for t, m in list(incomplete.items())[:3]) or "-"),
        mlflow.debug(f"/api/2.0/mlflow/runs/get?run_id={parent['info']['run_id']}"),
    )


@pytest.mark.needs("test_tuning_run_finished")
def test_tuned_model_went_through_the_gate(endpoints, mlflow, model_name):
    """The newest search's tuned model is a version of the registered model with the gate's verdict and its reason (promotion_decision, promotion_reason), `champion` only with passed_gate=true."""
    parent = tuning_runs(mlflow)[0]
    _, _, tags = labkit.run_fields(parent)
    number = tags.get("tuned_version", "")
    version = mlflow.version(model_name, number) if number else None
    version_tags = {t["key"]: t["value"] for t in (version or {}).get("tags") or []}
    decision, reason = version_tags.get("promotion_decision"), version_tags.get("promotion_reason")
    passed = version_tags.get("passed_gate")
    problems = []
    if version is None:
        problems.append(f"no version {number!r} of {model_name} (tag tuned_version)")
    elif decision not in DECISIONS or not reason:
        problems.append(f"promotion_decision {decision!r}, promotion_reason {reason!r}")
    elif decision == labkit.CHAMPION and passed != "true":
        problems.append(f"version {number} is champion with passed_gate={passed!r}")
    assert not problems, hint(
        f"version {number or '?'} of {model_name}: promotion_decision one of {', '.join(DECISIONS)} "
        "with a promotion_reason; champion only with passed_gate=true",
        "; ".join(problems),
        mlflow.debug(f"/api/2.0/mlflow/model-versions/get?name={model_name}&version={number}")
        if number
        else how_to_tune(endpoints.target),
    )


# --- which folds.py the search ran ---------------------------------------------------------------------
@pytest.mark.cluster("reads the RayJob, a ConfigMap and MLflow")
@pytest.mark.needs("test_rayjob_runs_your_folds", "test_tuning_run_finished")
def test_tuning_used_your_folds(k8s, mlflow):
    """The newest tuning run cut its folds with your folds.py: its tag folds_source is the SHA-256 of the file the head mounts."""
    files = labkit.mounted_lab_code(k8s, exercise_pod(k8s))
    expected = labkit.lab_code_source(14, "folds.py", files.get("folds.py"))
    run = tuning_runs(mlflow)[0]
    found = labkit.run_fields(run)[2].get("folds_source")
    assert found == expected, hint(
        f"folds_source={expected} on run {run['info']['run_id'][:8]}",
        f"folds_source={found} (a search that ran before your folds.py was applied)",
        APPLY,
    )


@pytest.mark.local("the cluster's search reads the folds.py its head mounts")
@pytest.mark.needs("test_tuning_run_finished")
def test_local_tuning_used_your_folds(mlflow):
    """The newest tuning run cut its folds with your starter/folds.py (tag folds_source, run with FRAUD_LAB_CODE=labs/14-distributed-training-ray/starter)."""
    path = labkit.starter_dir(14) / "folds.py"
    expected = labkit.lab_code_source(14, "folds.py", path.read_text() if path.exists() else None)
    run = tuning_runs(mlflow)[0]
    found = labkit.run_fields(run)[2].get("folds_source")
    assert found == expected, hint(
        f"folds_source={expected} on run {run['info']['run_id'][:8]}",
        f"folds_source={found} (run without FRAUD_LAB_CODE, or before your last edit)",
        how_to_tune("local"),
    )


# --- your Python: the prequential folds -------------------------------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(14))
def test_exercise(exercise, behaviour):
    """Your prequential_folds: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
