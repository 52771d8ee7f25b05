"""The traffic router of lab 10: a canary split between champion and challenger, and a shadow.

`fraudlab route` runs it (uvicorn) in front of two V2 inference servers, locally on 127.0.0.1 and
on the cluster as Deployment `traffic-router`. For every `POST /v2/models/<name>/infer`:

1. the routing key is the client's `X-Routing-Key` header (the card), else the V2 request's `id`,
   else a fresh UUID (then the request is not sticky; the key goes back in `X-Routing-Key`);
2. `split.choose_variant(key, challenger share)` picks champion or challenger (the learner's
   function with FRAUD_LAB_CODE: lab 10's exercise), and the request goes to that variant only;
3. the client gets that variant's answer, status and body as they are (a 4xx with its message
   too), with `X-Fraudlab-Variant` naming the variant;
4. with a shadow, a copy of the request goes to it afterwards, in a task of its own, through an
   HTTP client of its own (`SHADOW_MAX_CONNECTIONS` connections, `shadow_timeout_s`): the
   client's answer never waits for it, never sees its answer, and a shadow that fails, hangs or
   answers nonsense changes nothing but the shadow's counters (a hung shadow holds only the
   shadow's connections, never the variants'). Its scores are compared with the answered ones
   (flags at `flag_threshold`) on /metrics.

A split function that raises or answers something else than "champion" or "challenger" for a
request (the learner's, lab 10) does not fail the client: the request goes to the champion, the
reason is logged once and `fraud_router_split_errors_total` counts it. At startup `create_app`
tries it at 0 % and 100 % and refuses to start (`LabCodeError`) when it answers wrongly.

The split lives in a JSON file (`{"champion": 90, "challenger": 10}`; on the cluster the
ConfigMap `traffic-split` mounted as a volume) that the router stats on every request and re-reads
when it changed (a ConfigMap volume is updated by swapping a symlink, so the file's inode
changes): promoting the challenger is writing 0/100 into it, with no restart and no failed
request. A file that does not parse or does not sum to 100 is refused (the last good split
stays, `/router/split` says why).

Why a router of our own: Seldon Core v1 implements `traffic` and `shadow` of a SeldonDeployment
only as an Istio VirtualService (weights, `mirror`) or Ambassador Mappings
(operator/controllers/seldondeployment_controller.go:297-399, 666-727, operator 1.18.2); the
executor ignores them, and without a mesh the operator makes one plain Service per predictor, so
nothing splits. Production would use a mesh or the Gateway API (HTTPRoute `backendRefs` weights
and a `RequestMirror` filter, e.g. Envoy Gateway); chapter 10 compares them.

Bad input gets a 4xx with a message, never a 500 or a stall: a body over `max_body_bytes` gets
413 from its Content-Length (or as soon as a chunked body passes it), a Content-Length that is
not a number 400, a body that is not JSON 400, a body slower than `body_timeout_s` 408, any other
path 404, the model repository API 403 (never forwarded).

Example:
    >>> app = create_app(RouterConfig(champion="http://127.0.0.1:8080",
    ...                               challenger="http://127.0.0.1:8180", shadow=None,
    ...                               split_file=Path("split.json")))     # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8085)                       # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..labcode import LabCodeError
from .split import CHALLENGER, CHAMPION, SPLIT_EXERCISE, VARIANTS, choose_variant

log = logging.getLogger("fraudlab.router")

SHADOW = "shadow"
VARIANT_HEADER = "x-fraudlab-variant"
"""Response header naming the variant whose answer the client got."""
KEY_HEADER = "x-routing-key"
"""Request header with the client's routing key (the card); echoed on every answer."""
OUTPUT_NAME = "fraud_probability"
"""The model's output compared between shadow and answer (tracking.OUTPUT_NAME; not imported:
tracking imports mlflow, which the router does not need)."""
MAX_SHADOW_IN_FLIGHT = 256
"""Shadow copies waiting for an answer at most; beyond, a copy is dropped and counted, so a slow
shadow cannot pile up memory in the router."""
SHADOW_MAX_CONNECTIONS = 32
"""Connections to the shadow at most, in the shadow's own HTTP client (fewer than
`MAX_SHADOW_IN_FLIGHT`: the other copies wait for one of them, within `shadow_timeout_s`). The
variants' client has its own `VARIANT_MAX_CONNECTIONS`, which a hung shadow cannot take."""
VARIANT_MAX_CONNECTIONS = 200
"""Connections to champion and challenger together at most (the clients' requests)."""
SHADOW_TIMEOUT_S = 2.0
"""Default seconds a shadow copy may take, waiting for a connection included (httpx's pool
timeout is part of its `Timeout`); then it is counted as a shadow error."""
SHADOW_DRAIN_S = 10.0
"""Seconds the router waits for shadow copies in flight when it shuts down; the rest are cancelled
and counted as dropped. Well within Kubernetes' default terminationGracePeriodSeconds of 30 s."""
READY_TIMEOUT_S = 2.0
"""Seconds each variant's readiness check may take: the checks run concurrently, so the router
answers its readiness probe within about this, well inside the Deployment's readinessProbe
`timeoutSeconds: 5`."""
INFER_PATH = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$")
READY_PATH = re.compile(r"^/v2(/models/[^/]+(/versions/[^/]+)?)?/(health/)?ready$")
"""Readiness paths the router answers itself: ready when every variant with traffic is."""
LIVE_PATH = re.compile(r"^/v2/health/live$")
"""The router's own liveness."""
METADATA_PATH = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?$")
FORWARDED_HEADERS = ("content-type", "content-encoding", "traceparent", "x-request-id")


