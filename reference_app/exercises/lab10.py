"""Lab 10's exercise: the traffic split of a canary, which variant answers a request.

The learner writes `choose_variant` in `labs/10-deployment-patterns/starter/split.py`; the router
(`serving.router`, behind `fraudlab route serve` and the cluster's Deployment `traffic-router`)
calls it for every inference request. Reference: `serving.split.choose_variant` (consistent
hashing of a routing key into buckets, as percentage rollouts of feature-flag systems do).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..serving.router import VARIANT_HEADER, RouterConfig, create_app
from ..serving.split import CHALLENGER, CHAMPION, SPLIT_EXERCISE, choose_variant
from . import Behaviour, as_lab_code

EXERCISE = SPLIT_EXERCISE
REFERENCE = choose_variant
FILE = "labs/10-deployment-patterns/starter/split.py"
CHECK = "make lab-10 TARGET=local"
KEYS = [f"card-{i}" for i in range(10_000)]
SHARE_TOLERANCE_POINTS = 1.5
"""Three binomial standard deviations of the share of 10,000 uniform keys at 50 % (σ = 0.5
point; 0.3 at 10 %): a uniform bucket passes, a biased one (modulo 100 of a small number, a
share read as a fraction) does not. The keys are fixed, so the check is deterministic."""


def _ends(learner, reference):
    def outcome(function):
        at_0 = {function(k, 0) for k in KEYS[:500]}
        at_100 = {function(k, 100) for k in KEYS[:500]}
        return f"0 % → {sorted(at_0)}, 100 % → {sorted(at_100)}"

    return outcome(reference), outcome(learner)


def _share(percent: float):
    def check(learner, reference):
        expected = (
            f"{percent:g} % ± {SHARE_TOLERANCE_POINTS:g} point of 10,000 keys on the challenger"
        )
        share = 100 * sum(learner(k, percent) == CHALLENGER for k in KEYS) / len(KEYS)
        ok = abs(share - percent) <= SHARE_TOLERANCE_POINTS
        return expected, expected if ok else f"{share:.2f} % on the challenger"

    return check


def _in_another_process(function, keys: list[str], percent: float) -> list[str]:
    """`function`'s answers for `keys` in a new Python process with another hash seed."""
    source = Path(function.__code__.co_filename)
    program = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('split_check', {str(source)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"fn = getattr(module, {function.__name__!r})\n"
        f"print(json.dumps([fn(k, {percent!r}) for k in json.loads(sys.stdin.read())]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4711"}
    out = subprocess.run(
        [sys.executable, "-c", program],
        input=json.dumps(keys),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        return [f"the other process failed: {out.stderr.strip().splitlines()[-1:]}"]
    return json.loads(out.stdout)


def _sticky(learner, reference):
    keys = KEYS[:300]
    here = [learner(k, 30) for k in keys]
    again = [learner(k, 30) for k in keys]
    expected = "the same variant for each key, twice here and once in another process"
    if here != again:
        return expected, "a key changed variant between two calls in this process"
    there = _in_another_process(learner, keys, 30)
    moved = sum(a != b for a, b in zip(here, there, strict=False)) + abs(len(here) - len(there))
    if moved:
        return expected, f"{moved} of {len(keys)} keys changed variant in another process (hash()?)"
    return expected, expected


def _monotone(learner, reference):
    expected = "no key leaves the challenger when its share grows (10 → 25 → 60 → 100 %)"
    keys = KEYS[:3000]
    for low, high in ((10, 25), (25, 60), (60, 100)):
        back = [k for k in keys if learner(k, low) == CHALLENGER and learner(k, high) != CHALLENGER]
        if back:
            return expected, f"{len(back)} keys on the challenger at {low} % are not at {high} %"
    return expected, expected


def _agrees(learner, reference):
    keys = KEYS[:2000]
    expected = "the reference's variant for each of 2,000 keys at 10 %"
    differ = [k for k in keys if learner(k, 10) != reference(k, 10)]
    if differ:
        return expected, f"{len(differ)} keys differ, e.g. {differ[0]}: {learner(differ[0], 10)}"
    return expected, expected


def _refuses(learner, reference):
    def outcome(function):
        answers = []
        for bad in (-5, 100.5, float("nan")):
            try:
                answers.append(f"{bad!r} → {function('card-1', bad)}")
            except ValueError:
                answers.append(f"{bad!r} → ValueError")
        return "; ".join(answers)

    return outcome(reference), outcome(learner)


def _router(learner, reference):
    """What the router does with the function: it tries it at start, then routes by it. The
    variants do not exist here (port 9), so each answer is a 502 that still names the variant."""
    from starlette.testclient import TestClient

    def outcome(function):
        with as_lab_code(function):
            app = create_app(
                RouterConfig(
                    champion="http://127.0.0.1:9",
                    challenger="http://127.0.0.1:9",
                    shadow=None,
                    split_file=Path("/nonexistent/split.json"),
                    default_challenger_traffic=50,
                    timeout_s=2,
                )
            )
        with TestClient(app) as client:
            chosen = [
                client.post(
                    "/v2/models/fraud-detector/infer",
                    json={"inputs": []},
                    headers={"x-routing-key": k},
                ).headers.get(VARIANT_HEADER)
                for k in KEYS[:6]
            ]
        return f"starts; routes {', '.join(KEYS[:6])} to {', '.join(map(str, chosen))}"

    return outcome(reference), outcome(learner)


BEHAVIOURS = [
    Behaviour(
        f"at 0 % every key reaches the {CHAMPION}, at 100 % the {CHALLENGER}",
        _ends,
        f'return "challenger" when the key\'s bucket is below challenger_traffic / 100 * BUCKETS: '
        f"{FILE}; then {CHECK}",
    ),
    Behaviour(
        "at 10 % the challenger gets 10 ± 1.5 % of 10,000 keys",
        _share(10),
        f"a uniform bucket from SHA-256, compared with the share of BUCKETS: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "at 50 % the challenger gets 50 ± 1.5 % of 10,000 keys",
        _share(50),
        f"the share is in percent (0 … 100), the bucket in 0 … BUCKETS − 1: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "a key always reaches the same variant, in another process too (sticky, no hash())",
        _sticky,
        f"no randomness and no hash() (salted per process): hashlib.sha256 of the key: {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        "raising the challenger's share only moves keys to the challenger",
        _monotone,
        f"compare the bucket with the share (bucket < share of BUCKETS), the same bucket at "
        f"every share: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the same variant as the reference for every key (router replicas and checks agree)",
        _agrees,
        f"the first 8 bytes of the SHA-256 digest, big-endian, modulo BUCKETS: {FILE}; "
        f"then {CHECK}",
    ),
    Behaviour(
        "a share outside 0 … 100 (or NaN) is refused with ValueError",
        _refuses,
        f"check `0 <= challenger_traffic <= 100` first (NaN fails it): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the router starts with your function and routes requests by it",
        _router,
        f"the router (FRAUD_LAB_CODE) tries choose_variant when it starts: {FILE}; then {CHECK}",
    ),
]
