"""Lab 14 end to end: `fraudlab tune` on a real Ray (2 CPUs on 127.0.0.1, which the command
joins through RAY_ADDRESS as a RayJob's driver does) and a real MLflow server, on tiny data. Every
trial is a nested MLflow run with per-fold metrics; the best LightGBM and MLP configurations are
registered, model-tested and decided through the gate; a second call reuses them; the learner's
unwritten folds stop the command before anything trains. (`fraudlab demo` runs the tuning on a
Ray of its own: tests/integration/test_local_stack.py.)"""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from reference_app.config import Settings
from reference_app.launchers.stack import free_port, start_mlflow

from .conftest import run_fraudlab

pytestmark = pytest.mark.slow

# 1 000 customers for 45 days: the protocol's weeks at 2018-04-24 leave room for 2 folds
# (the older trains from 2018-04-03) and end on 2018-05-14. A tiny search: 3 trials per model,
# LightGBM in blocks of 20 rounds up to 60, the MLP up to 3 epochs; ASHA may stop a trial after
# its first report.
TUNE_ENV = {
    "FRAUD_N_CUSTOMERS": "1000",
    "FRAUD_N_TERMINALS": "2000",
    "FRAUD_NB_DAYS": "45",
    "FRAUD_TRAIN_START": "2018-04-24",
    "FRAUD_GATE_MIN_AUC": "0.70",
    "FRAUD_GATE_MIN_AP": "0.30",
    "FRAUD_TUNE_FOLDS": "2",
    "FRAUD_TUNE_TRIALS": "3",
    "FRAUD_TUNE_CONCURRENCY": "2",
    "FRAUD_RAY_NUM_CPUS": "2",
    "FRAUD_TUNE_LIGHTGBM_BLOCK_ROUNDS": "20",
    "FRAUD_TUNE_LIGHTGBM_MAX_ROUNDS": "60",
    "FRAUD_TUNE_MLP_MAX_EPOCHS": "3",
    "FRAUD_TUNE_ASHA_GRACE_PERIOD": "1",
    "FRAUD_DEVICE": "cpu",
}
LAB14_STARTER = "labs/14-distributed-training-ray/starter"


@pytest.fixture(scope="module")
def tune_env(tmp_path_factory) -> dict[str, str]:
    data_dir = tmp_path_factory.mktemp("tune") / "data"
    port = free_port()
    env = {
        **TUNE_ENV,
        "FRAUD_DATA_DIR": str(data_dir),
        "FRAUD_MLFLOW_PORT": str(port),
        "FRAUD_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
    }
    done = run_fraudlab(env, "pipeline", "--through", "features")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return env


@pytest.fixture(scope="module")
def mlflow_url(tune_env):
    settings = Settings(**{k[len("FRAUD_") :].lower(): v for k, v in tune_env.items()})
    with start_mlflow(settings) as server:
        yield server.url


# A Ray "cluster" of one node on 127.0.0.1, as `ray start --head` would make, stopped by its own
# process (ray.shutdown) when the tests are done: never `ray stop`, which stops every Ray here.
# NOTE: without token authentication (RAY_AUTH_MODE=disabled, Ray's documented opt-out): with it
# (ray 2.60's default for a new local cluster) a second process was refused here with
# "InvalidAuthToken: Authentication token is missing or incorrect" although both read
# ~/.ray/auth_token; the head listens on 127.0.0.1 only.
NO_AUTH = {"RAY_AUTH_MODE": "disabled"}
HEAD = (
    "import sys\nimport ray\n"
    "ctx = ray.init(num_cpus=2, include_dashboard=False)\n"
    "print(ctx.address_info['gcs_address'], flush=True)\n"
    "sys.stdin.read()\nray.shutdown()\n"
)


