"""Lab 18 on the real local stack (reduced data): the champion's segment report and model card in
the MLflow server's artifacts, the replay's uncertain transactions in the queue (the MLflow SQLite
file), and the review page served on a free port: a label by form post, and a 4xx for every bad
input (no CSRF token, another origin, malformed or unknown fields, an oversized body)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from reference_app.launchers.stack import free_port
from reference_app.responsible.review import ReviewQueue, select_for_review
from reference_app.responsible.segments import METRICS, SEGMENTS

from .conftest import REPLAY_DAY, run_fraudlab

FRAUDLAB = str(Path(sys.executable).parent / "fraudlab")


def test_segment_report_and_model_card_are_artifacts_of_the_champions_run(
    mlflow_server, stack_env, stack_settings
):
    result = run_fraudlab(stack_env, "segment-report", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    base = stack_settings.mlflow_tracking_uri
    champion = httpx.get(
        f"{base}/api/2.0/mlflow/registered-models/alias",
        params={"name": "fraud-detector", "alias": "champion"},
    ).json()["model_version"]
    run = httpx.get(
        f"{base}/api/2.0/mlflow/runs/get", params={"run_id": champion["run_id"]}
    ).json()["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["responsible_documented_version"] == champion["version"]
    report = httpx.get(
        f"{base}/get-artifact",
        params={"run_uuid": champion["run_id"], "path": "responsible/segment_report.json"},
    )
    assert report.status_code == 200
    segments = report.json()["segments"]
    assert list(segments) == list(SEGMENTS)
    for seg in segments.values():
        assert len(seg["groups"]) >= 2 and set(seg["disparity"]) == set(METRICS)
        assert all(v is None or 0 <= v <= 1 for v in seg["disparity"].values())
        assert (
            sum(g["transactions"] for g in seg["groups"].values()) == report.json()["transactions"]
        )
    card = httpx.get(
        f"{base}/get-artifact",
        params={"run_uuid": champion["run_id"], "path": "responsible/model_card.md"},
    )
    assert (
        card.status_code == 200
        and f"# Model card: fraud-detector version {champion['version']}" in card.text
    )


def test_the_replay_queued_the_band_of_its_scores(mlflow_server, stack_settings):
    """The demo's replay (MLflow's SQLite store exists by then) queued exactly what the band rule
    selects from the scores it wrote."""
    scored = pd.read_parquet(Path(stack_settings.reports_dir) / f"replay-{REPLAY_DAY}.parquet")
    expected = select_for_review(
        scored["served_score"].to_numpy(),
        stack_settings.review_band_low,
        stack_settings.review_band_high,
        stack_settings.review_capacity,
    )
    queue = ReviewQueue.from_settings(stack_settings)
    queued = queue.cases(day=REPLAY_DAY)
    assert {c["transaction_id"] for c in queued} == set(
        scored["TRANSACTION_ID"].to_numpy()[expected].tolist()
    )
    (batch,) = [b for b in queue.batches() if b["day"] == REPLAY_DAY]
    in_band = int(
        (
            (scored["served_score"] >= stack_settings.review_band_low)
            & (scored["served_score"] < stack_settings.review_band_high)
        ).sum()
    )
    assert (batch["in_band"], batch["enqueued"], batch["rule"]) == (
        in_band,
        len(expected),
        "reference",
    )
    assert np.all(np.diff([c["score"] for c in queued]) <= 0)


@pytest.fixture(scope="module")
def review_page(mlflow_server, stack_env):
    """`fraudlab review serve` on a free port, ready (its /healthz answers)."""
    port = free_port()
    log = open(Path(stack_env["FRAUD_DATA_DIR"]) / "state" / "logs" / "review.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [FRAUDLAB, "review", "serve", "--port", str(port)],
        env={**os.environ, **stack_env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (
            f"review page did not start: {log.name}"
        )
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _page(url: str) -> tuple[httpx.Client, str, str]:
    client = httpx.Client(base_url=url, timeout=10)
    page = client.get("/")
    assert page.status_code == 200 and "script" not in page.headers[
        "content-security-policy"
    ].replace("default-src 'none'", "")
    token = client.cookies["review_csrf"]
    case = page.text.split('name="transaction_id" value="', 1)[1].split('"', 1)[0]
    assert f'name="csrf" value="{token}"' in page.text
    return client, token, case


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"csrf": None}, 403),
        ({"csrf": "forged"}, 403),
        ({"label": "2"}, 400),
        ({"label": "fraud"}, 400),
        ({"transaction_id": "1; DROP TABLE review_cases"}, 400),
        ({"transaction_id": "999999999"}, 404),
        ({"analyst": ""}, 400),
        ({"analyst": "x" * 65}, 400),
        ({"origin": "http://evil.example"}, 403),
        ({"padding": "x" * 5000}, 413),
    ],
)
def test_bad_input_to_the_review_page_is_a_4xx(review_page, change, status):
    client, token, case = _page(review_page)
    form = {"csrf": token, "transaction_id": case, "label": "1", "analyst": "ana", **change}
    headers = {"origin": form.pop("origin")} if "origin" in form else {}
    form = {k: v for k, v in form.items() if v is not None}
    answer = client.post("/label", data=form, headers=headers)
    assert answer.status_code == status, answer.text
    assert "Traceback" not in answer.text and answer.text.strip()
    labelled = client.get("/api/cases", params={"pending": "false"}).json()
    assert int(case) not in {c["transaction_id"] for c in labelled}


def test_an_analysts_label_from_the_page_is_stored(review_page, stack_settings):
    client, token, case = _page(review_page)
    answer = client.post(
        "/label",
        data={"csrf": token, "transaction_id": case, "label": "1", "analyst": "<b>ana</b>"},
        headers={"origin": review_page},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    stored = [
        c
        for c in ReviewQueue.from_settings(stack_settings).cases(pending=False)
        if c["transaction_id"] == int(case)
    ]
    assert stored and stored[0]["label"] == 1 and stored[0]["analyst"] == "<b>ana</b>"
    assert f'value="{case}"' not in client.get("/").text  # no longer pending
    summary = client.get("/api/summary").json()
    assert summary["reviewed"] >= 1 and summary["queued"] >= summary["reviewed"]
    assert client.get("/api/cases", params={"pending": "maybe"}).status_code == 400
    assert client.get("/api/cases", params={"day": "2018-13-40"}).status_code == 400
