"""`make bench`: throughput and latency, each against a simple reference in the same run.

Ratios, not absolute times, are the point: they hold across machines. Nothing here is asserted.

1. simulator: `simulate_transactions` vs a straightforward per-customer, per-day loop;
2. data contract: `validate_transactions` vs plain pandera (`TRANSACTION_SCHEMA.validate(frame,
   lazy=True)`) on the same frames: the whole dataset, the dataset with 1 row in 1 000 broken,
   and one frame per day as `fraudlab validate` reads them;
3. features: `build_features` vs pandas time-based `rolling` per customer / terminal (a sample),
   and vs the previous implementation (`previous_build_features`) on the whole dataset;
4. training: fit time per model and device on the handbook's protocol;
   tuning (lab 14): LightGBM trials per minute with Ray Tune and ASHA vs a plain serial loop;
5. serving: MLServer p50/p99 at concurrency 1 and requests/s, vs in-process prediction
   (needs the demo's MLflow store: run `make demo` first).

The goals of the "speed of the main job" issue are printed with what this run measured
(handbook scale only: `--quick` runs a smaller dataset and says so).

Run: `python -m reference_app.bench [--quick]`.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pandera.errors as pa_errors
from rich.console import Console
from rich.table import Table

from .config import FEATURE_DELAY_DAYS, Settings
from .data.contracts import TRANSACTION_SCHEMA, validate_transactions
from .data.simulator import (
    SECONDS_PER_DAY,
    SimulationParams,
    generate_customer_profiles,
    generate_terminal_profiles,
    simulate_transactions,
    terminals_within_radius,
)
from .features import FEATURE_NAMES, build_features

console = Console()

GOAL_VALIDATE_ROWS_PER_S = 400_000
"""`validate_transactions` in-process on the handbook-scale dataset, rows per second."""
GOAL_FEATURES_S = 1.5
"""`build_features` in-process on the handbook-scale dataset, seconds."""
GOAL_DEMO_S = 60
"""`fraudlab demo` from a fresh data directory on 2 cores, seconds (not run by the bench)."""


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def reference_simulate(
    n_customers: int, n_terminals: int, nb_days: int, seed: int = 0
) -> pd.DataFrame:
    """Legitimate transactions the obvious way: a Python loop per customer and per day."""
    rng = np.random.default_rng(seed)
    customers = generate_customer_profiles(n_customers, rng)
    terminals = generate_terminal_profiles(n_terminals, rng)
    offsets, flat = terminals_within_radius(customers, terminals, 5.0)
    rows = []
    for c in customers.itertuples():
        available = flat[offsets[c.CUSTOMER_ID] : offsets[c.CUSTOMER_ID + 1]]
        if len(available) == 0:
            continue
        for day in range(nb_days):
            for _ in range(rng.poisson(c.mean_nb_tx_per_day)):
                tod = int(rng.normal(SECONDS_PER_DAY / 2, 20_000))
                if 0 <= tod < SECONDS_PER_DAY:
                    amount = rng.normal(c.mean_amount, c.std_amount)
                    if amount < 0:
                        amount = rng.uniform(0, 2 * c.mean_amount)
                    rows.append(
                        (
                            day * SECONDS_PER_DAY + tod,
                            day,
                            c.CUSTOMER_ID,
                            int(rng.choice(available)),
                            round(amount, 2),
                        )
                    )
    return pd.DataFrame(
        rows, columns=["TX_TIME_SECONDS", "TX_TIME_DAYS", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
    )


def reference_features(tx: pd.DataFrame, delay_days: int = 7) -> pd.DataFrame:
    """Window features with pandas' time-based `rolling` per group (the textbook pandas way)."""
    tx = tx.sort_values("TX_DATETIME").reset_index(drop=True)
    out = tx.copy()
    for key, prefix in (("CUSTOMER_ID", "CUSTOMER_ID"), ("TERMINAL_ID", "TERMINAL_ID")):
        for n in (1, 7, 30):
            pieces = []
            for _, g in tx.groupby(key):
                g = g.set_index("TX_DATETIME")
                if key == "CUSTOMER_ID":
                    count = g["TX_AMOUNT"].rolling(f"{n}D").count()
                    total = g["TX_AMOUNT"].rolling(f"{n}D").sum()
                    pieces.append(
                        pd.DataFrame(
                            {
                                f"{prefix}_NB_TX_{n}DAY_WINDOW": count.to_numpy(),
                                f"{prefix}_AVG_AMOUNT_{n}DAY_WINDOW": (total / count).to_numpy(),
                            },
                            index=g["TRANSACTION_ID"],
                        )
                    )
                else:
                    f_delay = g["TX_FRAUD"].rolling(f"{delay_days}D").sum()
                    c_delay = g["TX_FRAUD"].rolling(f"{delay_days}D").count()
                    f_all = g["TX_FRAUD"].rolling(f"{delay_days + n}D").sum()
                    c_all = g["TX_FRAUD"].rolling(f"{delay_days + n}D").count()
                    count = (c_all - c_delay).to_numpy()
                    risk = np.where(
                        count > 0, (f_all - f_delay).to_numpy() / np.maximum(count, 1), 0.0
                    )
                    pieces.append(
                        pd.DataFrame(
                            {
                                f"{prefix}_NB_TX_{n}DAY_WINDOW": count,
                                f"{prefix}_RISK_{n}DAY_WINDOW": risk,
                            },
                            index=g["TRANSACTION_ID"],
                        )
                    )
            out = out.join(pd.concat(pieces), on="TRANSACTION_ID")
    return out


