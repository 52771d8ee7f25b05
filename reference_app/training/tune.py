"""Hyper-parameter search with Ray Tune on prequential validation folds (lab 14).

Model selection never looks at the test week: each configuration trains on the folds of
`prequential_folds` — training weeks before the protocol's training week, each followed by the
usual delay and a validation week — and is ranked by its mean average precision over the folds
(Fraud Detection Handbook, ch. 5.2 "prequential validation" and ch. 5.3 "model selection").
An early-stopping scheduler (ASHA: Li et al., "A System for Massively Parallel Hyperparameter
Tuning", MLSys 2020) stops the configurations that trail their peers: LightGBM reports after
each block of boosting rounds, the MLP after each epoch. Only the best configuration is then
trained on the training week and tested on the test week (`orchestration.tuning`).

Ray runs locally on this machine's cores, bound to 127.0.0.1 (`ray_cluster`), or connects to
an existing cluster: `--ray-address`, `FRAUD_RAY_ADDRESS` or `RAY_ADDRESS`, which a KubeRay
RayJob's driver has. The driver builds the folds and ships them to the trials through Ray's
object store, so workers need neither the dataset nor MLflow.

Example:
    >>> folds = prequential_folds(dt.date(2018, 7, 25), 4, 7, 7, 7)
    >>> folds[0]["valid_start"], folds[0]["valid_end"]
    (datetime.date(2018, 7, 25), datetime.date(2018, 7, 31))
    >>> with ray_cluster(Settings()):                                   # doctest: +SKIP
    ...     found = search("lightgbm", fold_data(frame, folds, protocol, 7), Settings())
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Settings
from ..features import FEATURE_NAMES
from ..labcode import Exercise, LabCodeError
from .evaluation import card_precision_top_k
from .split import EvaluationProtocol, split_train_test

# NOTE: no torch here (models.py imports it): each Ray worker imports this module to run a
# trial, and a LightGBM trial needs neither torch nor the MLP (`mlp_trial` imports them).

FOLDS_EXERCISE = Exercise(lab=14, module="folds", function="prequential_folds")
"""Lab 14: the learner's `prequential_folds` (labs/14-distributed-training-ray/starter/folds.py)
stands in for this module's when `FRAUD_LAB_CODE` has it (`labcode`): `validation_folds` asks
for it, so the tuning validates on the learner's folds (ConfigMap `lab-code-14` on the RayJob's
driver)."""

METRIC = "mean_average_precision"
"""What the search maximises: average precision, the quality gate's and the promotion's metric,
averaged over the validation folds."""
FOLD_METRICS = ("auc_roc", "average_precision", "card_precision_top_k")
"""The handbook's three metrics, reported per fold (`fold{i}_<name>`) and as `mean_<name>`."""
STEP_NAME = {"lightgbm": "rounds", "mlp": "epochs"}
"""What one reported step counts, per model type (the reported value: rounds or epochs so far)."""


# --8<-- [start:folds]
def prequential_folds(
    train_start: dt.date,
    n_folds: int,
    delta_train: int,
    delta_delay: int,
    delta_assessment: int,
) -> list[dict[str, dt.date]]:
    """The validation folds before the protocol's training week, newest first.

    Fold 0's validation period ends on the last day of the protocol's training period (with the
    default 7-day periods it is the training week itself), whose labels are all known before the
    test week starts; its training period ends `delta_delay` days before its validation starts.
    Every older fold is the same window moved `delta_assessment` days back (Fraud Detection
    Handbook, ch. 5.2 "prequential validation"; ch. 5.3 starts the validation folds' training
    `delta_delay + delta_assessment` days before the test protocol's training period).

    Args:
        train_start: first day of the protocol's training week (`Settings.train_start`).
        n_folds: number of folds (`Settings.tune_folds`).
        delta_train, delta_delay: the protocol's training and delay lengths, in days.
        delta_assessment: days between two folds, and the length of each validation period.

    Returns:
        `n_folds` dicts, newest first: `train_start` (the fold's first training day),
        `valid_start` and `valid_end` (its validation period, both ends included).
    """
    newest = train_start - dt.timedelta(days=delta_delay + delta_assessment)
    folds = []
    for fold in range(n_folds):
        start = newest - dt.timedelta(days=fold * delta_assessment)
        valid_start = start + dt.timedelta(days=delta_train + delta_delay)
        valid_end = valid_start + dt.timedelta(days=delta_assessment - 1)
        folds.append({"train_start": start, "valid_start": valid_start, "valid_end": valid_end})
    return folds


