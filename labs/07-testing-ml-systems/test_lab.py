"""Lab 07 · Testing ML systems: the model test suite runs as a step of the pipeline, between the
train steps and promote; each tested run keeps the suite's report as an MLflow artifact; a
deliberately broken candidate (your drill, WorkflowTemplate `broken-candidate`) is blocked.

Cluster: the WorkflowTemplates `fraud-pipeline` and `broken-candidate`, their newest Workflows,
the ConfigMap lab-code-07 and MLflow. Local: the local MLflow, where `fraudlab pipeline --through
promote` and `fraudlab train --broken` record the same tags and artifacts.
"""

from __future__ import annotations

import httpx
import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

PIPELINE, DRILL = labkit.PIPELINE_TEMPLATE, "broken-candidate"
STEP = "model-tests"
APPLY = kubectl("apply -k labs/07-testing-ml-systems/starter")
REPORT = "model_tests/report.json"
DRILL_TAG = ("drill", "broken-candidate")
LAB_CODE_CONFIGMAP, LAB_CODE_FILE = "lab-code-07", "model_checks.py"
STARTER = "labs/07-testing-ml-systems/starter"
MAX_RUNS = 50


def run_pipeline(target: str) -> str:
    if target == "cluster":
        return "scripts/run-pipeline.sh fraud-pipeline through=promote"
    return "fraudlab pipeline --through promote   (with make mlflow, or make up, running)"


def run_drill(target: str) -> str:
    if target == "cluster":
        return f"{APPLY} && scripts/run-pipeline.sh {DRILL}"
    return f"FRAUD_LAB_CODE={STARTER} .venv/bin/fraudlab train --model logistic_regression --broken"


def version_tags(version: dict | None) -> dict[str, str]:
    return {t["key"]: t["value"] for t in (version or {}).get("tags") or []}


def broken_candidate(mlflow, experiment_name: str) -> dict | None:
    """The newest run of the drill (run tag drill=broken-candidate), or None."""
    experiment = mlflow.experiment(experiment_name)
    runs = mlflow.runs(experiment["experiment_id"], MAX_RUNS) if experiment else []
    found = [r for r in runs if labkit.run_fields(r)[2].get(DRILL_TAG[0]) == DRILL_TAG[1]]
    return found[0] if found else None


def run_version(mlflow, model_name: str, run_id: str) -> dict | None:
    """The model version registered from run `run_id`, with its tags, or None."""
    r = mlflow.get("/api/2.0/mlflow/model-versions/search", filter=f"run_id='{run_id}'")
    r.raise_for_status()
    versions = [v for v in r.json().get("model_versions") or [] if v.get("name") == model_name]
    return mlflow.version(model_name, versions[0]["version"]) if versions else None


def artifacts(mlflow, run_id: str, path: str) -> list[str] | str:
    """The artifact paths under `path` of a run, or why they cannot be listed."""
    try:
        # MlflowApi.get's own first argument is called path: the query goes through its client.
        r = mlflow.client.get(
            "/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": path}
        )
    except httpx.HTTPError as err:
        return labkit.describe_error(err)
    if r.status_code != 200:
        return f"HTTP {r.status_code}: {labkit.short(r.text)}"
    return [f["path"] for f in r.json().get("files") or []]


# --- kind mode: the pipeline's step and your drill ---------------------------------------------
@pytest.mark.cluster("reads the WorkflowTemplate")
def test_pipeline_tests_before_promote(k8s):
    """WorkflowTemplate `fraud-pipeline` runs step `model-tests` after the three train steps, and `promote` only after it."""
    depends = labkit.dag_depends(k8s.workflowtemplate(PIPELINE))
    expected = {STEP: set(labkit.TRAIN_STEPS), "promote": {STEP}}
    found = {task: depends.get(task) for task in expected}
    assert found == expected, hint(
        "; ".join(f"{t} depends on {' && '.join(sorted(d))}" for t, d in expected.items()),
        "; ".join(
            f"{t} depends on {' && '.join(sorted(d)) if d else 'nothing'}"
            if d is not None
            else f"no task {t}"
            for t, d in found.items()
        ),
        "python labs/reference.py apply pipeline   (the reference pipeline of lab 06 and on)",
    )