def previous_build_features(
    transactions: pd.DataFrame, delay_days: int = FEATURE_DELAY_DAYS
) -> pd.DataFrame:
    """`build_features` as it was before it shared one sort per entity: a lexsort and two
    binary searches per window and entity, and the frame built column by column."""

    def window_sums(keys, seconds, values, lo, hi):
        order = np.lexsort((seconds, keys))
        k, s = keys[order], seconds[order]
        spacing = int(s.max() - s.min()) + int(lo) + 1 if len(s) else 1
        axis = (k - k.min() if len(k) else k).astype(np.int64) * spacing + (
            s - (s.min() if len(s) else 0)
        )
        start = np.searchsorted(axis, axis - lo, side="right")
        end = np.searchsorted(axis, axis - hi, side="right")
        counts = np.empty(len(keys), dtype=np.int64)
        counts[order] = end - start
        c = np.concatenate([[0.0], np.cumsum(values[order], dtype=np.float64)])
        sums = np.empty(len(keys), dtype=np.float64)
        sums[order] = c[end] - c[start]
        return counts, sums

    out = transactions.copy()
    when = pd.to_datetime(out["TX_DATETIME"])
    out["TX_DURING_WEEKEND"] = (when.dt.weekday >= 5).astype(np.int64)
    out["TX_DURING_NIGHT"] = (when.dt.hour <= 6).astype(np.int64)
    seconds = when.to_numpy(dtype="datetime64[s]").astype(np.int64)
    amount = out["TX_AMOUNT"].to_numpy(dtype=np.float64)
    fraud = out["TX_FRAUD"].to_numpy(dtype=np.float64)
    customers = out["CUSTOMER_ID"].to_numpy(dtype=np.int64)
    terminals = out["TERMINAL_ID"].to_numpy(dtype=np.int64)
    for n in (1, 7, 30):
        count, total = window_sums(customers, seconds, amount, n * SECONDS_PER_DAY, 0)
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = total / np.maximum(count, 1)
    for n in (1, 7, 30):
        count, frauds = window_sums(
            terminals,
            seconds,
            fraud,
            (delay_days + n) * SECONDS_PER_DAY,
            delay_days * SECONDS_PER_DAY,
        )
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = np.where(
            count > 0, frauds / np.maximum(count, 1), 0.0
        )
    return out


def plain_pandera(frame: pd.DataFrame) -> None:
    """The contract as pandera checks it alone: every check on every row, failures collected."""
    try:
        TRANSACTION_SCHEMA.validate(frame, lazy=True)
    except pa_errors.SchemaErrors:
        pass


def _best_of(repeats: int, fn, *args) -> float:
    """The shortest of `repeats` timings of `fn(*args)`, in seconds (the machine may be shared)."""
    return min(_timed(fn, *args)[1] for _ in range(repeats))