# --8<-- [end:folds]


def validation_folds(settings: Settings, protocol: EvaluationProtocol) -> list[dict[str, dt.date]]:
    """`prequential_folds` (or the learner's, lab 14) for `protocol` and the tuning settings
    (`tune_folds`, `tune_delta_assessment`), checked before anything trains on them.

    Returns:
        The folds, newest first (see `prequential_folds`).

    Raises:
        LabCodeError: the function is not written yet, does not import, or returns folds that are
            not `tune_folds` protocol windows (training, delay, `tune_delta_assessment` days of
            validation), or that validate on a day of the delay period or the test week.
    """
    # --8<-- [start:validation-folds]
    folds = FOLDS_EXERCISE.implementation(prequential_folds)(
        protocol.train_start,
        settings.tune_folds,
        protocol.delta_train,
        protocol.delta_delay,
        settings.tune_delta_assessment,
    )
    test_start = protocol.train_start + dt.timedelta(
        days=protocol.delta_train + protocol.delta_delay
    )
    # --8<-- [end:validation-folds]
    keys = ("train_start", "valid_start", "valid_end")
    if not isinstance(folds, list) or len(folds) != settings.tune_folds:
        got = f"{len(folds)} folds" if isinstance(folds, list) else f"a {type(folds).__name__}"
        raise LabCodeError(
            f"lab 14: prequential_folds returned {got}; expected a list of "
            f"{settings.tune_folds} folds"
        )
    last_known = test_start - dt.timedelta(days=protocol.delta_delay + 1)
    for i, fold in enumerate(folds):
        if not isinstance(fold, dict) or not all(isinstance(fold.get(k), dt.date) for k in keys):
            raise LabCodeError(f"lab 14: fold {i} is {fold!r}; expected dates {keys}")
        # Selection must never see the test week, nor the delay days whose labels are not all
        # known when the test week starts.
        if fold["valid_end"] > last_known:
            raise LabCodeError(
                f"lab 14: fold {i} validates up to {fold['valid_end']}, but the labels of the "
                f"days after {last_known} are not all known before the test week starts on "
                f"{test_start}: the newest fold must validate on the training week at the latest"
            )
        expected_valid = fold["train_start"] + dt.timedelta(
            days=protocol.delta_train + protocol.delta_delay
        )
        expected_end = expected_valid + dt.timedelta(days=settings.tune_delta_assessment - 1)
        if (fold["valid_start"], fold["valid_end"]) != (expected_valid, expected_end):
            raise LabCodeError(
                f"lab 14: fold {i} validates {fold['valid_start']} … {fold['valid_end']}; a fold "
                f"training from {fold['train_start']} validates {expected_valid} … {expected_end} "
                "(training days, then the delay, then delta_assessment days)"
            )
    return [{k: fold[k] for k in keys} for fold in folds]


@dataclass(frozen=True)
class Fold:
    """One validation fold's data, as the trials receive it (through Ray's object store).

    Attributes:
        train_X: (n_train, 15) float64 features in `FEATURE_NAMES` order; train_y: (n_train,) 0/1.
        valid_X: (n_valid, 15) float64 features; valid: the validation rows' `TX_DATETIME`,
            `CUSTOMER_ID` and `TX_FRAUD` (what `evaluate_scores` needs for CP@k).
    """

    train_X: np.ndarray
    train_y: np.ndarray
    valid_X: np.ndarray
    valid: pd.DataFrame


