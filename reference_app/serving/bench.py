"""`make bench`, serving: our runtime, MLServer's stock runtime and in-process predict, one forest.

One random forest, trained on the handbook's protocol, is served four ways, one server at a
time, each an MLServer 1.7.1 process on 127.0.0.1:

1. ours: `fraudlab serve` (the gate, `FraudRuntime`) on a version with its ONNX file: the
   compiled forest in onnxruntime;
2. ours, native: the same forest logged without ONNX (as versions before compiled inference),
   scored by scikit-learn, concurrent requests merged by the runtime's micro-batcher;
3. stock: MLServer's scikit-learn runtime (mlserver-sklearn) on the same forest (joblib);
4. stock, adaptive batching: the same with MLServer's batching (64 requests or 1 ms).

A closed-loop load generator (aiohttp, one process, `c` connections each sending its next
request when the last answer arrives) sends 1-row requests at concurrency 1, 16 and 64 and
reports p50/p99 latency, requests/s and the server's CPU time per request (from /proc: a
figure that holds better than latency on a shared machine). In-process rows time the models'
own predict on one row. Nothing here is asserted; ratios are the point.

Run: `python -m reference_app.serving.bench [--quick] [--seconds S] [--state DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from ..config import Settings
from ..features import FEATURE_NAMES
from .replay import v2_request

CONCURRENCY = (1, 16, 64)
MODEL = "fraud-detector-bench"
STOCK_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.001}
"""Tuned by hand (measured: 20 ms adds 20 ms at concurrency 1 for +20 % at 64; 1 ms adds nothing)."""
SERVERS = ("ours, ONNX", "ours, native", "stock", "stock + batching")
"""Our runtime on the version with ONNX, on the version without; mlserver-sklearn without and
with MLServer's adaptive batching."""
GOALS = "p50 ≤ 3 ms and p99 ≤ 10 ms at concurrency 1; ≥ 1,000 requests/s with p99 ≤ 50 ms at 64"

console = Console()


@dataclass
class Load:
    """One load run: latencies (s), wall time (s), server CPU time (s) or None."""

    latencies: np.ndarray
    wall_s: float
    server_cpu_s: float | None

    def row(self) -> tuple[str, ...]:
        lat = self.latencies * 1000
        n = len(lat)
        cpu = f"{self.server_cpu_s / n * 1000:.2f} ms" if self.server_cpu_s is not None else "–"
        return (
            f"{np.percentile(lat, 50):.2f}",
            f"{np.percentile(lat, 99):.2f}",
            f"{n / self.wall_s:,.0f}",
            cpu,
        )

    @property
    def per_s(self) -> float:
        return len(self.latencies) / self.wall_s


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --8<-- [start:load-generator]
async def closed_loop(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> tuple:
    """`concurrency` connections, each posting its next body as soon as the last answer arrives,
    for `seconds`. Returns (latencies in s, wall time in s).

    Raises:
        RuntimeError: on any answer other than 200 (with its body).
    """
    import aiohttp

    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def client(k: int) -> None:
            i = k
            while time.perf_counter() < stop:
                started = time.perf_counter()
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"POST {url} → {r.status}: {body[:300]!r}")
                latencies.append(time.perf_counter() - started)
                i += concurrency

        began = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(concurrency)))
        return np.asarray(latencies), time.perf_counter() - began


# --8<-- [end:load-generator]


def sweep(url: str, bodies: list[bytes], pid: int, seconds: float) -> dict[int, Load]:
    """Run the load at each of `CONCURRENCY` (1 s of warm-up first) against a server process."""
    out = {}
    for c in CONCURRENCY:
        asyncio.run(closed_loop(url, bodies, c, 1.0))
        cpu0 = _cpu_seconds(pid)
        latencies, wall = asyncio.run(closed_loop(url, bodies, c, seconds))
        cpu1 = _cpu_seconds(pid)
        out[c] = Load(latencies, wall, None if cpu0 is None or cpu1 is None else cpu1 - cpu0)
    return out


@dataclass
class Prepared:
    """What the servers serve: the tracking URI, the two versions, the joblib file, test rows."""

    folder: Path
    tracking_uri: str
    versions: tuple[str, str]
    joblib_path: Path
    test: pd.DataFrame