@pytest.mark.cluster("reads the WorkflowTemplate")
def test_drill_tests_before_promoting(k8s):
    """WorkflowTemplate `broken-candidate` trains a broken candidate (--broken), then calls fraud-pipeline's model-tests, then its promote."""
    template = k8s.workflowtemplate(DRILL)
    assert template is not None, hint(
        f"WorkflowTemplate {DRILL} in {NAMESPACE}", "no such object", APPLY
    )
    depends = labkit.dag_depends(template)
    entry = labkit.template_named(template, template["spec"].get("entrypoint"))
    tasks = {t.get("name"): t for t in (entry or {}).get("dag", {}).get("tasks") or []}
    refs = {
        name: (t.get("templateRef") or {}).get("name", "")
        + "/"
        + ((t.get("templateRef") or {}).get("template") or t.get("template") or "")
        for name, t in tasks.items()
    }
    train = labkit.template_named(template, "train-broken") or {}
    args = (train.get("container") or {}).get("args") or []
    problems = [
        f"no task {name}" if name not in tasks else f"{name} calls {refs[name]}"
        for name, ref in (
            ("model-tests", f"{PIPELINE}/model-tests"),
            ("promote", f"{PIPELINE}/promote"),
        )
        if refs.get(name) != ref
    ]
    problems += [
        f"{name} depends on {' && '.join(sorted(depends[name])) or 'nothing'}"
        for name, needs in (("model-tests", {"train-broken"}), ("promote", {"model-tests"}))
        if name in depends and depends[name] != needs
    ]
    if "--broken" not in args:
        problems.append(f"train-broken args {args}")
    assert not problems, hint(
        "train-broken (args with --broken) → model-tests (templateRef fraud-pipeline/model-tests) "
        "→ promote (templateRef fraud-pipeline/promote)",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} get workflowtemplate {DRILL} -o yaml"),
    )


@pytest.mark.cluster("Workflows run on a cluster")
@pytest.mark.needs("test_pipeline_tests_before_promote")
def test_model_tests_step_succeeded(k8s):
    """Step `model-tests` of the newest pipeline Workflow has succeeded."""
    workflow = labkit.latest_workflow(k8s.workflows(), PIPELINE)
    node = labkit.workflow_step(workflow, STEP)
    assert node is not None and node.get("phase") == "Succeeded", hint(
        f"step {STEP} Succeeded ({labkit.WORKFLOWS_KEPT})",
        labkit.step_state(workflow, STEP),
        kubectl(f"-n {NAMESPACE} logs -l app.kubernetes.io/name={STEP} -c main --tail=30"),
    )


@pytest.mark.cluster("Workflows run on a cluster")
@pytest.mark.needs("test_drill_tests_before_promoting")
def test_drill_workflow_succeeded(k8s):
    """The newest Workflow from `broken-candidate` has succeeded: the broken candidate was trained, tested and decided on."""
    workflow = labkit.latest_workflow(k8s.workflows(), DRILL)
    phase = ((workflow or {}).get("status") or {}).get("phase")
    failed = [
        step
        for step in ("train-broken", STEP, "promote")
        if (labkit.workflow_step(workflow, step) or {}).get("phase") != "Succeeded"
    ]
    assert phase == "Succeeded", hint(
        f"a Workflow from {DRILL} Succeeded ({labkit.WORKFLOWS_KEPT})",
        "no Workflow from the template yet"
        if workflow is None
        else f"workflow {workflow['metadata']['name']} is {phase}; "
        + "; ".join(labkit.step_state(workflow, s) for s in failed),
        f"scripts/run-pipeline.sh {DRILL}",
    )


# --- both targets: the champion's tests and the broken candidate, in MLflow ----------------------
def test_champion_passed_model_tests(endpoints, mlflow, model_name):
    """The model tests ran for the champion's run and it passed them (run tag model_tests_passed=true)."""
    version = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    assert version is not None, hint(
        f"models:/{model_name}@{labkit.CHAMPION}",
        "no champion (has the promote step run?)",
        run_pipeline(endpoints.target),
    )
    tags = labkit.run_fields(mlflow.run(version["run_id"]))[2]
    passed = tags.get("model_tests_passed")
    assert passed == "true", hint(
        f"model_tests_passed=true on the run of version {version['version']}",
        "no tag model_tests_passed: the model tests never ran for it (the next pipeline run's "
        "model-tests step tests a champion that has no verdict)"
        if passed is None
        else f"model_tests_passed={passed!r}: {tags.get('model_test_failures')}",
        run_pipeline(endpoints.target),
    )


