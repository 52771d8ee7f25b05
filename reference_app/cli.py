"""`fraudlab`: thin typer commands that Make targets and containers call.

Every option also reads its `FRAUD_*` environment variable through `Settings`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .config import Settings
from .labcode import LabCodeError


class _Fraudlab(typer.Typer):
    """The CLI: a learner's lab code that is not written yet, does not import or answers wrongly
    (`labcode.LabCodeError`, from any command that runs it) ends the command with its message and
    status 2, never a traceback."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except LabCodeError as err:
            from rich.markup import escape

            console.print(f"[red]error:[/red] {escape(str(err))}")
            sys.exit(2)


app = _Fraudlab(
    help="Fraud Lab: the fraud-detection system of the course 'ML systems on Kubernetes'.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Wide enough for the summary table in a file or CI log; long lines are not wrapped (grep-able).
console = Console(width=None if sys.stdout.isatty() else 140, soft_wrap=True)

DataDir = Annotated[str | None, typer.Option("--data-dir", help="Dataset root (FRAUD_DATA_DIR).")]


def _settings(**overrides) -> Settings:
    """Settings from the environment and `overrides`; with an MLflow admin password set, this
    process's MLflow client signs in with it (unless MLFLOW_TRACKING_* already say who). From
    here on no log record of the process carries a credential (lab 15: redaction.py)."""
    from .redaction import install_redaction, secret_values

    s = Settings(**{k: v for k, v in overrides.items() if v is not None})
    for name, value in s.mlflow_client_env().items():
        os.environ.setdefault(name, value)
    install_redaction(secret_values(s))
    return s


def _fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    # Messages quote user input and paths: never read them as rich markup ("[/prefix]" is not a tag).
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _outcome(decision) -> str:
    """A promotion's outcome as the CLI prints it: "alias champion", "alias challenger", or
    "blocked, no alias" (lab 07: the model tests refused the version)."""
    from .training.promotion import BLOCKED

    return "blocked, no alias" if decision.alias == BLOCKED else f"alias {decision.alias}"


@app.command()
def simulate(
    data_dir: DataDir = None,
    customers: Annotated[
        int | None, typer.Option(help="Number of customers (default 5 000).")
    ] = None,
    terminals: Annotated[
        int | None, typer.Option(help="Number of terminals (default 10 000).")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Number of days (default 183).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    force: Annotated[bool, typer.Option(help="Simulate even if the same dataset exists.")] = False,
    drift_from: Annotated[
        str | None, typer.Option(help="Inject drift from this day on (YYYY-MM-DD).")
    ] = None,
    drift_terminals: Annotated[
        int | None, typer.Option(help="Drift: extra compromised terminals per day.")
    ] = None,
    drift_amount_factor: Annotated[
        float | None, typer.Option(help="Drift: multiply every amount by this factor.")
    ] = None,
    drift_night_customers: Annotated[
        int | None,
        typer.Option(help="Drift: customers per day hit by night card testing (new pattern)."),
    ] = None,
) -> None:
    """Simulate transactions (Fraud Detection Handbook, ch. 3.2) into Parquet files, one per day.

    The --drift-* options (or FRAUD_DRIFT_*) inject drift from a chosen day for the monitoring labs.
    """
    from .orchestration.pipeline import simulate_step

    s = _settings(
        data_dir=data_dir, n_customers=customers, n_terminals=terminals, nb_days=days, seed=seed,
        drift_start=drift_from, drift_extra_terminals=drift_terminals, drift_amount_factor=drift_amount_factor,
        drift_night_customers=drift_night_customers,
    )  # fmt: skip
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=3)
        manifest, reused = simulate_step(
            s,
            force=force,
            progress=lambda stage: bar.update(task, advance=1, description=f"simulated {stage}"),
        )
    console.print(
        f"{'reused' if reused else 'wrote'} {s.raw_dir}: {manifest['rows']:,} transactions, {manifest['frauds']:,} frauds, {len(manifest['files'])} files, digest {manifest['digest'][:12]}"
    )


@app.command()
def validate(
    data_dir: DataDir = None,
    input_dir: Annotated[
        str | None,
        typer.Option(
            "--input", help="Directory of Parquet or pandas-pickle files (default: <data-dir>/raw)."
        ),
    ] = None,
    max_quarantine: Annotated[
        float, typer.Option(help="Largest share of quarantined rows that still exits 0.")
    ] = 0.0,
    force: Annotated[
        bool, typer.Option(help="Validate even if the input has not changed.")
    ] = False,
) -> None:
    """Check raw transactions against the data contract; quarantine the rows that break it.

    Exit status: 0 when the quarantined share is at most --max-quarantine, 1 when above,
    2 when the input cannot be read.
    """
    from .data.store import DatasetError, list_files
    from .orchestration.pipeline import validate_step

    s = _settings(data_dir=data_dir)
    try:
        n_files = len(list_files(input_dir or s.raw_dir))
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("validating", total=n_files)
            manifest, reused = validate_step(
                s,
                source=input_dir,
                force=force,
                progress=lambda name: bar.update(task, advance=1, description=f"validated {name}"),
                max_quarantine=max_quarantine,
            )
    except DatasetError as err:
        _fail(str(err), 2)
    q = manifest["quarantined_rows"]
    total = manifest["input_rows"]
    console.print(
        f"{'reused' if reused else 'validated'} {total:,} rows from {manifest['input_files']} files: {manifest['rows']:,} valid → {s.validated_dir}, {q:,} quarantined → {s.quarantine_dir}"
    )
    for reason, count in sorted(manifest["quarantine_reasons"].items(), key=lambda kv: -kv[1]):
        console.print(f"  {count:>8,}  {reason}")
    share = q / total if total else 0.0
    if share > max_quarantine:
        _fail(
            f"{share:.3%} of rows quarantined, above --max-quarantine {max_quarantine:.3%}; inspect {s.quarantine_dir}/quarantine.parquet (the features step refuses this dataset)",
            1,
        )


@app.command()
def features(
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option(help="Recompute even if up to date.")] = False,
) -> None:
    """Compute the handbook's 15 features (ch. 3.4) for the validated transactions."""
    from .data.store import DatasetError
    from .orchestration.pipeline import features_step

    s = _settings(data_dir=data_dir)
    try:
        manifest, reused = features_step(s, force=force)
    except DatasetError as err:
        _fail(str(err), 2)
    console.print(
        f"{'reused' if reused else 'wrote'} {s.features_dir}: {manifest['rows']:,} rows, digest {manifest['digest'][:12]}"
    )


