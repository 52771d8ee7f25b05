"""`fraudlab tune`: search hyper-parameters on prequential folds with Ray Tune, then train the
best configuration and put it through the same registry path as every model (lab 14).

For each tuned model type: a tuning run in MLflow (experiment `tune_experiment`, run
`tune-<model>`) with one nested run per trial (`training.tune.search`, logged by
`tracking.trial_logger`); the best configuration trained on the training week, tested on the
test week, registered as a version of `fraud-detector` and through the model tests, the gate and
the promotion (`lifecycle.register_and_promote`), its run tagged `tuned=true`,
`tuning_run_id`. A model whose data, code, protocol and tuning settings are unchanged reuses
its finished tuned run (`tracking.find_finished_run`), as `fraudlab train` does.

Example:
    >>> outcomes = tune_register_promote(Settings(), ["lightgbm"])    # doctest: +SKIP
    >>> outcomes[0].training.decision.alias                            # doctest: +SKIP
    'champion'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .. import tracking
from ..config import Settings
from ..data import store
from ..training import tune
from ..training.models import TUNED_MODEL_TYPES
from ..training.split import EvaluationProtocol
from ..training.train import train
from .lifecycle import TrainingOutcome, _required, _run_key, gate_verdict, register_and_promote

Progress = Callable[[str], None]


@dataclass
class TuningOutcome:
    """What tuning one model type did.

    Attributes:
        model_type: the model family tuned.
        tuning_run_id: the MLflow tuning run (parent of the trials); for a reused model, the
            run that tuned it.
        training: the tuned model's training run, version and promotion (`reused` when nothing
            changed since it was tuned).
        search: the search's outcome; None when the model was reused.
        where: where the trials ran ("local (2 CPUs, 127.0.0.1)" or the cluster's address).
    """

    model_type: str
    tuning_run_id: str
    training: TrainingOutcome
    search: tune.SearchOutcome | None
    where: str


def parse_models(text: str | list[str]) -> list[str]:
    """The model types of `FRAUD_TUNE_MODELS`-style text ("lightgbm,mlp") or a list.

    Raises:
        ValueError: a name that is not in `TUNED_MODEL_TYPES`.
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    models = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    unknown = [m for m in models if m not in TUNED_MODEL_TYPES]
    if unknown:
        raise ValueError(
            f"cannot tune {', '.join(unknown)}; tuned models: {', '.join(TUNED_MODEL_TYPES)}"
        )
    return models


def _reusable(
    s: Settings, key: dict[str, str], protocol: EvaluationProtocol
) -> TrainingOutcome | None:
    found = tracking.find_finished_run(s.experiment, key)
    if not found:
        return None
    # As `lifecycle.reusable_run`: the gate is not part of the key, a reused run gets today's verdict.
    tracking.set_run_tags(found["run_id"], gate_verdict(s, found["metrics"]))
    return TrainingOutcome(
        found["run_id"], found["version"], found["metrics"], found["device"], True, None, protocol
    )


def tune_register_promote(
    s: Settings,
    models: list[str],
    *,
    ray_address: str | None = None,
    frame: pd.DataFrame | None = None,
    manifest: dict | None = None,
    promote: bool = True,
    force: bool = False,
    progress: Progress | None = None,
) -> list[TuningOutcome]:
    """Tune each of `models` on the validation folds, then train, register and (optionally)
    promote its best configuration.

    Args:
        s: settings (`tune_*`, the protocol, tracking URI, experiments, gate, seed, device).
        models: model types of `TUNED_MODEL_TYPES`, tuned in this order.
        ray_address: the Ray cluster (see `tune.ray_address`); None/empty: `FRAUD_RAY_ADDRESS`,
            `RAY_ADDRESS`, else a local Ray.
        frame, manifest: the features dataset and its manifest, when the caller has them.
        promote: run the model tests and decide the alias of each tuned version.
        force: tune even when an identical tuned run exists.
        progress: called with a line of text as each model is done.

    Returns:
        A `TuningOutcome` per model, in order.

    Raises:
        store.DatasetError: the features dataset or its manifest is missing.
        ValueError: an unknown model type, or a fold outside the data (`tune.fold_data`).
        LabCodeError: the learner's `prequential_folds` (lab 14) is not written yet or wrong.
        RuntimeError: every trial of a search failed.
    """
    models = parse_models(models)
    ray_address = tune.ray_address(s, ray_address)
    tune.prepare_ray(ray_address)  # before anything imports ray (a search space does)
    protocol = EvaluationProtocol.from_settings(s)
    manifest = _required(s, manifest or store.read_manifest(s.features_dir))
    tracking.configure(s.mlflow_tracking_uri, s.experiment)
    # --8<-- [start:reuse]
    folds = tune.validation_folds(s, protocol)  # the learner's (lab 14) when FRAUD_LAB_CODE has it
    plans = {}
    for model in models:
        key = {
            **_run_key(s, model, protocol, manifest),
            "tuning_key": tune.tuning_key(s, model, folds),
        }
        plans[model] = (key, None if force else _reusable(s, key, protocol))
    # --8<-- [end:reuse]
    outcomes: dict[str, TuningOutcome] = {}
    for model, (_, found) in plans.items():
        if found is not None:
            run_tags = tracking.version_run_tags(s.model_name, found.version)
            outcomes[model] = TuningOutcome(
                model, run_tags.get("tuning_run_id", ""), found, None, "reused"
            )
            if progress:
                progress(_line(s, outcomes[model]))
    todo = [m for m in models if m not in outcomes]
    if todo:
        frame = store.read_dataset(s.features_dir) if frame is None else frame
        data = tune.fold_data(frame, folds, protocol, s.tune_delta_assessment)
        with tune.ray_cluster(s, ray_address) as where:
            for model in todo:
                outcomes[model] = _tune_one(s, model, plans[model][0], folds, data, frame, protocol,
                                            manifest, where, promote)  # fmt: skip
                if progress:
                    progress(_line(s, outcomes[model]))
    return [outcomes[m] for m in models]


def _tune_one(
    s: Settings,
    model: str,
    key: dict[str, str],
    folds: list[dict],
    data: list[tune.Fold],
    frame: pd.DataFrame,
    protocol: EvaluationProtocol,
    manifest: dict,
    where: str,
    promote: bool,
) -> TuningOutcome:
    """Search, then train, register and promote one model type (see `tune_register_promote`)."""
    settings = tune.search_settings(s, model)
    parent = tracking.start_tuning_run(
        s.tune_experiment,
        f"tune-{model}",
        tags={
            "tuned_model_type": model,
            "tuning_key": key["tuning_key"],
            "data_digest": key["data_digest"],
            "code_digest": key["code_digest"],
            "protocol": key["protocol"],
            "folds_source": tune.FOLDS_EXERCISE.source(),
            "ray_address": where,
            "git_commit": tracking.git_commit(),
        },
        params={
            **settings,
            **{f"fold{i}_{k}": v.isoformat() for i, f in enumerate(folds) for k, v in f.items()},
        },
    )
    try:
        # --8<-- [start:tune-one]
        logger = tracking.trial_logger(
            s.mlflow_tracking_uri,
            s.tune_experiment,
            parent,
            {"tuned_model_type": model},
            max_steps=tune.max_steps(s, model),
        )
        found = tune.search(model, data, s, callbacks=[logger], storage_path=tune.local_storage(s))
        # The best configuration, trained on the training week and tested on the test week only now.
        result = train(frame, model, protocol, seed=s.seed, device=s.device,
                       hyperparameters=found.hyperparameters)  # fmt: skip
        tracking.configure(s.mlflow_tracking_uri, s.experiment)
        out = register_and_promote(
            s,
            result,
            protocol,
            manifest,
            promote=promote,
            tags={
                "tuned": "true",
                "tuning_run_id": parent,
                "tuning_key": key["tuning_key"],
                "mlflow.runName": f"{model}-tuned",
            },
        )
        # --8<-- [end:tune-one]
    except BaseException:
        tracking.finish_tuning_run(parent, {}, {}, failed=True)
        raise
    verdict = gate_verdict(s, out.metrics)
    decision = (
        {"promotion_decision": out.decision.alias, "promotion_reason": out.decision.reason}
        if out.decision is not None
        else {"promotion_decision": "undecided", "promotion_reason": "not promoted (--no-promote)"}
    )
    tracking.finish_tuning_run(
        parent,
        {
            **{f"best_{k}": v for k, v in found.validation.items() if k.startswith("mean_")},
            "trials_finished": found.trials,
            "trials_stopped_early": found.stopped_early,
            "trials_errored": found.errored,
            "trials_per_minute": found.trials_per_minute,
            "search_seconds": found.seconds,
            **{f"test_{k}": v for k, v in out.metrics.items()},
        },
        {
            "best_trial_id": found.best_trial_id,
            "best_hyperparameters": str(found.hyperparameters),
            "tuned_run_id": out.run_id,
            "tuned_version": out.version,
            **verdict,
            **decision,
        },
    )
    return TuningOutcome(model, parent, out, found, where)


def _line(s: Settings, o: TuningOutcome) -> str:
    """One line of text about a tuned model, as `fraudlab tune` and the demo print it."""
    m = o.training.metrics
    test = (
        f"test week AUC {m['auc_roc']:.4f} AP {m['average_precision']:.4f} "
        f"CP@{s.top_k} {m['card_precision_top_k']:.4f}"
    )
    if o.search is None:
        return f"tune {o.model_type}: reused tuned run {o.training.run_id} (version {o.training.version}), {test}"
    f = o.search
    v = f.validation
    what = (
        f"→ {o.training.decision.alias} ({o.training.decision.reason})"
        if o.training.decision is not None
        else "(not promoted)"
    )
    return (
        f"tune {o.model_type}: {f.trials} trials ({f.stopped_early} stopped early by ASHA) on "
        f"{o.where} in {f.seconds:.0f} s ({f.trials_per_minute:.1f} trials/min); best on "
        f"{s.tune_folds} folds: AP {v['mean_average_precision']:.4f} AUC {v['mean_auc_roc']:.4f} "
        f"CP@{s.top_k} {v['mean_card_precision_top_k']:.4f} with {f.hyperparameters}; {test}, "
        f"version {o.training.version} {what}"
    )


def describe(s: Settings, outcome: TuningOutcome) -> str:
    """`_line`: a tuned model's outcome in one line of text."""
    return _line(s, outcome)
