"""Train one model on the handbook's protocol and evaluate it (no tracking here).

Example:
    >>> protocol = EvaluationProtocol.from_settings(Settings())
    >>> result = train(features, "logistic_regression", protocol, seed=0, device="cpu")  # doctest: +SKIP
    >>> result.metrics["average_precision"]                                      # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.store import frame_digest
from ..features import FEATURE_NAMES
from .evaluation import evaluate_scores
from .models import make_model
from .split import EvaluationProtocol


@dataclass
class TrainResult:
    """A fitted model and what is known about it.

    Attributes:
        model: fitted classifier with `predict_proba(X)`, X: (n, 15) in `FEATURE_NAMES` order.
        metrics: test metrics (see `evaluate_scores`) plus `fit_seconds`.
        params: model type, hyper-parameters and protocol dates.
        train_digest, test_digest: content digests of the training and test frames.
        device: where the model trained ("cpu" or "cuda").
        test: the test frame (features, ids, labels), for comparisons on the same test set.
        test_scores: (n_test,) the model's fraud probabilities on `test`.
    """

    model: object
    metrics: dict[str, float]
    params: dict[str, object]
    train_digest: str
    test_digest: str
    device: str
    test: pd.DataFrame = field(repr=False)
    test_scores: np.ndarray = field(repr=False)


def score(model, frame: pd.DataFrame) -> np.ndarray:
    """Fraud probabilities (n,) float64 of a fitted model for a frame holding `FEATURE_NAMES`."""
    return np.asarray(
        model.predict_proba(frame[FEATURE_NAMES].to_numpy(dtype=np.float64))[:, 1], dtype=np.float64
    )


def train(
    features: pd.DataFrame,
    model_type: str,
    protocol: EvaluationProtocol,
    *,
    seed: int,
    device: str,
    hyperparameters: dict | None = None,
    feedback: pd.DataFrame | None = None,
) -> TrainResult:
    """Fit `model_type` on the training week and evaluate it on the test week.

    Protocol: Fraud Detection Handbook, ch. 3.5 (split) and ch. 4 (metrics).

    Args:
        features: transactions with `FEATURE_NAMES` (output of `build_features`).
        model_type: one of `models.MODEL_TYPES` or `models.TUNED_MODEL_TYPES`.
        protocol: the windows and the k of CP@k (`EvaluationProtocol.from_settings`).
        seed: seed of the model (`Settings.seed`).
        device: "auto", "cpu" or "cuda" (used by the MLP).
        hyperparameters: settings replacing the model's defaults (`models.make_model`; the
            tuning's best configuration, lab 14).
        feedback: more training rows (lab 18: reviewed cases with the analyst's label,
            `responsible.review.reviewed_training_rows`), appended to the training week.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: unknown model type, empty windows, or a single-class test set.
    """
    # --8<-- [start:fit]
    train_df, test_df = protocol.split(features)
    if feedback is not None and len(feedback):
        train_df = pd.concat([train_df, feedback[train_df.columns]], ignore_index=True)
    model = make_model(model_type, seed=seed, device=device, hyperparameters=hyperparameters)
    trained_with = {  # the hyperparameters of the fit, before serving's n_jobs below
        k: v
        for k, v in model.get_params().items()
        if isinstance(v, (int, float, str, tuple)) and not k.startswith("steps")
    }
    started = time.perf_counter()
    model.fit(train_df[FEATURE_NAMES].to_numpy(dtype=np.float64), train_df["TX_FRAUD"].to_numpy())
    fit_seconds = time.perf_counter() - started
    if "n_jobs" in model.get_params():
        # NOTE: all cores to fit, one thread to predict: a served request scores a few rows, and
        # a thread pool per request costs more than the trees (≈ 25 ms vs ≈ 5 ms for one row).
        model.set_params(n_jobs=1)
    scores = score(model, test_df)
    metrics = {**evaluate_scores(test_df, scores, k=protocol.top_k), "fit_seconds": fit_seconds}
    # --8<-- [end:fit]
    params = {
        "model_type": model_type,
        "train_start": protocol.train_start.isoformat(),
        "delta_train": protocol.delta_train,
        "delta_delay": protocol.delta_delay,
        "delta_test": protocol.delta_test,
        "top_k": protocol.top_k,
        "seed": seed,
        "n_train": len(train_df),
        "n_test": len(test_df),
        "n_feedback": 0 if feedback is None else len(feedback),
        **{f"hp_{k}": v for k, v in trained_with.items()},
        **({"serving_n_jobs": 1} if "n_jobs" in trained_with else {}),
    }
    return TrainResult(
        model=model,
        metrics=metrics,
        params=params,
        train_digest=frame_digest(train_df[["TRANSACTION_ID", *FEATURE_NAMES, "TX_FRAUD"]]),
        test_digest=frame_digest(test_df[["TRANSACTION_ID", *FEATURE_NAMES, "TX_FRAUD"]]),
        device=getattr(model, "device_", "cpu"),
        test=test_df,
        test_scores=scores,
    )
