"""Lab 18 in local mode, both ways, on a copy of the reference stack: the reference state (a
replay that queued with the solved rule, an analyst's label, a retraining cycle that trained with
it, the champion's model card, the report) passes every local check; the starter's rule fails its
behaviours and the check that the queue used it, with the command that fixes it; and a queue
without a label fails from the label on, naming the command to give one."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ..integration.conftest import REPLAY_DAY, run_fraudlab
from .conftest import LAB_DIRS, check, fraudlab_ok, lab_env, parse, run_lab, stack_copy

pytestmark = pytest.mark.slow
LAB = 18
SOLVED = str(LAB_DIRS[LAB] / "solution")


@pytest.fixture(scope="module")
def review_stack(reference_stack, tmp_path_factory):
    """Lab 18's end state on a copy of the reference state: the stack up, a replay that queued with
    the solved rule, the top case labelled, a retraining cycle, the model card, the report."""
    data_dir, ports, env = stack_copy(reference_stack, tmp_path_factory, "review")
    env |= {"FRAUD_INFERENCE_URL": f"http://127.0.0.1:{ports['HTTP']}"}
    fraudlab_ok(env, "up")
    try:
        fraudlab_ok({**env, "FRAUD_LAB_CODE": SOLVED}, "replay", "--day", REPLAY_DAY)
        listed = json.loads(fraudlab_ok(env, "review", "list", "--json").stdout)
        top = str(listed["cases"][0]["transaction_id"])
        fraudlab_ok(env, "review", "label", top, "fraud", "--analyst", "test-analyst")
        fraudlab_ok({**env, "FRAUD_LAB_CODE": SOLVED}, "retrain")
        fraudlab_ok(env, "model-card")
        fraudlab_ok(env, "report", "--day", REPLAY_DAY)
        yield {"FRAUD_DATA_DIR": str(data_dir), "top": top}
    finally:
        run_fraudlab(env, "down")


def test_the_reference_state_passes_every_local_check(review_stack):
    env = lab_env({"FRAUD_DATA_DIR": review_stack["FRAUD_DATA_DIR"], "LAB_EXERCISE_DIR": SOLVED})
    result = run_lab(LAB, "--target", "local", env=env)
    out = parse(result.stdout)
    assert result.returncode == 0, result.stdout
    assert all(c["symbol"] == "✓" or "(needs a cluster: " in c["text"] for c in out["checks"]), (
        result.stdout
    )
    assert sum(c["symbol"] == "–" for c in out["checks"]) == 3
    assert "Traceback" not in result.stdout + result.stderr


def test_the_starter_fails_its_rule_and_the_queue_check(review_stack):
    env = lab_env({"FRAUD_DATA_DIR": review_stack["FRAUD_DATA_DIR"]})
    out = parse(run_lab(LAB, "--target", "local", env=env).stdout)
    used = check(out, "The newest replayed day was queued by your review_band.py")
    assert used["symbol"] == "✗"
    assert (
        used["hint"][2]
        == "debug:    FRAUD_LAB_CODE=labs/18-responsible-ai/starter make replay DAY=2018-08-08"
    )
    behaviour = check(out, "Your select_for_review: highest score first")
    assert behaviour["symbol"] == "✗" and "not written yet" in behaviour["hint"][1]
    for passing in (
        "The champion's MLflow run has the artifacts",
        "At least one queued case has an analyst's label",
    ):
        assert check(out, passing)["symbol"] == "✓"


def test_a_queue_without_a_label_fails_from_the_label_on(review_stack, tmp_path):
    """The same state with the label taken back (a copy of the SQLite file): the label check fails
    with the command that gives one, and the two checks that need a label are skipped."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(
        review_stack["FRAUD_DATA_DIR"],
        data,
        ignore=shutil.ignore_patterns("logs", "mlartifacts", "mlserver*"),
    )
    with sqlite3.connect(data / "state" / "mlflow.db") as db:
        db.execute("UPDATE review_cases SET label = NULL, analyst = NULL, labelled_at = NULL")
    env = lab_env({"FRAUD_DATA_DIR": str(data), "LAB_EXERCISE_DIR": SOLVED})
    out = parse(run_lab(LAB, "--target", "local", env=env).stdout)
    label = check(out, "At least one queued case has an analyst's label")
    assert label["symbol"] == "✗" and label["hint"][2].startswith(
        "debug:    .venv/bin/fraudlab review list"
    )
    for later in ("The newest retraining cycle trained with", "The report (local"):
        assert check(out, later)["symbol"] == "–"