def prepare(folder: Path, quick: bool) -> Prepared:
    """Simulate, build features, train the forest on the handbook's protocol and log it twice
    (v1 with its ONNX file, v2 without) to a SQLite MLflow store in `folder`; reused if there."""
    import joblib

    from .. import tracking
    from ..data.simulator import SimulationParams, simulate_transactions
    from ..features import build_features
    from ..training.split import EvaluationProtocol
    from ..training.train import train

    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "prepared.json"
    uri = f"sqlite:///{folder.resolve() / 'mlflow.db'}"
    if done.exists():
        info = json.loads(done.read_text())
        return Prepared(
            folder,
            uri,
            tuple(info["versions"]),
            folder / "model.joblib",
            pd.read_parquet(folder / "test.parquet"),
        )
    s = Settings()
    protocol = EvaluationProtocol.from_settings(s)
    days = (protocol.train_start - s.start_date).days + 21  # through the test week
    scale = {"n_customers": 1000, "n_terminals": 2000} if quick else {}
    console.print(f"serving bench: simulating {days} days, training the forest …")
    params = SimulationParams.from_settings(Settings(nb_days=days, **scale))
    features = build_features(simulate_transactions(params))
    result = train(features, "random_forest", protocol, seed=s.seed, device="cpu")
    with contextlib.chdir(folder):  # MLflow's artifact root (./mlruns) lands in the folder
        tracking.configure(uri, "serving-bench")
        _, compiled = tracking.log_training_run(result, MODEL, "bench")
        _, native = tracking.log_training_run(result, MODEL, "bench", compiled=False)
    joblib_path = folder / "model.joblib"
    joblib.dump(result.model, joblib_path)
    test = result.test[FEATURE_NAMES].head(2000).reset_index(drop=True)
    test.to_parquet(folder / "test.parquet")
    done.write_text(json.dumps({"versions": [compiled, native]}))
    return Prepared(folder, uri, (compiled, native), joblib_path, test)


def ours(prepared: Prepared, version: str):
    """`fraudlab serve` on `version` (a `ManagedProcess`, not started)."""
    from ..launchers.stack import free_port, start_mlserver

    settings = Settings(
        data_dir=str(prepared.folder / f"ours-v{version}"),
        mlflow_tracking_uri=prepared.tracking_uri,
        model_name=MODEL,
        model_uri=f"models:/{MODEL}/{version}",
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
    )
    return start_mlserver(settings)


def stock(prepared: Prepared, batching: bool):
    """MLServer's scikit-learn runtime on the forest's joblib file (a `ManagedProcess`)."""
    from ..launchers.stack import ManagedProcess, free_port

    folder = prepared.folder / ("stock-batching" if batching else "stock")
    (folder / MODEL).mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
    }
    model = {
        "name": MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(prepared.joblib_path), "version": "1"},
        **(STOCK_BATCHING if batching else {}),
    }
    (folder / "settings.json").write_text(json.dumps(server))
    (folder / MODEL / "model-settings.json").write_text(json.dumps(model))
    url = f"http://127.0.0.1:{port}"
    return ManagedProcess(
        "MLServer (stock)",
        [str(Path(sys.executable).parent / "mlserver"), "start", str(folder)],
        folder / "mlserver.log",
        f"{url}/v2/models/{MODEL}/ready",
        url,
    )


def ours_bodies(test: pd.DataFrame) -> list[bytes]:
    """1-row V2 requests for our runtime: one FP64 input per feature."""
    return [json.dumps(v2_request(test.iloc[i : i + 1])).encode() for i in range(len(test))]


def stock_bodies(test: pd.DataFrame) -> list[bytes]:
    """1-row V2 requests for the stock runtime: one (1, 15) FP64 tensor, `predict_proba` out."""
    values = test[FEATURE_NAMES].to_numpy(np.float64)
    return [
        json.dumps({
            "inputs": [{"name": "X", "shape": [1, 15], "datatype": "FP64", "data": row.tolist()}],
            "outputs": [{"name": "predict_proba"}],
        }).encode()
        for row in values
    ]  # fmt: skip


def _first_score(url: str, body: bytes) -> float:
    import httpx

    answer = httpx.post(url, content=body, headers={"content-type": "application/json"}).json()
    data = answer["outputs"][0]["data"]
    return float(data[1] if len(data) == 2 else data[0])


