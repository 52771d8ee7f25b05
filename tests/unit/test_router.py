"""The canary and shadow router (serving/router.py) against real HTTP servers on 127.0.0.1.

Three small V2 servers stand in for the champion, the challenger and the shadow (each answers
with its own name in `parameters.server` and a score of its own, and records what it got); the
router runs in uvicorn in front of them, as `fraudlab route serve` runs it. Every check goes
through real sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reference_app.labcode import LabCodeError
from reference_app.launchers.stack import free_port
from reference_app.serving import router as router_module
from reference_app.serving.router import (
    KEY_HEADER,
    MAX_SHADOW_IN_FLIGHT,
    SHADOW_MAX_CONNECTIONS,
    VARIANT_HEADER,
    VARIANT_MAX_CONNECTIONS,
    RouterConfig,
    SplitError,
    create_app,
    parse_split,
    write_split,
)
from reference_app.serving.split import CHALLENGER, CHAMPION, choose_variant

REQUESTS = 1_000
TOLERANCE_POINTS = 5.0
SCORES = {CHAMPION: 0.1, CHALLENGER: 0.2, "shadow": 0.9}
"""Each server's score: the shadow flags what the answers do not (disagreements are countable)."""
WAIT_S = 30.0


class V2Server:
    """A small V2 inference server on a free 127.0.0.1 port, in a thread (uvicorn).

    `mode`: "ok" answers every infer with its score per row (400 when there are no inputs);
    "fail" answers 500; "hang" answers only once `release` is set; "list" answers 200 with a
    JSON list (not a V2 response). Readiness: `ready_seen` is set when a readiness request
    arrives; with `ready_gate` set to an Event, the answer waits for it (at most WAIT_S).
    """

    def __init__(self, name: str, mode: str = "ok"):
        self.name, self.mode = name, mode
        self.release = threading.Event()
        self.ready_seen = threading.Event()
        self.ready_gate: threading.Event | None = None
        self.received: list[dict] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

        async def infer(request: Request) -> Response:
            body = await request.json()
            with self.lock:
                self.received.append(body)
            if self.mode == "fail":
                return JSONResponse({"error": f"{self.name} is broken"}, status_code=500)
            while self.mode == "hang" and not self.release.is_set():
                await asyncio.sleep(0.01)
            if self.mode == "list":
                return JSONResponse([])
            inputs = body.get("inputs") or []
            if not inputs:
                return JSONResponse({"error": "no inputs: 15 expected"}, status_code=400)
            rows = len(inputs[0].get("data") or [])
            return JSONResponse(
                {
                    "model_name": request.path_params["model"],
                    "id": body.get("id"),
                    "parameters": {"server": self.name},
                    "outputs": [
                        {
                            "name": "fraud_probability",
                            "datatype": "FP64",
                            "shape": [rows],
                            "data": [SCORES.get(self.name, 0.5)] * rows,
                        }
                    ],
                }
            )

        async def ready(request: Request) -> Response:
            self.ready_seen.set()
            deadline = time.monotonic() + WAIT_S
            while self.ready_gate is not None and not self.ready_gate.is_set():
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
            return Response(status_code=200)

        app = Starlette(
            routes=[
                Route("/v2/models/{model}/infer", infer, methods=["POST"]),
                Route("/v2/models/{model}/ready", ready, methods=["GET"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def __enter__(self) -> V2Server:
        self.thread.start()
        deadline = time.monotonic() + WAIT_S
        while not self.server.started:
            assert time.monotonic() < deadline, f"{self.name} did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Router(V2Server):
    """The router app in uvicorn on a free port."""

    def __init__(self, config: RouterConfig, choose=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(config, choose)
        self.name = "router"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)


def v2_body(i: int, rows: int = 1) -> dict:
    return {
        "id": f"request-{i}",
        "inputs": [
            {"name": "TX_AMOUNT", "shape": [rows], "datatype": "FP64", "data": [10.0 + i] * rows}
        ],
    }


def infer_url(router: Router) -> str:
    return f"{router.url}/v2/models/fraud-detector/infer"


def metric(router: Router, line_start: str) -> float:
    text = httpx.get(f"{router.url}/metrics", timeout=5).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start)]
    assert values, f"no metric {line_start} in /metrics"
    return sum(values)


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def variants():
    with (
        V2Server(CHAMPION) as champion,
        V2Server(CHALLENGER) as challenger,
        V2Server("shadow") as shadow,
    ):
        yield {CHAMPION: champion, CHALLENGER: challenger, "shadow": shadow}


def router_for(
    variants, tmp_path: Path, challenger: float = 10.0, shadow: str | None = "", choose=None
) -> Router:
    split_file = tmp_path / "split.json"
    write_split(split_file, challenger)
    return Router(
        RouterConfig(
            champion=variants[CHAMPION].url,
            challenger=variants[CHALLENGER].url,
            shadow=variants["shadow"].url if shadow == "" else shadow,
            split_file=split_file,
            max_body_bytes=10_000,
            timeout_s=5.0,
            shadow_timeout_s=WAIT_S,  # copies held by a hanging shadow wait for the test's release
        ),
        choose,
    )


@pytest.fixture(scope="module")
def canary_run(variants, tmp_path_factory):
    """1,000 requests with distinct ids through a 90/10 router with a shadow."""
    before = {name: server.count() for name, server in variants.items()}
    with router_for(variants, tmp_path_factory.mktemp("canary")) as router:
        answers = []
        with httpx.Client(timeout=10) as client:
            for i in range(REQUESTS):
                r = client.post(infer_url(router), json=v2_body(i))
                answers.append((r.status_code, r.headers.get(VARIANT_HEADER), r.json()))
        shadow = variants["shadow"]
        wait_for(lambda: shadow.count() - before["shadow"] >= REQUESTS, "the shadow's copies")
        yield {
            "router": router,
            "answers": answers,
            "received": {name: s.count() - before[name] for name, s in variants.items()},
            "shadow_bodies": shadow.received[before["shadow"] :],
        }


def test_measured_share_within_5_points_of_the_split(canary_run):
    answers = canary_run["answers"]
    assert [a[0] for a in answers] == [200] * REQUESTS
    share = 100 * sum(a[1] == CHALLENGER for a in answers) / REQUESTS
    assert abs(share - 10.0) <= TOLERANCE_POINTS, f"challenger share {share:.1f} %"
    received = canary_run["received"]
    assert received[CHAMPION] + received[CHALLENGER] == REQUESTS
    assert received[CHALLENGER] == sum(a[1] == CHALLENGER for a in answers)


def test_each_answer_comes_from_the_variant_its_header_names(canary_run):
    for _, variant, body in canary_run["answers"]:
        assert body["parameters"]["server"] == variant


def test_the_shadow_got_every_request_and_never_answered(canary_run):
    sent = sorted(json.dumps(v2_body(i), sort_keys=True) for i in range(REQUESTS))
    mirrored = sorted(json.dumps(b, sort_keys=True) for b in canary_run["shadow_bodies"])
    assert mirrored == sent
    assert all(body["parameters"]["server"] != "shadow" for _, _, body in canary_run["answers"])
    assert all(
        body["outputs"][0]["data"] != [SCORES["shadow"]] for _, _, body in canary_run["answers"]
    )


def test_metrics_count_variants_and_shadow(canary_run):
    router = canary_run["router"]
    answers = canary_run["answers"]
    challenger = sum(a[1] == CHALLENGER for a in answers)
    assert (
        metric(router, 'fraud_router_requests_total{code="200",variant="challenger"}') == challenger
    )
    assert metric(router, 'fraud_router_requests_total{code="200",variant="champion"}') == (
        REQUESTS - challenger
    )
    wait_for(
        lambda: (
            metric(router, 'fraud_router_shadow_requests_total{outcome="answered"}') == REQUESTS
        ),
        "the shadow counter",
    )
    # Every answer scores below 0.5, the shadow 0.9: it disagrees on every transaction.
    assert metric(router, "fraud_router_shadow_compared_transactions_total") == REQUESTS
    assert metric(router, "fraud_router_shadow_disagreements_total") == REQUESTS
    assert metric(router, 'fraud_router_traffic_percent{variant="challenger"}') == 10.0


def test_the_same_key_always_reaches_the_same_variant(variants, tmp_path):
    with router_for(variants, tmp_path, challenger=50, shadow=None) as router:
        with httpx.Client(timeout=10) as client:
            seen: dict[str, set] = {}
            for card in range(20):
                for repeat in range(5):
                    r = client.post(
                        infer_url(router),
                        json=v2_body(repeat),  # a different request id each time
                        headers={KEY_HEADER: f"card-{card}"},
                    )
                    assert r.headers[KEY_HEADER] == f"card-{card}"
                    seen.setdefault(f"card-{card}", set()).add(r.headers[VARIANT_HEADER])
    assert all(len(variants_) == 1 for variants_ in seen.values())
    assert {v for s in seen.values() for v in s} == {CHAMPION, CHALLENGER}


def test_promotion_shifts_traffic_without_a_failed_request(variants, tmp_path):
    """A 90/10 split promoted to 0/100 while 4 clients keep sending: no request fails; every
    request sent after the file was written reaches the challenger."""
    with router_for(variants, tmp_path, shadow=None) as router:
        split_file = tmp_path / "split.json"
        promoted = threading.Event()
        stop = threading.Event()

        def client_loop(worker: int) -> list[tuple[bool, int, str]]:
            out = []
            with httpx.Client(timeout=10) as client:
                i = 0
                while not stop.is_set():
                    after = promoted.is_set()
                    r = client.post(infer_url(router), json=v2_body(worker * 100_000 + i))
                    out.append((after, r.status_code, r.headers.get(VARIANT_HEADER)))
                    i += 1
            return out

        with ThreadPoolExecutor(4) as pool:
            base = variants[CHAMPION].count()
            futures = [pool.submit(client_loop, w) for w in range(4)]
            wait_for(lambda: variants[CHAMPION].count() - base > 200, "load before the promotion")
            write_split(split_file, 100)
            promoted.set()
            start = variants[CHALLENGER].count()
            wait_for(lambda: variants[CHALLENGER].count() - start > 200, "load after it")
            stop.set()
            results = [r for f in futures for r in f.result()]
        before = [r for r in results if not r[0]]
        after = [r for r in results if r[0]]
        assert {r[1] for r in results} == {200}, "a request failed during the promotion"
        assert len(after) > 200 and {r[2] for r in after} == {CHALLENGER}
        assert {r[2] for r in before} == {CHAMPION, CHALLENGER}
        split = httpx.get(f"{router.url}/router/split", timeout=5).json()
        assert split["split"] == {CHAMPION: 0.0, CHALLENGER: 100.0} and split["error"] is None


def test_a_broken_or_slow_shadow_never_reaches_the_client(variants, tmp_path):
    """A shadow that answers 500, one that does not answer yet, and none at all: every client
    gets its variant's answer; the hanging shadow's copies are still in flight after the 20
    answers (the answers did not wait for them)."""
    with V2Server("shadow", mode="fail") as broken, V2Server("shadow", mode="hang") as slow:
        for shadow in (broken, slow, "http://127.0.0.1:9"):  # 9: discard, nothing listens
            url = shadow if isinstance(shadow, str) else shadow.url
            with router_for(variants, tmp_path, shadow=url) as router:
                with httpx.Client(timeout=10) as client:
                    answers = [client.post(infer_url(router), json=v2_body(i)) for i in range(20)]
                assert [a.status_code for a in answers] == [200] * 20
                assert all(a.json()["parameters"]["server"] != "shadow" for a in answers)
                if shadow is slow:
                    wait_for(lambda: slow.count() == 20, "the copies at the hanging shadow")
                    split = httpx.get(f"{router.url}/router/split", timeout=5).json()
                    assert split["shadow_in_flight"] == 20
                    slow.release.set()
                wait_for(
                    lambda r=router: metric(r, "fraud_router_shadow_requests_total") == 20,
                    "the shadow's outcomes",
                )
                outcome = "error" if isinstance(shadow, str) else "answered"
                assert (
                    metric(router, f'fraud_router_shadow_requests_total{{outcome="{outcome}"}}')
                    == 20
                )


@pytest.mark.parametrize(
    "case, request_kwargs, status, message",
    [
        ("a body over the limit", {"content": b" " * 10_001}, 413, "over the limit"),
        (
            "a chunked body over the limit",
            {"content": iter([b" " * 6_000, b" " * 6_000])},
            413,
            "over the limit",
        ),
        ("a body that is not JSON", {"content": b"{not json"}, 400, "not JSON"),
        ("a JSON array", {"json": [1, 2]}, 400, "JSON object"),
        ("a request the variant refuses", {"json": {"id": "x", "inputs": []}}, 400, "no inputs"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
    variants, tmp_path, case, request_kwargs, status, message
):
    with router_for(variants, tmp_path, shadow=None) as router:
        r = httpx.post(infer_url(router), timeout=10, **request_kwargs)
    assert r.status_code == status and message in r.json()["error"], (case, r.status_code, r.text)


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("POST", "/v2/repository/models/fraud-detector/unload", 403),
        ("GET", "/v2/models/fraud-detector/nothing", 404),
        ("GET", "/admin", 404),
        ("DELETE", "/v2/models/fraud-detector/infer", 405),
    ],
)
def test_other_paths_are_refused_with_a_message(variants, tmp_path, method, path, status):
    with router_for(variants, tmp_path, shadow=None) as router:
        r = httpx.request(method, f"{router.url}{path}", timeout=10)
    assert r.status_code == status and r.json()["error"]


def test_ready_only_when_every_variant_with_traffic_is(variants, tmp_path):
    with router_for(variants, tmp_path, shadow=None) as router:
        assert (
            httpx.get(f"{router.url}/v2/models/fraud-detector/ready", timeout=10).status_code == 200
        )
    config = RouterConfig(
        champion=variants[CHAMPION].url,
        challenger="http://127.0.0.1:9",
        shadow=None,
        split_file=tmp_path / "none.json",
    )
    with Router(config) as router:
        r = httpx.get(f"{router.url}/v2/models/fraud-detector/ready", timeout=10)
        assert r.status_code == 503 and "challenger" in r.json()["error"]
        key = next(k for k in map(str, range(1000)) if choose_variant(k, 10) == CHALLENGER)
        r = httpx.post(infer_url(router), json=v2_body(0), headers={KEY_HEADER: key}, timeout=10)
        assert r.status_code == 502 and "challenger did not answer" in r.json()["error"]
        assert r.headers[VARIANT_HEADER] == CHALLENGER


def test_a_bad_split_file_is_refused_and_the_last_split_stays(variants, tmp_path):
    with router_for(variants, tmp_path, challenger=30, shadow=None) as router:
        (tmp_path / "split.json").write_text('{"champion": 90, "challenger": 20}')
        r = httpx.post(infer_url(router), json=v2_body(1), timeout=10)
        assert r.status_code == 200
        split = httpx.get(f"{router.url}/router/split", timeout=5).json()
        assert split["split"] == {CHAMPION: 70.0, CHALLENGER: 30.0}
        assert "sum to 110" in split["error"]
        assert metric(router, 'fraud_router_split_reloads_total{outcome="refused"}') == 1


@pytest.mark.parametrize(
    "text, problem",
    [
        ("nope", "not JSON"),
        ('{"champion": 100}', "must be"),
        ('{"champion": 120, "challenger": -20}', "not a percentage"),
        ('{"champion": true, "challenger": 0}', "not a percentage"),
        ('{"champion": 50, "challenger": 40}', "sum to 90"),
    ],
)
def test_parse_split_refuses(text, problem):
    with pytest.raises(SplitError, match=problem):
        parse_split(text)


def test_fraudlab_route_runs_the_learners_split_and_applies_route_set(variants, tmp_path):
    """`fraudlab route serve` as a process, with lab 10's solution as the lab code; `fraudlab route
    set` promotes the challenger while it runs; the starter (a TODO) keeps it from starting."""
    import subprocess
    import sys

    from reference_app.launchers.stack import ManagedProcess

    root = Path(__file__).resolve().parents[2]
    fraudlab = str(Path(sys.executable).parent / "fraudlab")
    port = free_port()
    env = {
        "FRAUD_DATA_DIR": str(tmp_path / "data"),
        "FRAUD_ROUTER_PORT": str(port),
        "FRAUD_ROUTER_CHAMPION_URL": variants[CHAMPION].url,
        "FRAUD_ROUTER_CHALLENGER_URL": variants[CHALLENGER].url,
        "FRAUD_ROUTER_SHADOW_URL": variants["shadow"].url,
        "FRAUD_LAB_CODE": str(root / "labs" / "10-deployment-patterns" / "solution"),
    }
    url = f"http://127.0.0.1:{port}"
    router = ManagedProcess(
        "router",
        [fraudlab, "route", "serve"],
        tmp_path / "router.log",
        f"{url}/v2/health/live",
        url,
        env,
    )
    with router:
        answers = [
            httpx.post(f"{url}/v2/models/m/infer", json=v2_body(i), timeout=10) for i in range(50)
        ]
        assert {a.status_code for a in answers} == {200}
        assert {a.headers[VARIANT_HEADER] for a in answers} == {CHAMPION, CHALLENGER}
        subprocess.run(
            [fraudlab, "route", "set", "--challenger", "100"], env={**os.environ, **env}, check=True
        )
        after = [
            httpx.post(f"{url}/v2/models/m/infer", json=v2_body(i), timeout=10) for i in range(20)
        ]
        assert {a.headers[VARIANT_HEADER] for a in after} == {CHALLENGER}
        shown = subprocess.run(
            [fraudlab, "route", "show", "--url", url],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(shown.stdout)["split"] == {CHAMPION: 0.0, CHALLENGER: 100.0}
    env["FRAUD_LAB_CODE"] = str(root / "labs" / "10-deployment-patterns" / "starter")
    out = subprocess.run(
        [fraudlab, "route", "serve"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "TODO(lab-10)" in out.stdout + out.stderr
    bad = subprocess.run(
        [fraudlab, "route", "set", "--challenger", "120"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a percentage" in bad.stdout


def test_the_promotion_drill_counts_no_failed_request(variants, tmp_path):
    """The drill (fraudlab route drill) against the router: ≥ 1,200 requests, none failed, all
    on the challenger while promoted, the split back at 10 % at the end."""
    from reference_app.serving.drill import REPORT_NAME, promotion_drill

    split_file = tmp_path / "split.json"
    with router_for(variants, tmp_path, shadow=None) as router:
        report = promotion_drill(
            router.url,
            "fraud-detector",
            lambda share: write_split(split_file, share),
            out_dir=tmp_path / "reports",
        )
    assert report["failed"] == 0 and report["requests"] >= 1_200
    phases = report["phases"]
    assert phases["promoted"]["challenger_share"] == 100.0
    assert abs(phases["before"]["challenger_share"] - 10) <= TOLERANCE_POINTS
    assert abs(phases["rolled_back"]["challenger_share"] - 10) <= TOLERANCE_POINTS
    assert phases["rolled_back"]["split"] == {CHAMPION: 90.0, CHALLENGER: 10.0}
    assert json.loads((tmp_path / "reports" / REPORT_NAME).read_text()) == report


def test_the_drill_reports_failed_requests(variants, tmp_path):
    """A challenger that answers 500: the drill counts every failed request while promoted."""
    from reference_app.serving.drill import promotion_drill

    split_file = tmp_path / "split.json"
    with V2Server(CHALLENGER, mode="fail") as broken:
        write_split(split_file, 0)
        config = RouterConfig(variants[CHAMPION].url, broken.url, None, split_file)
        with Router(config) as router:
            report = promotion_drill(
                router.url, "m", lambda share: write_split(split_file, share), to=50
            )
    assert report["failed"] >= 400 * 0.5 * 0.8 and "HTTP 500" in report["failures"][0]


def test_a_hung_shadow_holds_only_its_own_connections(variants, tmp_path):
    """More concurrent requests than the shadow's pool (and than the variants' pool) while the
    shadow holds every copy: every client request is answered 200 by its variant; no more than
    SHADOW_MAX_CONNECTIONS copies reach the shadow at a time; released, it answers every copy."""
    n = VARIANT_MAX_CONNECTIONS + 40  # a pool shared with the shadow would be full at 200
    assert SHADOW_MAX_CONNECTIONS < n < MAX_SHADOW_IN_FLIGHT
    with V2Server("shadow", mode="hang") as slow:
        try:
            with router_for(variants, tmp_path, shadow=slow.url) as router:
                with (
                    httpx.Client(timeout=WAIT_S, limits=httpx.Limits(max_connections=16)) as client,
                    ThreadPoolExecutor(16) as pool,
                ):
                    answers = list(
                        pool.map(
                            lambda i: client.post(infer_url(router), json=v2_body(i)), range(n)
                        )
                    )
                assert [a.status_code for a in answers] == [200] * n
                assert all(a.json()["parameters"]["server"] != "shadow" for a in answers)
                assert metric(router, 'fraud_router_requests_total{code="200"') == n
                wait_for(lambda: slow.count() == SHADOW_MAX_CONNECTIONS, "the shadow's pool full")
                split = httpx.get(f"{router.url}/router/split", timeout=5).json()
                assert split["shadow_in_flight"] == n
                assert slow.count() == SHADOW_MAX_CONNECTIONS
                slow.release.set()
                wait_for(
                    lambda: (
                        metric(router, 'fraud_router_shadow_requests_total{outcome="answered"}')
                        == n
                    ),
                    "every copy answered once released",
                )
        finally:
            slow.release.set()


def test_a_shadow_answering_a_json_list_counts_as_a_shadow_error(variants, tmp_path):
    """A shadow whose 200 is `[]`, not a V2 response: the clients get their answers, and each
    copy is counted as a shadow error (no exception left in a task), none compared."""
    with V2Server("shadow", mode="list") as odd:
        with router_for(variants, tmp_path, shadow=odd.url) as router:
            answers = [httpx.post(infer_url(router), json=v2_body(i), timeout=10) for i in range(5)]
            assert [a.status_code for a in answers] == [200] * 5
            wait_for(
                lambda: metric(router, "fraud_router_shadow_requests_total") == 5,
                "the shadow's outcomes",
            )
            assert metric(router, 'fraud_router_shadow_requests_total{outcome="error"}') == 5
            assert metric(router, 'fraud_router_shadow_requests_total{outcome="answered"}') == 0
            assert metric(router, "fraud_router_shadow_compared_transactions_total") == 0


def test_a_failing_split_function_sends_the_request_to_the_champion(variants, tmp_path, caplog):
    """A split function that raises (the learner's: LabCodeError) or answers "canary" for some
    keys: those requests are answered by the champion, counted by reason, and each reason is
    logged once; the other keys follow the split (100 %: the challenger)."""

    def choose(key: str, traffic: float) -> str:
        if key.startswith("raise-"):
            raise LabCodeError("lab 10: choose_variant in split.py raised KeyError: 'x'")
        if key.startswith("odd-"):
            return "canary"
        return choose_variant(key, traffic)

    with (
        caplog.at_level(logging.ERROR, logger="fraudlab.router"),
        router_for(variants, tmp_path, challenger=100, shadow=None, choose=choose) as router,
    ):
        with httpx.Client(timeout=10) as client:
            failing = [
                client.post(infer_url(router), json=v2_body(i), headers={KEY_HEADER: f"{k}-{i}"})
                for k in ("raise", "odd")
                for i in range(3)
            ]
            good = client.post(infer_url(router), json=v2_body(9), headers={KEY_HEADER: "card-1"})
        assert [a.status_code for a in failing] == [200] * 6
        assert {a.headers[VARIANT_HEADER] for a in failing} == {CHAMPION}
        assert {a.json()["parameters"]["server"] for a in failing} == {CHAMPION}
        assert good.status_code == 200 and good.headers[VARIANT_HEADER] == CHALLENGER
        assert metric(router, 'fraud_router_split_errors_total{reason="raised"}') == 3
        assert metric(router, 'fraud_router_split_errors_total{reason="answer"}') == 3
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.name == "fraudlab.router" and "split function" in r.getMessage()
    ]
    assert len(logged) == 2, logged
    assert "raised" in logged[0] and "KeyError" in logged[0] and "'canary'" in logged[1]


def test_fraudlab_route_serve_refuses_a_split_function_that_answers_wrongly(tmp_path):
    """A learner's choose_variant that always answers "champion": `fraudlab route serve` exits 2
    with a message naming the file and the expected answer, no traceback."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "split.py").write_text(
        "def choose_variant(key, challenger_traffic):\n    return 'champion'\n"
    )
    env = {
        **os.environ,
        "FRAUD_DATA_DIR": str(tmp_path / "data"),
        "FRAUD_ROUTER_PORT": str(free_port()),
        "FRAUD_LAB_CODE": str(code),
    }
    fraudlab = str(Path(sys.executable).parent / "fraudlab")
    out = subprocess.run(
        [fraudlab, "route", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    assert "Traceback" not in text
    assert str(code / "split.py") in text and "expected 'challenger'" in text


def test_readiness_checks_the_variants_concurrently_each_within_its_timeout(tmp_path):
    """Each variant answers its readiness check only once the other's has arrived: checked one
    after the other, the first would time out; concurrently both answer, 200, within the
    readinessProbe's timeoutSeconds (5). A challenger that never answers: 503 naming it, still
    within those 5 s (each check has READY_TIMEOUT_S)."""
    never = threading.Event()
    with V2Server(CHAMPION) as champion, V2Server(CHALLENGER) as challenger:
        champion.ready_gate, challenger.ready_gate = challenger.ready_seen, champion.ready_seen
        config = RouterConfig(champion.url, challenger.url, None, tmp_path / "none.json")
        try:
            with Router(config) as router:  # no split file: 90/10, both variants count
                ready = f"{router.url}/v2/models/fraud-detector/ready"
                first = httpx.get(ready, timeout=5)
                challenger.ready_gate = never
                second = httpx.get(ready, timeout=5)
        finally:
            never.set()
    assert first.status_code == 200, first.text
    assert second.status_code == 503
    assert second.json()["error"] == "not ready: challenger: ReadTimeout"


def test_a_content_length_that_is_not_a_number_gets_400(tmp_path):
    """uvicorn's HTTP parser already answers 400 itself; the router answers 400 with a message
    behind any server that passes the header on (here: the ASGI app called directly)."""
    app = create_app(
        RouterConfig("http://127.0.0.1:9", "http://127.0.0.1:9", None, tmp_path / "s.json")
    )

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return await client.post(
                "/v2/models/m/infer", content=b"{}", headers={"content-length": "abc"}
            )

    r = asyncio.run(post())
    assert r.status_code == 400 and "'abc' is not a number" in r.json()["error"], r.text


def test_shutdown_waits_for_shadow_copies_at_most_the_drain_time(variants, tmp_path, monkeypatch):
    """A shadow that never answers: at shutdown the router waits SHADOW_DRAIN_S (here 0.2 s) for
    the copy in flight, then cancels it and counts it dropped; the router stops."""
    monkeypatch.setattr(router_module, "SHADOW_DRAIN_S", 0.2)
    with V2Server("shadow", mode="hang") as slow:
        try:
            router = router_for(variants, tmp_path, shadow=slow.url)
            with router:
                assert httpx.post(infer_url(router), json=v2_body(1), timeout=10).status_code == 200
                wait_for(lambda: slow.count() == 1, "the copy at the hanging shadow")
            assert not router.thread.is_alive(), "the router did not stop"
            assert not slow.release.is_set()
            registry = router.app.state.metrics.registry
            sample = registry.get_sample_value
            assert sample("fraud_router_shadow_requests_total", {"outcome": "dropped"}) == 1
            assert sample("fraud_router_shadow_requests_total", {"outcome": "answered"}) == 0
            assert not router.app.state.shadow_tasks
        finally:
            slow.release.set()


def test_a_drill_that_fails_after_the_switch_rolls_the_split_back(variants, tmp_path):
    """The drill changes a split the router never applies (as a ConfigMap the kubelet has not
    synced in time): it fails, sets the split it found (10 %) again, and says so."""
    from reference_app.serving.drill import DrillError, promotion_drill

    elsewhere = tmp_path / "elsewhere" / "split.json"
    calls: list[float] = []

    def change(share: float) -> None:
        calls.append(share)
        write_split(elsewhere, share)

    with router_for(variants, tmp_path, shadow=None) as router:
        with pytest.raises(DrillError, match="rolled back to challenger 10 %"):
            promotion_drill(router.url, "m", change, apply_timeout_s=15)
    assert calls == [100.0, 10.0]
    assert parse_split(elsewhere.read_text()) == {CHAMPION: 90.0, CHALLENGER: 10.0}


def test_a_slow_upload_gets_408_and_other_requests_are_answered_meanwhile(variants, tmp_path):
    """A client that declares 100 bytes and sends 2 gets 408 after `body_timeout_s`; a request
    sent while that upload hangs is answered normally (the slow client stalls no one)."""
    config = RouterConfig(
        variants[CHAMPION].url,
        variants[CHALLENGER].url,
        None,
        tmp_path / "split.json",
        body_timeout_s=0.5,
    )
    with Router(config) as router, socket.create_connection(("127.0.0.1", router.port)) as slow:
        slow.sendall(
            b"POST /v2/models/fraud-detector/infer HTTP/1.1\r\nHost: router\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
        )
        meanwhile = httpx.post(infer_url(router), json=v2_body(1), timeout=5)
        assert meanwhile.status_code == 200, meanwhile.text
        slow.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = slow.recv(4096)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"408", answer
    assert b"did not arrive within 0.5 s" in rest, answer
