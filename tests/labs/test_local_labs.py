"""Every lab in local mode, both ways: the reference state passes every check that applies, and a
starter or broken state fails the expected checks with the expected message — through the
learner's own output (one line per check, hints, the N/M line, the exit status)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reference_app.launchers.stack import free_port

from .conftest import LAB_DIRS, ROOT, check, lab_env, parse, run_lab

pytestmark = pytest.mark.slow

LOCAL_LABS = sorted(LAB_DIRS)
# Lab 13's end state needs a drift alert and a retraining cycle: the monitoring loop's test checks
# it (tests/integration/test_monitoring_loop.py), on the stack it drifts anyway.
# Lab 08's end state is an image and a CI run, not the stack: tests/labs/test_lab08_image.py
# checks it with real podman images.
# Lab 12's end state is a fault (the model stopped, FraudModelDown firing):
# test_lab12_passes_once_the_fault_fires injects it on the monitoring stack.
# Lab 16's end state is a load test and a proposal from Prometheus: tests/labs/test_lab16.py
# makes them on the monitoring stack.
# Lab 18's end state is a queue, a label, a retraining cycle and a model card: tests/labs/test_lab18.py
# makes them on a copy of the reference stack.
STACK_LABS = [lab for lab in LOCAL_LABS if lab not in (8, 12, 13, 16, 18)]
# The solved Python exercise, for runs that test other checks (the starter fails its own).
SOLVED = {
    lab: {"LAB_EXERCISE_DIR": str(folder / "solution")}
    for lab, folder in LAB_DIRS.items()
    if (folder / "solution").is_dir()
}


def assert_learner_output(
    result: subprocess.CompletedProcess, lab: int, target: str = "local"
) -> dict:
    """The output shape every run must have; returns it parsed."""
    out = parse(result.stdout)
    assert out["header"].startswith(f"Lab {LAB_DIRS[lab].name} · target {target}"), result.stdout
    assert "Traceback" not in result.stdout + result.stderr and 'File "' not in result.stdout, (
        result.stdout
    )
    assert out["checks"], result.stdout
    assert out["summary"] is not None, result.stdout
    # Every line is a header, a check, an indented hint, the summary, or the closing line.
    for line in out["lines"][1:]:
        assert (
            not line
            or line[0] in "✓✗–"
            or line.startswith("    ")
            or "checks passed" in line
            or line.startswith("Lab ")
        ), line
    return out


@pytest.mark.parametrize("lab", STACK_LABS)
def test_reference_state_passes_every_local_check(request, reference_stack, lab):
    # Lab 11 needs the monitoring processes (make up-monitoring), lab 10 the canary (make
    # up-canary), lab 04 the feature store (fraudlab up --features), lab 07 its drill's broken
    # candidate; the others the plain stack.
    stacks = {
        11: "monitoring_stack",
        10: "canary_stack",
        4: "features_stack",
        7: "drill_stack",
        14: "tune_stack",  # fraudlab tune at test scale (LAB14_TUNE_ENV)
        15: "auth_stack",  # MLflow with basic auth (fraudlab up --auth)
    }
    env = request.getfixturevalue(stacks[lab]) if lab in stacks else reference_stack
    env = lab_env(env)
    if (LAB_DIRS[lab] / "solution").is_dir():  # the reference state includes the solved exercise
        env["LAB_EXERCISE_DIR"] = str(LAB_DIRS[lab] / "solution")
    result = run_lab(lab, "--target", "local", env=env)
    out = assert_learner_output(result, lab)
    assert result.returncode == 0, result.stdout
    passed, total, details = out["summary"]
    assert int(passed) == int(total) >= 1, result.stdout
    for c in out["checks"]:
        assert c["symbol"] == "✓" or (c["symbol"] == "–" and "(needs a cluster: " in c["text"]), (
            result.stdout
        )
    skipped = sum(c["symbol"] == "–" for c in out["checks"])
    assert (details or "") == (f"{skipped} not for target local" if skipped else ""), result.stdout
    assert out["lines"][-1] == f"Lab {LAB_DIRS[lab].name} done on target local."


def test_lab00_fails_without_a_running_stack(tmp_path):
    solved = str(LAB_DIRS[0] / "solution")  # the doctor's rule passes: only the stack is missing
    env = lab_env({"FRAUD_DATA_DIR": str(tmp_path / "data"), "LAB_EXERCISE_DIR": solved})
    result = run_lab(0, "--target", "local", env=env)
    out = assert_learner_output(result, 0)
    assert result.returncode == 1
    failed = check(out, "The local stack is running")
    assert failed["symbol"] == "✗"
    assert failed["hint"] == [
        "expected: the local stack running (make up writes state/stack.json)",
        f"found:    no {tmp_path}/data/state/stack.json (the local stack is not running)",
        "debug:    make up",
    ]
    for later in ("The local MLflow answers", "The local model server has loaded"):
        c = check(out, later)
        assert (
            c["symbol"] == "–"
            and "(skipped because an earlier check failed: The local stack is running" in c["text"]
        )
    assert check(out, "The `fraudlab` command is installed")["symbol"] == "✓"
    assert out["summary"] == (
        "10",
        "13",
        "1 failed, 2 skipped because an earlier check failed, 10 not for target local",
    )


def test_lab00_fails_when_a_listed_process_is_gone(data_copy):
    stack = json.loads((data_copy / "state" / "stack.json").read_text())
    dead = subprocess.Popen(["true"])
    dead.wait()
    stack["mlserver"]["pid"] = dead.pid
    (data_copy / "state" / "stack.json").write_text(json.dumps(stack))
    out = assert_learner_output(
        run_lab(0, "--target", "local", env=lab_env({"FRAUD_DATA_DIR": str(data_copy)})), 0
    )
    failed = check(out, "The local stack is running")
    assert (
        failed["symbol"] == "✗"
        and f"lists mlserver but no such process runs (pid {dead.pid})" in failed["hint"][1]
    )
    assert failed["hint"][2] == "debug:    make down && make up"


def test_lab02_fails_without_the_raw_dataset(tmp_path):
    result = run_lab(
        2, "--target", "local", env=lab_env({"FRAUD_DATA_DIR": str(tmp_path), **SOLVED[2]})
    )
    out = assert_learner_output(result, 2)
    assert result.returncode == 1
    failed = check(out, "The simulator's dataset exists")
    assert failed["symbol"] == "✗"
    assert failed["hint"] == [
        f"expected: a manifest in {tmp_path}/raw",
        "found:    no manifest.json (the simulator has not written its dataset)",
        "debug:    make simulate",
    ]
    assert out["summary"] == ("6", "7", "1 failed, 6 not for target local")


def test_lab03_fails_when_a_listed_file_is_missing(data_copy):
    (
        data_copy
        / "raw"
        / json.loads((data_copy / "raw" / "manifest.json").read_text())["files"][3]["name"]
    ).unlink()
    result = run_lab(
        3, "--target", "local", env=lab_env({"FRAUD_DATA_DIR": str(data_copy), **SOLVED[3]})
    )
    out = assert_learner_output(result, 3)
    assert result.returncode == 1
    raw = check(out, "Dataset `raw` exists")
    assert (
        raw["symbol"] == "✗"
        and raw["hint"][1] == "found:    1 listed files missing (e.g. 2018-04-04.parquet)"
    )
    assert check(out, "Dataset `features` exists")["symbol"] == "✓"
    chain = check(out, "Each dataset was built from the current version")
    assert chain["symbol"] == "–" and "skipped because an earlier check failed" in chain["text"]
    assert check(out, "The quarantine reconciles")["symbol"] == "–"
    assert out["summary"] == (  # 6 of the 8 passing ones: the solved exercise
        "8",
        "12",
        "1 failed, 3 skipped because an earlier check failed, 7 not for target local",
    )


def test_lab03_reports_lineage_and_row_accounting(data_copy):
    features = json.loads((data_copy / "features" / "manifest.json").read_text())
    features["input_digest"] = "0" * 64  # built from another version of validated
    (data_copy / "features" / "manifest.json").write_text(json.dumps(features))
    validated = json.loads((data_copy / "validated" / "manifest.json").read_text())
    validated["quarantined_rows"] += 5  # rows that vanished between input and output
    (data_copy / "validated" / "manifest.json").write_text(json.dumps(validated))
    result = run_lab(
        3, "--target", "local", env=lab_env({"FRAUD_DATA_DIR": str(data_copy), **SOLVED[3]})
    )
    out = assert_learner_output(result, 3)
    assert result.returncode == 1
    chain = check(out, "Each dataset was built from the current version")
    assert chain["symbol"] == "✗"
    assert (
        chain["hint"][1]
        == f"found:    features were built from 000000000000, validated is now {validated['digest'][:12]}"
    )
    assert chain["hint"][2] == "debug:    make validate   (then features)"
    reconcile = check(out, "The quarantine reconciles")
    rows, input_rows = validated["rows"], validated["input_rows"]
    assert (
        reconcile["symbol"] == "✗"
        and f"{rows:,} valid + 5 quarantined ≠ {input_rows:,} input rows" in reconcile["hint"][1]
    )
    budget = check(out, "At most 0.1 % of the input rows")
    assert (
        budget["symbol"] == "–"
        and "skipped because an earlier check failed: The quarantine reconciles" in budget["text"]
    )
    assert out["summary"] == (
        "9",
        "12",
        "2 failed, 1 skipped because an earlier check failed, 7 not for target local",
    )


def test_lab05_fails_without_runs_or_champion(reference_stack):
    env = lab_env(
        {
            **reference_stack,
            "FRAUD_EXPERIMENT": "no-such-experiment",
            "FRAUD_MODEL_NAME": "no-such-model",
            **SOLVED[5],
        }
    )
    result = run_lab(5, "--target", "local", env=env)
    out = assert_learner_output(result, 5)
    assert result.returncode == 1
    assert check(out, "MLflow answers on its URL")["symbol"] == "✓"
    runs = check(out, "Experiment `fraud-detection` has finished training runs")
    assert runs["symbol"] == "✗" and runs["hint"][:2] == [
        "expected: ≥ 1 FINISHED run in experiment no-such-experiment",
        "found:    no experiment",
    ]
    assert check(out, "The latest finished run carries")["symbol"] == "–"
    champion = check(out, "Registered model `fraud-detector` has a version with alias `champion`")
    assert (
        champion["symbol"] == "✗"
        and champion["hint"][0] == "expected: models:/no-such-model@champion"
    )
    assert champion["hint"][2].startswith("debug:    curl -s -i 'http://127.0.0.1:") and champion[
        "hint"
    ][2].endswith("/api/2.0/mlflow/registered-models/get?name=no-such-model'")
    assert out["summary"] == (  # 6 of the 7 passing ones: the solved exercise
        "7",
        "11",
        "2 failed, 2 skipped because an earlier check failed, 6 not for target local",
    )


def test_lab05_fails_when_mlflow_does_not_answer(data_copy):
    stack = json.loads((data_copy / "state" / "stack.json").read_text())
    stack["mlflow"]["url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    (data_copy / "state" / "stack.json").write_text(json.dumps(stack))
    out = assert_learner_output(
        run_lab(
            5, "--target", "local", env=lab_env({"FRAUD_DATA_DIR": str(data_copy), **SOLVED[5]})
        ),
        5,
    )
    answers = check(out, "MLflow answers on its URL")
    assert answers["symbol"] == "✗" and "ConnectError" in answers["hint"][1]
    assert (
        answers["hint"][2] == f"debug:    tail -n 30 {stack['mlflow']['log']}"
    )  # the log `fraudlab up` recorded
    assert [
        c["symbol"]
        for c in out["checks"]
        if "needs a cluster" not in c["text"] and not c["text"].startswith("Your choose_alias")
    ] == [
        "✗",
        "–",
        "–",
        "–",
        "–",
    ]


def test_lab06_fails_below_the_quality_gate(reference_stack):
    result = run_lab(
        6,
        "--target",
        "local",
        env=lab_env({**reference_stack, "FRAUD_GATE_MIN_AP": "0.99", **SOLVED[6]}),
    )
    out = assert_learner_output(result, 6)
    assert result.returncode == 1
    gate = check(out, "The latest training run meets the quality gate")
    assert gate["symbol"] == "✗"
    assert gate["hint"][0] == "expected: AUC ROC ≥ 0.75, average precision ≥ 0.99"
    assert (
        gate["hint"][1].startswith("found:    logistic_regression ")
        and "average precision 0." in gate["hint"][1]
    )
    assert gate["hint"][2] == "debug:    make train MODEL=random_forest"
    assert check(out, "The latest training run records the device")["symbol"] == "✓"
    assert out["summary"] == ("9", "10", "1 failed, 8 not for target local")


def test_lab07_fails_without_the_drill(reference_stack):
    """On the reference state without the drill, the champion's tests pass and the
    broken-candidate check fails, naming the command that runs the drill."""
    env = lab_env({**reference_stack, **SOLVED[7]})
    result = run_lab(7, "--target", "local", env=env)
    out = assert_learner_output(result, 7)
    assert result.returncode == 1
    assert check(out, "The model tests ran for the champion's run")["symbol"] == "✓"
    assert check(out, "The champion's run holds the model tests' report")["symbol"] == "✓"
    blocked = check(out, "The newest broken candidate")
    assert blocked["symbol"] == "✗" and blocked["hint"] == [
        "expected: a run tagged drill=broken-candidate",
        "found:    no drill run",
        "debug:    FRAUD_LAB_CODE=labs/07-testing-ml-systems/starter .venv/bin/fraudlab train "
        "--model logistic_regression --broken",
    ]
    assert out["summary"] == ("9", "10", "1 failed, 6 not for target local")


def test_lab14_fails_without_a_search(reference_stack):
    """On the reference state before `fraudlab tune`, the tuning-run check fails naming the command
    (with the learner's folds), and the checks that read the search are skipped, not failed."""
    env = lab_env({**reference_stack, **SOLVED[14]})
    result = run_lab(14, "--target", "local", env=env)
    out = assert_learner_output(result, 14)
    assert result.returncode == 1
    failed = check(out, "MLflow's experiment `fraud-tuning` has a finished tuning run")
    assert failed["symbol"] == "✗" and failed["hint"] == [
        "expected: a FINISHED run in fraud-tuning tagged fraud_tuning=parent",
        "found:    none: fraudlab tune has not finished a search yet",
        "debug:    FRAUD_LAB_CODE=labs/14-distributed-training-ray/starter .venv/bin/fraudlab tune --model lightgbm",
    ]
    for later in (
        "The newest search's trials",
        "The newest search's tuned model",
        "The newest tuning run cut its folds with your starter/folds.py",
    ):
        c = check(out, later)
        assert c["symbol"] == "–" and "skipped because an earlier check failed" in c["text"], later
    assert all(
        c["symbol"] == "✓" for c in out["checks"] if c["text"].startswith("Your prequential_folds")
    )


def test_lab09_fails_without_a_replay_and_above_the_slo(data_copy, reference_stack):
    shutil.rmtree(data_copy / "reports")
    env = lab_env(
        {
            **reference_stack,
            "FRAUD_DATA_DIR": str(data_copy),
            "LAB_SLO_P95_MS": "0.001",
            **SOLVED[9],
        }
    )
    result = run_lab(9, "--target", "local", env=env)
    out = assert_learner_output(result, 9)
    assert result.returncode == 1
    replay = check(out, "Predictions equal offline scores")
    assert replay["symbol"] == "✗"
    assert replay["hint"] == [
        f"expected: a replay report {data_copy}/reports/replay-<day>.json",
        "found:    no replay report",
        "debug:    make replay DAY=2018-08-08",
    ]
    slo = check(out, "p95 latency of one-transaction requests")
    assert (
        slo["symbol"] == "✗"
        and slo["hint"][0] == "expected: p95 ≤ 0.001 ms"
        and " ms over 50 requests" in slo["hint"][1]
    )
    for case in (
        "a missing input",
        "an amount that is not a number",
        "inputs of different lengths",
    ):
        assert check(out, f"A bad payload ({case})")["symbol"] == "✓"
    assert out["summary"] == ("13", "15", "2 failed, 6 not for target local")


def test_lab09_fails_when_the_model_server_is_down(data_copy):
    stack = json.loads((data_copy / "state" / "stack.json").read_text())
    stack["mlserver"]["url"] = f"http://127.0.0.1:{free_port()}"
    (data_copy / "state" / "stack.json").write_text(json.dumps(stack))
    result = run_lab(
        9, "--target", "local", env=lab_env({"FRAUD_DATA_DIR": str(data_copy), **SOLVED[9]})
    )
    out = assert_learner_output(result, 9)
    ready = check(out, "The model server has loaded the model")
    assert (
        ready["symbol"] == "✗"
        and ready["hint"][2] == f"debug:    tail -n 30 {stack['mlserver']['log']}"
    )
    later = [
        c
        for c in out["checks"]
        if "needs a cluster" not in c["text"] and not c["text"].startswith("Your input_problem")
    ][1:]
    assert later and all(
        c["symbol"] == "–"
        and "earlier check failed: The model server has loaded the model" in c["text"]
        for c in later
    )
    assert out["summary"] == (  # the 6 passing ones: the solved exercise
        "6",
        "15",
        "1 failed, 8 skipped because an earlier check failed, 6 not for target local",
    )


def test_lab10_fails_without_the_canary(reference_stack):
    """The plain stack (no router): the first router check fails naming make up-canary, the
    checks that need the router are skipped, the exercise is checked anyway."""
    env = lab_env({**reference_stack, "LAB_EXERCISE_DIR": str(LAB_DIRS[10] / "solution")})
    result = run_lab(10, "--target", "local", env=env)
    out = assert_learner_output(result, 10)
    assert result.returncode == 1, result.stdout
    ready = check(out, "The traffic router answers ready")
    assert ready["symbol"] == "✗" and any("up --canary" in line for line in ready["hint"]), (
        result.stdout
    )
    share = check(out, "Over 1,000 requests the challenger's measured share")
    assert share["symbol"] == "–", result.stdout
    assert check(out, "Your choose_variant: at 10 %")["symbol"] == "✓", result.stdout


def test_lab04_fails_without_the_feature_store(reference_stack):
    """The plain stack (no feature server): its check fails naming `fraudlab up --features`, the
    checks that need it are skipped, the exercise is checked anyway."""
    env = lab_env({**reference_stack, "LAB_EXERCISE_DIR": str(LAB_DIRS[4] / "solution")})
    result = run_lab(4, "--target", "local", env=env)
    out = assert_learner_output(result, 4)
    assert result.returncode == 1, result.stdout
    server = check(out, "The local Feast feature server")
    assert server["symbol"] == "✗", result.stdout
    assert server["hint"][1].endswith(
        "lists no feast (make up starts none; fraudlab up --features does)"
    )
    assert "fraudlab up --features" in server["hint"][2]
    parity = check(out, "The feature store: online features equal the offline point-in-time")
    assert parity["symbol"] == "–", result.stdout
    assert check(out, "Your model_inputs: the 15 inputs come")["symbol"] == "✓", result.stdout


def test_lab12_passes_once_the_fault_fires(monitoring_stack, monkeypatch):
    """Before the fault, the fault's checks fail with the command that injects it (the SLO rules
    are loaded already); after the lab's own fault (SIGSTOP, FraudModelDown in Alertmanager),
    every local check passes. The model is resumed afterwards (SIGCONT), for the other tests."""
    import os
    import signal

    from .conftest import load_lab_module

    env = lab_env({**monitoring_stack, **SOLVED[12]})
    before = run_lab(12, "--target", "local", env=env)
    out = assert_learner_output(before, 12)
    assert before.returncode == 1, before.stdout
    assert check(out, "Prometheus has loaded the SLO burn-rate alerts")["symbol"] == "✓"
    fault = check(out, "The injected fault fires its alert")
    assert fault["symbol"] == "✗" and any("kill -STOP" in line for line in fault["hint"]), (
        before.stdout
    )
    assert check(out, "Alertmanager has received FraudModelDown")["symbol"] == "–"
    load_lab_module(0)  # labs/ on sys.path
    import reference

    monkeypatch.setenv("FRAUD_DATA_DIR", monitoring_stack["FRAUD_DATA_DIR"])
    stack = json.loads(
        (Path(monitoring_stack["FRAUD_DATA_DIR"]) / "state" / "stack.json").read_text()
    )
    try:
        assert reference.stop_the_model() == 0
        after = run_lab(12, "--target", "local", env=env)
        out = assert_learner_output(after, 12)
        assert after.returncode == 0, after.stdout
        passed, total, details = out["summary"]
        assert int(passed) == int(total) and details == "4 not for target local", after.stdout
    finally:
        os.kill(stack["mlserver"]["pid"], signal.SIGCONT)


def test_lab11_fails_without_prometheus(reference_stack):
    """`make up` (not up-monitoring): the first Prometheus check says what to run, the rest wait."""
    env = lab_env({**reference_stack, "LAB_EXERCISE_DIR": str(LAB_DIRS[11] / "solution")})
    result = run_lab(11, "--target", "local", env=env)
    out = assert_learner_output(result, 11)
    assert result.returncode == 1
    ready = check(out, "Prometheus answers on its URL")
    assert ready["symbol"] == "✗"
    assert ready["hint"] == [
        "expected: Prometheus in the local stack (make up-monitoring)",
        f"found:    {reference_stack['FRAUD_DATA_DIR']}/state/stack.json lists no prometheus (make up starts none; make up-monitoring does)",
        "debug:    make down && make up-monitoring",
    ]
    later = [
        c
        for c in out["checks"]
        if "needs a cluster" not in c["text"] and not c["text"].startswith("Your psi_from_shares")
    ][1:]
    assert len(later) == 5 and all(
        c["symbol"] == "–" and "(skipped because an earlier check failed: Prometheus " in c["text"]
        for c in later
    ), result.stdout
    assert check(out, "Prometheus has loaded the alert rules")["text"].endswith(
        "(skipped because an earlier check failed: Prometheus answers on its URL: GET /-/ready → 200.)"
    )
    assert out["summary"] == (  # the 5 passing ones: the solved exercise
        "5",
        "11",
        "1 failed, 5 skipped because an earlier check failed, 7 not for target local",
    )


def test_lab11_fails_when_prometheus_does_not_answer(data_copy):
    stack = json.loads((data_copy / "state" / "stack.json").read_text())
    log = str(data_copy / "state" / "logs" / "prometheus.log")
    stack["prometheus"] = {
        "pid": stack["mlserver"]["pid"],
        "url": f"http://127.0.0.1:{free_port()}",
        "log": log,
    }  # nothing listens there
    (data_copy / "state" / "stack.json").write_text(json.dumps(stack))
    out = assert_learner_output(
        run_lab(
            11,
            "--target",
            "local",
            env=lab_env(
                {
                    "FRAUD_DATA_DIR": str(data_copy),
                    "LAB_EXERCISE_DIR": str(LAB_DIRS[11] / "solution"),
                }
            ),
        ),
        11,
    )
    ready = check(out, "Prometheus answers on its URL")
    assert ready["symbol"] == "✗" and "ConnectError" in ready["hint"][1]
    assert ready["hint"][2] == f"debug:    tail -n 30 {log}"
    needs_ready = (
        "Prometheus scrapes the model",
        "Prometheus scrapes the drift monitor",
        "Prometheus has loaded the alert rules",
    )
    for text in needs_ready:
        c = check(out, text)
        assert (
            c["symbol"] == "–"
            and "earlier check failed: Prometheus answers on its URL" in c["text"]
        ), c
    assert out["summary"] == (  # the 5 passing ones: the solved exercise
        "5",
        "11",
        "1 failed, 5 skipped because an earlier check failed, 7 not for target local",
    )


def test_make_lab_writes_junit_and_json_reports(reference_stack, tmp_path):
    """`make lab-9 TARGET=local REPORT=…`: the Make target learners and instructors run."""
    report = tmp_path / "results" / "ada-lab-09"
    env = lab_env({**reference_stack, **SOLVED[9]})
    result = subprocess.run(
        ["make", "--no-print-directory", "lab-9", "TARGET=local", f"REPORT={report}.xml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert parse(result.stdout)["summary"] == ("15", "15", "6 not for target local")
    summary = json.loads(report.with_suffix(".json").read_text())
    assert (
        summary["lab"],
        summary["target"],
        summary["passed"],
        summary["total"],
        summary["ok"],
        summary["exit_status"],
    ) == ("09-serving", "local", 15, 15, True, 0)
    assert len(summary["checks"]) == 21 and {c["outcome"] for c in summary["checks"]} == {
        "passed",
        "skipped",
    }
    xml = report.with_suffix(".xml").read_text()
    assert (
        xml.count("<testcase ") == 21
        and 'name="check" value="Predictions equal offline scores' in xml
    )


EXERCISE_LABS = sorted(lab for lab, folder in LAB_DIRS.items() if (folder / "solution").is_dir())


@pytest.mark.parametrize("lab", EXERCISE_LABS)
def test_exercise_starter_fails_and_solution_passes(lab):
    """`make lab-N` on the learner's Python: every behaviour ✗ on the starter (expected / found /
    hint naming the file), ✓ on the solution; no stack needed."""
    for folder, passes in (("starter", False), ("solution", True)):
        env = {**lab_env(), "LAB_EXERCISE_DIR": str(LAB_DIRS[lab] / folder)}
        result = run_lab(lab, "--target", "local", "-k", "test_exercise", env=env)
        out = assert_learner_output(result, lab)
        assert (result.returncode == 0) is passes, result.stdout
        symbols = {c["symbol"] for c in out["checks"]}
        assert symbols == ({"✓"} if passes else {"✗"}), result.stdout
        if not passes:
            assert f"TODO(lab-{lab:02d})" in result.stdout
            assert f"labs/{LAB_DIRS[lab].name}/starter/" in result.stdout