@app.command("train")
def train_cmd(
    model: Annotated[
        str, typer.Option(help="logistic_regression, random_forest or mlp.")
    ] = "logistic_regression",
    device: Annotated[
        str | None, typer.Option(help="auto (CUDA when present), cuda or cpu (FRAUD_DEVICE).")
    ] = None,
    data_dir: DataDir = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URL (FRAUD_MLFLOW_TRACKING_URI).")
    ] = None,
    promote: Annotated[
        bool,
        typer.Option(
            help="Decide the alias right away (--no-promote leaves it to `fraudlab promote`)."
        ),
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Train even if an identical finished run exists.")
    ] = False,
    broken: Annotated[
        bool,
        typer.Option(
            "--broken",
            help="Drill (lab 07): register a deliberately broken candidate (scores divided by "
            "their batch's maximum: it passes the quality gate, the model tests block it).",
        ),
    ] = False,
) -> None:
    """Train on the handbook's protocol, log to MLflow, register `fraud-detector`, then (unless
    --no-promote) run the model tests and set its alias."""
    from .data.store import DatasetError
    from .orchestration.lifecycle import train_register_promote
    from .training.models import MODEL_TYPES

    if model not in MODEL_TYPES:
        _fail(f"unknown model {model!r}; choose one of {', '.join(MODEL_TYPES)}", 2)
    s = _settings(data_dir=data_dir, mlflow_tracking_uri=tracking_uri, device=device)
    try:
        out = train_register_promote(s, model, promote=promote, force=force, broken=broken)
    except (DatasetError, RuntimeError) as err:
        _fail(str(err), 2)
    m = out.metrics
    console.print(
        f"{model}: AUC {m['auc_roc']:.4f}  AP {m['average_precision']:.4f}  CP@{s.top_k} {m['card_precision_top_k']:.4f} (perfect {m['card_precision_top_k_perfect']:.4f})  device {out.device}"
    )
    if out.reused:
        console.print(f"reused run {out.run_id} (version {out.version}): data and code unchanged")
    elif out.decision is None:
        console.print(
            f"registered {s.model_name} version {out.version}; run `fraudlab model-test --version {out.version}`, then `fraudlab promote --version {out.version}` to decide its alias"
        )
    else:
        d = out.decision
        console.print(
            f"registered {s.model_name} version {out.version} → {_outcome(d)}: {d.reason}"
        )


@app.command()
def promote(
    version: Annotated[
        str | None, typer.Option(help="Version to decide on (default: the latest).")
    ] = None,
    undecided: Annotated[
        bool,
        typer.Option(
            "--undecided", help="Decide every version no promotion has decided on, in order."
        ),
    ] = False,
    data_dir: DataDir = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URL (FRAUD_MLFLOW_TRACKING_URI).")
    ] = None,
) -> None:
    """Evaluate a registered version on the test week and give it alias `champion` or `challenger`.

    Champion only if it passes the quality gate and beats the current champion's AP on the same
    test set. Exit status 0 either way (the alias says what happened); 2 when nothing to decide on.
    """
    from .data.store import DatasetError
    from .orchestration.lifecycle import NothingToPromoteError, promote_undecided, promote_version

    s = _settings(data_dir=data_dir, mlflow_tracking_uri=tracking_uri)
    if undecided and version is not None:
        _fail("--version and --undecided exclude each other", 2)
    try:
        decided = promote_undecided(s) if undecided else [promote_version(s, version)]
    except (NothingToPromoteError, DatasetError) as err:
        _fail(str(err), 2)
    if not decided:
        from . import tracking

        console.print(
            f"{s.model_name}: every version is decided already (champion: {tracking.alias_version(s.model_name, 'champion')})"
        )
    for v, metrics, decision in decided:
        console.print(
            f"{s.model_name} version {v}: AUC {metrics['auc_roc']:.4f} AP {metrics['average_precision']:.4f} → {_outcome(decision)}: {decision.reason}"
        )


@app.command()
def tune(
    model: Annotated[
        list[str] | None,
        typer.Option(help="lightgbm or mlp; repeat for both (default FRAUD_TUNE_MODELS)."),
    ] = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Trials per model (FRAUD_TUNE_TRIALS).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Trials at once (FRAUD_TUNE_CONCURRENCY).")
    ] = None,
    folds: Annotated[
        int | None, typer.Option(min=1, help="Prequential validation folds (FRAUD_TUNE_FOLDS).")
    ] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(min=1, help="Seconds per model's search (FRAUD_TUNE_TIME_BUDGET_S)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to run the trials on (FRAUD_RAY_ADDRESS, else RAY_ADDRESS); "
            "none: a local Ray on 127.0.0.1."
        ),
    ] = None,
    data_dir: DataDir = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URL (FRAUD_MLFLOW_TRACKING_URI).")
    ] = None,
    promote: Annotated[
        bool, typer.Option(help="Run the model tests and decide each tuned version's alias.")
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Tune even if an identical tuned run exists.")
    ] = False,
) -> None:
    """Lab 14: search LightGBM's and the MLP's hyper-parameters with Ray Tune (ASHA early
    stopping) on prequential validation folds before the training week, each trial a nested
    MLflow run; then train the best configuration, test it on the test week, register it and put
    it through the model tests and the gate."""
    from .data.store import DatasetError
    from .orchestration.tuning import parse_models, tune_register_promote

    s = _settings(
        data_dir=data_dir,
        mlflow_tracking_uri=tracking_uri,
        tune_trials=trials,
        tune_concurrency=concurrency,
        tune_folds=folds,
        tune_time_budget_s=time_budget,
    )
    try:
        models = parse_models(model or s.tune_models)
        tune_register_promote(
            s, models, ray_address=ray_address, promote=promote, force=force, progress=console.print
        )
    except (DatasetError, ValueError, RuntimeError, ConnectionError) as err:
        if isinstance(err, LabCodeError):
            raise  # status 2 with the lab's message (`_Fraudlab`)
        _fail(str(err))


