"""MLflow tracking and model registry: the only module that imports mlflow.

Runs record params, metrics, the training data's digest, the git commit and the device; models
are logged as one pyfunc flavour (`FraudModel`) with a signature and input example, registered as
`fraud-detector`, and promoted with aliases (`champion`, `challenger`) — never stages. The model
carries its compiled form beside the native one: an ONNX file (`training.export`), the pyfunc
artifact `onnx`, which the server and the replay score with (`serving.compiled`).

Example:
    >>> configure("http://127.0.0.1:5000")                          # doctest: +SKIP
    >>> model = load_model("models:/fraud-detector@champion")        # doctest: +SKIP
    >>> model.predict_proba(features)                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from .features import FEATURE_NAMES
from .training.export import export_onnx
from .training.model_tests import MODEL_TESTS_ARTIFACT, verdict_failures
from .training.promotion import (
    BLOCKED,
    CHALLENGER,
    CHAMPION,
    PROMOTION_EXERCISE,
    Decision,
    QualityGate,
    decide_promotion,
)
from .training.train import TrainResult, score

PIP_REQUIREMENTS = [
    f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "numpy", "pandas", "torch")
]
OUTPUT_NAME = "fraud_probability"
ONNX_ARTIFACT = "onnx"
"""The pyfunc artifact holding the compiled model (`model.onnx`, beside the pickled estimator)."""


def _drop_pickle_notice(record: logging.LogRecord) -> bool:
    """Drop MLflow's notice about CloudPickle: our model object is our own code, loaded by our runtime."""
    return "CloudPickle" not in record.getMessage()


class FraudModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: (n, 15) features frame in, (n,) fraud probabilities out."""

    def __init__(self, estimator):
        self.estimator = estimator

    def load_context(self, context) -> None:
        """Note where MLflow put the ONNX file (None for versions logged before compiled inference)."""
        self.onnx_path = (context.artifacts or {}).get(ONNX_ARTIFACT)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # noqa: ARG002
        """Return fraud probabilities (n,) float64 for a frame with `FEATURE_NAMES` columns."""
        return score(self.estimator, model_input)


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version loaded for scoring."""

    name: str
    version: str
    run_id: str
    pyfunc: object
    onnx_path: str | None = None
    """The compiled model's local file (`serving.compiled.CompiledModel`), None if it has none."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Fraud probabilities (n,) float64 for a frame holding `FEATURE_NAMES`."""
        return np.asarray(
            self.pyfunc.predict(features[FEATURE_NAMES].astype(np.float64)), dtype=np.float64
        ).reshape(-1)


def configure(tracking_uri: str, experiment: str | None = None) -> MlflowClient:
    """Point mlflow at a tracking server (and experiment); return a client.

    Also turns off mlflow's artifact progress bars and run-URL prints (CLI output stays readable).
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").addFilter(_drop_pickle_notice)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if experiment:
        mlflow.set_experiment(experiment)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def git_commit() -> str:
    """The source commit: `FRAUD_GIT_COMMIT` (set in images), else `git rev-parse HEAD`, else "unknown"."""
    if os.environ.get("FRAUD_GIT_COMMIT"):
        return os.environ["FRAUD_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_digest() -> str:
    """SHA-256 of the package's Python sources: changes whenever the code that trains changes,
    committed or not (a git commit alone misses uncommitted edits)."""
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def log_training_run(
    result: TrainResult,
    model_name: str,
    data_digest: str,
    extra_tags: dict | None = None,
    compiled: bool = True,
) -> tuple[str, str]:
    """Log a training run with its model and register a new version of `model_name`.

    Args:
        result: output of `training.train.train`.
        model_name: registered model name.
        data_digest: digest of the features dataset the run read.
        extra_tags: more run tags (e.g. a cache key).
        compiled: log the ONNX file beside the native model (False: a version as logged before
            compiled inference, which serves natively; the serving benchmark compares both).

    Returns:
        `(run_id, version)` of the run and the new model version.
    """
    # Every input is a double: integer columns in a signature reject float payloads.
    example = result.test[FEATURE_NAMES].head(5).astype("float64")
    signature = infer_signature(example, pd.Series(score(result.model, example), name=OUTPUT_NAME))
    # --8<-- [start:run-record]
    tags = {
        "data_digest": data_digest,
        "train_digest": result.train_digest,
        "test_digest": result.test_digest,
        "git_commit": git_commit(),
        "device": result.device,
        "model_type": str(result.params["model_type"]),
        **(extra_tags or {}),
    }
    with (
        mlflow.start_run(run_name=str(result.params["model_type"])) as run,
        tempfile.TemporaryDirectory() as folder,
    ):
        mlflow.set_tags(tags)
        mlflow.log_params({k: str(v)[:500] for k, v in result.params.items()})
        mlflow.log_metrics(result.metrics)
        # --8<-- [end:run-record]
        # --8<-- [start:log-onnx]
        onnx_file = Path(folder) / "model.onnx"
        if compiled:
            onnx_file.write_bytes(export_onnx(result.model))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FraudModel(result.model),
            # Copied into the model's folder, beside the pickled estimator.
            artifacts={ONNX_ARTIFACT: str(onnx_file)} if compiled else None,
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=model_name,
        )
        # --8<-- [end:log-onnx]
    return run.info.run_id, str(info.registered_model_version)


def load_model(model_uri: str) -> LoadedModel:
    """Load a model version by URI (`models:/name@alias`, `models:/name/version` or `runs:/…`).

    Raises:
        MlflowException: if the model, version or alias does not exist.
    """
    client = MlflowClient()
    name, version_ = "", ""
    if model_uri.startswith("models:/"):
        ref = model_uri[len("models:/") :]
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version_ = client.get_model_version_by_alias(name, alias).version
        else:
            name, version_ = ref.split("/", 1)
        mv = client.get_model_version(name, version_)
        run_id = mv.run_id
        model_uri = f"models:/{name}/{version_}"
    else:
        run_id = model_uri.split("/")[1] if model_uri.startswith("runs:/") else ""
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    return LoadedModel(
        name=name,
        version=str(version_),
        run_id=run_id or "",
        pyfunc=pyfunc,
        onnx_path=getattr(pyfunc.unwrap_python_model(), "onnx_path", None),
    )


def alias_version(model_name: str, alias: str) -> str | None:
    """Return the version that carries `alias`, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def versions(model_name: str) -> list[str]:
    """The registered versions of `model_name`, in ascending order; empty when it has none."""
    found = MlflowClient().search_model_versions(f"name = '{model_name}'")
    return sorted((str(v.version) for v in found), key=int)