@pytest.mark.needs("test_champion_passed_model_tests")
def test_champion_report_is_an_artifact(endpoints, mlflow, model_name):
    """The champion's run holds the model tests' report as an MLflow artifact (model_tests/report.json)."""
    version = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    found = artifacts(mlflow, version["run_id"], REPORT.rsplit("/", 1)[0])
    assert isinstance(found, list) and REPORT in found, hint(
        f"artifact {REPORT} of run {version['run_id'][:8]}",
        found if isinstance(found, str) else f"artifacts {found or 'none'} under model_tests/",
        mlflow.debug(f"/api/2.0/mlflow/artifacts/list?run_id={version['run_id']}&path=model_tests"),
    )


def test_broken_candidate_blocked(endpoints, mlflow, model_name, experiment_name):
    """The newest broken candidate (run tag drill=broken-candidate) failed the model tests and was blocked: no alias, decision blocked, reason "fails the model tests: …"."""
    run = broken_candidate(mlflow, experiment_name)
    assert run is not None, hint(
        "a run tagged drill=broken-candidate", "no drill run", run_drill(endpoints.target)
    )
    run_id = run["info"]["run_id"]
    tags = labkit.run_fields(run)[2]
    version = run_version(mlflow, model_name, run_id)
    decided = version_tags(version)
    aliases = (version or {}).get("aliases") or []
    ok = (
        version is not None
        and tags.get("model_tests_passed") == "false"
        and decided.get("promotion_decision") == "blocked"
        and "fails the model tests" in decided.get("promotion_reason", "")
        and not aliases
    )
    assert ok, hint(
        "model_tests_passed=false on the run; its version: promotion_decision=blocked, no alias, "
        'reason "fails the model tests: …"',
        f"run {run_id[:8]}: no registered version"
        if version is None
        else f"run {run_id[:8]} (version {version['version']}): model_tests_passed="
        f"{tags.get('model_tests_passed')!r}, promotion_decision="
        f"{decided.get('promotion_decision')!r}, aliases {aliases}, reason "
        f"{decided.get('promotion_reason')!r}",
        run_drill(endpoints.target),
    )


# --- your Python: the slice test ------------------------------------------------------------------
EXERCISE_WORKLOAD = f"ConfigMap {LAB_CODE_CONFIGMAP}"
"""Where the cluster keeps the learner's model_checks.py: the pipeline's model-tests step mounts it
when it exists (optional), in the pipeline and in the drill, which calls that template."""


def exercise_files(k8s) -> dict[str, str]:
    """The files of `EXERCISE_WORKLOAD` ({} when it is missing or not a lab's)."""
    return labkit.configmap_lab_code(k8s, LAB_CODE_CONFIGMAP, 7)[0]


@pytest.mark.cluster("reads a ConfigMap")
def test_your_slice_test_is_on_the_cluster(k8s):
    """ConfigMap `lab-code-07` holds your model_checks.py (labelled fraud-lab.io/lab-code=07): the pipeline's model-tests step runs it."""
    labkit.assert_configmap_holds(k8s, LAB_CODE_CONFIGMAP, 7, LAB_CODE_FILE, APPLY)


@pytest.mark.cluster("reads a ConfigMap and MLflow")
@pytest.mark.needs("test_broken_candidate_blocked", "test_your_slice_test_is_on_the_cluster")
def test_drill_tested_by_your_slice_test(k8s, mlflow, experiment_name):
    """The broken candidate was tested by your model_checks.py: its run tag model_tests names the file in ConfigMap `lab-code-07` by its SHA-256."""
    expected = labkit.lab_code_source(7, LAB_CODE_FILE, exercise_files(k8s).get(LAB_CODE_FILE))
    run = broken_candidate(mlflow, experiment_name)
    found = labkit.run_fields(run)[2].get("model_tests", "no tag model_tests")
    assert found == expected, hint(
        f"tag model_tests={expected} on run {run['info']['run_id'][:8]}",
        found + " (a drill run before your model_checks.py was applied)",
        f"scripts/run-pipeline.sh {DRILL}",
    )


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(7))
def test_exercise(exercise, behaviour):
    """Your slice_failures: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
