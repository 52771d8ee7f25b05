"""Lab 03 · Data pipelines: simulate → validate → features ran; each dataset has a manifest (row
counts, digests) built from the current version of its input; the quarantine reconciles.

Cluster: the Jobs and the CronJob, and the datasets on the `fraud-data` volume. Local: the
datasets under FRAUD_DATA_DIR.
"""

from __future__ import annotations

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

VALIDATE, FEATURES, CRONJOB = "validate", "features", labkit.PIPELINE_CRONJOB
MIN_RETRIES = 3


def fix_for(datasets, step: str) -> str:
    """The command that (re)builds a dataset on this target."""
    if isinstance(datasets, labkit.LocalDatasets):
        return f"make {step}"
    return kubectl(f"-n {NAMESPACE} logs job/{step} --tail=20")


# --- kind mode: the pipeline's objects --------------------------------------------------------------
@pytest.mark.cluster("Jobs run on a cluster")
@pytest.mark.parametrize("job", labkit.PIPELINE_JOBS)
def test_pipeline_job_succeeded(k8s, job):
    """Job `{job}` has completed successfully."""
    obj = k8s.job(job)
    found = "no such Job (Jobs are deleted 24 h after they finish)" if obj is None else labkit.job_state(obj)
    assert labkit.job_succeeded(obj), hint("1 succeeded pod", found, kubectl(f"-n {NAMESPACE} logs job/{job} --tail=20"))


@pytest.mark.cluster("reads the Job's spec")
def test_validate_sets_quarantine_budget(k8s):
    """Job `validate` states its quarantine budget: `--max-quarantine 0.001` in its args (0.1 % of rows)."""
    job = k8s.job(VALIDATE)
    assert job is not None, hint(f"Job {VALIDATE}", "no such Job", kubectl("apply -f labs/03-data-pipelines/starter/"))
    args = (labkit.find_container(labkit.pod_spec(job), VALIDATE) or {}).get("args") or []
    budget = args[args.index("--max-quarantine") + 1] if "--max-quarantine" in args[:-1] else None
    assert budget is not None and float(budget) == labkit.MAX_QUARANTINE_SHARE, hint(
        f'args ["validate", "--max-quarantine", "{labkit.MAX_QUARANTINE_SHARE}"]', f"args {args}", kubectl(f"-n {NAMESPACE} get job {VALIDATE} -o jsonpath='{{.spec.template.spec.containers[0].args}}'")
    )


@pytest.mark.cluster("reads the Job's spec")
def test_features_waits_for_its_input(k8s):
    """Job `features` retries until its input exists: restartPolicy OnFailure and backoffLimit ≥ 3."""
    job = k8s.job(FEATURES)
    assert job is not None, hint(f"Job {FEATURES}", "no such Job", kubectl("apply -f labs/03-data-pipelines/starter/"))
    policy = labkit.pod_spec(job).get("restartPolicy")
    retries = (job.get("spec") or {}).get("backoffLimit", 6)
    assert policy == "OnFailure" and retries >= MIN_RETRIES, hint(
        f"restartPolicy OnFailure, backoffLimit ≥ {MIN_RETRIES}", f"restartPolicy {policy}, backoffLimit {retries}", kubectl(f"-n {NAMESPACE} describe job {FEATURES}")
    )


@pytest.mark.cluster("CronJobs run on a cluster")
def test_cronjob_scheduled(k8s):
    """CronJob `data-pipeline` runs the whole pipeline every day, never two runs at once (concurrencyPolicy Forbid)."""
    cron = k8s.cronjob(CRONJOB)
    assert cron is not None, hint(f"CronJob {CRONJOB}", "no such CronJob", kubectl("apply -f labs/03-data-pipelines/starter/"))
    spec = cron.get("spec") or {}
    args = (labkit.find_container(labkit.pod_spec(cron), "pipeline") or {}).get("args") or []
    problems = []
    fields = str(spec.get("schedule", "")).split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        problems.append(f"schedule {spec.get('schedule')!r} does not run every day")
    if spec.get("concurrencyPolicy") != "Forbid":
        problems.append(f"concurrencyPolicy {spec.get('concurrencyPolicy', 'Allow (the default)')}")
    if not args or args[0] != "pipeline":
        problems.append(f"args {args}")
    assert not problems, hint('a daily schedule (e.g. "0 2 * * *"), concurrencyPolicy Forbid, args ["pipeline", …]', "; ".join(problems), kubectl(f"-n {NAMESPACE} get cronjob {CRONJOB} -o yaml"))