def latest_version(model_name: str) -> str | None:
    """Return the highest version number of `model_name`, or None when it has no version."""
    return (versions(model_name) or [None])[-1]


def undecided_versions(model_name: str) -> list[str]:
    """Versions of `model_name` that no promotion has decided on yet, in ascending order: what the
    pipeline's promote step decides after the parallel train steps. Undecided: no
    `promotion_decision` tag, or blocked only because its model tests had not run yet
    (`model_tests_ran` false: `promote --version N` before `model-test`), which a later decision
    may change once they have."""
    versions = MlflowClient().search_model_versions(f"name = '{model_name}'")
    return [
        str(v.version)
        for v in sorted(versions, key=lambda v: int(v.version))
        if "promotion_decision" not in (v.tags or {})
        or (v.tags or {}).get("model_tests_ran") == "false"
    ]


def wait_for_alias(
    model_name: str, alias: str, timeout_s: float, poll_s: float = 5.0
) -> str | None:
    """Poll the registry until a version of `model_name` carries `alias`; None after `timeout_s`.

    MLflow being unreachable counts as "not yet" (the server may still be starting): the client
    raises MlflowException then, which `alias_version` reads as no version.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        found = alias_version(model_name, alias)
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(poll_s)


def promote(
    model_name: str, version_: str, test: pd.DataFrame, metrics: dict[str, float], gate: QualityGate
) -> Decision:
    """Give a version the alias `champion` or `challenger` (see `promotion.decide_promotion`).

    The current champion is re-scored on the candidate's test set, so the comparison is always
    on the same test data. The decision is recorded as tags on the model version.

    Args:
        model_name, version_: the registered version to decide on.
        test: the test frame the candidate was evaluated on (features, ids, labels).
        metrics: the candidate's metrics on `test` (`auc_roc`, `average_precision`).
        gate: the quality gate.

    Returns:
        The `Decision`.
    """
    from .training.evaluation import evaluate_scores

    # --8<-- [start:promote]
    client = MlflowClient()
    champion = alias_version(model_name, CHAMPION)
    champion_ap = None
    if champion is not None and champion != version_:
        champion_scores = load_model(f"models:/{model_name}/{champion}").predict_proba(test)
        champion_ap = evaluate_scores(test, champion_scores)["average_precision"]
    # Lab 07: the model tests' verdict, which the model-tests step left on the version's run.
    run_tags = version_run_tags(model_name, version_)
    tested = verdict_failures(run_tags, version_)
    decision = decide_promotion(metrics, champion_ap, gate, tested)
    if champion == version_:
        decision = Decision(CHAMPION, decision.passed_gate, "already the champion")
    if decision.alias != BLOCKED:  # a version the model tests refuse gets no alias (lab 07)
        client.set_registered_model_alias(model_name, decision.alias, version_)
    if decision.alias != CHALLENGER and alias_version(model_name, CHALLENGER) == version_:
        client.delete_registered_model_alias(model_name, CHALLENGER)
    for key, value in {
        "promotion_decision": decision.alias,
        "promotion_reason": decision.reason,
        "passed_gate": str(decision.passed_gate).lower(),
        "passed_model_tests": str(not tested).lower(),
        "model_tests_ran": str("model_tests_passed" in run_tags).lower(),
        "compared_with_champion": champion or "none",
        "promotion_rule": PROMOTION_EXERCISE.source(),  # the learner's in lab 05, or "reference"
    }.items():
        client.set_model_version_tag(model_name, version_, key, value)
    # --8<-- [end:promote]
    return decision


def version_tags(model_name: str, version_: str) -> dict[str, str]:
    """The tags of a model version (promotion_decision, passed_gate, …); {} when it does not exist."""
    try:
        return dict(MlflowClient().get_model_version(model_name, version_).tags)
    except MlflowException:
        return {}


def version_run_tags(model_name: str, version_: str) -> dict[str, str]:
    """The tags of the run that produced a model version ({} when it names no run)."""
    client = MlflowClient()
    run_id = client.get_model_version(model_name, version_).run_id
    return dict(client.get_run(run_id).data.tags) if run_id else {}


def log_model_tests(run_id: str, report: dict, tags: dict[str, str]) -> None:
    """Record a model test suite's outcome on the run it tested: the JSON `report` as the
    artifact `MODEL_TESTS_ARTIFACT` and the verdict `tags`. `MlflowClient.log_dict` writes JSON
    for a `.json` artifact file (mlflow 3.x, mlflow/tracking/client.py), through the tracking
    server's artifact proxy like the model itself."""
    MlflowClient().log_dict(run_id, report, MODEL_TESTS_ARTIFACT)
    set_run_tags(run_id, tags)


