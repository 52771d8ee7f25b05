"""Lab 17's probe against a real HTTP server that speaks the OpenAI streaming protocol.

The server (Starlette in uvicorn, on a free 127.0.0.1 port) streams server-sent events whose
content and pacing the test controls: `/v1/models`, and `/v1/chat/completions` with a role-only
first chunk, text chunks, an empty finish chunk, a usage chunk and `[DONE]`, as vLLM and
llama.cpp's server send them. It is the protocol under test, not a stand-in for an LLM: what the
probe measures here shows the method only (the server's pauses are the test's own). Timing
assertions are lower bounds the server's pauses guarantee, never upper bounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from typer.testing import CliRunner

from reference_app.cli import app
from reference_app.launchers.stack import free_port
from reference_app.serving.llm import (
    LLMProbeError,
    budget_problems,
    kv_cache_bytes_per_token,
    probe,
    sse_data,
    stream_timings,
)

ROOT = Path(__file__).resolve().parents[2]
FRAUDLAB = Path(sys.executable).parent / "fraudlab"
MODEL = "qwen2.5-1.5b-instruct"
FIRST_TOKEN_PAUSE_S = 0.3
"""The server's pause between the role chunk and the first text (its "prefill")."""
TOKEN_PAUSE_S = 0.05
"""The server's pause between two text chunks (its "decode step")."""
WORDS = ["Card", " testing", ":", " many", " small", " payments", " then", " one", " large", "."]


class SSEServer:
    """An OpenAI-style streaming server in a thread. `mode`: "ok" streams WORDS (at most
    max_tokens) with the pauses above; "error" streams two words, then an error event; "status"
    answers 503 with a JSON message (a server still loading its weights)."""

    def __init__(self, mode: str = "ok"):
        self.mode, self.requests = mode, []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

        async def models(request: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            if self.mode == "status":
                return JSONResponse({"error": {"message": "Loading model"}}, status_code=503)
            words = WORDS[: body.get("max_tokens", len(WORDS))]

            def event(payload: dict | str) -> str:
                return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"

            def chunk(delta: dict, finish: str | None = None) -> dict:
                return {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }

            async def stream():
                yield ": a comment line, which clients ignore\n\n"
                yield event(chunk({"role": "assistant", "content": ""}))
                await asyncio.sleep(FIRST_TOKEN_PAUSE_S)
                for i, word in enumerate(words):
                    if i:
                        await asyncio.sleep(TOKEN_PAUSE_S)
                    if self.mode == "error" and i == 2:
                        yield event({"error": {"message": "out of KV cache", "code": 500}})
                        return
                    yield event(chunk({"content": word}))
                yield event(chunk({}, finish="length"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = {"prompt_tokens": 41, "completion_tokens": len(words)}
                    yield event({"id": "chatcmpl-1", "choices": [], "usage": usage})
                yield event("[DONE]")

            return StreamingResponse(stream(), media_type="text/event-stream")

        routes = [
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
        self.server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="error"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> SSEServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the SSE server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server():
    with SSEServer() as running:
        yield running


def test_probe_measures_a_stream_from_a_real_server(server):
    result = probe(server.url, max_tokens=6)
    t = result.timings
    assert result.models == [MODEL] and result.model == MODEL
    assert result.text == "".join(WORDS[:6])
    assert t["chunks"] == 6 and t["completion_tokens"] == 6 and len(t["itl_s"]) == 5
    # Lower bounds the server's own pauses guarantee (the probe cannot see text sooner).
    assert t["ttft_s"] >= FIRST_TOKEN_PAUSE_S
    assert all(gap >= TOKEN_PAUSE_S * 0.9 for gap in t["itl_s"])
    assert t["decode_tokens_per_s"] > 0 and result.total_s >= t["ttft_s"] + sum(t["itl_s"])
    sent = server.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == MODEL and sent["max_tokens"] == 6


def test_probe_runs_the_learners_function_when_given(server):
    calls = []

    def learners(sent_at, events):
        calls.append(len(events))
        return stream_timings(sent_at, events)

    probe(server.url, max_tokens=3, timings=learners)
    # role, 3 text chunks, finish, usage, [DONE]: every event reaches the function.
    assert calls == [7]


def test_a_model_the_server_does_not_serve_is_refused(server):
    with pytest.raises(LLMProbeError, match=r"does not serve 'llama'.*qwen2\.5-1\.5b-instruct"):
        probe(server.url, model="llama")


def test_an_error_status_and_an_error_event_are_reported():
    with SSEServer("status") as loading, pytest.raises(LLMProbeError, match="503.*Loading model"):
        probe(loading.url)
    with SSEServer("error") as failing, pytest.raises(LLMProbeError, match="out of KV cache"):
        probe(failing.url)


def test_no_server_is_reported_with_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LLMProbeError, match=rf"{url}/v1/models: ConnectError"):
        probe(url, timeout_s=5)


def test_fraudlab_llm_probe_prints_json_and_judges_the_budget(server, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("FRAUD_LAB_CODE", "labs/17-serving-llms/solution")
    out = runner.invoke(app, ["llm-probe", "--url", server.url, "--max-tokens", "4", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["timings"]["completion_tokens"] == 4 and report["problems"] == []
    # A TTFT budget below the server's own pause cannot be met: exit 1, with the reason.
    monkeypatch.setenv("FRAUD_LLM_MAX_TTFT_S", str(FIRST_TOKEN_PAUSE_S / 2))
    out = runner.invoke(app, ["llm-probe", "--url", server.url, "--max-tokens", "4"])
    assert out.exit_code == 1 and "over budget: time to first token" in out.output
    # The starter's TODO stops the command with the lab's message and status 2, no traceback.
    done = subprocess.run(
        [str(FRAUDLAB), "llm-probe", "--url", server.url],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "FRAUD_LAB_CODE": "labs/17-serving-llms/starter"},
    )  # fmt: skip
    assert done.returncode == 2 and "TODO(lab-17)" in done.stdout, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_sse_data_follows_the_event_stream_rules():
    lines = ["data: a", "data:b", "", ": comment", "event: x", "data: {}", "", "data: [DONE]"]
    assert list(sse_data(lines)) == ["a\nb", "{}", "[DONE]"]


def test_budget_problems_name_each_miss():
    ok = {"ttft_s": 0.4, "decode_tokens_per_s": 12.0}
    assert budget_problems(ok, 5.0, 5.0) == []
    assert budget_problems({"ttft_s": 6.0, "decode_tokens_per_s": 2.0}, 5.0, 5.0) == [
        "time to first token 6.00 s > 5 s",
        "decode 2.0 tokens/s < 5 tokens/s",
    ]
    assert budget_problems({"ttft_s": None}, 5.0, 5.0) == [
        "no text came back (no chunk with content)"
    ]


def test_kv_cache_arithmetic_of_the_chapter():
    # Qwen2.5-1.5B-Instruct (28 layers, 2 KV heads × 128, bf16) and OPT-13B's 800 KB a token
    # (Kwon et al., SOSP 2023, §3: 2 × 5120 × 40 × 2 bytes; 40 heads × 128 = 5120).
    assert kv_cache_bytes_per_token(28, 2, 128) == 28_672
    assert kv_cache_bytes_per_token(40, 40, 128) == 819_200