@app.command("model-test")
def model_test(
    version: Annotated[
        str | None, typer.Option(help="Version to test (default: the latest).")
    ] = None,
    undecided: Annotated[
        bool,
        typer.Option(
            "--undecided",
            help="Test every version no promotion has decided on (and a champion never tested), in order.",
        ),
    ] = False,
    data_dir: DataDir = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URL (FRAUD_MLFLOW_TRACKING_URI).")
    ] = None,
) -> None:
    """Run the model test suite on registered versions before their promotion (lab 07).

    Minimum functionality, invariance, directional and slice tests on the test week; the report
    becomes the run's artifact model_tests/report.json and the verdict its tags, which
    `fraudlab promote` reads: a version that fails (or was never tested) cannot become champion.
    Exit status 0 either way (the verdict is recorded); 2 when there is nothing to test.
    """
    from .data.store import DatasetError
    from .orchestration.lifecycle import (
        NothingToPromoteError,
        model_test_undecided,
        model_test_version,
    )
    from .training.model_tests import MODEL_TESTS_ARTIFACT

    s = _settings(data_dir=data_dir, mlflow_tracking_uri=tracking_uri)
    if undecided and version is not None:
        _fail("--version and --undecided exclude each other", 2)
    try:
        tested = model_test_undecided(s) if undecided else [model_test_version(s, version)]
    except (NothingToPromoteError, DatasetError) as err:
        _fail(str(err), 2)
    if not tested:
        console.print(f"{s.model_name}: every version is decided already: nothing to test")
    for out in tested:
        failed = [r for r in out.results if not r.passed]
        console.print(
            f"{s.model_name} version {out.version} (run {out.run_id[:8]}): "
            f"{len(out.results) - len(failed)}/{len(out.results)} model tests passed → "
            f"{'may be promoted' if not failed else 'blocked'}; report {MODEL_TESTS_ARTIFACT}"
        )
        for r in out.results:
            mark = "✓" if r.passed else "✗"
            console.print(f"  {mark} {r.name}: {r.detail}", markup=False, highlight=False)


@app.command()
def pipeline(
    data_dir: DataDir = None,
    through: Annotated[
        str,
        typer.Option(
            help="Last step to run: simulate, validate, features, train-…, model-tests, promote or replay."
        ),
    ] = "features",
    max_quarantine: Annotated[
        float | None, typer.Option(help="Override the validate step's --max-quarantine.")
    ] = None,
) -> None:
    """Run the pipeline's steps locally, in the order of its DAG, up to and including --through.

    The steps and their arguments are those of the Argo WorkflowTemplate `fraud-pipeline` that kind
    mode runs (reference_app/orchestration/pipeline.py PIPELINE_DAG); each step reuses what is up to date.
    The default runs the data steps; `--through replay` needs MLflow and a model server (make up).
    """
    from .orchestration.pipeline import steps_through

    if data_dir is not None:
        os.environ["FRAUD_DATA_DIR"] = data_dir
    try:
        steps = steps_through(through)
    except ValueError as err:
        _fail(str(err), 2)
    for name, args in steps:
        if name == "validate" and max_quarantine is not None:
            args = ["validate", "--max-quarantine", str(max_quarantine)]
        console.print(f"[bold cyan]▸[/] {name}: fraudlab {' '.join(args)}")
        code = app(args, standalone_mode=False, prog_name="fraudlab")
        if code:
            _fail(f"step {name} failed (exit {code}); the steps after it did not run", int(code))


@app.command("s3-bucket")
def s3_bucket(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the S3 endpoint to answer.")
    ] = 300.0,
) -> None:
    """Create the bucket of FRAUD_MLFLOW_ARTIFACTS_DESTINATION (s3://…) unless it exists.

    The endpoint is MLFLOW_S3_ENDPOINT_URL, the credentials AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    Exit 0 when the bucket exists afterwards, 1 when the store refused or did not answer.
    """
    from .objectstore import ObjectStoreError, ensure_bucket

    s = Settings()
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL", "")
    if not endpoint:
        _fail("MLFLOW_S3_ENDPOINT_URL is not set: which S3 endpoint holds the bucket?", 2)
    try:
        outcome = ensure_bucket(s.mlflow_artifacts_destination, endpoint, timeout_s=timeout)
    except ValueError as err:
        _fail(str(err), 2)
    except ObjectStoreError as err:
        _fail(str(err))
    console.print(f"bucket of {s.mlflow_artifacts_destination} at {endpoint}: {outcome}")


@app.command("wait-champion")
def wait_champion(
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most.")] = 1800.0,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URL (FRAUD_MLFLOW_TRACKING_URI).")
    ] = None,
    alias: Annotated[
        str, typer.Option(help="The alias to wait for (lab 10's canary: also challenger).")
    ] = "champion",
) -> None:
    """Wait until a version of the model carries the alias `champion` (or --alias; exit 1 after
    --timeout).

    The model server's init container in kind mode: its pods wait, visibly (Init:0/1), until the
    pipeline has promoted a champion, instead of crash-looping.
    """
    from . import tracking

    s = _settings(mlflow_tracking_uri=tracking_uri)
    tracking.configure(s.mlflow_tracking_uri)
    console.print(
        f"waiting up to {timeout:.0f} s for {s.model_name}@{alias} at {s.mlflow_tracking_uri}"
    )
    version = tracking.wait_for_alias(s.model_name, alias, timeout)
    if version is None:
        _fail(
            f"no version of {s.model_name} has the alias {alias} after {timeout:.0f} s: run the pipeline (its promote step sets it)"
        )
    console.print(f"{s.model_name}@{alias} is version {version}")


@app.command()
def mlflow(
    port: Annotated[
        int | None, typer.Option(help="Port (FRAUD_MLFLOW_PORT, default 5000).")
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    data_dir: DataDir = None,
) -> None:
    """Run a local MLflow server in the foreground (SQLite store and artifacts under <data-dir>/state)."""
    from .launchers.stack import mlflow_command

    s = _settings(data_dir=data_dir)
    try:
        cmd, env = mlflow_command(s, port or s.mlflow_port, host)
    except ValueError as err:
        _fail(str(err), 2)
    from .launchers.stack import exposure_warning

    if warning := exposure_warning(s, host):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"MLflow on http://{host}:{port or s.mlflow_port} (Ctrl-C to stop)")
    os.environ.update(env)
    os.execv(cmd[0], cmd)


@app.command()
def serve(
    config_dir: Annotated[
        Path | None, typer.Option(help="Where to write MLServer's settings.")
    ] = None,
) -> None:
    """Run MLServer with the fraud runtime (V2 inference protocol) in the foreground, behind the
    gate: body limit, closed model repository API and docs, known models only (serving/gate.py)."""
    from .launchers.mlserver import run_mlserver, write_mlserver_config

    s = _settings()
    run_mlserver(s, write_mlserver_config(s, config_dir or Path(s.state_dir) / "mlserver"))


