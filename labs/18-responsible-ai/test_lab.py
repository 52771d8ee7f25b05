"""Lab 18 · Responsible AI and human-in-the-loop: the champion has a segment report and a model
card in MLflow; the uncertain transactions of a replayed day reached the review queue (your
review rule); an analyst's label is stored, reached the next retraining window and shows in the
report.

Cluster: your review page (Deployment and Service `review`), the ConfigMap `lab-code-18` that the
pipeline's replay step mounts, the queue read inside the review pod (schema `review` of MLflow's
PostgreSQL), and MLflow. Local: the queue's tables in the local MLflow's SQLite file
(`<data dir>/state/mlflow.db`), the reports folder, and the local MLflow.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

DEPLOYMENT, CONTAINER, SERVICE, PORT = "review", "review", "review", 8097
APPLY = kubectl("apply -k labs/18-responsible-ai/starter")
LAB_CODE_CONFIGMAP, LAB_CODE_FILE = "lab-code-18", "review_band.py"
SEGMENT_REPORT, MODEL_CARD = "responsible/segment_report.json", "responsible/model_card.md"
DOCUMENTED_TAG = "responsible_documented_version"
SEGMENTS = ("spending_band", "region", "customer_history")
METRICS = ("precision", "recall", "false_positive_rate", "flag_rate")
CARD_SECTIONS = (
    "## Intended use",
    "## Factors",
    "## Metrics",
    "## Training data",
    "## Caveats and recommendations",
)
CT_EXPERIMENT = "continuous-training"
DATABASE_URI = "postgresql://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres:5432/$(POSTGRES_DB)"


def fix(target: str, what: str) -> str:
    """The command that produces `what` on the target."""
    local = {
        "card": ".venv/bin/fraudlab model-card",
        "queue": "FRAUD_LAB_CODE=labs/18-responsible-ai/starter make replay DAY=2018-08-08",
        "label": ".venv/bin/fraudlab review list   then   .venv/bin/fraudlab review label ID fraud --analyst YOU",
        "retrain": "FRAUD_LAB_CODE=labs/18-responsible-ai/starter .venv/bin/fraudlab retrain",
        "report": ".venv/bin/fraudlab report --day 2018-08-08",
    }
    cluster = {
        "card": kubectl(f"-n {NAMESPACE} delete job model-card --ignore-not-found")
        + " && "
        + kubectl("apply -k manifests/overlays/kind -l fraud-lab.io/optional=review"),
        "queue": "scripts/run-pipeline.sh fraud-pipeline through=replay",
        "label": kubectl(f"-n {NAMESPACE} port-forward service/{SERVICE} {PORT}:{PORT}")
        + f"   then label a case on http://127.0.0.1:{PORT}/",
        "retrain": "the lab's step 6: fire FraudFeatureDrift through Alertmanager (a retrain Workflow)",
        "report": kubectl(f"-n {NAMESPACE} port-forward service/{SERVICE} {PORT}:{PORT}")
        + f"   then curl http://127.0.0.1:{PORT}/api/summary",
    }
    return (local if target == "local" else cluster)[what]


# --- the queue, as each target keeps it ----------------------------------------------------------------
def _local_queue() -> dict:
    path = labkit.data_dir() / "state" / "mlflow.db"
    if not path.is_file():
        return {"problem": f"no {path}: the local stack has not run"}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        try:
            cases = [
                dict(r) for r in db.execute("SELECT * FROM review_cases ORDER BY day, score DESC")
            ]
            batches = [dict(r) for r in db.execute("SELECT * FROM review_batches ORDER BY day")]
        except sqlite3.OperationalError as err:  # no tables: nothing was ever queued
            return {"problem": f"no review queue in {path} ({err})"}
    return {"cases": cases, "batches": batches}


def _review_pod_host(k8s):
    pods = labkit.ready_pods(k8s.pods(NAMESPACE, f"app.kubernetes.io/name={DEPLOYMENT}"))
    return labkit.pod_host(pods[0]["metadata"]["name"], CONTAINER) if pods else None


def _cluster_queue(k8s) -> dict:
    host = _review_pod_host(k8s)
    if host is None:
        return {"problem": f"no ready pod of Deployment {DEPLOYMENT} to read the queue in"}
    out = labkit.run_in(host, "fraudlab review list --all --json", seconds=45)
    if out.rc != 0:
        return {
            "problem": f"fraudlab review list in the review pod: {labkit.short(out.stderr or out.stdout)}"
        }
    found = json.loads(out.stdout)
    return {"cases": found["cases"], "batches": found["batches"]}


@pytest.fixture
def queue(request, endpoints) -> dict:
    """The review queue's cases and batches (one per replayed day) on the target."""
    if endpoints.target == "local":
        return _local_queue()
    return _cluster_queue(request.getfixturevalue("k8s"))


