"""Lab 03 · Data pipelines: the data pipeline is an Argo Workflows DAG (simulate → validate →
features) that ran; each dataset has a manifest (row counts, digests) built from the current
version of its input; the quarantine reconciles.

Cluster: the WorkflowTemplate `data-pipeline`, the newest Workflow that ran it (its own, or the
whole pipeline's; Workflows are kept 7 days after they finish: lasting evidence, unlike Jobs) and
the datasets on the `fraud-data` volume. Local: the datasets under FRAUD_DATA_DIR (`fraudlab
pipeline` runs the same steps).
"""

from __future__ import annotations

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

TEMPLATE, VALIDATE = labkit.DATA_TEMPLATE, "validate"
APPLY = kubectl("apply -k labs/03-data-pipelines/starter")
RUN = "scripts/run-pipeline.sh data-pipeline"


def fix_for(datasets, step: str) -> str:
    """The command that (re)builds a dataset on this target."""
    if isinstance(datasets, labkit.LocalDatasets):
        return f"make {step}"
    return RUN + "   (then: " + kubectl(f"-n {NAMESPACE} get workflows") + ")"


# --- kind mode: the pipeline's objects --------------------------------------------------------------
@pytest.mark.cluster("reads the WorkflowTemplate")
def test_pipeline_template_exists(k8s):
    """WorkflowTemplate `data-pipeline` exists in namespace `fraud-lab`."""
    assert k8s.workflowtemplate(TEMPLATE) is not None, hint(
        f"WorkflowTemplate {TEMPLATE} in {NAMESPACE}", "no such object", APPLY
    )


@pytest.mark.cluster("reads the WorkflowTemplate")
@pytest.mark.needs("test_pipeline_template_exists")
def test_pipeline_dag_orders_the_steps(k8s):
    """The DAG orders the steps: simulate first, validate after simulate, features after validate."""
    depends = labkit.dag_depends(k8s.workflowtemplate(TEMPLATE))
    wrong = {
        task: needs for task, needs in labkit.DATA_DEPENDS.items() if depends.get(task) != needs
    }
    assert not wrong, hint(
        "; ".join(
            f"{task} depends on {' && '.join(sorted(needs)) or 'nothing'}"
            for task, needs in wrong.items()
        ),
        "; ".join(
            f"{task} depends on {' && '.join(sorted(depends[task])) or 'nothing'}"
            if task in depends
            else f"no task {task}"
            for task in wrong
        ),
        kubectl(f"-n {NAMESPACE} get workflowtemplate {TEMPLATE} -o yaml"),
    )


@pytest.mark.cluster("reads the WorkflowTemplate")
@pytest.mark.needs("test_pipeline_template_exists")
def test_validate_sets_quarantine_budget(k8s):
    """Step `validate` states its quarantine budget: `--max-quarantine 0.001` in its args (0.1 % of rows)."""
    args = (
        (labkit.template_named(k8s.workflowtemplate(TEMPLATE), VALIDATE) or {}).get("container")
        or {}
    ).get("args") or []
    budget = args[args.index("--max-quarantine") + 1] if "--max-quarantine" in args[:-1] else None
    assert budget is not None and float(budget) == labkit.MAX_QUARANTINE_SHARE, hint(
        f'args ["validate", "--max-quarantine", "{labkit.MAX_QUARANTINE_SHARE}"]',
        f"args {args}",
        kubectl(f"-n {NAMESPACE} get workflowtemplate {TEMPLATE} -o yaml"),
    )


@pytest.mark.cluster("Workflows run on a cluster")
@pytest.mark.needs("test_pipeline_template_exists")
@pytest.mark.parametrize("step", labkit.DATA_STEPS)
def test_pipeline_step_succeeded(k8s, step):
    """Step `{step}` of the newest pipeline Workflow has succeeded."""
    workflow = labkit.latest_workflow(k8s.workflows(), TEMPLATE, labkit.PIPELINE_TEMPLATE)
    node = labkit.workflow_step(workflow, step)
    debug = (
        RUN
        if workflow is None
        else kubectl(
            f"-n {NAMESPACE} logs -l workflows.argoproj.io/workflow={workflow['metadata']['name']} -c main --tail=20"
        )
    )
    assert node is not None and node.get("phase") == "Succeeded", hint(
        f"step {step} Succeeded ({labkit.WORKFLOWS_KEPT})", labkit.step_state(workflow, step), debug
    )