class SplitError(ValueError):
    """A split that is not {"champion": a, "challenger": b} with a, b in [0, 100] summing to 100."""


def parse_split(text: str) -> dict[str, float]:
    """Read a split file's JSON text.

    Returns:
        {"champion": percent, "challenger": percent}.

    Raises:
        SplitError: not JSON, other keys, a value that is not a number in [0, 100], or a sum ≠ 100.
    """
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SplitError(f"the split is not JSON: {err}") from None
    if not isinstance(data, dict) or set(data) != set(VARIANTS):
        raise SplitError(
            f'the split must be {{"champion": percent, "challenger": percent}}, not {text.strip()[:80]}'
        )
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise SplitError(f"{name}: {value!r} is not a percentage in 0 … 100")
    if not math.isclose(data[CHAMPION] + data[CHALLENGER], 100, abs_tol=1e-9):
        raise SplitError(f"the shares sum to {data[CHAMPION] + data[CHALLENGER]:g}, not 100")
    return {name: float(data[name]) for name in VARIANTS}


def write_split(path: Path, challenger_traffic: float) -> dict[str, float]:
    """Write a split file atomically (a temporary file renamed over it), as `fraudlab route set`
    does: a router reading it sees the old split or the new one, never half a file.

    Raises:
        SplitError: `challenger_traffic` outside [0, 100].
    """
    split = parse_split(
        json.dumps({CHAMPION: 100 - challenger_traffic, CHALLENGER: challenger_traffic})
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(split) + "\n")
    os.replace(tmp, path)
    return split


@dataclass
class SplitFile:
    """The split, re-read from `path` whenever the file's identity (inode, size, mtime) changes.

    Attributes:
        path: the JSON file.
        default: the split while the file does not exist.
    """

    path: Path
    default: dict[str, float]
    split: dict[str, float] = field(init=False)
    source: str = field(init=False, default="default")
    error: str | None = field(init=False, default=None)
    _seen: tuple | None = field(init=False, default=None)
    on_change: Callable[[str, dict[str, float]], None] | None = None
    """Called with "applied" or "refused" and the split in force after each change of the file."""

    def __post_init__(self) -> None:
        self.split = dict(self.default)
        self.current()

    def current(self) -> dict[str, float]:
        """The split in force: the file's, re-read when it changed; the last good one when the
        new file is refused; `default` when there is no file."""
        try:
            st = os.stat(self.path)  # follows a ConfigMap volume's ..data symlink
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            seen = None
        if seen == self._seen:
            return self.split
        self._seen = seen
        if seen is None:
            return self.split
        try:
            self.split = parse_split(self.path.read_text())
            self.source, self.error = str(self.path), None
            outcome = "applied"
            log.info("split %s from %s", self.split, self.path)
        except (OSError, SplitError) as err:
            self.error = f"{self.path}: {err}"
            outcome = "refused"
            log.error("split file refused, keeping %s: %s", self.split, self.error)
        if self.on_change is not None:
            self.on_change(outcome, self.split)
        return self.split