def fold_data(
    features: pd.DataFrame,
    folds: list[dict[str, dt.date]],
    protocol: EvaluationProtocol,
    delta_assessment: int,
) -> list[Fold]:
    """Split the features dataset into each fold's training and validation sets: the protocol's
    split (`split_train_test`: known compromised cards removed from validation) with the fold's
    first training day and `delta_assessment` validation days.

    Raises:
        ValueError: a fold starts before the first day of the data, or its validation period
            has no fraud (too few days simulated for this many folds).
    """
    first_day = pd.to_datetime(features["TX_DATETIME"]).min().date()
    out = []
    for i, fold in enumerate(folds):
        if fold["train_start"] < first_day:
            raise ValueError(
                f"validation fold {i} trains from {fold['train_start']}, before the first "
                f"transaction day {first_day}: use fewer folds (--folds, FRAUD_TUNE_FOLDS) or a "
                "later training week (FRAUD_TRAIN_START)"
            )
        train, valid = split_train_test(
            features,
            fold["train_start"],
            protocol.delta_train,
            protocol.delta_delay,
            delta_assessment,
        )
        if valid["TX_FRAUD"].nunique() < 2 or train["TX_FRAUD"].nunique() < 2:
            raise ValueError(
                f"validation fold {i} ({fold['train_start']} … {fold['valid_end']}) lacks frauds "
                "or genuine transactions: use fewer folds (--folds, FRAUD_TUNE_FOLDS)"
            )
        out.append(
            Fold(
                train_X=train[FEATURE_NAMES].to_numpy(dtype=np.float64),
                train_y=train["TX_FRAUD"].to_numpy(dtype=np.int64),
                valid_X=valid[FEATURE_NAMES].to_numpy(dtype=np.float64),
                valid=valid[["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD"]].reset_index(drop=True),
            )
        )
    return out


# --8<-- [start:spaces]
def search_space(model_type: str) -> dict:
    """Ray Tune's search space of a model type, in the estimator's parameter names
    (`models.make_model(..., hyperparameters=...)`). Ranges around the handbook's grids
    (ch. 5.3: depth, number of trees, learning rate; ch. 7.2: hidden sizes, dropout, lr).

    Raises:
        ValueError: for a model type the tuning does not search (`TUNED_MODEL_TYPES`).
    """
    from ray import tune

    if model_type == "lightgbm":
        # max_bin (histogram bins per feature; LightGBM's default 255): on the default data the
        # validation folds favour fine bins (best mean fold AP 0.691–0.698 with 4095 bins,
        # 0.667–0.693 with 1023, 0.665–0.685 with 255–511, in 15 random configurations).
        return {
            "learning_rate": tune.loguniform(0.01, 0.2),
            "num_leaves": tune.lograndint(4, 64),
            "min_child_samples": tune.lograndint(10, 1000),
            "subsample": tune.uniform(0.5, 1.0),
            "colsample_bytree": tune.uniform(0.5, 1.0),
            "reg_lambda": tune.loguniform(1e-3, 10.0),
            "max_bin": tune.choice([255, 1023, 4095]),
        }
    if model_type == "mlp":
        return {
            "hidden": tune.choice([(64, 32), (128, 64), (256, 128), (128, 128, 64)]),
            "lr": tune.loguniform(3e-4, 3e-3),
            "weight_decay": tune.loguniform(1e-6, 1e-3),
            "dropout": tune.uniform(0.0, 0.4),
            "batch_size": tune.choice([128, 256, 512]),
        }
    raise ValueError(f"no search space for {model_type!r}; tuned models: {', '.join(TRIALS)}")


# --8<-- [end:spaces]


