"""A model's life in the registry: train → register → model tests → promote, and the model tests
and promotion of what is there.

`train_register_promote` is the one path a new model version takes, whoever asks for it:
`fraudlab train` (and the pipeline's train steps), the demo, and continuous training.

Example:
    >>> out = train_register_promote(Settings(), "logistic_regression")   # doctest: +SKIP
    >>> out.decision.alias                                                 # doctest: +SKIP
    'champion'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from .. import tracking
from ..config import Settings
from ..data import store
from ..training import model_tests
from ..training.evaluation import evaluate_scores
from ..training.export import can_export
from ..training.model_tests import BROKEN_CANDIDATE, BatchScaledModel, ModelTest, run_model_tests
from ..training.models import select_device
from ..training.promotion import CHAMPION, GATE_EXERCISE, Decision, QualityGate
from ..training.split import EvaluationProtocol
from ..training.train import TrainResult, score, train


class NothingToPromoteError(RuntimeError):
    """The registered model has no version."""


@dataclass
class TrainingOutcome:
    """What `train_register_promote` did.

    Attributes:
        run_id: the MLflow run that trained (or, when `reused`, the earlier identical run).
        version: the registered model version.
        metrics: test-week metrics (`evaluate_scores` plus `fit_seconds`).
        device: where the model trained ("cpu" or "cuda").
        reused: True when an identical finished run was found and nothing trained.
        decision: the alias decision, or None (not promoted, or reused).
        protocol: the evaluation protocol the model was trained and tested on.
    """

    run_id: str
    version: str
    metrics: dict[str, float]
    device: str
    reused: bool
    decision: Decision | None
    protocol: EvaluationProtocol


def train_register_promote(
    s: Settings,
    model: str,
    *,
    protocol: EvaluationProtocol | None = None,
    frame: pd.DataFrame | None = None,
    manifest: dict | None = None,
    promote: bool = True,
    force: bool = False,
    tags: dict[str, str] | None = None,
    broken: bool = False,
    feedback: pd.DataFrame | None = None,
) -> TrainingOutcome:
    """Train one model, log it to MLflow, register a version and (optionally) decide its alias,
    after the model test suite (lab 07) has tested it.

    A finished run with the same data digest, model type, protocol, seed and code is reused
    instead of training again, unless `force`.

    Args:
        s: settings (tracking URI, experiment, model name, seed, device, gate).
        model: one of `training.models.MODEL_TYPES`.
        protocol: the windows to train and test on; default `EvaluationProtocol.from_settings(s)`
            (continuous training passes its most recent labelled window).
        frame, manifest: the features dataset and its manifest, when the caller has them.
        promote: decide the alias (champion/challenger) through the quality gate.
        force: train even when an identical run exists.
        tags: more tags for the training run (e.g. what triggered it).
        broken: the lab 07 drill: register a deliberately broken candidate
            (`model_tests.BatchScaledModel` around the trained model, run tag
            `drill=broken-candidate`), which passes the quality gate and fails the model tests.
        feedback: reviewed cases that join the training week (lab 18; `training.train.train`).

    Returns:
        A `TrainingOutcome`.

    Raises:
        store.DatasetError: if the features dataset or its manifest is missing.
        ValueError: unknown model type, empty windows (see `training.train.train`).
    """
    protocol = protocol or EvaluationProtocol.from_settings(s)
    manifest = _required(s, manifest or store.read_manifest(s.features_dir))
    found = None if force or broken else reusable_run(s, model, protocol, manifest)
    if found:
        return found
    if frame is None:
        frame = store.read_dataset(s.features_dir)
    result = train(frame, model, protocol, seed=s.seed, device=s.device, feedback=feedback)
    if broken:
        result = break_candidate(result, protocol)
        tags = {**(tags or {}), "drill": BROKEN_CANDIDATE}
    return register_and_promote(s, result, protocol, manifest, promote=promote, tags=tags)


def break_candidate(result: TrainResult, protocol: EvaluationProtocol) -> TrainResult:
    """The lab 07 drill's candidate: `result`'s model wrapped in `BatchScaledModel`, its metrics
    evaluated again (the same ranking on the test week: the quality gate cannot tell)."""
    model = BatchScaledModel(result.model)
    scores = score(model, result.test)
    metrics = {
        **evaluate_scores(result.test, scores, k=protocol.top_k),
        "fit_seconds": result.metrics.get("fit_seconds", 0.0),
    }
    return replace(result, model=model, metrics=metrics, test_scores=scores)


def _required(s: Settings, manifest: dict | None) -> dict:
    """The features dataset's manifest.

    Raises:
        store.DatasetError: if there is none.
    """
    if manifest is None:
        raise store.DatasetError(f"{s.features_dir} has no manifest: run `fraudlab features` first")
    return manifest


def _run_key(s: Settings, model: str, protocol: EvaluationProtocol, manifest: dict | None) -> dict:
    """The tags that identify a training run: data, model type, protocol and seed, code, device.

    Raises:
        store.DatasetError: if the features dataset has no manifest.
    """
    # --8<-- [start:run-key]
    return {
        "data_digest": _required(s, manifest)["digest"],
        "model_type": model,
        "protocol": f"{protocol.key}/seed{s.seed}",
        "code_digest": tracking.code_digest(),
        # The device the run trains on: a CPU run is not reused for `--device cuda` (the MLP only:
        # the forest and the regression train on the CPU whatever the setting).
        "device": select_device(s.device).type if model == "mlp" else "cpu",
    }
    # --8<-- [end:run-key]


def gate_verdict(s: Settings, metrics: dict[str, float]) -> dict[str, str]:
    """The run tags of the quality gate's verdict on a run's own metrics: `passed_gate`
    (true/false), `gate_failures` (its sentences, or "none") and `quality_gate` (which gate:
    "reference", or the learner's file in lab 06, `GATE_EXERCISE.source`). The train step records
    them, so a run says whether it may be promoted before the promote step decides.

    Raises:
        LabCodeError: the learner's gate (FRAUD_LAB_CODE) does not import or is not written yet.
    """
    failures = QualityGate.from_settings(s).failures(metrics)
    return {
        "passed_gate": str(not failures).lower(),
        "gate_failures": "; ".join(failures) or "none",
        "quality_gate": GATE_EXERCISE.source(),
    }


def reusable_run(
    s: Settings, model: str, protocol: EvaluationProtocol, manifest: dict | None
) -> TrainingOutcome | None:
    """The outcome of a finished run with the same key (`_run_key`), or None: nothing to train.

    Raises:
        store.DatasetError: if the features dataset has no manifest.
    """
    tracking.configure(s.mlflow_tracking_uri, s.experiment)
    found = tracking.find_finished_run(s.experiment, _run_key(s, model, protocol, manifest))
    if not found:
        return None
    # The gate is not part of the run key (it changes no model): a reused run gets today's verdict.
    tracking.set_run_tags(found["run_id"], gate_verdict(s, found["metrics"]))
    return TrainingOutcome(
        found["run_id"],
        found["version"],
        found["metrics"],
        found["device"],
        reused=True,
        decision=None,
        protocol=protocol,
    )


def register_and_promote(
    s: Settings,
    result: TrainResult,
    protocol: EvaluationProtocol,
    manifest: dict | None,
    *,
    promote: bool = True,
    tags: dict[str, str] | None = None,
) -> TrainingOutcome:
    """Log a trained model's run, register a version and (optionally) decide its alias: the part
    of `train_register_promote` after `train`, for callers that train elsewhere (the demo trains
    the next model while this one is logged).

    Raises:
        store.DatasetError: if the features dataset has no manifest.
    """
    key = _run_key(s, str(result.params["model_type"]), protocol, manifest)
    tracking.configure(s.mlflow_tracking_uri, s.experiment)
    run_id, version = tracking.log_training_run(
        result,
        s.model_name,
        key["data_digest"],
        {
            "protocol": key["protocol"],
            "code_digest": key["code_digest"],
            **gate_verdict(s, result.metrics),
            **(tags or {}),
        },
        # NOTE: ONNX has no operator for the drill's batch scaling: it serves natively (and so
        # does a tuned LightGBM, lab 14: no converter installed).
        compiled=not isinstance(result.model, BatchScaledModel) and can_export(result.model),
    )
    decision = None
    if promote:  # the model tests first (lab 07): the promotion reads their verdict
        model_test_version(s, version, result.test)
        decision = tracking.promote(
            s.model_name, version, result.test, result.metrics, QualityGate.from_settings(s)
        )
    return TrainingOutcome(
        run_id, version, result.metrics, result.device, False, decision, protocol
    )


def promote_version(
    s: Settings, version: str | None = None, test: pd.DataFrame | None = None
) -> tuple[str, dict[str, float], Decision]:
    """Evaluate a registered version on the test week and decide its alias.

    Args:
        s: settings (protocol dates, model name, tracking URI, gate).
        version: the version to decide on; default the latest.
        test: the test week of the features dataset, when the caller has it already.

    Returns:
        `(version, metrics on the test set, decision)`.

    Raises:
        NothingToPromoteError: if the model has no version.
        store.DatasetError: if the features dataset is missing.
    """
    tracking.configure(s.mlflow_tracking_uri)
    version = version or tracking.latest_version(s.model_name)
    if version is None:
        raise NothingToPromoteError(
            f"model {s.model_name} has no registered version: run `fraudlab train` first"
        )
    protocol = EvaluationProtocol.from_settings(s)
    if test is None:
        _, test = protocol.split(store.read_dataset(s.features_dir))
    model = tracking.load_model(f"models:/{s.model_name}/{version}")
    metrics = evaluate_scores(test, model.predict_proba(test), k=protocol.top_k)
    decision = tracking.promote(s.model_name, version, test, metrics, QualityGate.from_settings(s))
    return version, metrics, decision


@dataclass
class ModelTestOutcome:
    """What `model_test_version` found: the version, its run, the suite's results and its report."""

    version: str
    run_id: str
    results: list[ModelTest]
    report: dict

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


# --8<-- [start:test-version]
def model_test_version(
    s: Settings, version: str | None = None, test: pd.DataFrame | None = None
) -> ModelTestOutcome:
    """Run the model test suite on a registered version and record it on the version's run: the
    report as the artifact `model_tests/report.json`, the verdict as tags (`model_tests_passed`,
    `model_test_failures`, `model_tests`), which the promotion reads.

    Args:
        s: settings (protocol dates, model name, tracking URI).
        version: the version to test; default the latest.
        test: the candidate's test week; default the protocol's test week of the features dataset.

    Returns:
        A `ModelTestOutcome`.

    Raises:
        NothingToPromoteError: if the model has no version.
        store.DatasetError: if the features dataset is missing.
        LabCodeError: the learner's slice test (lab 07) is not written yet or raised.
    """
    tracking.configure(s.mlflow_tracking_uri)
    version = version or tracking.latest_version(s.model_name)
    if version is None:
        raise NothingToPromoteError(
            f"model {s.model_name} has no registered version: run `fraudlab train` first"
        )
    if test is None:
        _, test = EvaluationProtocol.from_settings(s).split(store.read_dataset(s.features_dir))
    model = tracking.load_model(f"models:/{s.model_name}/{version}")
    results = run_model_tests(model.predict_proba, test)
    facts = {"model": s.model_name, "version": version, "run_id": model.run_id, "rows": len(test)}
    report = model_tests.report(results, **facts)
    tracking.log_model_tests(model.run_id, report, model_tests.run_tags(results))
    return ModelTestOutcome(version, model.run_id, results, report)
    # --8<-- [end:test-version]


def model_test_undecided(s: Settings) -> list[ModelTestOutcome]:
    """Test, in version order, every version no promotion has decided on yet: the pipeline's
    model-tests step, between the train steps and promote. A champion promoted before the model
    tests existed (its run has no verdict) is tested too, once, so its record says how it
    behaves. The test week is read once.

    Raises:
        store.DatasetError: if the features dataset is missing.
    """
    tracking.configure(s.mlflow_tracking_uri)
    versions = tracking.undecided_versions(s.model_name)
    champion = tracking.alias_version(s.model_name, CHAMPION)
    if champion and champion not in versions:
        if "model_tests_passed" not in tracking.version_run_tags(s.model_name, champion):
            versions = sorted([*versions, champion], key=int)
    if not versions:
        return []
    _, test = EvaluationProtocol.from_settings(s).split(store.read_dataset(s.features_dir))
    return [model_test_version(s, v, test) for v in versions]


def promote_undecided(s: Settings) -> list[tuple[str, dict[str, float], Decision]]:
    """Decide, in version order, every version no promotion has decided on yet: the pipeline's
    promote step after its parallel train steps. The test week is read once for all of them.

    Returns:
        `(version, metrics, decision)` per version; empty when every version is decided.

    Raises:
        store.DatasetError: if the features dataset is missing.
    """
    tracking.configure(s.mlflow_tracking_uri)
    versions = tracking.undecided_versions(s.model_name)
    if not versions:
        return []
    _, test = EvaluationProtocol.from_settings(s).split(store.read_dataset(s.features_dir))
    return [promote_version(s, v, test) for v in versions]