@dataclass(frozen=True)
class RouterConfig:
    """What the router needs (from `Settings` through `config_from_settings`).

    Attributes:
        champion, challenger: base URLs of the two variants' V2 servers.
        shadow: base URL of the shadow's V2 server, or None.
        split_file: the split's JSON file.
        default_challenger_traffic: the challenger's percent while the file does not exist.
        max_body_bytes: largest request body accepted (larger → 413).
        timeout_s: seconds to wait for a variant's answer.
        flag_threshold: a score at or above it flags a transaction (the shadow comparison).
        shadow_timeout_s: seconds a shadow copy may take (waiting for one of the shadow's
            `SHADOW_MAX_CONNECTIONS` connections included).
        body_timeout_s: seconds a client may take to send a request's body (slower → 408): a
            slow upload must not hold a connection and its buffer for ever (uvicorn's own
            `timeout_keep_alive` covers only idle connections between requests).
    """

    champion: str
    challenger: str
    shadow: str | None
    split_file: Path
    default_challenger_traffic: float = 10.0
    max_body_bytes: int = 1_000_000
    timeout_s: float = 30.0
    flag_threshold: float = 0.5
    shadow_timeout_s: float = SHADOW_TIMEOUT_S
    body_timeout_s: float = 10.0


def config_from_settings(settings) -> RouterConfig:
    """The router's configuration from `config.Settings` (the `router_*` fields)."""
    split_file = settings.router_split_file or str(
        Path(settings.state_dir) / "router" / "split.json"
    )
    return RouterConfig(
        champion=settings.router_champion_url,
        challenger=settings.router_challenger_url,
        shadow=settings.router_shadow_url or None,
        split_file=Path(split_file),
        default_challenger_traffic=settings.canary_traffic,
        max_body_bytes=settings.max_body_bytes,
        timeout_s=settings.router_timeout_s,
        flag_threshold=settings.flag_threshold,
    )


