"""Lab 04 · Features: training/serving parity. The Feast feature store serves the customer and
terminal window features online; for sampled transactions the online values equal Feast's
offline point-in-time values and the training dataset's (≤ 1e-9); terminal risk never reads a
label newer than t − 7 days; a missing entity gets a clear error; a raw transaction is scored
through the online path with your model_inputs.

Local: the feature server of `fraudlab up --features` (the `feast` entry of stack.json), and
`fraudlab feature-store check` run against it and the local model server. Cluster: the Job
`feature-store` (your manifest: it materializes into Redis and runs the same checks, whose JSON
is its log) and the feature server's Deployment.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

JOB, CHECK_CONTAINER, MATERIALIZE_CONTAINER = "feature-store", "check", "materialize"
SERVER, REDIS = "feature-server", "feast-redis"
REDIS_ADDRESS = "feast-redis:6379"
MATERIALIZE = 'materialize "$START" "$END"'
APPLY = kubectl("apply -k labs/04-features/starter")
RERUN = kubectl(f"-n {NAMESPACE} delete job {JOB}") + " && " + APPLY
LOCAL_FIX = "make feast && make down && .venv/bin/fraudlab up --features"
FRAUDLAB = labkit.REPO_ROOT / ".venv" / "bin" / "fraudlab"
# --8<-- [start:checks]
CHECKS = [
    "online features equal the offline point-in-time values",
    "online features equal the training dataset's values",
    "terminal risk reads no label newer than t − 7 days",
    "a customer missing online gets a clear error",
    "a raw transaction scored through the online path gets its training row's score",
]
# --8<-- [end:checks]
"""`reference_app.serving.online.CHECKS` (tests/labs checks them equal): one check line each."""


# --- kind mode: your Job and the feature server ------------------------------------------------------
def job_pod(k8s) -> dict:
    return (((k8s.job(JOB) or {}).get("spec") or {}).get("template") or {}).get("spec") or {}


def find(podspec: dict, name: str) -> dict:
    return next(
        (
            c
            for c in (podspec.get("initContainers") or []) + (podspec.get("containers") or [])
            if c.get("name") == name
        ),
        {},
    )


@pytest.mark.cluster("reads the Job")
def test_feature_store_job_spec(k8s):
    """Job `feature-store` materializes the exported window into Redis: `feast … materialize "$START" "$END"` with FEAST_REPO_REDIS=feast-redis:6379."""
    container = find(job_pod(k8s), MATERIALIZE_CONTAINER)
    script = " ".join(container.get("command") or []) + " " + " ".join(container.get("args") or [])
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    problems = []
    if k8s.job(JOB) is None:
        problems.append(f"no Job {JOB}")
    else:
        if not any(
            MATERIALIZE in line and line.strip().startswith("feast") for line in script.splitlines()
        ):
            problems.append(f"container {MATERIALIZE_CONTAINER} runs no `feast … {MATERIALIZE}`")
        if env.get("FEAST_REPO_REDIS") != REDIS_ADDRESS:
            problems.append(f"FEAST_REPO_REDIS={env.get('FEAST_REPO_REDIS') or '(unset)'}")
    assert not problems, hint(
        f"container {MATERIALIZE_CONTAINER}: `feast … {MATERIALIZE}`, FEAST_REPO_REDIS={REDIS_ADDRESS}",
        "; ".join(problems),
        APPLY,
    )


EXERCISE_WORKLOAD = f"Job {JOB}, container {CHECK_CONTAINER}"
"""The workload that runs the learner's online_inputs.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`, with the check container first (where it mounts)."""
    pod = job_pod(k8s)
    return {**pod, "containers": [find(pod, CHECK_CONTAINER)]} if pod else {}