# --- both targets: the datasets ------------------------------------------------------------------------
@pytest.mark.parametrize(("dataset", "step"), [("raw", "simulate"), ("validated", "validate"), ("features", "features")])
def test_dataset_has_manifest(datasets, dataset, step):
    """Dataset `{dataset}` exists with a manifest: row count, digest, and the daily files it lists."""
    manifest = datasets.manifest(dataset)
    assert manifest is not None, hint(f"{datasets.where(dataset)}/manifest.json", "no manifest (the step has not run)", fix_for(datasets, step))
    problems = labkit.manifest_problems(manifest)
    missing = datasets.missing_files(dataset, [f["name"] for f in manifest.get("files") or []])
    if missing:
        problems.append(f"{len(missing)} listed files missing (e.g. {missing[0]})")
    assert not problems, hint(f"a complete {dataset} dataset", "; ".join(problems), datasets.show(dataset))


@pytest.mark.needs("test_dataset_has_manifest")
def test_datasets_chain(datasets):
    """Each dataset was built from the current version of its input: validated ← raw, features ← validated (digests)."""
    raw, validated, features = (datasets.manifest(n) for n in labkit.DATASETS)
    stale = []
    if validated.get("input_digest") != raw["digest"]:
        stale.append(f"validated was built from {str(validated.get('input_digest'))[:12]}, raw is now {raw['digest'][:12]}")
    if features.get("input_digest") != validated["digest"]:
        stale.append(f"features were built from {str(features.get('input_digest'))[:12]}, validated is now {validated['digest'][:12]}")
    assert not stale, hint("input_digest of each dataset = digest of its input", "; ".join(stale), fix_for(datasets, "validate") + "   (then features)")


@pytest.mark.needs("test_dataset_has_manifest")
def test_quarantine_reconciles(datasets):
    """The quarantine reconciles: valid rows + quarantined rows = input rows, and the quarantine has its own manifest."""
    validated, quarantine = datasets.manifest("validated"), datasets.manifest("quarantine")
    problems = []
    needed = ("input_rows", "quarantined_rows")
    if any(not isinstance(validated.get(k), int) for k in needed):
        problems.append(f"validated manifest lacks {', '.join(k for k in needed if not isinstance(validated.get(k), int))}")
    elif validated["rows"] + validated["quarantined_rows"] != validated["input_rows"]:
        problems.append(f"{validated['rows']:,} valid + {validated['quarantined_rows']:,} quarantined ≠ {validated['input_rows']:,} input rows")
    if quarantine is None:
        problems.append("no quarantine/manifest.json")
    else:
        if quarantine.get("rows") != validated.get("quarantined_rows"):
            problems.append(f"quarantine manifest has {quarantine.get('rows')} rows, validated says {validated.get('quarantined_rows')}")
        if quarantine.get("digest") != validated.get("quarantine_digest"):
            problems.append("quarantine digest differs from the one validated recorded")
        if sum((quarantine.get("reasons") or {}).values()) != quarantine.get("rows"):
            problems.append(f"reasons count {sum((quarantine.get('reasons') or {}).values())} rows, the quarantine holds {quarantine.get('rows')}")
    assert not problems, hint("valid + quarantined = input, one reason per quarantined row", "; ".join(problems), datasets.show("validated") + "; " + datasets.show("quarantine"))


@pytest.mark.needs("test_quarantine_reconciles")
def test_quarantine_within_budget(datasets):
    """At most 0.1 % of the input rows were quarantined (the pipeline's --max-quarantine budget)."""
    validated = datasets.manifest("validated")
    share = validated["quarantined_rows"] / max(validated["input_rows"], 1)
    reasons = ", ".join(f"{k} ({v:,})" for k, v in sorted((validated.get("quarantine_reasons") or {}).items(), key=lambda kv: -kv[1])[:3])
    assert share <= labkit.MAX_QUARANTINE_SHARE, hint(
        f"≤ {labkit.MAX_QUARANTINE_SHARE:.1%} quarantined", f"{share:.3%} ({validated['quarantined_rows']:,} rows; top reasons: {reasons})", datasets.show("quarantine")
    )
