"""Lab 17 exercise: the numbers an LLM service is judged by, from one streamed completion.

`fraudlab llm-probe --url URL` sends one streamed chat completion to an OpenAI-compatible server
(vLLM on a GPU, llama.cpp's server on a CPU), stamps each server-sent event as it arrives, and
calls your `stream_timings` with the stamps (FRAUD_LAB_CODE=labs/17-serving-llms/starter). A
stream looks like this (one `data:` payload per event, times in s on the client's clock):

    sent_at 10.00
    10.40  {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}   role only
    10.55  {"choices":[{"index":0,"delta":{"content":"Card"}}]}                  first text
    10.62  {"choices":[{"index":0,"delta":{"content":" testing"}}]}
    10.70  {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}          no text
    10.71  {"choices":[],"usage":{"prompt_tokens":41,"completion_tokens":2}}     usage
    10.72  [DONE]

Check your work: `make lab-17 TARGET=local` (one line per behaviour).
"""

import json

DONE = "[DONE]"


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