@pytest.mark.cluster("reads the Job")
def test_feature_store_job_runs_your_model_inputs(k8s):
    """The check container of Job `feature-store` runs your online_inputs.py: its ConfigMap (`lab-code-04-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 4, "online_inputs.py", APPLY)


@pytest.mark.cluster("reads the Deployments")
def test_feature_server_available(k8s):
    """The feature server (Deployment `feature-server`) and its online store (Deployment `feast-redis`) are available."""
    problems = []
    for name in (SERVER, REDIS):
        deployment = k8s.deployment(name)
        status = (deployment or {}).get("status") or {}
        if deployment is None:
            problems.append(f"no Deployment {name}")
        elif not status.get("availableReplicas"):
            problems.append(f"{name}: {status.get('availableReplicas') or 0} available replicas")
    assert not problems, hint(
        f"Deployments {SERVER} and {REDIS} with an available replica",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} describe deployment {SERVER}")
        + "   (not there: .venv-labs/bin/python labs/reference.py prereqs 4)",
    )


@pytest.mark.cluster("reads the Job")
@pytest.mark.needs("test_feature_store_job_spec")
def test_feature_store_job_succeeded(k8s):
    """Job `feature-store` has succeeded: exported, applied, materialized into Redis and checked."""
    status = (k8s.job(JOB) or {}).get("status") or {}
    assert status.get("succeeded"), hint(
        f"Job {JOB} succeeded",
        f"succeeded {status.get('succeeded') or 0}, failed {status.get('failed') or 0}",
        kubectl(f"-n {NAMESPACE} logs job/{JOB} --all-containers --tail=40")
        + f"   (a fix needs the Job again: {RERUN})",
    )


# --- local mode: the feature server of the stack ---------------------------------------------------------
def local_feast() -> tuple[dict | None, str | None]:
    """(the `feast` entry of stack.json, why there is none)."""
    path = labkit.stack_file()
    if not path.is_file():
        return None, f"no {path} (the local stack is not running)"
    entry = json.loads(path.read_text()).get("feast")
    if not entry:
        return None, f"{path} lists no feast (make up starts none; fraudlab up --features does)"
    if not labkit.pid_alive(entry.get("pid")):
        return None, f"{path} lists feast but no such process runs (pid {entry.get('pid')})"
    return entry, None


@pytest.mark.local("the cluster's feature server is checked by its Deployment")
def test_local_feature_server_answers():
    """The local Feast feature server (`fraudlab up --features`) answers on /health."""
    entry, problem = local_feast()
    if entry is not None:
        status = labkit.http_status(f"{entry['url']}/health")
        if status != 200:
            problem = f"GET {entry['url']}/health → {status}"
    assert problem is None, hint("the feature server in stack.json, answering", problem, LOCAL_FIX)


# --- both targets: the parity checks ------------------------------------------------------------------
@cache
def local_checks() -> tuple[list[dict] | None, str]:
    """`fraudlab feature-store check --json` against the local stack: (checks, or None and why)."""
    stack = json.loads(labkit.stack_file().read_text())
    env = {
        **os.environ,
        "FRAUD_FEATURE_SERVER_URL": stack["feast"]["url"],
        "FRAUD_INFERENCE_URL": stack["mlserver"]["url"],
    }
    env.pop("FRAUD_LAB_CODE", None)  # the reference's inputs: your model_inputs is checked below
    out = subprocess.run(
        [str(FRAUDLAB), "feature-store", "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = out.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), ""
    except (IndexError, json.JSONDecodeError):
        return None, (out.stdout + out.stderr).strip()[-300:] or f"exit status {out.returncode}"


def cluster_checks(k8s) -> tuple[list[dict] | None, str]:
    """The JSON the Job's check container printed: (checks, or None and why)."""
    pods = sorted(
        k8s.pods(NAMESPACE, f"job-name={JOB}"),
        key=lambda p: (p.get("metadata") or {}).get("creation_timestamp") or "",
    )
    if not pods:
        return None, f"no pod of Job {JOB}"
    log = k8s.pod_log(pods[-1]["metadata"]["name"], container=CHECK_CONTAINER)
    for line in reversed(log.strip().splitlines()):
        try:
            return json.loads(line), ""
        except json.JSONDecodeError:
            continue
    return None, f"no JSON in the log of {pods[-1]['metadata']['name']}: {log.strip()[-200:]!r}"


def parity_results(request, target: str) -> dict[str, dict]:
    if target == "cluster":
        checks, problem = cluster_checks(request.getfixturevalue("k8s"))
        fix = kubectl(f"-n {NAMESPACE} logs job/{JOB} -c {CHECK_CONTAINER}")
    else:
        checks, problem = local_checks()
        fix = ".venv/bin/fraudlab feature-store check"
    assert checks is not None, hint("the parity checks' results (JSON)", problem, fix)
    return {c["check"]: c for c in checks}


def assert_check(request, target: str, check: str) -> None:
    result = parity_results(request, target).get(check)
    assert result is not None, hint(check, "not checked: the checks changed", "make install")
    fix = (
        kubectl(f"-n {NAMESPACE} logs job/{JOB} --all-containers --tail=40")
        if target == "cluster"
        else ".venv/bin/fraudlab feature-store check"
    )
    assert result["passed"], hint(result["expected"], result["found"], fix)


@pytest.mark.parametrize("check", CHECKS[:-1])
@pytest.mark.needs("test_local_feature_server_answers", "test_feature_store_job_succeeded")
def test_parity(request, target, check):
    """The feature store: {check}."""
    assert_check(request, target, check)


@pytest.mark.local("the cluster serves a model from lab 09 on: its Job checks the inputs only")
@pytest.mark.needs("test_local_feature_server_answers")
def test_online_path_score(request, target):
    """The feature store: a raw transaction scored through the online path gets its training row's score."""
    assert_check(request, target, CHECKS[-1])


@pytest.mark.local("the cluster runs your model_inputs in the Job's check container")
@pytest.mark.needs("test_local_feature_server_answers")
def test_online_path_scores_with_your_model_inputs():
    """A raw transaction scored through the local online path with your model_inputs (FRAUD_LAB_CODE) gets a fraud probability."""
    checks, problem = local_checks()
    transaction = (checks or [{}])[-1].get("transaction")
    stack = json.loads(labkit.stack_file().read_text())
    folder = labkit.starter_dir(4)
    found = problem or "no sampled transaction"
    if transaction:
        out = subprocess.run(
            [str(FRAUDLAB), "feature-store", "score", json.dumps(transaction)],
            env={
                **os.environ,
                "FRAUD_FEATURE_SERVER_URL": stack["feast"]["url"],
                "FRAUD_INFERENCE_URL": stack["mlserver"]["url"],
                "FRAUD_LAB_CODE": str(folder),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        found = (out.stdout + out.stderr).strip()[-300:]
        if out.returncode == 0:
            score = json.loads(out.stdout).get("fraud_probability")
            found = None if isinstance(score, float) and 0 <= score <= 1 else found
    shown = (
        folder.relative_to(labkit.REPO_ROOT) if folder.is_relative_to(labkit.REPO_ROOT) else folder
    )
    assert found is None, hint(
        "a fraud probability in [0, 1]",
        found,
        f".venv/bin/fraudlab exercise check 4 --code {shown}",
    )


# --- your Python: the model inputs of a raw transaction ---------------------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(4))
def test_exercise(exercise, behaviour):
    """Your model_inputs: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