def set_run_tags(run_id: str, tags: dict[str, str]) -> None:
    """Set (or overwrite) tags on a finished run, in one request."""
    MlflowClient().log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])


def version_run(model_name: str, version_: str) -> dict:
    """The run that produced a model version: `run_id`, `run_name`, `params`, `metrics`, `tags`
    (lab 18's model card reads it).

    Raises:
        MlflowException: the version does not exist; ValueError: it names no run.
    """
    client = MlflowClient()
    run_id = client.get_model_version(model_name, version_).run_id
    if not run_id:
        raise ValueError(f"{model_name} version {version_} names no run")
    run = client.get_run(run_id)
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
    }


def log_run_documents(run_id: str, documents: dict[str, dict | str], tags: dict[str, str]) -> None:
    """Attach documents to a finished run as artifacts (a dict as JSON, a str as text) and set
    `tags`: lab 18's segment report and model card on the champion's run. `MlflowClient.log_dict`
    and `log_text` write through the tracking server's artifact proxy (mlflow 3.x,
    mlflow/tracking/client.py)."""
    client = MlflowClient()
    for path, document in documents.items():
        if isinstance(document, dict):
            client.log_dict(run_id, document, path)
        else:
            client.log_text(run_id, document, path)
    set_run_tags(run_id, tags)


def find_finished_run(experiment: str, tags: dict[str, str]) -> dict | None:
    """Return the newest finished run whose tags all match, as `{run_id, version, metrics, device}`, or None.

    Used to reuse up-to-date training results instead of training again.
    """
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return None
    query = " and ".join(
        [f"tags.{k} = '{v}'" for k, v in tags.items()] + ["attributes.status = 'FINISHED'"]
    )
    runs = mlflow.search_runs(
        [exp.experiment_id],
        filter_string=query,
        order_by=["attributes.start_time DESC"],
        max_results=20,
        output_format="list",
    )
    # A drill's broken candidate (tag `drill`) is never reused for a real run, nor the reverse.
    runs = [r for r in runs if r.data.tags.get("drill") == tags.get("drill")]
    # Nor is a tuned model's run (tag `tuning_key`, lab 14) for an untuned one, or the reverse.
    runs = [r for r in runs if r.data.tags.get("tuning_key") == tags.get("tuning_key")]
    if not runs:
        return None
    run = runs[0]
    versions = MlflowClient().search_model_versions(f"run_id = '{run.info.run_id}'")
    if not versions:
        return None
    return {
        "run_id": run.info.run_id,
        "version": str(versions[0].version),
        "metrics": dict(run.data.metrics),
        "device": run.data.tags.get("device", ""),
    }