def _queue_or_fail(queue: dict, target: str) -> dict:
    assert "problem" not in queue, hint(
        "the review queue's tables", queue.get("problem", ""), fix(target, "queue")
    )
    return queue


# --- kind mode: your review page --------------------------------------------------------------------------
@pytest.mark.cluster("reads the Deployment and Service")
def test_review_page_spec(k8s):
    """Deployment `review` serves `fraudlab review serve --host 0.0.0.0` on port 8097 with the queue in PostgreSQL (FRAUD_REVIEW_DATABASE_URI from Secret postgres-credentials), and Service `review` sends port 8097 to it."""
    deployment, service = k8s.deployment(DEPLOYMENT), k8s.service(SERVICE)
    container = (
        labkit.find_container(labkit.pod_spec(deployment), CONTAINER) if deployment else None
    )
    problems = []
    if container is None:
        problems.append(f"no Deployment {DEPLOYMENT} with container {CONTAINER}")
    else:
        args = container.get("args") or []
        host = args[args.index("--host") + 1 :][:1] if "--host" in args else []
        if args[:2] != ["review", "serve"] or host != ["0.0.0.0"]:
            problems.append(f"args {args}")
        if labkit.env_value(container, "FRAUD_REVIEW_DATABASE_URI") != DATABASE_URI:
            problems.append(
                f"FRAUD_REVIEW_DATABASE_URI {labkit.env_value(container, 'FRAUD_REVIEW_DATABASE_URI')!r}"
            )
        ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        target = ((service or {}).get("spec", {}).get("ports") or [{}])[0].get("targetPort")
        if ports.get(target, target) != PORT:
            problems.append(f"Service {SERVICE} targetPort {target!r} (container ports {ports})")
    assert not problems, hint(
        f"args review serve --host 0.0.0.0; FRAUD_REVIEW_DATABASE_URI={DATABASE_URI}; Service targetPort http ({PORT})",
        "; ".join(problems),
        APPLY,
    )


@pytest.mark.cluster("reads the Deployment")
@pytest.mark.needs("test_review_page_spec")
def test_review_page_available(k8s):
    """Deployment `review` has a ready replica (its probes answer on /healthz)."""
    deployment = k8s.deployment(DEPLOYMENT) or {}
    ready = (deployment.get("status") or {}).get("readyReplicas") or 0
    assert ready >= 1, hint(
        "1 ready replica",
        labkit.pod_state(k8s.pods(NAMESPACE, f"app.kubernetes.io/name={DEPLOYMENT}")),
        kubectl(f"-n {NAMESPACE} logs deployment/{DEPLOYMENT} --tail=20"),
    )


EXERCISE_WORKLOAD = f"ConfigMap {LAB_CODE_CONFIGMAP}"
"""Where the cluster keeps the learner's review_band.py: the pipeline's replay step mounts it when
it exists (optional)."""


def exercise_files(k8s) -> dict[str, str]:
    """The files of `EXERCISE_WORKLOAD` ({} when it is missing or not a lab's)."""
    return labkit.configmap_lab_code(k8s, LAB_CODE_CONFIGMAP, 18)[0]


@pytest.mark.cluster("reads a ConfigMap")
def test_your_review_rule_is_on_the_cluster(k8s):
    """ConfigMap `lab-code-18` holds your review_band.py (labelled fraud-lab.io/lab-code=18): the pipeline's replay step queues with it."""
    labkit.assert_configmap_holds(k8s, LAB_CODE_CONFIGMAP, 18, LAB_CODE_FILE, APPLY)