def bench_validate(transactions: pd.DataFrame, quick: bool) -> tuple[list[tuple], float]:
    """Rows for the data contract, and `validate_transactions`' rows/s on the whole frame."""
    rows = []
    n = len(transactions)
    broken = transactions.copy()
    # 1 row in 1 000 breaks TX_AMOUNT >= 0: the path where pandera judges the suspect rows.
    broken.iloc[np.arange(0, n, 1000), broken.columns.get_loc("TX_AMOUNT")] = -1.0
    repeats = 1 if quick else 3
    rates = {}
    for label, frame in (("whole dataset", transactions), ("1 row in 1 000 broken", broken)):
        t_ours = _best_of(repeats, validate_transactions, frame)
        t_ref = _best_of(repeats, plain_pandera, frame)
        rates[label] = n / t_ours
        rows.append(
            (
                f"validate, {label} ({n:,} rows)",
                f"{n / t_ours:,.0f} rows/s",
                f"{n / t_ref:,.0f} rows/s (plain pandera, lazy=True)",
                f"{t_ref / t_ours:,.1f}x",
            )
        )
    days = [g for _, g in transactions.groupby("TX_TIME_DAYS", sort=True)]
    t_ours = _timed(lambda: [validate_transactions(d) for d in days])[1]
    t_ref = _timed(lambda: [plain_pandera(d) for d in days])[1]
    rows.append(
        (
            f"validate, one frame per day ({len(days)} frames, as `fraudlab validate`)",
            f"{n / t_ours:,.0f} rows/s",
            f"{n / t_ref:,.0f} rows/s (plain pandera, lazy=True)",
            f"{t_ref / t_ours:,.1f}x",
        )
    )
    return rows, rates["whole dataset"]


def bench_features(transactions: pd.DataFrame, quick: bool) -> tuple[list[tuple], float]:
    """Rows for `build_features` on the whole frame vs the previous implementation, and its
    seconds; the two must give identical frames."""
    repeats = 1 if quick else 3
    t_ours = _best_of(repeats, build_features, transactions)
    t_prev = _best_of(repeats, previous_build_features, transactions)
    same = build_features(transactions).equals(previous_build_features(transactions))
    return [
        (
            f"features, whole dataset ({len(transactions):,} tx)",
            f"{t_ours:.2f} s",
            f"{t_prev:.2f} s (previous_build_features: a lexsort per window); "
            + ("identical values" if same else "VALUES DIFFER"),
            f"{t_prev / t_ours:,.1f}x",
        )
    ], t_ours


def goal_rows(quick: bool, validate_rows_per_s: float, features_s: float) -> list[tuple]:
    """The issue's goals beside what this run measured."""

    def verdict(ok: bool) -> str:
        return "quick mode: not handbook scale" if quick else ("met" if ok else "NOT MET")

    return [
        (
            f"validate_transactions ≥ {GOAL_VALIDATE_ROWS_PER_S:,} rows/s in-process",
            f"{validate_rows_per_s:,.0f} rows/s",
            verdict(validate_rows_per_s >= GOAL_VALIDATE_ROWS_PER_S),
        ),
        (
            f"build_features ≤ {GOAL_FEATURES_S} s in-process",
            f"{features_s:.2f} s",
            verdict(features_s <= GOAL_FEATURES_S),
        ),
        (
            f"fraudlab demo ≤ {GOAL_DEMO_S} s from scratch on 2 cores",
            "not run here",
            "`rm -rf data && time make demo` (seconds per step printed)",
        ),
    ]


