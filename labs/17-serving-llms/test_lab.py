"""Lab 17 · Serving LLMs (optional): an OpenAI-compatible LLM server beside the fraud system, and
the numbers its users feel, measured by your stream_timings.

Cluster: when the lab's LLM server is deployed (`kubectl apply -k labs/17-serving-llms/starter`),
its Deployment is Available, /v1/models lists the model, and one streamed chat completion, measured
by `fraudlab llm-probe` with your stream_timings, has its first token and its decode rate within the
laptop budget (FRAUD_LLM_MAX_TTFT_S, FRAUD_LLM_MIN_TOKENS_PER_S). The lab is optional: without the
Deployment these checks are skipped, with the command that deploys it. The server is reached
through `kubectl port-forward service/llm-server 8000:8000` (FRAUD_LLM_URL).
Local: your stream_timings, behaviour by behaviour. There is no local LLM server in local mode, so
the server checks are the cluster's only.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

DEPLOYMENT = "llm-server"
APPLY = kubectl("apply -k labs/17-serving-llms/starter")
FORWARD = kubectl(f"-n {NAMESPACE} port-forward service/{DEPLOYMENT} 8000:8000")
FRAUDLAB = labkit.REPO_ROOT / ".venv" / "bin" / "fraudlab"
PROBE_MAX_TOKENS = 32
# Your stream_timings runs on your machine, in `fraudlab llm-probe`: the `exercise` fixture reads
# it from the starter folder (or LAB_EXERCISE_DIR) on both targets.
EXERCISE_WORKLOAD = "fraudlab llm-probe (on your machine)"
EXERCISE_ON_MACHINE = True
NOT_DEPLOYED = f"no Deployment {DEPLOYMENT} in {NAMESPACE}; to do the lab: {APPLY}"


def llm_url() -> str:
    return labkit.setting("FRAUD_LLM_URL").rstrip("/")


def served_name(deployment: dict) -> str | None:
    """The model id the server announces: llama-server's --alias, or vLLM's --served-model-name."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    for flag in ("--alias", "--served-model-name"):
        if flag in args[:-1]:
            return args[args.index(flag) + 1]
    return None


def deployed(k8s) -> dict:
    deployment = k8s.deployment(DEPLOYMENT)
    if deployment is None:
        labkit.not_deployed(NOT_DEPLOYED)
    return deployment


@cache
def probe(url: str, code: str) -> tuple[dict | None, str]:
    """One `fraudlab llm-probe --json` run with your stream_timings: (its report, or None; output)."""
    try:
        out = subprocess.run(
            [str(FRAUDLAB), "llm-probe", "--url", url, "--max-tokens", str(PROBE_MAX_TOKENS), "--json"],
            capture_output=True, text=True, timeout=labkit.MAX_WAIT_S, cwd=labkit.REPO_ROOT,
            env={**os.environ, "FRAUD_LAB_CODE": code},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, f"no answer within {labkit.MAX_WAIT_S:.0f} s"
    try:
        return json.loads(out.stdout), ""
    except json.JSONDecodeError:
        return None, labkit.short(out.stdout + out.stderr)


def probe_command(url: str) -> str:
    return (
        f"FRAUD_LAB_CODE={labkit.starter_dir(17).relative_to(labkit.REPO_ROOT)} "
        f".venv/bin/fraudlab llm-probe --url {url}"
    )


# --- kind mode: the LLM server ----------------------------------------------------------------------
@pytest.mark.cluster("reads the Deployment (local mode runs no LLM server)")
def test_llm_server_available(k8s):
    """Deployment `llm-server` is Available: its init container downloaded the pinned weights and `/health` answers 200."""
    deployment = deployed(k8s)
    conditions = {c["type"]: c for c in (deployment.get("status") or {}).get("conditions") or []}
    available = conditions.get("Available", {})
    assert available.get("status") == "True", hint(
        f"Deployment {DEPLOYMENT} Available",
        f"Available={available.get('status')!r} ({available.get('message', 'no condition yet')})",
        kubectl(f"-n {NAMESPACE} logs deployment/{DEPLOYMENT} -c download --tail=20")
        + "   and   "
        + kubectl(f"-n {NAMESPACE} describe deployment/{DEPLOYMENT}"),
    )


@pytest.mark.cluster("reads the Deployment (local mode runs no LLM server)")
@pytest.mark.needs("test_llm_server_available")
def test_models_lists_the_model(k8s):
    """`GET /v1/models` (through `kubectl port-forward`, FRAUD_LLM_URL) lists the model the Deployment serves."""
    name = served_name(deployed(k8s))
    response = labkit.http_get(f"{llm_url()}/v1/models")
    models = (
        [m.get("id") for m in response.json().get("data", [])]
        if not isinstance(response, str) and response.status_code == 200
        else None
    )
    assert models is not None and name in models, hint(
        f"{name} in {llm_url()}/v1/models",
        response
        if isinstance(response, str)
        else f"HTTP {response.status_code}: {labkit.short(response.text)}",
        f"{FORWARD}   (in another terminal; FRAUD_LLM_URL when you forward another port)",
    )


@pytest.mark.cluster("reads the Deployment (local mode runs no LLM server)")
@pytest.mark.needs("test_models_lists_the_model")
def test_a_completion_streams(k8s):
    """A streamed chat completion comes back as server-sent events with text, measured by your stream_timings."""
    deployed(k8s)
    report, problem = probe(llm_url(), str(labkit.starter_dir(17)))
    timings = (report or {}).get("timings") or {}
    assert report is not None and timings.get("chunks", 0) >= 2 and report.get("text"), hint(
        "a stream of at least 2 text chunks",
        problem or f"{timings.get('chunks')} text chunks: {report.get('text')!r}",
        probe_command(llm_url()),
    )


@pytest.mark.cluster("reads the Deployment (local mode runs no LLM server)")
@pytest.mark.needs("test_a_completion_streams")
def test_latency_within_the_laptop_budget(k8s):
    """Time to first token ≤ FRAUD_LLM_MAX_TTFT_S (5 s) and decode ≥ FRAUD_LLM_MIN_TOKENS_PER_S (5 tokens/s)."""
    deployed(k8s)
    report, problem = probe(llm_url(), str(labkit.starter_dir(17)))
    assert report is not None, hint("a measured completion", problem, probe_command(llm_url()))
    t = report["timings"]
    assert not report["problems"], hint(
        f"TTFT ≤ {labkit.setting('FRAUD_LLM_MAX_TTFT_S')} s, decode ≥ "
        f"{labkit.setting('FRAUD_LLM_MIN_TOKENS_PER_S')} tokens/s",
        "; ".join(report["problems"])
        + f" (TTFT {t['ttft_s']}, {t['decode_tokens_per_s']} tokens/s)",
        kubectl(f"-n {NAMESPACE} logs deployment/{DEPLOYMENT} --tail=20")
        + "   (CPU-bound? raise --threads and the CPU request; chapter 17, 'The CPU fallback')",
    )


# --- your Python: TTFT, inter-token latency and decode throughput ------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(17))
def test_exercise(exercise, behaviour):
    """Your stream_timings: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
