"""`fraudlab demo`: the whole fraud system in local mode, end to end, reusing what is up to date.

# --8<-- [start:steps]
Steps: MLflow server → simulate → validate → features → train logistic regression, random forest
and MLP (each registered and promoted through the gate) → tune LightGBM with Ray Tune on
prequential folds (lab 14; registered and promoted the same way) → MLServer with the champion →
replay a test day (skew and latency) → HTML/JSON report → stop the servers it started.
# --8<-- [end:steps]

What runs at once (2 cores are enough to gain from it): a worker process forked at the start
runs the data steps while this process starts MLflow and imports the training code; then the
worker trains the MLP while a thread trains logistic regression and the forest, and this process
logs and registers each model in order as it is ready.

Example:
    >>> summary = run_demo(Settings(n_customers=500, n_terminals=1000, nb_days=140), dt.date(2018, 8, 8))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, suppress

import httpx
from rich.console import Console

from ..config import Settings
from ..data import store
from ..launchers.stack import (
    ManagedProcess,
    ServerError,
    free_port,
    port_open,
    start_mlflow,
    start_mlserver,
)
from ..training.promotion import CHALLENGER, CHAMPION
from ..training.split import EvaluationProtocol
from .pipeline import MAX_QUARANTINE, features_step, simulate_step, validate_step

DEFAULT_SCALE = (5_000, 10_000, 183)


class NoChampionError(RuntimeError):
    """No registered version has passed the quality gate."""


def reported_failures() -> tuple[type[Exception], ...]:
    """The errors `fraudlab demo` reports as a message (exit status 1) rather than a traceback.

    A function for an `except` clause, which evaluates it only when something is raised: the
    replay's module (MLflow, torch) is not imported before the demo starts.
    """
    from ..serving.replay import ReplayError

    return (store.DatasetError, ServerError, ReplayError, NoChampionError, ValueError)


def _mlflow_up(url: str) -> bool:
    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


WORKER_MODELS = {"mlp"}
"""Models the demo trains in its worker process rather than in a thread."""


def _print_step(console: Console, started: float, message: str) -> None:
    console.print(f"[bold cyan]▸[/] {message}  [dim]({time.perf_counter() - started:.0f} s)[/]")


_progress: tuple[Console, float] | None = None
"""In the worker process: where and since when `_data_steps` reports its steps."""


def _report_progress_to(console: Console, started: float) -> None:
    global _progress
    _progress = (console, started)


def _data_steps(settings: Settings) -> tuple[dict, dict, dict]:
    """simulate → validate → features (each reused when up to date), in the worker process.

    Returns:
        The manifests of the raw, validated and features datasets.
    """

    def step(message: str) -> None:
        if _progress is not None:
            _print_step(*_progress, message)

    raw, reused = simulate_step(settings)
    step(
        f"simulate: {'reused' if reused else 'wrote'} {raw['rows']:,} transactions, {raw['frauds']:,} frauds"
    )
    validated, reused = validate_step(settings, max_quarantine=MAX_QUARANTINE)
    step(
        f"validate: {'reused' if reused else 'checked'} — {validated['rows']:,} valid, {validated['quarantined_rows']:,} quarantined"
    )
    feats, reused = features_step(settings)
    step(
        f"features: {'reused' if reused else 'computed'} 15 features for {feats['rows']:,} transactions"
    )
    return raw, validated, feats


def _train_from_store(settings: Settings, model_type: str, protocol: EvaluationProtocol):
    """`training.train.train` on the features dataset, read here (in the worker process)."""
    from ..training.train import train

    frame = store.read_dataset(settings.features_dir)
    return train(frame, model_type, protocol, seed=settings.seed, device=settings.device)


def _tuned_models(settings: Settings, frame, manifest: dict, step) -> dict[str, dict]:
    """Lab 14: tune `demo_tune_models` (Ray Tune on prequential folds, `demo_tune_trials` trials
    each, the other `tune_*` settings as `fraudlab tune`), register and promote each best
    configuration like the untuned models; reused when nothing changed. Returns the summary
    rows, keyed `<model> (tuned)`."""
    from .tuning import parse_models, tune_register_promote

    rows = {}
    models = parse_models(settings.demo_tune_models)
    if not models:
        return rows
    small = settings.model_copy(update={"tune_trials": settings.demo_tune_trials})
    for out in tune_register_promote(small, models, frame=frame, manifest=manifest, progress=step):
        m = out.training.metrics
        rows[f"{out.model_type} (tuned)"] = {
            **{k: m[k] for k in ("auc_roc", "average_precision", "card_precision_top_k",
                                 "card_precision_top_k_perfect")},
            "version": out.training.version,
            "device": out.training.device,
        }  # fmt: skip
    return rows


def _start_in_background(server: ManagedProcess, servers: ExitStack) -> Future:
    """Start `server` and wait until it is ready, in a thread; `servers` stops it on exit.

    Returns:
        A future whose `result()` is the ready server, or raises `ServerError`.
    """
    pool = servers.enter_context(ThreadPoolExecutor(max_workers=1))
    ready = pool.submit(server.start)

    def stop() -> None:
        while server.proc is None and not ready.done():  # not launched yet: wait for the launch
            time.sleep(0.01)
        server.stop()

    servers.callback(stop)
    return ready


def _stop_together(processes: list[ManagedProcess]) -> None:
    """Ask every running server to stop at once, then wait for them (≤ 15 s each); each one's own
    `stop()` afterwards finds it gone, or kills what is left."""
    running = [p.proc for p in processes if p.proc is not None and p.proc.poll() is None]
    for proc in running:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in running:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)


def quality_expectations(settings: Settings, models: dict[str, dict]) -> tuple[bool, list[str]]:
    """Check the course's quality expectations (`Settings.gate_*`): on the default simulated data,
    logistic regression AUC ≥ 0.85 and AP ≥ 0.55, and the best model AP ≥ 0.60 (the handbook's
    published one-week baselines, ch. 3.5). At other scales, report only.

    Returns:
        `(ok, notes)`; `ok` is False only when a threshold is missed at the default scale.
    """
    notes = []
    lr = models.get("logistic_regression")
    if lr and lr["auc_roc"] < settings.gate_min_auc:
        notes.append(f"logistic regression AUC {lr['auc_roc']:.4f} < {settings.gate_min_auc}")
    if lr and lr["average_precision"] < settings.gate_min_ap_logistic:
        notes.append(
            f"logistic regression AP {lr['average_precision']:.4f} < {settings.gate_min_ap_logistic}"
        )
    best = max((m["average_precision"] for m in models.values()), default=0.0)
    if best < settings.gate_min_ap:
        notes.append(f"best AP {best:.4f} < {settings.gate_min_ap}")
    default_scale = (settings.n_customers, settings.n_terminals, settings.nb_days) == DEFAULT_SCALE
    if notes and not default_scale:
        notes.append("thresholds apply to the default (handbook-scale) data only")
    return (not notes or not default_scale), notes


def run_demo(settings: Settings, day: dt.date, console: Console | None = None) -> dict:
    """Run the demo; return the summary written to `reports/summary.json`.

    Raises:
        launchers.stack.ServerError: if MLflow or MLServer does not start.
        serving.replay.ReplayError: if the server refuses the replay.
    """
    console = console or Console()
    started = time.perf_counter()

    def step(message: str) -> None:
        _print_step(console, started, message)

    with ExitStack() as servers:
        # The worker forks first, while this process holds no thread, torch or MLflow: it runs
        # the data steps, then the MLP's training. Meanwhile this process starts MLflow and
        # imports the training and tracking code (≈ 6 s of imports).
        sys.stdout.flush()
        worker = servers.enter_context(
            ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_report_progress_to,
                initargs=(console, started),
            )
        )
        data = worker.submit(_data_steps, settings)
        mlflow_ready, launched = None, []
        if _mlflow_up(settings.mlflow_tracking_uri):
            step(f"MLflow already running at {settings.mlflow_tracking_uri}")
        else:
            port = (
                settings.mlflow_port
                if not port_open("127.0.0.1", settings.mlflow_port)
                else free_port()
            )
            # MLflow starts (≈ 10 s: imports, a new store's migrations) while the data steps run.
            server = start_mlflow(settings, port)
            mlflow_ready = _start_in_background(server, servers)
            launched.append(server)
            settings = settings.model_copy(update={"mlflow_tracking_uri": server.url})
            step(f"starting MLflow at {server.url} (log: {server.log_path})")

        # Imported here, after the fork: mlflow, torch, scikit-learn, matplotlib (≈ 6 s).
        from .. import tracking
        from ..monitoring.monitor import compute_monitoring
        from ..monitoring.report import write_report
        from ..serving.replay import replay_day
        from ..training.models import MODEL_TYPES
        from ..training.train import score, train
        from .lifecycle import register_and_promote, reusable_run

        raw, validated, feats = data.result()
        frame = store.read_dataset(settings.features_dir)
        if mlflow_ready is not None:
            mlflow_ready.result()  # raises the ServerError of a server that did not start
            step(f"MLflow ready at {settings.mlflow_tracking_uri}")
        protocol = EvaluationProtocol.from_settings(settings)
        reused = {m: reusable_run(settings, m, protocol, feats) for m in MODEL_TYPES}
        # Models train while the ones before them are logged and registered; versions and
        # promotions stay in MODEL_TYPES order. NOTE: the MLP trains in the worker process: its
        # loop is Python that holds the GIL, where the forest's tree building releases it.
        trainer = ThreadPoolExecutor(max_workers=1)
        try:
            trained = {
                m: worker.submit(_train_from_store, settings, m, protocol)
                if m in WORKER_MODELS
                else trainer.submit(
                    train, frame, m, protocol, seed=settings.seed, device=settings.device
                )
                for m in MODEL_TYPES
                if reused[m] is None
            }
            models = {}
            for model_type in MODEL_TYPES:
                out = reused[model_type] or register_and_promote(
                    settings, trained[model_type].result(), protocol, feats
                )
                m = out.metrics
                what = (
                    "reused run"
                    if out.reused
                    else f"→ {out.decision.alias} ({out.decision.reason})"
                )
                step(
                    f"train {model_type}: AUC {m['auc_roc']:.4f} AP {m['average_precision']:.4f} CP@{settings.top_k} {m['card_precision_top_k']:.4f}, version {out.version} {what}"
                )
                models[model_type] = {
                    **{
                        k: m[k]
                        for k in (
                            "auc_roc",
                            "average_precision",
                            "card_precision_top_k",
                            "card_precision_top_k_perfect",
                        )
                    },
                    "version": out.version,
                    "device": out.device,
                }
        finally:
            trainer.shutdown(cancel_futures=True)  # a failure leaves no training queued
        models.update(_tuned_models(settings, frame, feats, step))
        champion = tracking.alias_version(settings.model_name, CHAMPION)
        if champion is None:
            raise NoChampionError(
                "no model passed the quality gate, so there is no champion to serve; see the reasons above"
            )
        challenger = tracking.alias_version(settings.model_name, CHALLENGER)
        for m in models.values():
            m["alias"] = {champion: CHAMPION, challenger: CHALLENGER}.get(m["version"], "—")
        step(f"champion: {settings.model_name} version {champion}")

        ports = {}
        for name in ("http_port", "grpc_port", "metrics_port"):
            wanted = getattr(settings, name)
            ports[name] = wanted if not port_open("127.0.0.1", wanted) else free_port()
        settings = settings.model_copy(
            update={**ports, "inference_url": f"http://127.0.0.1:{ports['http_port']}"}
        )
        server = servers.enter_context(start_mlserver(settings))
        launched.append(server)
        servers.callback(_stop_together, launched)  # runs first on exit
        step(
            f"MLServer serving {settings.model_uri} at {server.url} (metrics :{settings.metrics_port}/metrics)"
        )

        replay = replay_day(settings, day)
        step(
            f"replay {day}: {replay['transactions']:,} transactions, p50 {replay['latency_ms_p50']:.1f} ms, p99 {replay['latency_ms_p99']:.1f} ms, skew {replay['max_abs_diff']:.1e}"
        )

        champion_model = tracking.load_model(f"models:/{settings.model_name}/{champion}")
        reference = frame[
            (frame["TX_DATETIME"] >= str(settings.train_start))
            & (
                frame["TX_DATETIME"]
                < str(settings.train_start + dt.timedelta(days=settings.delta_train))
            )
        ]
        quality_ok, notes = quality_expectations(settings, models)
        monitoring = compute_monitoring(settings)
        summary = {
            "models": models,
            "champion_version": champion,
            "quality_ok": quality_ok,
            "quality_notes": notes,
            "datasets": {
                "raw": raw["digest"],
                "validated": validated["digest"],
                "features": feats["digest"],
                "quarantined_rows": validated["quarantined_rows"],
            },
            "monitoring": monitoring,
            "reference_scores": score(
                champion_model.pyfunc.unwrap_python_model().estimator, reference
            )
            if len(reference)
            else None,
        }
        result = write_report(settings, summary, replay)
        step(f"report: {result['report_html']}")
    result["seconds"] = time.perf_counter() - started
    step("stopped the servers the demo started")
    return result