class RouterMetrics:
    """The router's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "fraud_router_requests",
            "Inference requests answered, by the variant that answered and its HTTP status.",
            ["variant", "code"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "fraud_router_upstream_errors",
            "Requests a variant did not answer (refused connection, timeout): 502 to the client, "
            "or a lost shadow copy.",
            ["variant"],
            registry=r,
        )
        self.shadow_requests = Counter(
            "fraud_router_shadow_requests",
            "Copies of inference requests for the shadow, by outcome: answered (any HTTP status), "
            "error (no answer, or a 200 that is not a V2 response), dropped (too many in flight, "
            "or still in flight at shutdown).",
            ["outcome"],
            registry=r,
        )
        self.shadow_compared = Counter(
            "fraud_router_shadow_compared_transactions",
            "Transactions scored by both the shadow and the variant that answered.",
            registry=r,
        )
        self.shadow_disagreements = Counter(
            "fraud_router_shadow_disagreements",
            "Transactions the shadow flags differently from the answer (at the flag threshold).",
            registry=r,
        )
        self.traffic = Gauge(
            "fraud_router_traffic_percent",
            "The split in force: each variant's share of inference requests, in percent.",
            ["variant"],
            registry=r,
        )
        self.split_reloads = Counter(
            "fraud_router_split_reloads",
            "Changes of the split file, by outcome: applied or refused (the last split stays).",
            ["outcome"],
            registry=r,
        )
        self.split_errors = Counter(
            "fraud_router_split_errors",
            "Requests whose split function raised or answered something else than champion or "
            "challenger, by reason (raised, answer): each went to the champion.",
            ["reason"],
            registry=r,
        )
        for variant in (*VARIANTS, SHADOW):
            self.upstream_errors.labels(variant)
        for reason in ("raised", "answer"):
            self.split_errors.labels(reason)
        for outcome in ("answered", "error", "dropped"):
            self.shadow_requests.labels(outcome)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def routing_key(request: Request, body: dict) -> str:
    """The request's routing key.

    The card is the natural key (one card, one model for the whole experiment), but the V2 body
    carries only the 15 features, not the card: the client names it in `X-Routing-Key`. Else the
    V2 request's `id` (a retry with the same id reaches the same variant); else a fresh UUID (not
    sticky: the answer's X-Routing-Key tells the client which key to send again).
    """
    key = request.headers.get(KEY_HEADER)
    if key:
        return key
    if isinstance(body.get("id"), str) and body["id"]:
        return body["id"]
    return uuid.uuid4().hex


def flags(body: dict, threshold: float) -> list[bool] | None:
    """The flags (score ≥ threshold) of a V2 response's `fraud_probability` output; None when it
    has none (an error, another model)."""
    for output in body.get("outputs") or []:
        if output.get("name") == OUTPUT_NAME:
            try:
                return [float(v) >= threshold for v in output.get("data") or []]
            except (TypeError, ValueError):
                return None
    return None


def create_app(
    config: RouterConfig, choose: Callable[[str, float], str] | None = None
) -> Starlette:
    """The router's ASGI app.

    Args:
        config: upstreams, split file and limits.
        choose: the split function; default: the learner's `choose_variant` when FRAUD_LAB_CODE
            has lab 10's split.py, else `split.choose_variant`. It is tried once here.

    Raises:
        LabCodeError: the learner's function is not written yet, raises, or sends the startup
            check's request to the wrong variant at challenger traffic 0 % or 100 % (the message
            names the file). `fraudlab route serve` prints it and exits 2.
    """
    choose = choose or SPLIT_EXERCISE.implementation(choose_variant)
    where = SPLIT_EXERCISE.path() or "the split function"
    for traffic, want in ((0, CHAMPION), (100, CHALLENGER)):
        found = choose("startup-check", traffic)
        if found != want:
            raise LabCodeError(
                f"lab {SPLIT_EXERCISE.lab:02d}: choose_variant in {where} sends a request to "
                f"{found!r} at challenger traffic {traffic} %: expected {want!r}; check it with: "
                f"fraudlab exercise check {SPLIT_EXERCISE.lab}"
            )
    metrics = RouterMetrics()
    upstreams = {CHAMPION: config.champion.rstrip("/"), CHALLENGER: config.challenger.rstrip("/")}
    shadow_url = config.shadow.rstrip("/") if config.shadow else None

    def on_change(outcome: str, split: dict[str, float]) -> None:
        metrics.split_reloads.labels(outcome).inc()
        for variant, share in split.items():
            metrics.traffic.labels(variant).set(share)

    split_file = SplitFile(
        config.split_file,
        {
            CHAMPION: 100 - config.default_challenger_traffic,
            CHALLENGER: config.default_challenger_traffic,
        },
        on_change=on_change,
    )
    for variant, share in split_file.split.items():
        metrics.traffic.labels(variant).set(share)
    state: dict = {"client": None, "shadow_client": None, "shadow_tasks": set(), "logged": set()}

    def client() -> httpx.AsyncClient:
        """The variants' client (created in the running event loop, closed in `lifespan`)."""
        if state["client"] is None:
            state["client"] = httpx.AsyncClient(
                timeout=config.timeout_s,
                limits=httpx.Limits(
                    max_connections=VARIANT_MAX_CONNECTIONS, max_keepalive_connections=50
                ),
            )
        return state["client"]

    def shadow_client() -> httpx.AsyncClient:
        """The shadow's own client: its pool and timeout are the shadow's alone."""
        if state["shadow_client"] is None:
            state["shadow_client"] = httpx.AsyncClient(
                timeout=config.shadow_timeout_s,
                limits=httpx.Limits(
                    max_connections=SHADOW_MAX_CONNECTIONS,
                    max_keepalive_connections=SHADOW_MAX_CONNECTIONS,
                ),
            )
        return state["shadow_client"]

    def log_once(reason: str, message: str, *args) -> None:
        if reason not in state["logged"]:
            state["logged"].add(reason)
            log.error(message + " (logged once; fraud_router_split_errors_total counts)", *args)

    def pick(key: str, challenger_traffic: float) -> str:
        """The split function's variant, or the champion when it raises or answers nonsense."""
        try:
            variant = choose(key, challenger_traffic)
        except Exception as err:  # the learner's code (LabCodeError) or any other bug
            metrics.split_errors.labels("raised").inc()
            log_once("raised", "split function raised, request sent to the champion: %s", err)
            return CHAMPION
        if variant not in upstreams:
            metrics.split_errors.labels("answer").inc()
            log_once(
                "answer",
                "split function answered %r (not champion/challenger), request sent to the champion",
                variant,
            )
            return CHAMPION
        return variant

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and not declared.isdigit():
            raise _BadLength(declared)
        if declared is not None and int(declared) > config.max_body_bytes:
            raise _TooLarge(declared)
        chunks, size = [], 0
        async with asyncio.timeout(config.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > config.max_body_bytes:
                    raise _TooLarge(str(size))
                chunks.append(chunk)
        return b"".join(chunks)

    # --8<-- [start:mirror]
    async def shadow_copy(path: str, body: bytes, headers: dict, answer: bytes | None) -> None:
        try:
            response = await shadow_client().post(
                f"{shadow_url}{path}", content=body, headers=headers
            )
        except httpx.HTTPError as err:
            metrics.shadow_requests.labels("error").inc()
            metrics.upstream_errors.labels(SHADOW).inc()
            log.warning("shadow did not answer: %s: %s", type(err).__name__, err)
            return
        if answer is None or response.status_code != 200:
            metrics.shadow_requests.labels("answered").inc()
            return
        try:  # the shadow's 200 may be anything (a JSON list, strings as scores): never raise
            mine = flags(response.json(), config.flag_threshold)
            theirs = flags(json.loads(answer), config.flag_threshold)
        except Exception as err:
            metrics.shadow_requests.labels("error").inc()
            log.warning("shadow answer not comparable: %s: %s", type(err).__name__, err)
            return
        metrics.shadow_requests.labels("answered").inc()
        if mine is not None and theirs is not None and len(mine) == len(theirs):
            metrics.shadow_compared.inc(len(mine))
            metrics.shadow_disagreements.inc(sum(a != b for a, b in zip(mine, theirs, strict=True)))

    def mirror(path: str, body: bytes, headers: dict, answer: bytes | None) -> None:
        tasks: set = state["shadow_tasks"]
        if len(tasks) >= MAX_SHADOW_IN_FLIGHT:
            metrics.shadow_requests.labels("dropped").inc()
            return
        task = asyncio.get_running_loop().create_task(shadow_copy(path, body, headers, answer))
        tasks.add(task)  # a reference until it is done (asyncio keeps only weak ones)
        task.add_done_callback(tasks.discard)

    # --8<-- [end:mirror]

    async def infer(request: Request) -> Response:
        path = request.url.path
        try:
            body = await read_body(request)
        except _TooLarge as err:
            return _error(
                413,
                f"request body of {err} bytes is over the limit of {config.max_body_bytes:,} bytes",
            )
        except _BadLength as err:
            return _error(400, f"Content-Length {str(err)[:40]!r} is not a number of bytes")
        except ClientDisconnect:
            return _error(400, "the client closed the connection before the body ended")
        except TimeoutError:
            return _error(
                408, f"the request body did not arrive within {config.body_timeout_s:g} s"
            )
        if request.headers.get("content-encoding"):
            parsed = {}  # compressed: the variant decompresses it (within its own limits)
        else:
            try:
                parsed = json.loads(body)
            except ValueError as err:
                return _error(400, f"the request body is not JSON: {err}")
            if not isinstance(parsed, dict):
                return _error(
                    400, "the request body must be a JSON object (a V2 inference request)"
                )
        # --8<-- [start:route]
        key = routing_key(request, parsed)
        variant = pick(key, split_file.current()[CHALLENGER])
        headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
        reply = {VARIANT_HEADER: variant, KEY_HEADER: key}
        try:
            upstream = await client().post(
                f"{upstreams[variant]}{path}", content=body, headers=headers
            )
        except httpx.HTTPError as err:
            metrics.upstream_errors.labels(variant).inc()
            metrics.requests.labels(variant, "502").inc()
            if shadow_url:
                mirror(path, body, headers, None)
            return _error(502, f"the {variant} did not answer: {type(err).__name__}", **reply)
        metrics.requests.labels(variant, str(upstream.status_code)).inc()
        if shadow_url:
            mirror(path, body, headers, upstream.content if upstream.status_code == 200 else None)
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            headers=reply,
            media_type=upstream.headers.get("content-type", "application/json"),
        )
        # --8<-- [end:route]

    async def ready(request: Request) -> Response:
        """Ready (200) when every variant with a share of the traffic (share > 0 in the split in
        force) answers the same readiness path with 200; else 503 naming each one that does not.
        A variant without traffic (the challenger at 0 %, the champion after a promotion) and
        the shadow (it never answers a client) do not count. The checks run concurrently, each
        within `READY_TIMEOUT_S`."""
        path = request.url.path
        needed = [v for v, share in split_file.current().items() if share > 0]

        async def check(variant: str) -> str | None:
            try:
                answer = await client().get(f"{upstreams[variant]}{path}", timeout=READY_TIMEOUT_S)
            except httpx.HTTPError as err:
                return f"{variant}: {type(err).__name__}"
            return None if answer.status_code == 200 else f"{variant}: HTTP {answer.status_code}"

        problems = [p for p in await asyncio.gather(*map(check, needed)) if p]
        if problems:
            return _error(503, "not ready: " + "; ".join(problems))
        return Response(status_code=200)

    async def metadata(request: Request) -> Response:
        try:
            answer = await client().get(f"{upstreams[CHAMPION]}{request.url.path}", timeout=5)
        except httpx.HTTPError as err:
            return _error(502, f"the champion did not answer: {type(err).__name__}")
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )

    async def v2(request: Request) -> Response:
        path = request.url.path
        if path.startswith("/v2/repository"):
            return _error(403, "the model repository API is not reachable through the router")
        if request.method == "POST" and INFER_PATH.match(path):
            return await infer(request)
        if request.method == "GET" and LIVE_PATH.match(path):
            return Response(status_code=200)
        if request.method == "GET" and READY_PATH.match(path):
            return await ready(request)
        if request.method == "GET" and METADATA_PATH.match(path):
            return await metadata(request)
        if request.method not in ("GET", "POST"):
            return _error(405, f"method {request.method} is not allowed here")
        return _error(
            404, f"no route {request.method} {path} (the router serves the V2 inference protocol)"
        )

    async def show_split(request: Request) -> Response:
        current = split_file.current()
        return JSONResponse(
            {
                "split": current,
                "source": split_file.source,
                "error": split_file.error,
                "shadow": shadow_url is not None,
                "shadow_in_flight": len(state["shadow_tasks"]),
            }
        )

    async def show_metrics(request: Request) -> Response:
        split_file.current()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def not_found(request: Request, exc) -> Response:
        return _error(404, f"no route {request.method} {request.url.path}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        tasks = list(state["shadow_tasks"])
        if tasks:  # the copies in flight get SHADOW_DRAIN_S to finish; the rest are cancelled
            _, pending = await asyncio.wait(tasks, timeout=min(SHADOW_DRAIN_S, config.timeout_s))
            for task in pending:
                task.cancel()
            if pending:
                metrics.shadow_requests.labels("dropped").inc(len(pending))
                log.warning("%d shadow copies still in flight at shutdown: cancelled", len(pending))
                await asyncio.wait(pending)
        for name in ("client", "shadow_client"):
            if state[name] is not None:
                await state[name].aclose()

    app = Starlette(
        routes=[
            Route("/router/split", show_split, methods=["GET"]),
            Route("/metrics", show_metrics, methods=["GET"]),
            Route("/v2/{rest:path}", v2, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.split_file = split_file
    app.state.shadow_tasks = state["shadow_tasks"]
    return app


class _TooLarge(Exception):
    """A body over the limit (its declared or read size in the message)."""


class _BadLength(Exception):
    """A Content-Length header that is not a number (the header's value in the message)."""