def max_steps(settings: Settings, model_type: str) -> int:
    """Reports of a trial that runs to the end: LightGBM's blocks of rounds, or the MLP's epochs."""
    if model_type == "lightgbm":
        return max(1, settings.tune_lightgbm_max_rounds // settings.tune_lightgbm_block_rounds)
    return settings.tune_mlp_max_epochs


def fold_metrics(
    folds: list[Fold], scores: Callable[[int, np.ndarray], np.ndarray], k: int
) -> dict:
    """Each fold's AUC ROC, AP and CP@k (`fold{i}_<metric>`) and their means (`mean_<metric>`).

    Args:
        folds: the validation folds.
        scores: `(fold index, valid_X) → (n_valid,)` fraud scores of that fold's model.
        k: the k of CP@k.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, float] = {}
    for i, fold in enumerate(folds):
        # `evaluation.evaluate_scores` without the perfect model's CP@k (fixed per fold).
        y, s = fold.valid["TX_FRAUD"].to_numpy(), scores(i, fold.valid_X)
        m = {
            "auc_roc": float(roc_auc_score(y, s)),
            "average_precision": float(average_precision_score(y, s)),
            "card_precision_top_k": card_precision_top_k(fold.valid, s, k)[0],
        }
        out.update({f"fold{i}_{name}": m[name] for name in FOLD_METRICS})
    for name in FOLD_METRICS:
        out[f"mean_{name}"] = float(np.mean([out[f"fold{i}_{name}"] for i in range(len(folds))]))
    return out


# --8<-- [start:trials]
def lightgbm_boosters(config: dict, folds: list[Fold], seed: int) -> list:
    """One untrained LightGBM booster per fold, on one thread, with the same settings as the
    model the best configuration becomes (`models.lightgbm_classifier`): `booster.update()`
    grows one round.

    Args:
        config: LightGBM's scikit-learn names (`search_space("lightgbm")`).
        folds: the validation folds (`fold_data`).
        seed: the random seed (bagging, feature subsampling).
    """
    import lightgbm as lgb

    # LightGBM's core reads the scikit-learn names as aliases (lightgbm 4.7 `lightgbm/basic.py`
    # _ConfigAliases: min_child_samples → min_data_in_leaf, subsample → bagging_fraction,
    # colsample_bytree → feature_fraction, reg_lambda → lambda_l2, subsample_freq → bagging_freq).
    params = {
        **config,
        "objective": "binary",
        "subsample_freq": 1,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    # The Dataset gets the parameters too: `Booster(params, train_set)` builds the histograms
    # with the Dataset's own parameters (lightgbm 4.7 basic.py `Booster.__init__` calls
    # `train_set.construct()`, then copies the Dataset's params), so max_bin given only to the
    # Booster would be ignored; `lgb.train` does the same (`train_set._update_params(params)`).
    return [
        lgb.Booster(params=params, train_set=lgb.Dataset(f.train_X, f.train_y, params=params))
        for f in folds
    ]


def lightgbm_trial(config: dict, folds: list[Fold], fixed: dict) -> None:
    """A Ray Tune trial: one LightGBM booster per fold, grown `block_rounds` rounds at a time;
    after each block the fold metrics go to Ray Tune (`tune.report`), whose scheduler may stop
    the trial there. One thread: a trial holds one CPU.

    Args:
        config: the sampled hyper-parameters (`search_space("lightgbm")`).
        folds: the validation folds (`fold_data`).
        fixed: `seed`, `top_k`, `block_rounds`, `steps`.
    """
    from ray import tune

    boosters = lightgbm_boosters(config, folds, fixed["seed"])
    block = fixed["block_rounds"]
    # Raw scores (log-odds) summed block by block: each report scores only the block's new trees
    # (`Booster.predict` start_iteration/num_iteration). The three metrics are rank-based, so
    # log-odds rank the validation rows exactly as the probabilities do.
    raw = [np.zeros(len(f.valid_X)) for f in folds]
    for step in range(1, fixed["steps"] + 1):
        for booster, fold, total in zip(boosters, folds, raw, strict=True):
            for _ in range(block):
                booster.update()
            total += booster.predict(
                fold.valid_X,
                start_iteration=(step - 1) * block,
                num_iteration=block,
                raw_score=True,
            )
        metrics = fold_metrics(folds, lambda i, X: raw[i], fixed["top_k"])
        tune.report({**metrics, "rounds": step * block})


def mlp_trial(config: dict, folds: list[Fold], fixed: dict) -> None:
    """A Ray Tune trial: one MLP per fold (`TorchMLPClassifier.fit_epochs`), an epoch of each
    at a time; after each epoch the fold metrics go to Ray Tune, whose scheduler may stop the
    trial there.

    Args:
        config: the sampled hyper-parameters (`search_space("mlp")`).
        folds: the validation folds (`fold_data`).
        fixed: `seed`, `top_k`, `steps` (the most epochs), `device`.
    """
    from ray import tune

    from .models import make_model

    hp = {**config, "epochs": fixed["steps"]}
    models = [make_model("mlp", fixed["seed"], fixed["device"], hyperparameters=hp) for _ in folds]
    epochs = [m.fit_epochs(f.train_X, f.train_y) for m, f in zip(models, folds, strict=True)]
    for step in range(1, fixed["steps"] + 1):
        for running in epochs:
            next(running)
        metrics = fold_metrics(folds, lambda i, X: models[i].predict_proba(X)[:, 1], fixed["top_k"])
        tune.report({**metrics, "epochs": step})


# --8<-- [end:trials]
TRIALS = {"lightgbm": lightgbm_trial, "mlp": mlp_trial}


@dataclass
class SearchOutcome:
    """What a search found.

    Attributes:
        model_type: the model family searched.
        hyperparameters: the best configuration, with its best step as `n_estimators` (LightGBM)
            or `epochs` (MLP): what the final model trains with.
        validation: the best (trial, step)'s fold and mean metrics.
        trials: trials that reported at least once; stopped_early: those ASHA stopped before
            the last step; errored: trials that failed.
        seconds: the search's wall time.
        best_trial_id: Ray Tune's id of the best trial.
        configs: every trial's sampled hyper-parameters, in trial order.
    """

    model_type: str
    hyperparameters: dict
    validation: dict[str, float]
    trials: int
    stopped_early: int
    errored: int
    seconds: float
    best_trial_id: str
    configs: list[dict]

    @property
    def trials_per_minute(self) -> float:
        return self.trials / self.seconds * 60 if self.seconds > 0 else 0.0


def search_settings(settings: Settings, model_type: str) -> dict:
    """The settings a search depends on (part of the tuning's cache key, and the tuning run's
    params)."""
    return {
        "model_type": model_type,
        "trials": settings.tune_trials,
        "concurrency": settings.tune_concurrency,
        "folds": settings.tune_folds,
        "delta_assessment": settings.tune_delta_assessment,
        "time_budget_s": settings.tune_time_budget_s,
        "asha_grace_period": settings.tune_asha_grace_period,
        "asha_reduction_factor": settings.tune_asha_reduction_factor,
        "max_steps": max_steps(settings, model_type),
        **(
            {"block_rounds": settings.tune_lightgbm_block_rounds}
            if model_type == "lightgbm"
            else {}
        ),
        "seed": settings.seed,
        "search_space": json.dumps(_space_text(model_type), sort_keys=True),
    }


def _space_text(model_type: str) -> dict[str, str]:
    """The search space as stable text, e.g. `Float(0.02, 0.2, LogUniform)`, `Categorical([128, 256])`."""
    out = {}
    for name, domain in search_space(model_type).items():
        if hasattr(domain, "categories"):
            out[name] = f"Categorical({list(domain.categories)})"
        else:
            sampler = type(domain.get_sampler()).__name__
            out[name] = f"{type(domain).__name__}({domain.lower}, {domain.upper}, {sampler})"
    return out


def tuning_key(settings: Settings, model_type: str, folds: list[dict[str, dt.date]]) -> str:
    """A digest of what a search's result depends on besides the data and code (which the
    training run key holds): its settings, the fold dates and which folds function ran."""
    text = json.dumps(
        {
            **search_settings(settings, model_type),
            "folds": [{k: v.isoformat() for k, v in f.items()} for f in folds],
            "folds_source": FOLDS_EXERCISE.source(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def search(
    model_type: str,
    folds: list[Fold],
    settings: Settings,
    *,
    callbacks: list | None = None,
    storage_path: str | None = None,
) -> SearchOutcome:
    """Search `model_type`'s hyper-parameters on `folds` with Ray Tune on the connected Ray
    (`ray_cluster`): random search (`BasicVariantGenerator`, seeded) with the ASHA scheduler,
    `tune_trials` samples, `tune_concurrency` at once, one CPU each, within `tune_time_budget_s`.

    Args:
        model_type: one of `TUNED_MODEL_TYPES`.
        folds: the validation folds (`fold_data`).
        settings: the tuning settings (`tune_*`), the seed, the k of CP@k, the MLP's device.
        callbacks: Ray Tune callbacks (the MLflow trial logger).
        storage_path: where Ray Tune keeps its experiment state (None: Ray's default).

    Returns:
        A `SearchOutcome`: the best (trial, step) by `mean_average_precision`.

    Raises:
        ValueError: for a model type without a search space.
        RuntimeError: no trial reported a result (every trial failed).
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    steps = max_steps(settings, model_type)
    fixed = {
        "seed": settings.seed,
        "top_k": settings.top_k,
        "steps": steps,
        "block_rounds": settings.tune_lightgbm_block_rounds,
        "device": settings.device,
    }
    space = search_space(model_type)
    # --8<-- [start:tuner]
    scheduler = ASHAScheduler(
        time_attr="training_iteration",  # one report = one block of rounds, or one epoch
        max_t=steps,
        grace_period=min(settings.tune_asha_grace_period, steps),
        reduction_factor=settings.tune_asha_reduction_factor,
    )
    trainable = tune.with_resources(
        tune.with_parameters(TRIALS[model_type], folds=folds, fixed=fixed), {"cpu": 1}
    )
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            num_samples=settings.tune_trials,
            scheduler=scheduler,
            # Random search, seeded; it limits the trials at once itself (TuneConfig's
            # max_concurrent_trials applies to a Searcher, not to this generator: ray 2.60
            # tune/tune.py warns and ignores it).
            search_alg=BasicVariantGenerator(
                max_concurrent=settings.tune_concurrency, random_state=settings.seed
            ),
            time_budget_s=settings.tune_time_budget_s,
        ),
        run_config=tune.RunConfig(
            name=f"tune-{model_type}-{int(time.time())}",
            storage_path=storage_path,
            callbacks=callbacks or [],
            verbose=0,
        ),
    )
    started = time.perf_counter()
    grid = tuner.fit()
    # --8<-- [end:tuner]
    seconds = time.perf_counter() - started
    reported = [r for r in grid if r.metrics_dataframe is not None and len(r.metrics_dataframe)]
    if not reported:
        errors = [str(r.error) for r in grid if r.error is not None]
        raise RuntimeError(
            f"no {model_type} trial reported a result; first error: {errors[0] if errors else 'none'}"
        )
    best = grid.get_best_result(metric=METRIC, mode="max", scope="all")
    history = best.metrics_dataframe
    row = history.loc[history[METRIC].idxmax()]
    step_name = STEP_NAME[model_type]
    steps_taken = int(row[step_name])
    hyperparameters = {name: best.config[name] for name in space}
    hyperparameters["n_estimators" if model_type == "lightgbm" else "epochs"] = steps_taken
    validation = {k: float(row[k]) for k in history.columns if k.startswith(("fold", "mean_"))}
    return SearchOutcome(
        model_type=model_type,
        hyperparameters=hyperparameters,
        validation=validation,
        trials=len(reported),
        stopped_early=sum(
            int(r.metrics_dataframe["training_iteration"].max()) < steps for r in reported
        ),
        errored=sum(r.error is not None for r in grid),
        seconds=seconds,
        best_trial_id=str(best.metrics.get("trial_id", "")),
        configs=[{name: r.config[name] for name in space} for r in grid],
    )