@app.command()
def up(
    data_dir: DataDir = None,
    monitoring: Annotated[
        bool,
        typer.Option(
            help="Also start the drift exporter, Prometheus, Alertmanager and the continuous-training controller."
        ),
    ] = False,
    auth: Annotated[
        bool,
        typer.Option(
            help="Run MLflow with basic auth, as kind mode does; the admin password comes from FRAUD_MLFLOW_ADMIN_PASSWORD and every client started here signs in with it."
        ),
    ] = False,
    canary: Annotated[
        bool,
        typer.Option(
            help="Lab 10: also serve the alias challenger twice (canary and shadow) and start the traffic router (FRAUD_ROUTER_PORT) in front of champion and challenger."
        ),
    ] = False,
    features: Annotated[
        bool,
        typer.Option(
            help="Lab 04: also the Feast feature store: export the features dataset to its offline sources, apply, materialize, and serve online features (FRAUD_FEATURE_SERVER_PORT)."
        ),
    ] = False,
) -> None:
    """Start the local stack in the background on 127.0.0.1: MLflow, and MLServer serving the champion."""
    from .data.store import DatasetError
    from .launchers.feast import FeatureStoreError
    from .launchers.prometheus import MonitoringToolMissing
    from .launchers.stack import ServerError, stack_up

    s = _settings(data_dir=data_dir)
    try:
        record = stack_up(s, monitoring=monitoring, auth=auth, canary=canary, features=features)
    except (ServerError, MonitoringToolMissing, FeatureStoreError, DatasetError) as err:
        _fail(str(err))
    for name, entry in record.items():
        console.print(f"{name:<13} {entry['url']}  (pid {entry['pid']})")
    console.print("stop with `fraudlab down` (make down)")


@app.command()
def down(data_dir: DataDir = None) -> None:
    """Stop the local stack started by `fraudlab up`."""
    from .launchers.stack import stack_down

    stopped = stack_down(_settings(data_dir=data_dir))
    console.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(data_dir: DataDir = None) -> None:
    """Show the local stack; exit 0 only when every server is running."""
    from .launchers.stack import stack_status

    record = stack_status(_settings(data_dir=data_dir))
    if not record:
        _fail("the local stack is not running: start it with `fraudlab up` (make up)")
    for name, entry in record.items():
        console.print(
            f"{'✓' if entry['alive'] else '✗'} {name:<8} {entry['url']}  pid {entry['pid']}  log {entry['log']}"
        )
    if not all(entry["alive"] for entry in record.values()):
        raise typer.Exit(1)


