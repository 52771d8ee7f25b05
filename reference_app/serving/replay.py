"""Replay a day of transactions against the served model and check training/serving skew.

Example:
    >>> summary = replay_day(Settings(), dt.date(2018, 8, 8))   # doctest: +SKIP
    >>> summary["max_abs_diff"] <= 1e-6                          # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from ..config import Settings
from ..data import store
from ..features import FEATURE_NAMES
from ..responsible.review import ReviewQueue, queue_available
from ..tracking import OUTPUT_NAME, configure, load_model
from .compiled import CompiledModel, scorer_for

SKEW_TOLERANCE = 1e-6


class ReplayError(RuntimeError):
    """The server refused a request or the replay found no data."""


# --8<-- [start:v2-request]
def v2_request(features: pd.DataFrame) -> dict:
    """Build a V2 inference request body: one FP64 input of shape [n] per feature."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(features)],
                "datatype": "FP64",
                "data": features[name].to_numpy(dtype=np.float64).tolist(),
            }
            for name in FEATURE_NAMES
        ]
    }


# --8<-- [end:v2-request]


def wait_until_ready(settings: Settings, timeout_s: float, poll_s: float = 5.0) -> None:
    """Poll the V2 model-ready endpoint until the served model answers 200 (bounded).

    Args:
        settings: `inference_url` and `model_name`.
        timeout_s: seconds to wait at most; 0 checks once.

    Raises:
        ReplayError: when the model is not ready within `timeout_s` (the message names the URL
            and the last answer).
    """
    url = f"{settings.inference_url.rstrip('/')}/v2/models/{settings.model_name}/ready"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = httpx.get(url, timeout=5)
            if answer.status_code == 200:
                return
            last = f"HTTP {answer.status_code}"
        except httpx.HTTPError as err:
            last = f"{type(err).__name__}: {err}"
        if time.monotonic() >= deadline:
            raise ReplayError(
                f"model not ready at {url} after {timeout_s:.0f} s (last answer: {last})"
            )
        time.sleep(poll_s)


def replay_day(settings: Settings, day: dt.date, out_dir: Path | None = None) -> dict:
    """Send one day's transactions to the server in batches, compare with offline scores.

    The offline scores come from the same artifact the server scores with: the registered
    version the server reports, loaded from MLflow in this process, its compiled (ONNX) model
    run by onnxruntime when it has one (`compiled.scorer_for`, as in the server), else its native
    model. Requests are sent one at a time (concurrency 1), each with the V2 `id`
    `replay-<day>-<first row>`: behind the canary router (lab 10) that id is the routing key, so a
    replay of the same day routes each batch to the same variant, and each batch is compared with
    the offline scores of the version that answered it.

    Args:
        settings: `inference_url`, `model_name`, `replay_batch_size`, `mlflow_tracking_uri`.
        day: the day to replay (must be in the features dataset).
        out_dir: where to write `replay-<day>.parquet` and `.json` (default: `reports_dir`).

    Returns:
        Summary: `day`, `transactions`, `requests`, `model_version` (the version that scored
        the most transactions), `model_versions` ({version: transactions}), `variants` ({variant:
        requests} from the router's X-Fraudlab-Variant header; empty without a router), latency percentiles in ms
        (`latency_ms_p50`, `_p95`, `_p99`), `transactions_per_s`, `max_abs_diff`, `skew_ok`,
        `frauds`, `scored_by` ("onnx" or "native"), `compiled_vs_native_max_abs_diff` (None
        without a compiled model), file paths, and `review` (lab 18: what went to the review
        queue, `ReviewQueue.enqueue_day`; None without a queue database).

    Raises:
        ReplayError: if the day has no transaction or the server answers an error.
    """
    frame = store.read_dataset(settings.features_dir, days=(day, day))
    if frame.empty:
        raise ReplayError(f"no transaction on {day}")
    url = f"{settings.inference_url.rstrip('/')}/v2/models/{settings.model_name}/infer"
    served = np.empty(len(frame))
    served_by = np.empty(len(frame), dtype=object)  # the model version that scored each row
    variants: dict[str, int] = {}
    latencies = []
    size = settings.replay_batch_size
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for lo in range(0, len(frame), size):
            batch = frame.iloc[lo : lo + size]
            t0 = time.perf_counter()
            request = {"id": f"replay-{day.isoformat()}-{lo}", **v2_request(batch)}
            response = client.post(url, json=request)
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise ReplayError(f"POST {url} → {response.status_code}: {response.text[:300]}")
            body = response.json()
            served_by[lo : lo + len(batch)] = str(body.get("model_version"))
            variant = response.headers.get("x-fraudlab-variant")
            if variant:
                variants[variant] = variants.get(variant, 0) + 1
            (output,) = [o for o in body["outputs"] if o["name"] == OUTPUT_NAME]
            served[lo : lo + len(batch)] = output["data"]
    elapsed = time.perf_counter() - started
    configure(settings.mlflow_tracking_uri)
    offline = np.empty(len(frame))
    versions = {str(v): int((served_by == v).sum()) for v in dict.fromkeys(served_by)}
    compiled, native_diff = False, None
    for version in versions:  # one version, or two behind the canary router
        rows = served_by == version
        # --8<-- [start:skew]
        model = load_model(f"models:/{settings.model_name}/{version}")
        scorer = scorer_for(model)  # what the server scores with: the ONNX model, if it has one
        offline[rows] = scorer.predict_proba(frame[rows])
        # --8<-- [end:skew]
        if isinstance(scorer, CompiledModel):
            compiled = True
            gap = float(np.abs(model.predict_proba(frame[rows]) - offline[rows]).max())
            native_diff = gap if native_diff is None else max(native_diff, gap)
    diff = np.abs(served - offline)
    out_dir = Path(out_dir or settings.reports_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores_path = out_dir / f"replay-{day.isoformat()}.parquet"
    result = frame[
        ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_FRAUD", *FEATURE_NAMES]
    ].copy()
    result["served_score"], result["offline_score"] = served, offline
    result["served_version"] = served_by.astype(str)
    result.to_parquet(scores_path, index=False)
    # --8<-- [start:review]
    review = None  # lab 18: the uncertain transactions go to the human review queue
    if queue_available(settings):
        review = ReviewQueue.from_settings(settings).enqueue_day(settings, day, result)
    # --8<-- [end:review]
    lat = np.asarray(latencies)
    summary = {
        "day": day.isoformat(),
        "transactions": int(len(frame)),
        "frauds": int(frame["TX_FRAUD"].sum()),
        "requests": len(latencies),
        "batch_size": size,
        "model_version": max(versions, key=versions.get),
        "model_versions": versions,
        "variants": variants,
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "latency_ms_p99": float(np.percentile(lat, 99)),
        "latencies_ms": lat.round(3).tolist(),
        "transactions_per_s": float(len(frame) / elapsed),
        "max_abs_diff": float(diff.max()),
        "skew_tolerance": SKEW_TOLERANCE,
        "skew_ok": bool(diff.max() <= SKEW_TOLERANCE),
        "scored_by": "onnx" if compiled else "native",
        "compiled_vs_native_max_abs_diff": None if native_diff is None else float(native_diff),
        "scores_path": str(scores_path),
        "review": review,
    }
    (out_dir / f"replay-{day.isoformat()}.json").write_text(json.dumps(summary, indent=2))
    return summary