def in_process(prepared: Prepared) -> dict[str, float]:
    """Median seconds of one predict call, per model (no server): one row, and for the compiled
    forest also 64 rows and 2 intra-op threads (`compiled.INTRA_OP_THREADS`)."""
    import joblib

    from .. import tracking
    from .compiled import CompiledModel

    with contextlib.chdir(prepared.folder):
        tracking.configure(prepared.tracking_uri)
        loaded = tracking.load_model(f"models:/{MODEL}/{prepared.versions[0]}")
    compiled = CompiledModel(loaded.onnx_path)
    two_threads = CompiledModel(loaded.onnx_path, threads=2)
    forest = joblib.load(prepared.joblib_path)
    rows = prepared.test[FEATURE_NAMES].to_numpy(np.float64)

    def median(fn, n: int, size: int = 1) -> float:
        costs = []
        for i in range(n):
            start = (i * size) % (len(rows) - size)
            started = time.perf_counter()
            fn(rows[start : start + size])
            costs.append(time.perf_counter() - started)
        return float(np.median(costs))

    return {
        "compiled": median(compiled.predict_proba, 500),
        "compiled, 2 threads": median(two_threads.predict_proba, 500),
        "compiled, 64 rows": median(compiled.predict_proba, 200, 64),
        "compiled, 64 rows, 2 threads": median(two_threads.predict_proba, 200, 64),
        "native": median(lambda x: forest.predict_proba(x)[:, 1], 50),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the serving tables. `--quick`: smaller data and 3 s per load run."""
    parser = argparse.ArgumentParser(prog="python -m reference_app.serving.bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="per load run (default 8)")
    parser.add_argument("--state", type=Path, default=None, help="keep/reuse the model here")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    with contextlib.ExitStack() as stack:
        folder = args.state or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        prepared = prepare(folder, args.quick)
        local = in_process(prepared)
        compiled_v, native_v = prepared.versions
        runs = dict(
            zip(
                SERVERS,
                [
                    (lambda: ours(prepared, compiled_v), ours_bodies),
                    (lambda: ours(prepared, native_v), ours_bodies),
                    (lambda: stock(prepared, batching=False), stock_bodies),
                    (lambda: stock(prepared, batching=True), stock_bodies),
                ],
                strict=True,
            )
        )
        results, firsts = {}, {}
        for name, (server, make_bodies) in runs.items():
            console.print(f"serving bench: {name} …")
            bodies = make_bodies(prepared.test)
            with server() as server:
                url = f"{server.url}/v2/models/{MODEL}/infer"
                firsts[name] = _first_score(url, bodies[0])
                results[name] = sweep(url, bodies, server.proc.pid, seconds)
    report(results, firsts, local, prepared, seconds)


def report(results: dict, firsts: dict, local: dict, prepared: Prepared, seconds: float) -> None:
    """Print the sweep, the side-by-side ratios and the goals."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(
        f"[bold]Serving[/] one forest, 1-row REST requests on loopback, {seconds:.0f} s a run "
        f"({os.cpu_count()} CPUs, load average {load}); CPU: the server's CPU time a request"
    )
    table = Table("server", "conc.", "p50 ms", "p99 ms", "req/s", "CPU")
    for name, sweep_ in results.items():
        for c, run in sweep_.items():
            table.add_row(name if c == CONCURRENCY[0] else "", str(c), *run.row())
    console.print(table)
    ours_, native, stock_, batched = (results[name] for name in SERVERS)
    table = Table("side by side", "ours", "stock", "stock+batch", "in-process", "ours/stock")
    p50 = {k: np.percentile(v[1].latencies, 50) * 1000 for k, v in results.items()}
    table.add_row(
        "p50 ms, conc. 1",
        f"{p50[SERVERS[0]]:.2f}",
        f"{p50[SERVERS[2]]:.2f}",
        f"{p50[SERVERS[3]]:.2f}",
        f"{local['compiled'] * 1000:.3f} ONNX, {local['native'] * 1000:.2f} sklearn",
        f"{p50[SERVERS[0]] / p50[SERVERS[2]]:.2f}x",
    )
    for c in CONCURRENCY:
        table.add_row(
            f"req/s, conc. {c}",
            f"{ours_[c].per_s:,.0f}",
            f"{stock_[c].per_s:,.0f}",
            f"{batched[c].per_s:,.0f}",
            f"{1 / local['compiled']:,.0f} ONNX, {1 / local['native']:,.0f} sklearn",
            f"{ours_[c].per_s / stock_[c].per_s:.1f}x",
        )
    console.print(table)
    console.print(
        f"server time over in-process predict at conc. 1: ours {p50[SERVERS[0]] / (local['compiled'] * 1000):.0f}x "
        f"(ONNX), stock {p50[SERVERS[2]] / (local['native'] * 1000):.1f}x (sklearn); ours, native: "
        f"{native[64].per_s / native[1].per_s:.1f}x the requests/s at 64 as at 1 (micro-batching)"
    )
    us = {k: f"{v * 1e6:,.0f} µs" for k, v in local.items()}
    console.print(
        f"in-process, compiled forest: 1 row {us['compiled']} (1 thread), "
        f"{us['compiled, 2 threads']} (2 threads); 64 rows {us['compiled, 64 rows']} (1 thread), "
        f"{us['compiled, 64 rows, 2 threads']} (2 threads); scikit-learn, 1 row {us['native']}"
    )
    spread = max(firsts.values()) - min(firsts.values())
    console.print(
        f"same forest: the first row scored {min(firsts.values()):.6f} by every server "
        f"(spread {spread:.1e})"
    )
    p50_1 = p50[SERVERS[0]]
    p99_1 = np.percentile(ours_[1].latencies, 99) * 1000
    p99_64 = np.percentile(ours_[64].latencies, 99) * 1000
    met = p50_1 <= 3 and p99_1 <= 10, ours_[64].per_s >= 1000 and p99_64 <= 50
    console.print(
        f"goals ({GOALS}): conc. 1 {'met' if met[0] else 'NOT met'} ({p50_1:.2f} / {p99_1:.2f} ms); "
        f"conc. 64 {'met' if met[1] else 'NOT met'} ({ours_[64].per_s:,.0f} req/s, p99 {p99_64:.0f} ms)"
    )


if __name__ == "__main__":
    main()