def log_continuous_training(
    trigger: dict,
    params: dict,
    metrics: dict,
    decision: Decision,
    version: str,
    experiment: str = "continuous-training",
) -> str:
    """Record one continuous-training cycle as its own MLflow run; return the run id.

    Args:
        trigger: what started it (`source`: alert/schedule/manual, `alertname`, labels).
        params: data windows and model type.
        metrics: the challenger's test metrics.
        decision: the promotion decision; version: the challenger's model version.
    """
    mlflow.set_experiment(experiment)
    with mlflow.start_run(
        run_name=f"retrain-{trigger.get('alertname') or trigger.get('source', 'manual')}"
    ) as run:
        mlflow.set_tags({
            "trigger_source": str(trigger.get("source", "manual")),
            "trigger_alert": str(trigger.get("alertname", "")),
            "trigger_labels": str(trigger.get("labels", {}))[:5000],
            "decision": decision.alias,
            "decision_reason": decision.reason,
            "challenger_version": version,
        })  # fmt: skip
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return run.info.run_id


# --- lab 14: tuning runs and their trials ----------------------------------------------------
TUNING_TAG = "fraud_tuning"
"""Tag of the tuning experiment's runs: `parent` on a tuning run, `trial` on each trial."""


def start_tuning_run(experiment: str, run_name: str, tags: dict, params: dict) -> str:
    """Create a running tuning run (the parent of its trials) in `experiment`; return its id."""
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=run_name, tags={TUNING_TAG: "parent", **tags})
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()])
    return run.info.run_id


def finish_tuning_run(
    run_id: str, metrics: dict[str, float], tags: dict[str, str], failed: bool = False
) -> None:
    """Record a tuning run's outcome (`metrics`, `tags`) and end it (FINISHED, or FAILED)."""
    client = MlflowClient()
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()],
    )
    client.set_terminated(run_id, "FAILED" if failed else "FINISHED")


def trial_logger(
    tracking_uri: str, experiment: str, parent_run_id: str, tags: dict[str, str], max_steps: int
):
    """A Ray Tune callback that records every trial as an MLflow run nested under the tuning
    run (tag `mlflow.parentRunId`): the trial's hyper-parameters as params, each report's fold
    and mean metrics at its step (rounds or epochs), and whether ASHA stopped it early.

    Ray Tune's own `MLflowLoggerCallback` (ray 2.60, `ray/air/integrations/mlflow.py`) creates
    the runs on the driver, so the trials need no MLflow client; this subclass names the runs,
    and sends each report as one batch request with only the trial's own metrics (the base class
    sends every value Ray adds, one request each). A trial that ended before `max_steps` reports
    without failing was stopped early, by ASHA or the time budget (tag `stopped_early`).
    """
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    experiment_id = MlflowClient().get_run(parent_run_id).info.experiment_id

    class TrialLogger(MLflowLoggerCallback):
        def setup(self, *args, **kwargs):
            # The base class's setup, with the parent's experiment by id: by name it would
            # prefer MLFLOW_EXPERIMENT_ID, which `mlflow.set_experiment` leaves in the
            # environment (ray/air/_internal/mlflow.py `setup_mlflow` reads the id first).
            self.mlflow_util.setup_mlflow(
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
                experiment_id=experiment_id,
            )
            self.tags = self.tags or {}
            self._trial_runs: dict = {}
            self._last_step: dict = {}

        def log_trial_start(self, trial):
            if trial not in self._trial_runs:
                run = self.mlflow_util.start_run(
                    run_name=f"trial-{tags.get('tuned_model_type', 'model')}-{trial.trial_id}",
                    tags={**self.tags, "trial_id": trial.trial_id, "trial_name": str(trial)},
                )
                self._trial_runs[trial] = run.info.run_id
            self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=trial.config)

        def log_trial_result(self, iteration, trial, result):
            step = int(result.get("rounds") or result.get("epochs") or iteration)
            now = int(time.time() * 1000)
            metrics = [
                Metric(k, float(v), now, step)
                for k, v in result.items()
                if k.startswith(("fold", "mean_")) and isinstance(v, (int, float))
            ]
            MlflowClient().log_batch(self._trial_runs[trial], metrics=metrics)
            self._last_step[trial] = int(result.get("training_iteration", iteration))

        def log_trial_end(self, trial, failed=False):
            stopped = not failed and self._last_step.get(trial, 0) < max_steps
            MlflowClient().set_tag(self._trial_runs[trial], "stopped_early", str(stopped).lower())
            super().log_trial_end(trial, failed)

    return TrialLogger(
        tracking_uri,
        registry_uri=tracking_uri,
        experiment_name=experiment,
        tags={TUNING_TAG: "trial", "mlflow.parentRunId": parent_run_id, **tags},
    )
