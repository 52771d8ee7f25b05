"""Lab 17: measure an OpenAI-compatible LLM server the way its users feel it.

`fraudlab llm-probe --url URL` asks the server which models it serves (`GET /v1/models`), sends
one streamed chat completion (`POST /v1/chat/completions` with `"stream": true`), stamps every
server-sent event with the client's monotonic clock as it arrives, and turns the stamps into the
numbers an LLM service is judged by (`stream_timings`, lab 17's exercise):

- time to first token (TTFT): from sending the request to the first chunk that carries text;
  it is the queue wait plus the prefill of the whole prompt;
- inter-token latency (ITL): the gaps between consecutive text chunks, the decode steps;
- decode throughput: tokens after the first, divided by the time from the first text chunk to
  the last (the prefill is not in it, so a long prompt does not make decoding look slow).

Both servers this lab deploys speak the same protocol: vLLM's OpenAI-compatible server
(`vllm serve`, the GPU path) and llama.cpp's `llama-server` (the CPU path). A streamed answer is a
sequence of `data: {json}` events, one chunk per decode step as a rule, ended by `data: [DONE]`
(OpenAI API reference, "Chat Completions → streaming"; the SSE framing is the WHATWG HTML
standard, "Server-sent events"). The first chunk usually carries only the role
(`{"delta": {"role": "assistant", "content": ""}}`), and with
`"stream_options": {"include_usage": true}` a last chunk with no choices carries `usage` (the
exact token counts). A chunk is a token only approximately: a server may merge steps (vLLM's
`--stream-interval`) or hold back bytes of an unfinished character; `usage.completion_tokens`
is the count to divide by when the server sends it.

Example:
    >>> events = [(0.30, '{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'),
    ...           (0.50, '{"choices":[{"index":0,"delta":{"content":"Card"}}]}'),
    ...           (0.60, '{"choices":[{"index":0,"delta":{"content":" 42"}}]}'),
    ...           (0.70, '[DONE]')]
    >>> t = stream_timings(0.0, events)
    >>> (t["ttft_s"], [round(x, 2) for x in t["itl_s"]], t["chunks"])
    (0.5, [0.1], 2)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import httpx

from ..labcode import Exercise

TIMINGS_EXERCISE = Exercise(lab=17, module="stream_timing", function="stream_timings")
"""Lab 17: the learner's `stream_timings` (labs/17-serving-llms/starter/stream_timing.py) stands in
for this module's when `FRAUD_LAB_CODE` has it (`labcode`): `fraudlab llm-probe` runs it."""

DONE = "[DONE]"
"""The payload of the last event of an OpenAI-style stream."""
ANALYST_PROMPT = (
    "In two sentences for a fraud analyst: card 4242 made 9 payments of 1 to 3 EUR at 5 "
    "terminals between 02:10 and 02:25, then one of 780 EUR. What pattern is this?"
)
"""The probe's default prompt: the review-queue use case of chapter 17 (no real card data)."""


class LLMProbeError(RuntimeError):
    """The server could not be reached, answered with an error, or streamed something that is not
    an OpenAI-style completion stream."""


# --8<-- [start:timings]
def stream_timings(sent_at: float, events: list[tuple[float, str]]) -> dict:
    """TTFT, inter-token latencies and decode throughput of one streamed completion.

    Args:
        sent_at: when the request was sent, in seconds on the same monotonic clock as `events`.
        events: `(arrival time in s, data payload)` of each server-sent event, in arrival order;
            a payload is one chunk's JSON text, or "[DONE]" (the end: later events are ignored).

    Returns:
        {"ttft_s": first text chunk's arrival − sent_at, None without text,
         "itl_s": gaps between consecutive text chunks (chunks − 1 of them, in s),
         "chunks": chunks that carry text (a role-only first chunk, an empty finish chunk and the
                   usage chunk carry none),
         "completion_tokens": usage.completion_tokens when the server sent usage, else None,
         "decode_tokens_per_s": (tokens − 1) / (last text arrival − first text arrival), tokens
                   being completion_tokens when known, else chunks; None below 2 tokens or with
                   no time between them}.
        A chunk's text is `choices[0].delta.content` (chat) or `choices[0].text` (completions).

    Raises:
        ValueError: a payload that is not JSON, or an error event (`{"error": ...}`, which vLLM
            and llama.cpp send when a stream fails after its first byte), naming it.

    Method: the request-level metrics of vLLM's metrics design (docs/design/metrics.md: TTFT,
    inter-token latency) measured at the client, as vLLM's `benchmarks/benchmark_serving.py`
    does for its streamed requests.
    """
    arrivals: list[float] = []
    completion_tokens = None
    for arrived, payload in events:
        if payload.strip() == DONE:
            break
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as err:
            raise ValueError(f"not a JSON chunk: {payload[:80]!r} ({err.msg})") from None
        if not isinstance(chunk, dict):
            raise ValueError(f"not a JSON object: {payload[:80]!r}")
        if "error" in chunk:
            raise ValueError(f"the server reported an error mid-stream: {chunk['error']}")
        usage = chunk.get("usage") or {}
        if usage.get("completion_tokens") is not None:
            completion_tokens = int(usage["completion_tokens"])
        choices = chunk.get("choices") or []
        if not choices:
            continue
        choice = choices[0]
        text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
        if text:
            arrivals.append(arrived)
    tokens = completion_tokens if completion_tokens is not None else len(arrivals)
    span = arrivals[-1] - arrivals[0] if arrivals else 0.0
    return {
        "ttft_s": arrivals[0] - sent_at if arrivals else None,
        "itl_s": [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)],
        "chunks": len(arrivals),
        "completion_tokens": completion_tokens,
        "decode_tokens_per_s": (tokens - 1) / span if tokens >= 2 and span > 0 else None,
    }