@app.command()
def monitor(
    once: Annotated[
        bool, typer.Option(help="Compute once, write reports/monitoring.json and exit (for Jobs).")
    ] = False,
    port: Annotated[
        int | None, typer.Option(help="Metrics port (FRAUD_MONITOR_PORT, default 8090).")
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address (0.0.0.0 in a container).")] = "127.0.0.1",
    data_dir: DataDir = None,
) -> None:
    """Drift (PSI, KS per feature and score) and delayed-label performance as Prometheus metrics."""
    import time

    from .monitoring.exporter import serve_metrics
    from .monitoring.monitor import NothingToMonitorError, compute_monitoring

    s = _settings(data_dir=data_dir, monitor_port=port)
    if once:
        try:
            result = compute_monitoring(s)
        except NothingToMonitorError as err:
            _fail(str(err), 2)
        out = Path(s.reports_dir) / "monitoring.json"
        out.write_text(json.dumps(result, indent=2))
        console.print(
            f"as of {result['as_of']}: max PSI {result['max_psi']:.3f}, drifted {result['drifted_features'] or 'none'}; performance {result['performance']}; wrote {out}"
        )
        return
    server, _ = serve_metrics(s, s.monitor_port, host)
    console.print(f"monitoring metrics on http://{host}:{s.monitor_port}/metrics (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()


@app.command()
def prometheus(data_dir: DataDir = None) -> None:
    """Run a local Prometheus (alert rules from the PrometheusRule manifest) and Alertmanager in the foreground."""
    from .launchers.prometheus import MonitoringToolMissing
    from .launchers.stack import start_alertmanager, start_prometheus

    s = _settings(data_dir=data_dir)
    try:
        with start_alertmanager(s) as am, start_prometheus(s) as prom:
            console.print(f"Prometheus {prom.url}, Alertmanager {am.url} (Ctrl-C to stop)")
            prom.proc.wait()
    except MonitoringToolMissing as err:
        _fail(str(err), 2)
    except KeyboardInterrupt:
        pass


@app.command("slo-rules")
def slo_rules(
    apply: Annotated[
        bool,
        typer.Option(
            help="Server-side apply it in the pod's namespace with the pod's ServiceAccount (the slo-rules Job on the cluster)."
        ),
    ] = False,
) -> None:
    """The SLO burn-rate rules as PrometheusRule `fraud-lab-slo`, thresholds from lab 12's burn_rate_threshold (FRAUD_LAB_CODE)."""
    import yaml

    from .monitoring.slo import apply_prometheus_rule, slo_prometheus_rule

    if not apply:
        print(yaml.safe_dump(slo_prometheus_rule(), sort_keys=False, width=200), end="")
        return
    try:
        name, status, source = apply_prometheus_rule()
    except LabCodeError:
        raise  # the learner's code: its message and status 2 (see _Fraudlab)
    except FileNotFoundError:
        _fail(
            "--apply runs inside a pod (no ServiceAccount token); here: fraudlab slo-rules | kubectl apply -f -",
            2,
        )
    except Exception as err:  # the API server's answer, e.g. 403 without the Role
        _fail(f"applying PrometheusRule fraud-lab-slo failed: {err}")
    console.print(f"PrometheusRule {name}: HTTP {status}; thresholds by {source}")


@app.command("ct-controller")
def ct_controller(
    port: Annotated[int | None, typer.Option(help="Port (FRAUD_CT_PORT, default 8095).")] = None,
    host: Annotated[str, typer.Option(help="Bind address (0.0.0.0 in a container).")] = "127.0.0.1",
) -> None:
    """The continuous-training controller: Alertmanager webhook on /alerts, retrains on drift or performance alerts."""
    import uvicorn

    from .orchestration.continuous_training import create_app

    s = _settings(ct_port=port)
    uvicorn.run(create_app(s), host=host, port=s.ct_port, log_level="warning")


@app.command()
def retrain(
    trigger: Annotated[
        str, typer.Option(help="JSON describing what started the cycle (recorded in MLflow).")
    ] = '{"source": "manual"}',
    data_dir: DataDir = None,
) -> None:
    """One continuous-training cycle: retrain on the newest labelled window, gate, promote, reload serving."""
    from .data.store import DatasetError
    from .orchestration.continuous_training import retrain as run_retrain

    s = _settings(data_dir=data_dir)
    try:
        outcome = run_retrain(s, json.loads(trigger))
    except (DatasetError, ValueError) as err:
        _fail(str(err), 2)
    console.print(
        f"challenger version {outcome['version']} (train from {outcome['window']['train_start']}, test {outcome['window']['test_start']} … {outcome['window']['test_end']}) → {outcome['decision']}: {outcome['reason']}; serving reloaded: {outcome['reloaded']}"
    )


@app.command()
def replay(
    day: Annotated[str, typer.Option(help="Day to replay, YYYY-MM-DD.")] = "2018-08-08",
    url: Annotated[
        str | None, typer.Option(help="Inference base URL (FRAUD_INFERENCE_URL).")
    ] = None,
    wait_ready: Annotated[
        float,
        typer.Option(help="Seconds to wait for the model to answer ready first (0: don't wait)."),
    ] = 0.0,
    data_dir: DataDir = None,
) -> None:
    """Send a day's transactions to the model server; check served = offline scores; time requests."""
    from .serving.replay import ReplayError, replay_day, wait_until_ready

    s = _settings(data_dir=data_dir, inference_url=url)
    try:
        if wait_ready > 0:
            wait_until_ready(s, wait_ready)
        r = replay_day(s, dt.date.fromisoformat(day))
    except ReplayError as err:
        _fail(str(err))
    console.print(
        f"replayed {r['transactions']:,} transactions in {r['requests']} requests to version {r['model_version']}: p50 {r['latency_ms_p50']:.1f} ms, p99 {r['latency_ms_p99']:.1f} ms; max |served − offline| = {r['max_abs_diff']:.2e}"
    )
    if r.get("review"):  # lab 18
        q = r["review"]
        console.print(
            f"review queue: {q['enqueued']} of {q['in_band']} uncertain transactions (band [{q['band'][0]}, {q['band'][1]}), capacity {q['capacity']}) queued by {q['rule']}"
        )
    if not r["skew_ok"]:
        _fail(
            f"training/serving skew {r['max_abs_diff']:.2e} above {r['skew_tolerance']:.0e}; see {r['scores_path']}"
        )


@app.command("model-inventory")
def model_inventory(data_dir: DataDir = None) -> None:
    """Record which registered model version serves where (the model-inventory CronJob, lab 15)."""
    from .serving.inventory import InventoryError, write_inventory

    s = _settings(data_dir=data_dir)
    try:
        out = write_inventory(s)
    except (InventoryError, FileNotFoundError, KeyError) as err:
        # FileNotFoundError/KeyError: no ServiceAccount files or API address (not inside a pod).
        _fail(f"model inventory: {err}")
    models = json.loads(out.read_text())["models"]
    for row in models:
        console.print(
            f"{row['deployment']}/{row['predictor']}: {row['model_uri']} → version {row['version']} "
            f"({row['promotion_decision']}, traffic {row['traffic']} %)"
        )
    console.print(f"inventory of {len(models)} served models: {out}")


@app.command()
def report(
    day: Annotated[str, typer.Option(help="Replayed day, YYYY-MM-DD.")] = "2018-08-08",
    data_dir: DataDir = None,
) -> None:
    """Write the HTML report and JSON summary for a replayed day (run `fraudlab replay` first)."""
    from .monitoring.report import write_report

    s = _settings(data_dir=data_dir)
    path = Path(s.reports_dir) / f"replay-{day}.json"
    if not path.exists():
        _fail(f"{path} not found: run `fraudlab replay --day {day}` first", 2)
    out = write_report(s, {}, json.loads(path.read_text()))
    console.print(f"report: {out['report_html']}\nsummary: {out['summary_json']}")


@app.command()
def demo(
    data_dir: DataDir = None,
    customers: Annotated[
        int | None, typer.Option(help="Customers (default: handbook scale, 5 000).")
    ] = None,
    terminals: Annotated[int | None, typer.Option(help="Terminals (default 10 000).")] = None,
    days: Annotated[int | None, typer.Option(help="Days (default 183).")] = None,
    replay_day: Annotated[
        str, typer.Option("--replay-day", help="Test day to replay.")
    ] = "2018-08-08",
) -> None:
    """The whole system locally: data → features → 3 models → champion → MLServer → replay → report."""
    from .orchestration.demo import reported_failures, run_demo

    s = _settings(data_dir=data_dir, n_customers=customers, n_terminals=terminals, nb_days=days)
    try:
        summary = run_demo(s, dt.date.fromisoformat(replay_day), console)
    except reported_failures() as err:
        _fail(str(err))
    table = Table(title="Fraud Lab demo")
    for col in (
        "model",
        "version",
        "AUC ROC",
        "AP",
        f"CP@{s.top_k}",
        f"CP@{s.top_k} perfect",
        "device",
        "alias",
    ):
        table.add_column(col)
    for name, m in summary["models"].items():
        table.add_row(
            name,
            m["version"],
            f"{m['auc_roc']:.4f}",
            f"{m['average_precision']:.4f}",
            f"{m['card_precision_top_k']:.4f}",
            f"{m['card_precision_top_k_perfect']:.4f}",
            m["device"],
            m["alias"],
        )
    console.print(table)
    r = summary["replay"]
    console.print(
        f"champion: {s.model_name} version {summary['champion_version']}\n"
        f"replay {r['day']}: {r['transactions']:,} transactions, latency p50 {r['latency_ms_p50']:.1f} ms / p99 {r['latency_ms_p99']:.1f} ms, "
        f"skew max |diff| {r['max_abs_diff']:.2e}\n"
        f"report: {summary['report_html']}\n"
        f"quality gate: {'passed' if summary['quality_ok'] else 'FAILED'} ({'; '.join(summary['quality_notes']) or 'all thresholds met'})\n"
        f"took {summary['seconds']:.0f} s"
    )
    if not (summary["quality_ok"] and r["skew_ok"]):
        raise typer.Exit(1)


@app.command("llm-probe")
def llm_probe(
    url: Annotated[
        str | None,
        typer.Option("--url", help="The OpenAI-compatible server's base URL (FRAUD_LLM_URL)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model id to ask (default: the first served).")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=2, max=4096)] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Lab 17: one streamed chat completion, measured (TTFT, inter-token latency, tokens/s) with
    stream_timings (the learner's with FRAUD_LAB_CODE); exit 1 over the laptop budget."""
    from .serving.llm import TIMINGS_EXERCISE, LLMProbeError, budget_problems, probe, stream_timings

    s = Settings()
    try:
        result = probe(
            url or s.llm_url,
            model=model,
            max_tokens=max_tokens,
            timings=TIMINGS_EXERCISE.implementation(stream_timings),
        )
    except LLMProbeError as err:
        _fail(str(err), code=2)
    result.problems = budget_problems(result.timings, s.llm_max_ttft_s, s.llm_min_tokens_per_s)
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        t = result.timings
        itl = sorted(t["itl_s"])
        median_itl = f"{itl[len(itl) // 2] * 1000:.0f} ms" if itl else "-"
        rate = t["decode_tokens_per_s"]
        console.print(
            f"{result.url} · model {result.model} · {t['chunks']} chunks, "
            f"{t['completion_tokens'] if t['completion_tokens'] is not None else '?'} tokens\n"
            f"time to first token {t['ttft_s'] if t['ttft_s'] is None else round(t['ttft_s'], 3)} s"
            f" (budget ≤ {s.llm_max_ttft_s:g} s) · median inter-token latency {median_itl} · "
            f"decode {'-' if rate is None else f'{rate:.1f}'} tokens/s "
            f"(budget ≥ {s.llm_min_tokens_per_s:g}) · total {result.total_s:.2f} s\n"
            f"answer: {result.text.strip()[:300]}",
            markup=False,
            highlight=False,
        )
        for problem in result.problems:
            console.print(f"over budget: {problem}", markup=False, highlight=False)
    if result.problems:
        raise typer.Exit(1)


@app.command("image-labels")
def image_labels(
    commit: Annotated[
        str, typer.Option(help="The work tree's commit (scripts/versions.sh app_commit).")
    ],
    lock: Annotated[Path, typer.Option(help="The lock file the image installs from.")] = Path(
        "requirements.lock"
    ),
) -> None:
    """The app image's labels, one KEY=VALUE a line: the builds pass each as --label (lab 08)."""
    from .packaging import build_labels

    try:
        labels = build_labels(commit, lock)
    except ValueError as err:
        _fail(str(err), code=2)
    for key, value in sorted(labels.items()):
        print(f"{key}={value}")


route_app = typer.Typer(
    help="The canary and shadow router (lab 10): serve it, show or change its split.",
    no_args_is_help=True,
)
app.add_typer(route_app, name="route")


@route_app.command("serve")
def route_serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (FRAUD_SERVE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (FRAUD_ROUTER_PORT).")] = None,
) -> None:
    """Run the router in the foreground: champion/challenger by your split, a copy to the shadow."""
    import uvicorn

    from .serving.router import config_from_settings, create_app

    s = _settings(serve_host=host, router_port=port)
    config = config_from_settings(s)
    app_ = create_app(config)  # tries the split function (yours with FRAUD_LAB_CODE) first
    console.print(
        f"router on {s.serve_host}:{s.router_port}: champion {config.champion}, challenger "
        f"{config.challenger}, shadow {config.shadow or '(none)'}, split file {config.split_file}"
    )
    uvicorn.run(app_, host=s.serve_host, port=s.router_port, log_level="warning")


@route_app.command("set")
def route_set(
    challenger: Annotated[
        float, typer.Option(help="The challenger's share of requests, in percent (0 … 100).")
    ],
) -> None:
    """Write the router's split file (atomically): the running router applies it on its next
    request, without a restart. 100 promotes the challenger; 0 rolls it back."""
    from .serving.router import SplitError, config_from_settings, write_split

    path = config_from_settings(_settings()).split_file
    try:
        split = write_split(path, challenger)
    except SplitError as err:
        _fail(str(err), code=2)
    console.print(f"split {split} written to {path}")


@route_app.command("show")
def route_show(
    url: Annotated[
        str | None,
        typer.Option(help="The router's base URL (default: 127.0.0.1:FRAUD_ROUTER_PORT)."),
    ] = None,
) -> None:
    """Print the split the running router applies (GET /router/split)."""
    import httpx

    s = _settings()
    base = url or f"http://127.0.0.1:{s.router_port}"
    try:
        print(json.dumps(httpx.get(f"{base}/router/split", timeout=5).json(), indent=2))
    except (httpx.HTTPError, ValueError) as err:
        _fail(f"no router answers at {base}: {err}")


@route_app.command("drill")
def route_drill(
    url: Annotated[
        str | None,
        typer.Option(help="The router's base URL (default: 127.0.0.1:FRAUD_ROUTER_PORT)."),
    ] = None,
    to: Annotated[
        float, typer.Option(help="The challenger's share during the promotion, in percent.")
    ] = 100.0,
    configmap: Annotated[
        str | None,
        typer.Option(
            help="Cluster: change the split by patching this ConfigMap (namespace fraud-lab, context kind-fraud-lab) instead of the local split file."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Promote the challenger under load and roll back, counting failed requests; writes
    <reports>/promotion-drill.json (lab 10's check reads it)."""
    import shutil
    import subprocess

    from .serving.drill import DrillError, promotion_drill
    from .serving.router import config_from_settings, parse_split, write_split
    from .serving.split import CHALLENGER, CHAMPION

    s = _settings(data_dir=data_dir)
    base = url or f"http://127.0.0.1:{s.router_port}"

    def change(share: float) -> None:
        if configmap is None:
            write_split(config_from_settings(s).split_file, share)
            return
        split = parse_split(json.dumps({CHAMPION: 100 - share, CHALLENGER: share}))
        patch = json.dumps({"data": {"split.json": json.dumps(split)}})
        # kubectl on PATH, else the one make installs next to fraudlab (.venv/bin/kubectl).
        kubectl = shutil.which("kubectl") or shutil.which(
            "kubectl", path=str(Path(sys.executable).parent)
        )
        if kubectl is None:
            raise DrillError("no kubectl on PATH or in .venv/bin: install the course's kubectl")
        subprocess.run(
            [kubectl, "--context", "kind-fraud-lab", "-n", "fraud-lab", "patch", "configmap",
             configmap, "--type", "merge", "-p", patch],
            check=True, timeout=60,
        )  # fmt: skip

    try:
        r = promotion_drill(base, s.model_name, change, to=to, out_dir=Path(s.reports_dir))
    except (DrillError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        _fail(" ".join([str(err), *getattr(err, "__notes__", [])]))  # a rollback's note too
    r["target"] = "local" if configmap is None else "cluster"
    (Path(s.reports_dir) / "promotion-drill.json").write_text(json.dumps(r, indent=2))
    p = r["phases"]
    console.print(
        f"{r['requests']:,} requests, {r['failed']} failed; challenger share: before "
        f"{p['before']['challenger_share']:.1f} %, promoted {p['promoted']['challenger_share']:.1f} %, "
        f"rolled back {p['rolled_back']['challenger_share']:.1f} %"
    )
    if r["failed"]:
        _fail(f"{r['failed']} requests failed during the drill, e.g. {r['failures'][0]}")


feature_store_app = typer.Typer(
    help="Lab 04: the Feast feature store and the online serving path (`fraudlab up --features`).",
    no_args_is_help=True,
)
app.add_typer(feature_store_app, name="feature-store")


@feature_store_app.command("score")
def feature_store_score(
    transaction: Annotated[
        str,
        typer.Argument(
            help='A raw transaction as JSON: {"TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"}.'
        ),
    ],
) -> None:
    """Score a raw transaction through the online path: online features from Feast, the served
    model; prints {"TRANSACTION_ID", "fraud_probability", "inputs"}. A feature missing online, or
    a malformed transaction, exits 2 with a message naming it."""
    import json

    from .features.online import MissingFeatureError
    from .serving.online import OnlineServingError, score_transaction

    try:
        raw = json.loads(transaction)
    except json.JSONDecodeError as err:
        _fail(f"the transaction is not JSON: {err}", code=2)
    try:
        print(json.dumps(score_transaction(_settings(), raw)))
    except (ValueError, MissingFeatureError) as err:
        _fail(str(err), code=2)
    except OnlineServingError as err:
        _fail(str(err))


@feature_store_app.command("export")
def feature_store_export(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Materialize up to this time (ISO 8601; default: the newest transaction)."
        ),
    ] = None,
    sample: Annotated[int, typer.Option(help="How many transactions `check` samples.")] = 20,
) -> None:
    """Export the features dataset to Feast's offline sources (<state>/feast/source), copy the
    feature repository next to them, record the window to materialize (window.env) and the
    entity rows of `check`'s sample (parity-rows.parquet): what kind mode runs before `feast
    apply`, `feast materialize` and the point-in-time join in Feast's image."""
    import json

    from .data.store import DatasetError
    from .launchers.feast import PARITY_ROWS, export, feast_dir
    from .serving.online import entity_rows, parity_sample

    s = _settings()
    try:
        window = export(s, as_of)
    except DatasetError as err:
        _fail(str(err))
    _, rows = parity_sample(s, sample_size=sample)
    entity_rows(rows).to_parquet(feast_dir(s) / PARITY_ROWS, index=False)
    print(json.dumps(window))


@feature_store_app.command("repo")
def feature_store_repo(
    folder: Annotated[Path, typer.Argument(help="Where to copy the feature repository.")],
) -> None:
    """Copy the Feast feature repository (definitions, feature_store*.yaml, offline.py) into
    FOLDER: kind mode's feature server applies it from there in Feast's image."""
    import shutil

    from .launchers.feast import REPO

    shutil.copytree(REPO, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    console.print(f"{REPO} → {folder}")


@feature_store_app.command("sample")
def feature_store_sample(
    out: Annotated[Path, typer.Option(help="Parquet file of the entity rows.")],
    sample: Annotated[int, typer.Option(help="How many transactions to sample.")] = 20,
) -> None:
    """Write the entity rows (CUSTOMER_ID, TERMINAL_ID, event_timestamp) of the transactions
    `check` samples: kind mode's Feast image joins them point-in-time (feature_repo/offline.py)."""
    from .serving.online import OnlineServingError, entity_rows, parity_sample

    try:
        _, rows = parity_sample(_settings(), sample_size=sample)
    except OnlineServingError as err:
        _fail(str(err))
    entity_rows(rows).to_parquet(out, index=False)
    console.print(f"{len(rows)} entity rows → {out}")


@feature_store_app.command("check")
def feature_store_check(
    sample: Annotated[int, typer.Option(help="How many transactions to sample.")] = 20,
    offline: Annotated[
        Path | None,
        typer.Option(
            help="Feast's point-in-time features of the sample (from `sample` and offline.py); default: computed here with .venv-feast."
        ),
    ] = None,
    score: Annotated[
        bool,
        typer.Option(
            help="Also score through the online path with the served model (--no-score: no model is served yet, kind mode before lab 09)."
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout.")] = False,
) -> None:
    """Lab 04's parity checks against the running feature store: online = offline point-in-time =
    training (≤ 1e-9), terminal risk from labels ≤ t − 7 days, a missing entity's clear error, the
    online path's score; exit 1 when one fails."""
    import json

    from .launchers.feast import FeatureStoreError
    from .serving.online import OnlineServingError, parity_checks

    try:
        import pandas as pd

        given = pd.read_parquet(offline) if offline is not None else None
        checks = parity_checks(_settings(), sample_size=sample, offline=given, score=score)
    except (OnlineServingError, FeatureStoreError) as err:
        _fail(str(err))
    if as_json:
        print(json.dumps(checks))
    else:
        for c in checks:
            mark = {True: "[green]✓[/green]", False: "[red]✗[/red]", None: "–"}[c["passed"]]
            console.print(f"{mark} {c['check']}", markup=True, highlight=False)
            if c["passed"] is None:
                console.print(f"    {c['found']}", markup=False, highlight=False)
            elif not c["passed"]:
                console.print(
                    f"    expected: {c['expected']}\n    found:    {c['found']}",
                    markup=False,
                    highlight=False,
                )
    if any(c["passed"] is False for c in checks):
        raise typer.Exit(1)


# --- lab 18: responsible AI and human review -------------------------------------------------------
def _document_champion(data_dir: str | None) -> dict:
    """The champion's segment report and model card, logged to its run (or the CLI's error)."""
    from .data.store import DatasetError
    from .responsible.model_card import NoChampionError, document_champion

    s = _settings(data_dir=data_dir)
    try:
        return document_champion(s)
    except (NoChampionError, DatasetError, ValueError) as err:
        _fail(str(err), 2)


@app.command("segment-report")
def segment_report_cmd(data_dir: DataDir = None) -> None:
    """The champion's segment report (precision, recall, FPR, flag rate per segment; fairlearn) and model card, logged to its MLflow run."""
    import pandas as pd

    from .responsible.segments import report_table

    out = _document_champion(data_dir)
    table = Table(title=f"segments of champion version {out['version']} (test week)")
    frame = report_table(out["report"])
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(
            *[
                "" if v is None or v is pd.NA else f"{v:.3f}" if isinstance(v, float) else str(v)
                for v in row
            ]
        )
    console.print(table)
    console.print(f"artifacts of run {out['run_id']}: {', '.join(out['artifacts'])}")


@app.command("model-card")
def model_card_cmd(data_dir: DataDir = None) -> None:
    """Write the champion's model card (and segment report) to its MLflow run and print the card."""
    out = _document_champion(data_dir)
    print(out["card"])
    console.print(f"artifacts of run {out['run_id']}: {', '.join(out['artifacts'])}")


review_app = typer.Typer(
    help="The human review queue (lab 18): list and label uncertain cases, or serve the review page.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")


def _queue(data_dir: str | None):
    from .responsible.review import ReviewQueue, queue_available

    s = _settings(data_dir=data_dir)
    if not queue_available(s):
        _fail("no review queue database: start the local stack (make up) and replay a day first", 2)
    return s, ReviewQueue.from_settings(s)


@review_app.command("list")
def review_list(
    pending: Annotated[
        bool, typer.Option("--pending/--all", help="Only cases nobody labelled.")
    ] = True,
    day: Annotated[str | None, typer.Option(help="Only this scored day, YYYY-MM-DD.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (cases and summary).")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """The queued cases, highest score first, and how many were reviewed."""
    _, queue = _queue(data_dir)
    found = queue.cases(day=day, pending=True if pending else None)
    summary = queue.summary()
    if as_json:
        print(
            json.dumps({"cases": found, "summary": summary, "batches": queue.batches()}, indent=2)
        )
        return
    table = Table(title=f"review queue: {summary['reviewed']} of {summary['queued']} reviewed")
    for column in ("day", "transaction", "customer", "amount", "score", "label", "analyst"):
        table.add_column(column)
    for c in found:
        label = "" if c["label"] is None else ("fraud" if c["label"] == 1 else "genuine")
        table.add_row(
            c["day"],
            str(c["transaction_id"]),
            str(c["customer_id"]),
            f"{c['amount']:.2f}",
            f"{c['score']:.3f}",
            label,
            c["analyst"] or "",
        )
    console.print(table)


@review_app.command("label")
def review_label(
    transaction_id: Annotated[int, typer.Argument(help="The queued transaction's id.")],
    label: Annotated[str, typer.Argument(help="fraud or genuine.")],
    analyst: Annotated[
        str, typer.Option(help="Who decided (recorded with the label).")
    ] = os.environ.get("USER", "analyst"),
    data_dir: DataDir = None,
) -> None:
    """Store an analyst's label for a queued case."""
    from .responsible.review import LABELS, ReviewError

    codes = {name: code for code, name in LABELS.items()}
    if label not in codes:
        _fail(f"label: one of {', '.join(codes)}, not {label!r}", 2)
    _, queue = _queue(data_dir)
    try:
        case = queue.label(transaction_id, codes[label], analyst)
    except ReviewError as err:
        _fail(str(err), 2)
    console.print(
        f"transaction {case['transaction_id']} (score {case['score']:.3f}, day {case['day']}): {label}, by {case['analyst']}"
    )


@review_app.command("serve")
def review_serve(
    host: Annotated[str, typer.Option(help="Bind address (0.0.0.0 in a container).")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (FRAUD_REVIEW_PORT, default 8097).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """The review page: analysts label the queued cases in a browser."""
    import uvicorn

    from .responsible.review import ReviewQueue
    from .responsible.review_app import create_app

    s = _settings(data_dir=data_dir, review_port=port)
    console.print(f"review page on http://{host}:{s.review_port}/ (Ctrl-C to stop)")
    uvicorn.run(
        create_app(s, ReviewQueue.from_settings(s)),
        host=host,
        port=s.review_port,
        log_level="warning",
    )


exercise_app = typer.Typer(
    help="The labs' Python exercises: check a learner's module behaviour by behaviour.",
    no_args_is_help=True,
)
app.add_typer(exercise_app, name="exercise")


@exercise_app.command("check")
def exercise_check(
    lab: Annotated[int, typer.Argument(help="The lab's number, e.g. 11.")],
    code: Annotated[
        str, typer.Option("--code", help="Folder of the learner's module (the lab's starter/).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout.")] = False,
) -> None:
    """Run lab N's behaviours against the module in --code; exit 1 when one fails."""
    import json

    from .exercises import run

    try:
        results = run(lab, code)
    except ValueError as err:
        _fail(str(err), code=2)
    if as_json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        for r in results:
            mark = "[green]✓[/green]" if r.passed else "[red]✗[/red]"
            console.print(f"{mark} {r.behaviour}", markup=True, highlight=False)
            if not r.passed:
                console.print(
                    f"    expected: {r.expected}\n    found:    {r.found}\n    hint:     {r.hint}",
                    markup=False,
                    highlight=False,
                )
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@exercise_app.command("list")
def exercise_list(
    lab: Annotated[int, typer.Argument(help="The lab's number, e.g. 11.")],
) -> None:
    """Lab N's behaviours as JSON (names and hints): what `make lab-N` checks one line each."""
    import json

    from .exercises import describe

    try:
        print(json.dumps(describe(lab)))
    except ValueError as err:
        _fail(str(err), code=2)


# Lab 16: the load test and the right-sizing proposal (reference_app/scaling/commands.py).
from .scaling.commands import load_test, rightsize_cmd  # noqa: E402

app.command("load-test")(load_test)
app.command("rightsize")(rightsize_cmd)