def ray_address(settings: Settings, address: str | None = None) -> str:
    """The Ray cluster to connect to: `address`, else `FRAUD_RAY_ADDRESS`, else `RAY_ADDRESS`
    (set for a Ray job's driver, e.g. a KubeRay RayJob's entrypoint); "" for a local Ray."""
    return address or settings.ray_address or os.environ.get("RAY_ADDRESS", "")


def on_loopback(address: str) -> bool:
    """Whether a Ray address is this machine's loopback (`127.0.0.1:6379`, `localhost:6379`,
    `ray://127.0.0.1:10001`)."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost")


RAY_CONNECT_TIMEOUT_S = 5.0
"""How long `check_reachable` waits for a TCP connection to a Ray cluster's address."""


def check_reachable(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at a Ray address (`host:port` or `ray://host:port`).

    `ray.init` retries an unreachable GCS for minutes before it gives up (ray 2.60
    `gcs_rpc_server_reconnect_timeout_s`); one TCP connection tells the learner at once.
    `auto` (find a Ray started on this machine) is left to Ray.

    Raises:
        ConnectionError: the address is not host:port, or nothing accepts a connection there
            within `timeout_s` seconds.
    """
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError(f"Ray address {address!r} is not host:port (e.g. 127.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConnectionError(
            f"no Ray cluster answers at {address} ({err}); check --ray-address, "
            "FRAUD_RAY_ADDRESS or RAY_ADDRESS, or leave them empty for a local Ray"
        ) from None


def prepare_ray(address: str) -> None:
    """Environment for Ray, set before `ray` is first imported (anything that builds a search
    space imports it): for a local Ray, or a cluster on this machine's loopback,
    `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, which ray reads once, on import (ray 2.60
    `ray/_private/ray_constants.py` ENABLE_RAY_CLUSTER), so that this node's address is the
    loopback address (else ray turns 127.0.0.1 into the machine's address,
    `ray/_private/services.py` resolve_ip_for_localhost, and finds no GCS there); no usage
    report."""
    if not address or on_loopback(address):
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report over the network
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@contextmanager
def ray_cluster(settings: Settings, address: str | None = None) -> Iterator[str]:
    """Connect to Ray for the block: the cluster at `ray_address(...)`, or a local Ray of
    `ray_num_cpus` CPUs on 127.0.0.1 with no dashboard, stopped at the end.

    Local Ray binds to loopback: with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (`prepare_ray`,
    before ray is imported) Ray's node address is 127.0.0.1 (ray 2.60
    `ray/_private/services.py` get_node_ip_address: "Use loopback IP as the local IP
    address"), and with that address the GCS, the raylet and the workers' gRPC servers listen
    on 127.0.0.1 rather than 0.0.0.0 (`src/ray/rpc/grpc_server.cc` GrpcServer::Run,
    `listen_to_localhost_only`, which the GCS server and the core worker set to
    `node_ip_address == "127.0.0.1"`; the runtime env agent likewise,
    `python/ray/_private/runtime_env/agent/main.py`). Seen with `ss -ltnp` here: without the
    setting, gcs_server and raylet listened on `*`; with it, on 127.0.0.1.
    `include_dashboard=False` starts no dashboard (its HTTP server would listen on 8265). A Ray
    already initialised in this process is used as it is.

    Yields:
        Where the trials run: "local (N CPUs, 127.0.0.1)" or the cluster's address.

    Raises:
        RuntimeError: a local Ray would not be on 127.0.0.1 (ray was imported before
            `prepare_ray`); it is stopped first.
    """
    address = ray_address(settings, address)
    prepare_ray(address)
    import ray

    if ray.is_initialized():
        yield "the Ray this process is connected to"
        return
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        check_reachable(address)
        # --8<-- [start:connect]
        ray.init(address=address, **quiet)
        where = address
    else:
        ray.init(num_cpus=settings.ray_num_cpus, include_dashboard=False, **quiet)
        # --8<-- [end:connect]
        if ray.util.get_node_ip_address() != "127.0.0.1":
            found = ray.util.get_node_ip_address()
            ray.shutdown()
            raise RuntimeError(
                f"the local Ray started on {found}, not 127.0.0.1: ray was imported before "
                "training.tune.prepare_ray set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0"
            )
        where = f"local ({settings.ray_num_cpus} CPUs, 127.0.0.1)"
    try:
        yield where
    finally:
        ray.shutdown()


def local_storage(settings: Settings) -> str | None:
    """Ray Tune's experiment folder: `<state_dir>/ray` for a local data folder, else Ray's
    default (a cluster's nodes each keep their own)."""
    if "://" in settings.data_dir:
        return None
    return str(Path(settings.state_dir, "ray").resolve())