# --8<-- [end:timings]


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The `data` of each server-sent event in `lines` (a response's lines, without their line
    ends): `data:` fields joined with newlines, dispatched at a blank line or at the end;
    comments (`:`) and other fields (`event:`, `id:`, `retry:`) are skipped. WHATWG HTML
    standard, "Server-sent events", 9.2.6 "Interpreting an event stream"."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


@dataclass
class ProbeResult:
    """What `probe` measured: the server's models, the model asked, the answer and its timings
    (`stream_timings`), and the request's total duration in s."""

    url: str
    models: list[str]
    model: str
    text: str
    timings: dict
    total_s: float
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _text(payload: str) -> str:
    try:
        chunk = json.loads(payload)
        choice = (chunk.get("choices") or [{}])[0]
        return (choice.get("delta") or {}).get("content") or choice.get("text") or ""
    except (json.JSONDecodeError, AttributeError, IndexError):
        return ""


def served_models(client: httpx.Client, url: str) -> list[str]:
    """The model ids of `GET {url}/v1/models` (OpenAI API: `{"data": [{"id": ...}]}`).

    Raises:
        LLMProbeError: no answer, a status other than 200, or not a model list.
    """
    try:
        response = client.get(f"{url}/v1/models")
    except httpx.HTTPError as err:
        raise LLMProbeError(f"{url}/v1/models: {type(err).__name__}: {err}") from None
    if response.status_code != 200:
        raise LLMProbeError(
            f"{url}/v1/models answered {response.status_code}: {response.text[:200]}"
        )
    try:
        return [m["id"] for m in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise LLMProbeError(
            f"{url}/v1/models: not an OpenAI model list: {response.text[:200]}"
        ) from None


def probe(
    url: str,
    model: str | None = None,
    prompt: str = ANALYST_PROMPT,
    max_tokens: int = 64,
    timeout_s: float = 60.0,
    timings=stream_timings,
) -> ProbeResult:
    """One streamed chat completion against the OpenAI-compatible server at `url`, measured.

    Args:
        url: the server's base URL (no `/v1`), e.g. http://127.0.0.1:8000.
        model: the model id to ask; None: the first one `/v1/models` lists.
        prompt: the user message.
        max_tokens: the most tokens to generate.
        timeout_s: seconds to wait for a connection and between two events.
        timings: the function that turns the events into timings (`stream_timings`, or the
            learner's through `TIMINGS_EXERCISE.implementation`).

    Raises:
        LLMProbeError: no server, an error status (with its message), a model the server does not
            serve, a stream that is not an OpenAI completion stream, or a read timeout.
    """
    url = url.rstrip("/")
    with httpx.Client(timeout=timeout_s) as client:
        models = served_models(client, url)
        if not models:
            raise LLMProbeError(f"{url}/v1/models lists no model")
        chosen = model or models[0]
        if chosen not in models:
            raise LLMProbeError(f"{url} does not serve {chosen!r}; it serves {models}")
        body = {
            "model": chosen,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        events: list[tuple[float, str]] = []
        sent_at = time.monotonic()
        try:
            with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise LLMProbeError(
                        f"{url}/v1/chat/completions answered {response.status_code}: "
                        f"{response.text[:300]}"
                    )
                for payload in sse_data(response.iter_lines()):
                    events.append((time.monotonic(), payload))
                    if payload.strip() == DONE:
                        break
        except httpx.HTTPError as err:
            raise LLMProbeError(f"{url}/v1/chat/completions: {type(err).__name__}: {err}") from None
        total = time.monotonic() - sent_at
    if not events:
        raise LLMProbeError(f"{url}/v1/chat/completions streamed no event")
    try:
        measured = timings(sent_at, events)
    except ValueError as err:
        raise LLMProbeError(str(err)) from None
    text = "".join(_text(p) for _, p in events if p.strip() != DONE)
    return ProbeResult(url, models, chosen, text, measured, total)


def budget_problems(timings: dict, max_ttft_s: float, min_tokens_per_s: float) -> list[str]:
    """Sentences for each budget `timings` (from `stream_timings`) misses: no text at all, a TTFT
    over `max_ttft_s`, a decode throughput under `min_tokens_per_s` (or none measured)."""
    ttft, rate = timings.get("ttft_s"), timings.get("decode_tokens_per_s")
    if ttft is None:
        return ["no text came back (no chunk with content)"]
    problems = []
    if ttft > max_ttft_s:
        problems.append(f"time to first token {ttft:.2f} s > {max_ttft_s:g} s")
    if rate is None:
        problems.append("no decode throughput: fewer than 2 tokens came back")
    elif rate < min_tokens_per_s:
        problems.append(f"decode {rate:.1f} tokens/s < {min_tokens_per_s:g} tokens/s")
    return problems


def kv_cache_bytes_per_token(
    layers: int, kv_heads: int, head_dim: int, bytes_per_value: float = 2
) -> float:
    """Bytes of KV cache one token takes: 2 (a key and a value) × layers × KV heads × head dim ×
    bytes per value (2 for fp16/bf16, 1 for an fp8 cache). Kwon et al., "Efficient Memory
    Management for Large Language Model Serving with PagedAttention" (SOSP 2023), §2.3; with
    grouped-query attention the heads are the KV heads (Ainslie et al., 2023).

    Example (Qwen2.5-1.5B-Instruct: 28 layers, 2 KV heads of 128, bf16):
        >>> kv_cache_bytes_per_token(28, 2, 128)
        28672
    """
    return 2 * layers * kv_heads * head_dim * bytes_per_value