# --- both targets: the champion's segment report and model card (MLflow) ----------------------------------
def _artifact(mlflow, run_id: str, path: str):
    # MLflow's artifact download route (mlflow/server/__init__.py `/get-artifact`); its query
    # parameter `path` clashes with MlflowApi.get's own, so the client is called directly.
    return mlflow.client.get("/get-artifact", params={"path": path, "run_uuid": run_id})


def test_champion_has_a_segment_report_and_a_model_card(endpoints, mlflow, model_name):
    """The champion's MLflow run has the artifacts responsible/segment_report.json (every segment, each metric's disparity ratio min/max) and responsible/model_card.md, made for the champion's version."""
    champion = mlflow.version_by_alias(model_name, labkit.CHAMPION)
    problems = []
    if champion is None:
        problems.append(f"no version of {model_name} has the alias champion")
    else:
        run_id = champion["run_id"]
        _, _, tags = labkit.run_fields(mlflow.run(run_id))
        if tags.get(DOCUMENTED_TAG) != champion["version"]:
            problems.append(
                f"run {run_id[:8]}: documented version {tags.get(DOCUMENTED_TAG)!r}, champion {champion['version']}"
            )
        report = _artifact(mlflow, run_id, SEGMENT_REPORT)
        card = _artifact(mlflow, run_id, MODEL_CARD)
        if report.status_code != 200:
            problems.append(f"{SEGMENT_REPORT}: HTTP {report.status_code}")
        else:
            segments = report.json().get("segments", {})
            for name in SEGMENTS:
                seg = segments.get(name) or {}
                if len(seg.get("groups") or {}) < 2 or set(seg.get("disparity") or {}) != set(
                    METRICS
                ):
                    problems.append(
                        f"segment {name}: groups {sorted(seg.get('groups') or {})}, disparity {sorted(seg.get('disparity') or {})}"
                    )
        if card.status_code != 200:
            problems.append(f"{MODEL_CARD}: HTTP {card.status_code}")
        elif missing := [s for s in CARD_SECTIONS if s not in card.text]:
            problems.append(f"model card without {', '.join(missing)}")
    assert not problems, hint(
        f"{SEGMENT_REPORT} ({', '.join(SEGMENTS)}; disparity of {', '.join(METRICS)}) and {MODEL_CARD} on the champion's run",
        "; ".join(problems),
        fix(endpoints.target, "card"),
    )


# --- both targets: the review queue ------------------------------------------------------------------------
def test_uncertain_cases_reached_the_queue(endpoints, queue):
    """The newest replayed day sent min(uncertain, capacity) transactions to the review queue — the band applied to the replay's scores — and the queue holds that many cases of that day."""
    queue = _queue_or_fail(queue, endpoints.target)
    batches = queue["batches"]
    assert batches, hint(
        "a replayed day in review_batches",
        "none: no replay has queued anything",
        fix(endpoints.target, "queue"),
    )
    newest = max(batches, key=lambda b: b["created_at"])
    expected = min(newest["in_band"], newest["capacity"])
    held = sum(1 for c in queue["cases"] if c["day"] == newest["day"])
    assert newest["enqueued"] == expected == held, hint(
        f"{expected} queued on {newest['day']} (min of {newest['in_band']} scores in [{newest['band_low']}, {newest['band_high']}) and capacity {newest['capacity']})",
        f"the replay queued {newest['enqueued']}; the queue holds {held} cases of that day",
        f"your select_for_review: .venv/bin/fraudlab exercise check 18 --code labs/18-responsible-ai/starter; then {fix(endpoints.target, 'queue')}",
    )