def bench_data(quick: bool) -> list[tuple]:
    rows = []
    ref_customers, ref_days = (100, 30) if quick else (500, 60)
    ref, t_ref = _timed(reference_simulate, ref_customers, ref_customers * 2, ref_days)
    scale = (500, 1000, 60) if quick else (5_000, 10_000, 183)
    n_customers, n_terminals, nb_days = scale
    params = SimulationParams.from_settings(
        Settings(n_customers=n_customers, n_terminals=n_terminals, nb_days=nb_days)
    )
    ours, t_ours = _timed(simulate_transactions, params)
    rows.append(
        (
            "simulator (legitimate + frauds)",
            f"{len(ours) / t_ours:,.0f} tx/s",
            f"{len(ref) / t_ref:,.0f} tx/s (per-customer loop, no frauds)",
            f"{(len(ours) / t_ours) / (len(ref) / t_ref):,.0f}x",
        )
    )
    sample = ours[ours["TX_TIME_DAYS"] < (40 if not quick else 20)]
    fast, t_fast = _timed(build_features, sample)
    slow, t_slow = _timed(reference_features, sample)
    check = slow.set_index("TRANSACTION_ID").loc[
        fast["TRANSACTION_ID"], [c for c in FEATURE_NAMES if "_ID_" in c]
    ]
    differ = int(
        (
            ~np.isclose(
                check.to_numpy(float),
                fast[[c for c in FEATURE_NAMES if "_ID_" in c]].to_numpy(float),
                equal_nan=True,
            )
        )
        .any(axis=1)
        .sum()
    )
    # pandas' row-based rolling counts a same-second twin only if it comes first in row order;
    # ours counts every transaction at or before t, whatever the row order.
    ties = int(sample.duplicated(["CUSTOMER_ID", "TX_DATETIME"], keep=False).sum())
    rows.append(
        (
            f"features ({len(sample):,} tx)",
            f"{len(sample) / t_fast:,.0f} tx/s",
            f"{len(sample) / t_slow:,.0f} tx/s (pandas rolling per group); values differ on {differ} rows, {ties} same-second customer ties",
            f"{t_slow / t_fast:,.0f}x",
        )
    )
    return rows, ours


def bench_tuning(transactions: pd.DataFrame, quick: bool) -> list[tuple]:
    """Lab 14: LightGBM trials per minute with Ray Tune (ASHA early stopping, trials at once on
    a local Ray of `ray_num_cpus` CPUs) vs a plain loop that trains the same configurations one
    after another (each fit on all cores), every fold to the last round, evaluated once."""
    from .training import tune
    from .training.models import make_model
    from .training.split import EvaluationProtocol

    s = Settings(tune_trials=2 if quick else 4, tune_folds=2 if quick else 4)
    protocol = EvaluationProtocol.from_settings(s)
    if quick:
        protocol = protocol.starting(dt.date(2018, 5, 1))
    feats = build_features(transactions)
    folds = tune.prequential_folds(
        protocol.train_start, s.tune_folds, protocol.delta_train, protocol.delta_delay,
        s.tune_delta_assessment,
    )  # fmt: skip
    data = tune.fold_data(feats, folds, protocol, s.tune_delta_assessment)
    with tune.ray_cluster(s) as where:
        found = tune.search("lightgbm", data, s, storage_path=None)
    started = time.perf_counter()
    for sampled in found.configs:
        config = {**sampled, "n_estimators": s.tune_lightgbm_max_rounds}
        models = [
            make_model("lightgbm", s.seed, hyperparameters=config).fit(f.train_X, f.train_y)
            for f in data
        ]
        tune.fold_metrics(data, lambda i, X, m=models: m[i].predict_proba(X)[:, 1], s.top_k)
    plain = len(found.configs) / (time.perf_counter() - started) * 60
    return [
        (
            f"LightGBM, {s.tune_trials} trials × {s.tune_folds} folds, Ray Tune + ASHA on {where}",
            f"{found.trials_per_minute:.1f} trials/min ({found.stopped_early} stopped early)",
            f"{plain:.1f} trials/min (one after another, all {s.tune_lightgbm_max_rounds} rounds)",
            f"{found.trials_per_minute / plain:.1f}x",
        )
    ]


def bench_training(transactions: pd.DataFrame, quick: bool) -> list[tuple]:
    from .training.split import EvaluationProtocol
    from .training.train import train

    feats = build_features(transactions)
    s = Settings()
    protocol = EvaluationProtocol.from_settings(s)
    if quick:
        protocol = protocol.starting(dt.date(2018, 5, 1))
    rows = []
    for model in ("logistic_regression", "random_forest", "mlp"):
        result = train(feats, model, protocol, seed=s.seed, device=s.device)
        rows.append(
            (
                model,
                result.device,
                f"{result.metrics['fit_seconds']:.1f} s",
                f"{result.params['n_train']:,} rows",
                f"{result.params['n_train'] / result.metrics['fit_seconds']:,.0f} rows/s",
            )
        )
    return rows


