"""`fraudlab load-test`: a bounded Locust run against the model's V2 inference endpoint.

Locust (https://locust.io, `locust==2.47.0`) runs headless in its own process with
`reference_app/scaling/locustfile.py`: a ramp from 1 to `Settings.load_users` users over
`load_ramp_s`, each user sending at most `load_user_rps` 1-transaction requests per second,
for `load_duration_s` in all, retrying connection errors and 503s (`load_retries`). The report
(`reports/load-test.json`) holds requests, failures, the failure share, p50/p95/p99 latency and
the verdicts against the service's SLOs, whose thresholds come from the one source,
`monitoring.slo` (p95 ≤ 100 ms; ≤ 0.1 % of requests failing: the availability SLO's budget,
which the chaos step spends). `started_at`/`ended_at` bound the window `fraudlab rightsize`
reads from Prometheus.

Only ever point it at your own server (127.0.0.1 or the kind NodePort): it is a load generator.

Example:
    >>> report = run_load_test(Settings(), "http://127.0.0.1:8080")   # doctest: +SKIP
    >>> report["latency_ms"]["p95"], report["slo"]["latency_met"]      # doctest: +SKIP
    (6.0, True)
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..monitoring.slo import AVAILABILITY, LATENCY, LATENCY_THRESHOLD_S

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPORT = "load-test.json"
BODY_COUNT = 500
"""Distinct request bodies (real feature rows, one transaction each) the users cycle through."""


class LoadTestError(RuntimeError):
    """No rows to send, Locust missing or failing, or no request made."""


def request_bodies(settings: Settings, count: int = BODY_COUNT) -> list[dict]:
    """`count` 1-transaction V2 request bodies from the first day of the test period (the day
    the serving bench scores), built by `serving.replay.v2_request`.

    Raises:
        LoadTestError: the features dataset has no row for that day (run `fraudlab demo`).
    """
    from ..data import store
    from ..serving.replay import v2_request

    day = settings.train_start + dt.timedelta(days=settings.delta_train + settings.delta_delay)
    try:
        frame = store.read_dataset(settings.features_dir, days=(day, day))
    except Exception as err:  # a missing dataset or day: say what to run
        raise LoadTestError(
            f"no feature rows for {day} in {settings.features_dir} ({err}): run `fraudlab demo`"
        ) from err
    if frame.empty:
        raise LoadTestError(f"no feature rows for {day} in {settings.features_dir}")
    return [v2_request(frame.iloc[i % len(frame) : i % len(frame) + 1]) for i in range(count)]


def read_locust_stats(path: Path) -> dict:
    """The `Aggregated` row of Locust's `<prefix>_stats.csv`: requests, failures, percentiles (ms).

    Raises:
        LoadTestError: the file or the row is missing (Locust did not run).
    """
    if not path.is_file():
        raise LoadTestError(f"Locust wrote no {path}")
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    if not rows:
        raise LoadTestError(f"{path} has no Aggregated row")
    row = rows[0]

    def ms(column: str) -> float | None:
        value = row.get(column, "N/A")
        return None if value in ("N/A", "", None) else float(value)

    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "requests_per_s": float(row["Requests/s"]),
        "latency_ms": {"p50": ms("50%"), "p95": ms("95%"), "p99": ms("99%"), "max": ms("100%")},
    }


# --8<-- [start:verdict]
def slo_verdict(stats: dict) -> dict:
    """The run against the service's SLOs (`monitoring.slo`, the one source).

    Latency: p95 ≤ LATENCY_THRESHOLD_S (95 % of requests within 100 ms). Availability: the share
    of failed requests (after the client's retries) ≤ 1 − AVAILABILITY.target (0.1 %).
    """
    p95 = stats["latency_ms"]["p95"]
    share = stats["failures"] / stats["requests"] if stats["requests"] else 1.0
    budget = 1 - AVAILABILITY.target
    return {
        "latency_threshold_ms": LATENCY_THRESHOLD_S * 1000,
        "latency_target": LATENCY.target,
        "latency_met": p95 is not None and p95 <= LATENCY_THRESHOLD_S * 1000,
        "availability_target": AVAILABILITY.target,
        "failure_budget_share": round(budget, 6),
        "availability_met": share <= budget,
    }
    # --8<-- [end:verdict]


def run_load_test(
    settings: Settings,
    url: str,
    out_dir: Path | None = None,
    chaos: Callable[[], dict] | None = None,
    chaos_after_s: float | None = None,
) -> dict:
    """Run Locust headless against `url` and write the report `reports/load-test.json`.

    Args:
        settings: `load_*` (the run's shape), `model_name`, `features_dir`, `reports_dir`.
        url: the inference base URL (`http://127.0.0.1:8080`, or the kind NodePort).
        out_dir: where the report and Locust's CSV files go (default `reports_dir`).
        chaos: called once, `chaos_after_s` seconds into the run (lab 16: delete a model pod);
            what it returns is recorded under `chaos`.
        chaos_after_s: when to call `chaos` (default: at the end of the ramp).

    Returns:
        The report: the run's shape, `started_at`/`ended_at` (Unix seconds), `requests`,
        `failures`, `failure_share`, `latency_ms` (p50, p95, p99, max), `requests_per_s`,
        `slo` (`slo_verdict`), `chaos`, and the report's path.

    Raises:
        LoadTestError: no rows to send, Locust failed, or it made no request.
    """
    out = Path(out_dir or settings.reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    bodies = out / "load-test-bodies.json"
    bodies.write_text(json.dumps(request_bodies(settings)))
    prefix = out / "load-test"
    env = {
        **os.environ,
        "FRAUDLAB_LOAD_BODIES": str(bodies),
        "FRAUDLAB_LOAD_MODEL": settings.model_name,
        "FRAUD_LOAD_USERS": str(settings.load_users),
        "FRAUD_LOAD_USER_RPS": str(settings.load_user_rps),
        "FRAUD_LOAD_RAMP_S": str(settings.load_ramp_s),
        "FRAUD_LOAD_DURATION_S": str(settings.load_duration_s),
        "FRAUD_LOAD_RETRIES": str(settings.load_retries),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", url.rstrip("/"), "--csv", str(prefix), "--only-summary",
        "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    chaos_record: dict = {}
    timer = None
    if chaos is not None:
        delay = settings.load_ramp_s if chaos_after_s is None else chaos_after_s

        def fire() -> None:
            try:
                chaos_record.update(chaos())
            except Exception as err:  # recorded: the run goes on, the check sees why
                chaos_record["error"] = f"{type(err).__name__}: {err}"

        timer = threading.Timer(delay, fire)
    started = time.time()
    if timer:
        timer.start()
    try:
        # Bounded: the shape stops at load_duration_s; Locust then waits for running requests.
        done = subprocess.run(
            command, env=env, capture_output=True, text=True,
            timeout=settings.load_duration_s + 120,
        )  # fmt: skip
    except FileNotFoundError as err:
        raise LoadTestError(f"cannot run Locust ({err}): make install") from err
    except subprocess.TimeoutExpired as err:
        raise LoadTestError(f"Locust did not stop within {err.timeout:.0f} s") from err
    finally:
        if timer:
            timer.cancel()
            timer.join()
    ended = time.time()
    if done.returncode != 0:
        raise LoadTestError(f"Locust exited with {done.returncode}: {done.stderr[-800:]}")
    stats = read_locust_stats(Path(f"{prefix}_stats.csv"))
    if stats["requests"] == 0:
        raise LoadTestError(f"Locust made no request to {url}: {done.stderr[-800:]}")
    report = {
        "url": url,
        "model": settings.model_name,
        "users": settings.load_users,
        "user_rps": settings.load_user_rps,
        "ramp_s": settings.load_ramp_s,
        "duration_s": settings.load_duration_s,
        "retries": settings.load_retries,
        "started_at": started,
        "ended_at": ended,
        **stats,
        "failure_share": stats["failures"] / stats["requests"],
        "slo": slo_verdict(stats),
        "chaos": chaos_record or None,
        "report_path": str(out / REPORT),
        "locust_stats_csv": f"{prefix}_stats.csv",
    }
    (out / REPORT).write_text(json.dumps(report, indent=2))
    return report


def read_report(settings: Settings) -> dict | None:
    """The last load test's report (`reports/load-test.json`), None when there is none."""
    path = Path(settings.reports_dir) / REPORT
    return json.loads(path.read_text()) if path.is_file() else None