@pytest.mark.needs("test_uncertain_cases_reached_the_queue")
def test_the_queue_used_your_rule(request, endpoints, queue):
    """The newest replayed day was queued by your review_band.py (the batch records its SHA-256), not the reference rule."""
    newest = max(queue["batches"], key=lambda b: b["created_at"])
    if endpoints.target == "local":
        path = labkit.starter_dir(18) / LAB_CODE_FILE
        text = path.read_text() if path.is_file() else None
    else:
        text = exercise_files(request.getfixturevalue("k8s")).get(LAB_CODE_FILE)
    expected = labkit.lab_code_source(18, LAB_CODE_FILE, text)
    assert newest["rule"] == expected, hint(
        f"rule {expected}",
        f"rule {newest['rule']} on {newest['day']} (a replay before your file, or without FRAUD_LAB_CODE)",
        fix(endpoints.target, "queue"),
    )


@pytest.mark.needs("test_uncertain_cases_reached_the_queue")
def test_an_analyst_label_is_stored(endpoints, queue):
    """At least one queued case has an analyst's label (fraud or genuine), with who and when."""
    labelled = [
        c for c in queue["cases"] if c["label"] in (0, 1) and c["analyst"] and c["labelled_at"]
    ]
    assert labelled, hint(
        "a case with label, analyst and labelled_at",
        f"{len(queue['cases'])} cases, none labelled",
        fix(endpoints.target, "label"),
    )


@pytest.mark.needs("test_an_analyst_label_is_stored")
def test_a_labelled_case_reached_the_next_training_window(endpoints, mlflow, queue):
    """The newest retraining cycle trained with the analysts' labels of the days after its test week: a labelled case of those days is among its reviewed_transaction_ids."""
    experiment = mlflow.experiment(CT_EXPERIMENT)
    runs = [
        r
        for r in (mlflow.runs(experiment["experiment_id"], 20) if experiment else [])
        if r["info"].get("status") == "FINISHED"
    ]
    problems, run = [], runs[0] if runs else None
    if run is None:
        problems.append(f"no finished run in {CT_EXPERIMENT}")
    else:
        params = labkit.run_fields(run)[0]
        test_end, as_of = params.get("test_end", ""), params.get("as_of", "")
        due = {
            str(c["transaction_id"])
            for c in queue["cases"]
            if c["label"] in (0, 1) and test_end < c["day"] <= as_of
        }
        used = set(filter(None, params.get("reviewed_transaction_ids", "").split(",")))
        if not due:
            problems.append(
                f"cycle as of {as_of}: no labelled case from after its test week ({test_end}) up to {as_of}"
            )
        elif not due & used:
            problems.append(
                f"cycle {run['info']['run_id'][:8]} trained with reviewed ids {sorted(used) or 'none'}; labelled cases due: {sorted(due)[:5]}"
            )
    assert not problems, hint(
        "the newest cycle's reviewed_transaction_ids include a labelled case of a day after its test week",
        "; ".join(problems),
        fix(endpoints.target, "retrain") + " (after labelling a case of the replayed day)",
    )


def _report_review(request, target: str) -> tuple[dict | None, str]:
    """The review counts the report shows: local reports/summary.json (fraudlab report), cluster
    the review page's /api/summary."""
    if target == "local":
        path = labkit.data_dir() / "reports" / "summary.json"
        if not path.is_file():
            return None, f"no {path}"
        return json.loads(path.read_text()).get("review"), str(path)
    host = _review_pod_host(request.getfixturevalue("k8s"))
    if host is None:
        return None, "no ready review pod"
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{PORT}/api/summary').read().decode())"
    out = labkit.run_in(host, f'python -c "{script}"')
    return (json.loads(out.stdout) if out.rc == 0 else None), "the review page's /api/summary"


@pytest.mark.needs("test_an_analyst_label_is_stored")
def test_the_report_shows_how_many_were_reviewed(request, endpoints, queue):
    """The report (local: reports/summary.json; cluster: the review page's summary) shows as many reviewed cases as the queue holds labels."""
    review, where = _report_review(request, endpoints.target)
    labelled = sum(1 for c in queue["cases"] if c["label"] in (0, 1))
    found = None if review is None else review.get("reviewed")
    assert found == labelled, hint(
        f"{labelled} reviewed in {where}",
        f"{found} (the report was written before the last label?)"
        if review
        else f"no review counts in {where}",
        fix(endpoints.target, "report"),
    )


# --- your Python: the review rule ----------------------------------------------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(18))
def test_exercise(exercise, behaviour):
    """Your select_for_review: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
