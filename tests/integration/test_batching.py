"""Micro-batching keeps requests independent, at a real MLServer on 127.0.0.1.

The server serves the demo's champion with the runtime's micro-batcher forced on
(`micro_batching: "on"`; "auto" leaves it off for a compiled model) and a limit of 20 rows a
request, so that a burst of small requests is merged into model calls of up to 20 rows.
It runs `mlserver start` on the launcher's config, without the gate (not under test here).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from reference_app.data import store
from reference_app.launchers.mlserver import write_mlserver_config
from reference_app.launchers.stack import ManagedProcess, free_port
from reference_app.serving.replay import v2_request

from .conftest import REPLAY_DAY

pytestmark = pytest.mark.slow

LIMIT = 20


@pytest.fixture(scope="module")
def merging_server(mlflow_server, stack_settings, tmp_path_factory):
    """MLServer with the fraud runtime, micro-batching on, at most `LIMIT` rows a request."""
    folder = tmp_path_factory.mktemp("mlserver-merging")
    settings = stack_settings.model_copy(
        update={"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    )
    write_mlserver_config(settings, folder)
    model_settings = folder / settings.model_name / "model-settings.json"
    config = json.loads(model_settings.read_text())
    config["parameters"]["extra"] |= {"micro_batching": "on", "max_batch_rows": LIMIT}
    model_settings.write_text(json.dumps(config))
    url = f"http://127.0.0.1:{settings.http_port}"
    server = ManagedProcess(
        "MLServer (micro-batching on)",
        [str(Path(sys.executable).parent / "mlserver"), "start", str(folder)],
        folder / "mlserver.log",
        f"{url}/v2/models/{settings.model_name}/ready",
        url,
    )
    with server:
        yield server, settings


def _frame(stack_settings) -> pd.DataFrame:
    day = pd.Timestamp(REPLAY_DAY).date()
    return store.read_dataset(stack_settings.features_dir, days=(day, day)).reset_index(drop=True)


def _bad(frame: pd.DataFrame) -> dict[str, tuple[dict, str]]:
    """Four kinds of bad request, each with the message its answer must hold."""
    missing = v2_request(frame.head(3))
    missing["inputs"] = [i for i in missing["inputs"] if i["name"] != "TX_AMOUNT"]
    text = v2_request(frame.head(3))
    text["inputs"][0]["data"] = ["1.0", "x", "2"]
    mismatch = v2_request(frame.head(3))
    mismatch["inputs"][0]["shape"] = [4]
    return {
        "missing": (missing, "missing inputs: TX_AMOUNT"),
        "text": (text, "non-numeric values"),
        "shape": (mismatch, "has 3 values but shape [4]"),
        "too big": (v2_request(frame.head(LIMIT + 1)), f"exceeds the limit of {LIMIT}"),
    }


async def _post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(client.post(url, json=b) for b in bodies))


def _batch_counts(metrics_url: str) -> tuple[float, float]:
    """(model calls, requests scored) from the runtime's `fraud_batch_requests` histogram."""
    calls = requests = 0.0
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith("fraud_batch_requests_count"):
            calls += float(line.rsplit(" ", 1)[1])
        elif line.startswith("fraud_batch_requests_sum"):
            requests += float(line.rsplit(" ", 1)[1])
    return calls, requests


def test_concurrent_good_and_bad_requests_fail_alone(merging_server, stack_settings):
    """Bursts of 60 requests at once, 48 good (1 to 5 rows: 144 rows, beyond the 20-row limit
    together) and 12 bad of 4 kinds: every good one gets 200 and the scores it gets alone, every
    bad one a 400 with its own message, and the server did merge requests."""
    server, settings = merging_server
    url = f"{server.url}/v2/models/{settings.model_name}/infer"
    metrics_url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    frame = _frame(stack_settings)
    good = [v2_request(frame.iloc[i * 5 : i * 5 + 1 + i % 5]) for i in range(48)]
    bad = _bad(frame)
    bodies, expected = [], []
    for i, body in enumerate(good):
        bodies.append(body)
        expected.append(None)
        if i % 4 == 3:  # a bad request after every fourth good one
            kind = list(bad)[(i // 4) % len(bad)]
            bodies.append(bad[kind][0])
            expected.append(bad[kind][1])
    before = _batch_counts(metrics_url)
    alone = [httpx.post(url, json=body, timeout=30) for body in good]
    assert all(a.status_code == 200 for a in alone), [a.text for a in alone if a.status_code != 200]
    for _ in range(3):
        answers = asyncio.run(_post_all(url, bodies))
        scored = iter(alone)
        for answer, message in zip(answers, expected, strict=True):
            if message is None:
                assert answer.status_code == 200, answer.text
                assert answer.json()["outputs"] == next(scored).json()["outputs"]
            else:
                assert answer.status_code == 400 and message in answer.text, answer.text
    after = _batch_counts(metrics_url)
    calls, requests = after[0] - before[0], after[1] - before[1]
    assert requests == 48 * 4 and calls < requests, (calls, requests)
    assert "Traceback" not in server.log_tail(400)