@pytest.fixture(scope="module")
def ray_head():
    env = {
        **os.environ,
        **NO_AUTH,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        ready, _, _ = select.select([head.stdout], [], [], 180)
        address = head.stdout.readline().strip() if ready else ""
        assert address.startswith("127.0.0.1:"), f"no Ray head address: {address!r}"
        yield address
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()


@pytest.fixture(scope="module")
def tuned(tune_env, mlflow_url, ray_head):
    env = {**tune_env, **NO_AUTH, "RAY_ADDRESS": ray_head}  # what a Ray job's driver is given
    done = run_fraudlab(env, "tune", "--model", "lightgbm", "--model", "mlp", timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def test_the_learners_unwritten_folds_stop_the_tuning(tune_env, mlflow_url):
    done = run_fraudlab(
        {**tune_env, "FRAUD_LAB_CODE": LAB14_STARTER}, "tune", "--model", "lightgbm"
    )
    assert done.returncode == 2, done.stdout[-2000:]
    assert "lab 14: prequential_folds in" in done.stdout and "not written yet" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_every_trial_is_a_nested_run_with_fold_metrics(tuned, mlflow_url, ray_head):
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    experiment = client.get_experiment_by_name("fraud-tuning")
    parents = client.search_runs(
        [experiment.experiment_id],
        "tags.fraud_tuning = 'parent' and attributes.status = 'FINISHED'",
    )
    assert {p.data.tags["tuned_model_type"] for p in parents} == {"lightgbm", "mlp"}
    for parent in parents:
        model = parent.data.tags["tuned_model_type"]
        assert parent.info.run_name == f"tune-{model}"
        assert parent.data.tags["ray_address"] == ray_head  # the cluster, not a Ray of its own
        assert parent.data.tags["folds_source"] == "reference"
        # The two folds precede the training week 2018-04-24 … 04-30: fold 0 validates on it.
        assert parent.data.params["fold0_valid_start"] == "2018-04-24"
        assert parent.data.params["fold1_train_start"] == "2018-04-03"
        trials = client.search_runs(
            [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        assert len(trials) == 3 == parent.data.metrics["trials_finished"], model
        per_fold = {
            f"{where}_{name}"
            for where in ("fold0", "fold1", "mean")
            for name in ("auc_roc", "average_precision", "card_precision_top_k")
        }
        for trial in trials:
            assert trial.data.tags["fraud_tuning"] == "trial"
            assert trial.info.run_name.startswith(f"trial-{model}-")
            assert per_fold <= set(trial.data.metrics), trial.info.run_name
            assert trial.data.tags["stopped_early"] in {"true", "false"}
            assert 0 < trial.data.metrics["mean_auc_roc"] <= 1
        space = {"lightgbm": "num_leaves", "mlp": "hidden"}[model]
        assert all(space in t.data.params for t in trials)
        # A trial that ran to the end reported at every step (LightGBM: rounds 20, 40, 60); the
        # tuning picked the best (trial, step) of them all.
        histories = [
            client.get_metric_history(t.info.run_id, "mean_average_precision") for t in trials
        ]
        assert max(len(h) for h in histories) == 3, model
        assert {m.step for h in histories for m in h} <= (
            {20, 40, 60} if model == "lightgbm" else {1, 2, 3}
        )
        best = max(m.value for h in histories for m in h)
        assert parent.data.metrics["best_mean_average_precision"] == pytest.approx(best)


def test_the_tuned_models_went_through_the_gate(tuned, mlflow_url):
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    parents = {
        p.data.tags["tuned_model_type"]: p
        for p in client.search_runs(
            [client.get_experiment_by_name("fraud-tuning").experiment_id],
            "tags.fraud_tuning = 'parent'",
        )
    }
    for model, parent in parents.items():
        version = client.get_model_version("fraud-detector", parent.data.tags["tuned_version"])
        run = client.get_run(version.run_id)
        assert run.info.run_name == f"{model}-tuned"
        assert run.data.tags["tuned"] == "true"
        assert run.data.tags["tuning_run_id"] == parent.info.run_id
        assert run.data.params["model_type"] == model
        assert run.data.tags["model_tests_passed"] in {"true", "false"}
        # The gate's verdict and the promotion's reason, on the version and the tuning run alike.
        assert version.tags["promotion_decision"] in {"champion", "challenger", "blocked"}
        assert version.tags["passed_gate"] == parent.data.tags["passed_gate"]
        assert version.tags["promotion_reason"] == parent.data.tags["promotion_reason"] != ""
        assert parent.data.metrics["test_average_precision"] == pytest.approx(
            run.data.metrics["average_precision"]
        )
        assert f"tune {model}: 3 trials" in tuned.stdout


def test_an_unchanged_tuning_is_reused(tuned, tune_env, mlflow_url):
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    before = len(client.search_model_versions("name = 'fraud-detector'"))
    again = run_fraudlab(tune_env, "tune", "--model", "lightgbm")
    assert again.returncode == 0, again.stdout[-2000:]
    assert "tune lightgbm: reused tuned run" in again.stdout
    assert len(client.search_model_versions("name = 'fraud-detector'")) == before
