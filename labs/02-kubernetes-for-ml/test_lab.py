"""Lab 02 · Kubernetes for ML: the simulator runs as a Job on the data pool, with requests and
limits, and its dataset exists.

Cluster: the Job `simulate` (affinity, resources, success, where it ran) and the raw dataset on
the `fraud-data` volume. Local: the raw dataset under FRAUD_DATA_DIR.
"""

from __future__ import annotations

import pytest

import labkit
from labkit import NAMESPACE, POOL_LABEL, hint, kubectl

JOB = "simulate"
CONTAINER = "simulate"
POOL = "data"
DATASET = "raw"
TTL_NOTE = "this Job is deleted 7 days after it finishes (ttlSecondsAfterFinished): apply it again"


@pytest.mark.cluster("Jobs run on a cluster")
def test_simulate_job_exists(k8s):
    """Job `simulate` exists in namespace `fraud-lab`."""
    assert k8s.job(JOB) is not None, hint(
        f"Job {JOB} in namespace {NAMESPACE}",
        f"no such Job ({TTL_NOTE})",
        kubectl("apply -k labs/02-kubernetes-for-ml/starter"),
    )


@pytest.mark.cluster("node affinity is a scheduling rule")
@pytest.mark.needs("test_simulate_job_exists")
def test_simulate_requires_data_pool(k8s):
    """Job `simulate` may only run on the data pool: required node affinity on fraud-lab.io/pool=data."""
    pools = labkit.required_pools(labkit.pod_spec(k8s.job(JOB)))
    assert pools == {POOL}, hint(
        f"spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: {POOL_LABEL} In [{POOL}]",
        "no rule: the pod may run on any node"
        if pools is None
        else f"the pod may run on pools {sorted(pools)}",
        kubectl(f"-n {NAMESPACE} get job {JOB} -o jsonpath='{{.spec.template.spec.affinity}}'"),
    )


@pytest.mark.cluster("requests and limits are scheduling rules")
@pytest.mark.needs("test_simulate_job_exists")
def test_simulate_sets_resources(k8s):
    """Container `simulate` requests CPU and memory and sets a memory limit."""
    container = labkit.find_container(labkit.pod_spec(k8s.job(JOB)), CONTAINER)
    missing = labkit.resource_problems(container)
    assert not missing, hint(
        "resources.requests.cpu, resources.requests.memory and resources.limits.memory",
        f"missing {', '.join(missing)}",
        kubectl(
            f"-n {NAMESPACE} get job {JOB} -o jsonpath='{{.spec.template.spec.containers[0].resources}}'"
        ),
    )


@pytest.mark.cluster("Jobs run on a cluster")
@pytest.mark.needs("test_simulate_job_exists")
def test_simulate_job_succeeded(k8s):
    """Job `simulate` has completed successfully."""
    job = k8s.job(JOB)
    assert labkit.job_succeeded(job), hint(
        "1 succeeded pod",
        labkit.job_state(job),
        kubectl(f"-n {NAMESPACE} logs job/{JOB} --tail=20"),
    )


@pytest.mark.cluster("pods run on cluster nodes")
@pytest.mark.needs("test_simulate_job_succeeded")
def test_simulate_ran_on_data_pool(k8s):
    """The simulator's pod ran on the data pool's node."""
    pods = k8s.pods(NAMESPACE, f"job-name={JOB}")
    nodes = {
        p["spec"].get("nodeName")
        for p in pods
        if (p.get("status") or {}).get("phase") == "Succeeded"
    }
    pools = {n: labkit.labels(k8s.node(n)).get(POOL_LABEL) for n in nodes if n}
    assert pools and set(pools.values()) == {POOL}, hint(
        f"the succeeded pod on a node labelled {POOL_LABEL}={POOL}",
        ", ".join(f"{n} ({p or 'no pool'})" for n, p in pools.items()) or "no succeeded pod",
        kubectl(f"-n {NAMESPACE} get pods -l job-name={JOB} -o wide"),
    )


def test_raw_dataset_written(datasets):
    """The simulator's dataset exists: raw/manifest.json with rows, frauds, a digest and its daily Parquet files."""
    manifest = datasets.manifest(DATASET)
    fix = (
        "make simulate"
        if isinstance(datasets, labkit.LocalDatasets)
        else kubectl(f"-n {NAMESPACE} logs job/{JOB} --tail=20")
    )
    assert manifest is not None, hint(
        f"a manifest in {datasets.where(DATASET)}",
        "no manifest.json (the simulator has not written its dataset)",
        fix,
    )
    problems = labkit.manifest_problems(manifest)
    frauds = manifest.get("frauds")
    if not (isinstance(frauds, int) and 0 < frauds < (manifest.get("rows") or 0)):
        problems.append(f"frauds is {frauds!r}")
    missing = datasets.missing_files(DATASET, [f["name"] for f in manifest.get("files") or []])
    if missing:
        problems.append(f"{len(missing)} listed files missing (e.g. {missing[0]})")
    assert not problems, hint("a complete raw dataset", "; ".join(problems), datasets.show(DATASET))


# --- your Python: the terminals near a customer ----------------------------------------------------
EXERCISE_WORKLOAD = f"Job {JOB}"
"""The workload that runs the learner's nearby.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return labkit.pod_spec(k8s.job(JOB) or {})


@pytest.mark.cluster("reads the Job's spec")
def test_simulate_job_runs_your_function(k8s):
    """Job `simulate` runs your nearby.py: its ConfigMap (`lab-code-02-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(
        k8s,
        exercise_pod(k8s),
        2,
        "nearby.py",
        kubectl(f"-n {NAMESPACE} delete job {JOB}")
        + " && "
        + kubectl("apply -k labs/02-kubernetes-for-ml/starter"),
    )


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(2))
def test_exercise(exercise, behaviour):
    """Your terminals_near: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
