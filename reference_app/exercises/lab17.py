"""Lab 17's exercise (optional lab): TTFT, inter-token latency and decode throughput of one
streamed completion, from the server-sent events as they arrived.

The learner writes `stream_timings` in `labs/17-serving-llms/starter/stream_timing.py`;
`fraudlab llm-probe` (against the lab's vLLM or llama.cpp server) measures with it. Reference:
`serving.llm.stream_timings`. The streams below have the chunk shapes of the OpenAI streaming
protocol as vLLM and llama.cpp's server send them: a role-only first chunk, one text chunk per
decode step, an empty finish chunk, a usage chunk with no choices, then `[DONE]`.
"""

from __future__ import annotations

import json

from ..serving.llm import TIMINGS_EXERCISE, stream_timings
from . import Behaviour

EXERCISE = TIMINGS_EXERCISE
REFERENCE = stream_timings
FILE = "labs/17-serving-llms/starter/stream_timing.py"
CHECK = "make lab-17 TARGET=local"
SENT_AT = 1000.0


def _chat(text: str | None = None, role: bool = False, finish: str | None = None) -> str:
    delta = {"role": "assistant", "content": ""} if role else {}
    if text is not None:
        delta["content"] = text
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _usage(completion_tokens: int) -> str:
    return json.dumps(
        {"choices": [], "usage": {"prompt_tokens": 41, "completion_tokens": completion_tokens}}
    )


def _stream(
    texts: list[tuple[float, str]], usage: int | None = None, end: float = 2.0
) -> list[tuple[float, str]]:
    """A chat stream: the role chunk 0.25 s after sending, `texts` at their offsets, an empty
    finish chunk, the usage chunk (when given) and [DONE]."""
    events = [(SENT_AT + 0.25, _chat(role=True))]
    events += [(SENT_AT + t, _chat(text)) for t, text in texts]
    events.append((SENT_AT + end, _chat(finish="stop")))
    if usage is not None:
        events.append((SENT_AT + end + 0.001, _usage(usage)))
    events.append((SENT_AT + end + 0.002, "[DONE]"))
    return events


FOUR = [(0.5, "Card"), (0.625, " testing"), (0.75, ":"), (1.0, " small")]
"""Four text chunks: TTFT 0.5 s, gaps 0.125, 0.125, 0.25 s."""


def _num(x) -> str:
    return "None" if x is None else f"{x:.6g}" if isinstance(x, (int, float)) else repr(x)


def _text(timings) -> str:
    if not isinstance(timings, dict):
        return f"a {type(timings).__name__}, not a dict"
    itl = timings.get("itl_s")
    gaps = [_num(g) for g in itl] if isinstance(itl, list) else repr(itl)
    return (
        f"ttft_s {_num(timings.get('ttft_s'))}, itl_s {gaps}, chunks {timings.get('chunks')!r}, "
        f"completion_tokens {timings.get('completion_tokens')!r}, "
        f"decode_tokens_per_s {_num(timings.get('decode_tokens_per_s'))}"
    )


def _field(name: str, events: list[tuple[float, str]]):
    def check(learner, reference):
        got = learner(SENT_AT, events)
        value = got.get(name) if isinstance(got, dict) else got
        want = reference(SENT_AT, events)[name]
        if isinstance(want, list):
            return str([_num(x) for x in want]), (
                str([_num(x) for x in value]) if isinstance(value, list) else repr(value)
            )
        return _num(want), _num(value)

    return check


def _whole(events: list[tuple[float, str]]):
    def check(learner, reference):
        return _text(reference(SENT_AT, events)), _text(learner(SENT_AT, events))

    return check


def _raises(events: list[tuple[float, str]]):
    """Expected: a ValueError (the TODO's NotImplementedError still propagates)."""

    def outcome(function) -> str:
        try:
            return f"returned {_text(function(SENT_AT, events))}"
        except NotImplementedError:
            raise
        except Exception as err:  # the learner's: any other type is the wrong answer
            return type(err).__name__

    def check(learner, reference):
        return outcome(reference), outcome(learner)

    return check


COMPLETIONS = [
    (SENT_AT + 0.4, json.dumps({"choices": [{"index": 0, "text": "Card", "finish_reason": None}]})),
    (SENT_AT + 0.5, json.dumps({"choices": [{"index": 0, "text": " 42", "finish_reason": None}]})),
    (SENT_AT + 0.75, json.dumps({"choices": [{"index": 0, "text": "!", "finish_reason": None}]})),
    (SENT_AT + 0.8, "[DONE]"),
]
"""A /v1/completions stream: `choices[0].text`, no delta, no role chunk."""

BEHAVIOURS = [
    Behaviour(
        "time to first token: from sending to the first chunk with text, not the role-only chunk",
        _field("ttft_s", _stream(FOUR)),
        f"the first chunk (role only, empty content) is not a token: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "inter-token latency: the gap between each two consecutive text chunks",
        _field("itl_s", _stream(FOUR)),
        f"gaps between text arrivals only (chunks − 1 of them): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the usage chunk (no choices) and the empty finish chunk carry no text",
        _field("chunks", _stream(FOUR, usage=4)),
        f"count chunks whose delta.content (or text) is not empty: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "decode tokens/s: tokens after the first over first-to-last text, by usage's count",
        _whole(_stream(FOUR, usage=7)),
        f"(completion_tokens − 1) / (last − first text arrival), not over the whole request: "
        f"{FILE}; then {CHECK}",
    ),
    Behaviour(
        "without usage, decode tokens/s counts the text chunks",
        _whole(_stream(FOUR)),
        f"tokens = chunks when no chunk has usage.completion_tokens: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "[DONE] ends the stream: events after it are ignored",
        _whole([*_stream(FOUR[:2]), (SENT_AT + 9.0, "not json"), (SENT_AT + 9.5, _chat(" x"))]),
        f"stop at the payload [DONE]: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a /v1/completions stream (choices[0].text) is timed like a chat stream",
        _whole(COMPLETIONS),
        f"a chunk's text is delta.content or text: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "one text chunk: TTFT measured, no gaps, no decode throughput (None)",
        _whole(_stream(FOUR[:1], usage=1)),
        f"decode_tokens_per_s is None below 2 tokens: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "an error event mid-stream raises ValueError",
        _raises([*_stream(FOUR[:2])[:3], (SENT_AT + 0.7, '{"error": {"message": "overloaded"}}')]),
        f'a chunk with an "error" key is a failed stream, not an answer: {FILE}; then {CHECK}',
    ),
]