# --- both targets: the datasets ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dataset", "step"), [("raw", "simulate"), ("validated", "validate"), ("features", "features")]
)
def test_dataset_has_manifest(datasets, dataset, step):
    """Dataset `{dataset}` exists with a manifest: row count, digest, and the daily files it lists."""
    manifest = datasets.manifest(dataset)
    assert manifest is not None, hint(
        f"{datasets.where(dataset)}/manifest.json",
        "no manifest (the step has not run)",
        fix_for(datasets, step),
    )
    problems = labkit.manifest_problems(manifest)
    missing = datasets.missing_files(dataset, [f["name"] for f in manifest.get("files") or []])
    if missing:
        problems.append(f"{len(missing)} listed files missing (e.g. {missing[0]})")
    assert not problems, hint(
        f"a complete {dataset} dataset", "; ".join(problems), datasets.show(dataset)
    )


@pytest.mark.needs("test_dataset_has_manifest")
def test_datasets_chain(datasets):
    """Each dataset was built from the current version of its input: validated ← raw, features ← validated (digests)."""
    raw, validated, features = (datasets.manifest(n) for n in labkit.DATASETS)
    stale = []
    if validated.get("input_digest") != raw["digest"]:
        stale.append(
            f"validated was built from {str(validated.get('input_digest'))[:12]}, raw is now {raw['digest'][:12]}"
        )
    if features.get("input_digest") != validated["digest"]:
        stale.append(
            f"features were built from {str(features.get('input_digest'))[:12]}, validated is now {validated['digest'][:12]}"
        )
    assert not stale, hint(
        "input_digest of each dataset = digest of its input",
        "; ".join(stale),
        fix_for(datasets, "validate") + "   (then features)",
    )


@pytest.mark.needs("test_dataset_has_manifest")
def test_quarantine_reconciles(datasets):
    """The quarantine reconciles: valid rows + quarantined rows = input rows, and the quarantine has its own manifest."""
    validated, quarantine = datasets.manifest("validated"), datasets.manifest("quarantine")
    problems = []
    needed = ("input_rows", "quarantined_rows")
    if any(not isinstance(validated.get(k), int) for k in needed):
        problems.append(
            f"validated manifest lacks {', '.join(k for k in needed if not isinstance(validated.get(k), int))}"
        )
    elif validated["rows"] + validated["quarantined_rows"] != validated["input_rows"]:
        problems.append(
            f"{validated['rows']:,} valid + {validated['quarantined_rows']:,} quarantined ≠ {validated['input_rows']:,} input rows"
        )
    if quarantine is None:
        problems.append("no quarantine/manifest.json")
    else:
        if quarantine.get("rows") != validated.get("quarantined_rows"):
            problems.append(
                f"quarantine manifest has {quarantine.get('rows')} rows, validated says {validated.get('quarantined_rows')}"
            )
        if quarantine.get("digest") != validated.get("quarantine_digest"):
            problems.append("quarantine digest differs from the one validated recorded")
        if sum((quarantine.get("reasons") or {}).values()) != quarantine.get("rows"):
            problems.append(
                f"reasons count {sum((quarantine.get('reasons') or {}).values())} rows, the quarantine holds {quarantine.get('rows')}"
            )
    assert not problems, hint(
        "valid + quarantined = input, one reason per quarantined row",
        "; ".join(problems),
        datasets.show("validated") + "; " + datasets.show("quarantine"),
    )


@pytest.mark.needs("test_quarantine_reconciles")
def test_quarantine_within_budget(datasets):
    """At most 0.1 % of the input rows were quarantined (the pipeline's --max-quarantine budget)."""
    validated = datasets.manifest("validated")
    share = validated["quarantined_rows"] / max(validated["input_rows"], 1)
    reasons = ", ".join(
        f"{k} ({v:,})"
        for k, v in sorted(
            (validated.get("quarantine_reasons") or {}).items(), key=lambda kv: -kv[1]
        )[:3]
    )
    assert share <= labkit.MAX_QUARANTINE_SHARE, hint(
        f"≤ {labkit.MAX_QUARANTINE_SHARE:.1%} quarantined",
        f"{share:.3%} ({validated['quarantined_rows']:,} rows; top reasons: {reasons})",
        datasets.show("quarantine"),
    )


# --- your rule: the data contract --------------------------------------------------------------------------------
EXERCISE_WORKLOAD = f"WorkflowTemplate {TEMPLATE}, step {VALIDATE}"
"""The workload that runs the learner's contract_rule.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return labkit.template_pod_spec(k8s.workflowtemplate(TEMPLATE), VALIDATE)


@pytest.mark.cluster("reads the WorkflowTemplate")
def test_validate_step_runs_your_rule(k8s):
    """The validate step of WorkflowTemplate `data-pipeline` runs your contract_rule.py: its ConfigMap (`lab-code-03-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 3, "contract_rule.py", APPLY)


@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(3))
def test_exercise(exercise, behaviour):
    """Your scenario_matches_label: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