def bench_serving(settings: Settings, requests: int = 200) -> list[tuple] | None:
    from . import tracking
    from .data import store
    from .launchers.stack import free_port, start_mlflow, start_mlserver
    from .serving.replay import v2_request

    if store.read_manifest(settings.features_dir) is None:
        return None
    rows = []
    mlflow_port = free_port()
    settings = settings.model_copy(
        update={
            "mlflow_tracking_uri": f"http://127.0.0.1:{mlflow_port}",
            "http_port": free_port(),
            "grpc_port": free_port(),
            "metrics_port": free_port(),
        }
    )
    day = settings.train_start + dt.timedelta(days=settings.delta_train + settings.delta_delay)
    frame = store.read_dataset(settings.features_dir, days=(day, day))
    with start_mlflow(settings, mlflow_port), start_mlserver(settings) as server:
        tracking.configure(settings.mlflow_tracking_uri)
        model = tracking.load_model(settings.model_uri)
        url = f"{server.url}/v2/models/{settings.model_name}/infer"
        with httpx.Client(timeout=30) as client:
            for batch in (1, 200):
                bodies = [
                    v2_request(frame.iloc[(i * batch) % (len(frame) - batch) :][:batch])
                    for i in range(requests)
                ]
                client.post(url, json=bodies[0])  # warm-up
                lat = []
                t0 = time.perf_counter()
                for body in bodies:
                    t = time.perf_counter()
                    client.post(url, json=body).raise_for_status()
                    lat.append((time.perf_counter() - t) * 1000)
                wall = time.perf_counter() - t0
                local = []
                for i in range(min(requests, 50)):
                    part = frame.iloc[(i * batch) % (len(frame) - batch) :][:batch]
                    t = time.perf_counter()
                    model.predict_proba(part)
                    local.append((time.perf_counter() - t) * 1000)
                rows.append(
                    (
                        f"batch {batch}, model v{model.version}",
                        f"{np.percentile(lat, 50):.1f} / {np.percentile(lat, 99):.1f} ms",
                        f"{requests / wall:,.0f} req/s ({requests * batch / wall:,.0f} tx/s)",
                        f"{np.median(local):.2f} ms",
                        f"{np.percentile(lat, 50) / np.median(local):.1f}x",
                    )
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the benchmark tables. `--quick` uses smaller data."""
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    console.print("[bold]Data[/] (same machine, same run; ratio = ours / reference throughput)")
    data_rows, transactions = bench_data(quick)
    validate_rows, validate_rate = bench_validate(transactions, quick)
    feature_rows, features_s = bench_features(transactions, quick)
    table = Table("step", "ours", "reference", "ratio")
    for row in [*data_rows, *validate_rows, *feature_rows]:
        table.add_row(*row)
    console.print(table)
    console.print(
        f"[bold]Goals[/] (issue: speed of the main job; {len(transactions):,} transactions this run)"
    )
    table = Table("goal", "measured", "verdict")
    for row in goal_rows(quick, validate_rate, features_s):
        table.add_row(*row)
    console.print(table)
    console.print("[bold]Training[/] (handbook protocol: one training week)")
    table = Table("model", "device", "fit time", "training set", "throughput")
    for row in bench_training(transactions, quick):
        table.add_row(*row)
    console.print(table)
    console.print(
        "[bold]Tuning[/] (lab 14: prequential folds of the same data; ratio = ours / plain loop)"
    )
    table = Table("search", "ours", "reference", "ratio")
    for row in bench_tuning(transactions, quick):
        table.add_row(*row)
    console.print(table)
    console.print("[bold]Serving[/] (MLServer over REST at concurrency 1 vs in-process predict)")
    rows = bench_serving(Settings())
    if rows is None:
        console.print(
            "skipped: no features dataset with a registered champion — run `make demo` first"
        )
        return
    table = Table(
        "request",
        "p50 / p99 latency",
        "throughput",
        "in-process predict (median)",
        "server overhead",
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
