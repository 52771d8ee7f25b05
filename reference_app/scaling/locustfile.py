"""The Locust user of `fraudlab load-test`: V2 inference requests built from real feature rows.

Locust loads this file in its own process (`python -m locust -f …`); `loadtest.run_load_test`
writes the request bodies (built by `serving.replay.v2_request`, as the replay and the serving
bench build them) to a JSON file and passes the run's shape in the environment (set by `run_load_test`, from `Settings`: no default here):

- FRAUDLAB_LOAD_BODIES: the JSON file, a list of request bodies;
- FRAUDLAB_LOAD_MODEL: the model name (the path `/v2/models/<name>/infer`);
- FRAUD_LOAD_USERS, FRAUD_LOAD_USER_RPS, FRAUD_LOAD_RAMP_S, FRAUD_LOAD_DURATION_S,
  FRAUD_LOAD_RETRIES: `Settings.load_*`.

Each user sends at most `FRAUD_LOAD_USER_RPS` requests per second (`constant_throughput`): the
offered rate grows with the ramp instead of with the server's speed. A connection error or a
503 is retried by urllib3's `Retry` (back-off 0.05 s × 2^n) on the user's session, so Locust
records one request per transaction, failed only when every attempt failed. Scoring has no side
effect: retrying a POST is safe here (it would not be for a payment).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from locust import HttpUser, LoadTestShape, constant_throughput, task
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

BODIES = json.loads(Path(os.environ["FRAUDLAB_LOAD_BODIES"]).read_text())
MODEL = os.environ["FRAUDLAB_LOAD_MODEL"]
USERS = int(os.environ["FRAUD_LOAD_USERS"])
USER_RPS = float(os.environ["FRAUD_LOAD_USER_RPS"])
RAMP_S = float(os.environ["FRAUD_LOAD_RAMP_S"])
DURATION_S = float(os.environ["FRAUD_LOAD_DURATION_S"])
RETRIES = int(os.environ["FRAUD_LOAD_RETRIES"])
RETRY_STATUSES = (503,)
"""Answers worth retrying: a replica that is going away or not ready yet (Service Unavailable)."""


# --8<-- [start:user]
class InferenceUser(HttpUser):
    """One client of the fraud model: a 1-transaction V2 request at most USER_RPS times a second."""

    wait_time = constant_throughput(USER_RPS)

    def on_start(self) -> None:
        retry = Retry(
            total=RETRIES,
            connect=RETRIES,
            status=RETRIES,
            read=0,  # an answer that started is not sent twice
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # POST too: scoring is idempotent
            backoff_factor=0.05,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.client.mount("http://", adapter)
        self.client.mount("https://", adapter)
        self.next_body = hash(self) % len(BODIES)

    @task
    def infer(self) -> None:
        body = BODIES[self.next_body % len(BODIES)]
        self.next_body += 1
        self.client.post(f"/v2/models/{MODEL}/infer", json=body, name="infer", timeout=10)


class Ramp(LoadTestShape):
    """1 user, rising linearly to USERS over RAMP_S seconds, held until DURATION_S, then stop."""

    def tick(self):
        elapsed = self.get_run_time()
        if elapsed >= DURATION_S:
            return None
        users = min(USERS, 1 + int((USERS - 1) * elapsed / RAMP_S))
        return users, max(1.0, USERS / RAMP_S)


# --8<-- [end:user]
