"""Training and promotion jobs: what `fraudlab train`, `fraudlab promote` and the demo run.

Example:
    >>> out = train_and_register(Settings(), "logistic_regression", "auto")   # doctest: +SKIP
    >>> out["decision"].alias                                                 # doctest: +SKIP
    'champion'
"""

from __future__ import annotations

from . import tracking
from .config import Settings
from .data import store
from .training.metrics import evaluate_scores
from .training.promotion import Decision, QualityGate
from .training.split import split_train_test
from .training.train import train


class NothingToPromoteError(RuntimeError):
    """The registered model has no version."""


def quality_gate(s: Settings) -> QualityGate:
    """The promotion gate configured in `s`."""
    return QualityGate(s.gate_min_auc, s.gate_min_ap)


def train_and_register(
    s: Settings,
    model: str,
    device: str,
    frame=None,
    manifest=None,
    promote: bool = True,
    force: bool = False,
) -> dict:
    """Train one model, log it to MLflow, register it and (optionally) decide its alias.

    A finished run with the same data digest, model type, protocol and code is reused instead,
    unless `force`.
    """
    tracking.configure(s.mlflow_tracking_uri, s.experiment)
    manifest = manifest or store.read_manifest(s.features_dir)
    if manifest is None:
        raise store.DatasetError(f"{s.features_dir} has no manifest: run `fraudlab features` first")
    key = {
        "data_digest": manifest["digest"],
        "model_type": model,
        "protocol": f"{s.train_start}/{s.delta_train}/{s.delta_delay}/{s.delta_test}/k{s.top_k}/seed{s.seed}",
        "code_digest": tracking.code_digest(),
    }
    found = None if force else tracking.find_finished_run(s.experiment, key)
    if found:
        return {**found, "reused": True, "decision": None}
    if frame is None:
        frame = store.read_dataset(s.features_dir)
    result = train(
        frame,
        model,
        s.train_start,
        s.delta_train,
        s.delta_delay,
        s.delta_test,
        s.top_k,
        s.seed,
        device,
    )
    run_id, version = tracking.log_training_run(
        result, s.model_name, manifest["digest"], {k: key[k] for k in ("protocol", "code_digest")}
    )
    decision = (
        tracking.promote(s.model_name, version, result.test, result.metrics, quality_gate(s))
        if promote
        else None
    )
    return {
        "run_id": run_id,
        "version": version,
        "metrics": result.metrics,
        "device": result.device,
        "reused": False,
        "decision": decision,
    }


def promote_version(
    s: Settings, version: str | None = None, test=None
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
    if test is None:
        _, test = split_train_test(
            store.read_dataset(s.features_dir),
            s.train_start,
            s.delta_train,
            s.delta_delay,
            s.delta_test,
        )
    model = tracking.load_model(f"models:/{s.model_name}/{version}")
    metrics = evaluate_scores(test, model.predict_proba(test), k=s.top_k)
    return version, metrics, tracking.promote(s.model_name, version, test, metrics, quality_gate(s))


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
    _, test = split_train_test(
        store.read_dataset(s.features_dir),
        s.train_start,
        s.delta_train,
        s.delta_delay,
        s.delta_test,
    )
    return [promote_version(s, v, test) for v in versions]
