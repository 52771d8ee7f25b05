"""A promotion drill: shift the router's split under load and back, counting every failed request.

`fraudlab route drill` sends inference requests to the router from a few concurrent clients,
promotes the challenger (the split to `to` percent) while they run, waits until the router applies
the new split, keeps sending, rolls back to the split it found, and writes a report
(`<reports>/promotion-drill.json`) that lab 10's check reads: requests, failed requests, and the
challenger's share in each phase. Locally the split changes by writing the router's file
(`router.write_split`); on the cluster by patching the ConfigMap `traffic-split`, which the
kubelet copies into the router's volume (within its sync period, about a minute). A drill that
fails after it changed the split (a split not applied in time, a phase without enough requests,
an interrupted drill) sets the split it found again before it ends, and its error says so.

Example:
    >>> report = promotion_drill("http://127.0.0.1:8085", "fraud-detector",
    ...                          change=lambda share: write_split(path, share))   # doctest: +SKIP
    >>> report["failed"]                                                          # doctest: +SKIP
    0
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from .router import KEY_HEADER, VARIANT_HEADER
from .split import CHALLENGER

CLIENTS = 4
"""Concurrent clients: enough that requests are in flight whenever the split changes."""
MIN_REQUESTS_PER_PHASE = 400
"""Requests each phase (before, promoted, rolled back) sends at least: ≥ 1,200 in all."""
REPORT_NAME = "promotion-drill.json"


class DrillError(RuntimeError):
    """The router did not answer, or did not apply a split in time."""


def _sample_request(i: int) -> dict:
    """A one-transaction V2 request (15 FP64 inputs) with the features of an ordinary daytime
    purchase: the drill measures routing and failures, not scores."""
    from ..features import FEATURE_NAMES

    values = {name: 1.0 for name in FEATURE_NAMES} | {"TX_AMOUNT": 20.0 + i % 50}
    return {
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP64", "data": [values[name]]}
            for name in FEATURE_NAMES
        ]
    }


def router_split(url: str) -> dict:
    """The router's `GET /router/split` answer.

    Raises:
        DrillError: the router does not answer.
    """
    try:
        return httpx.get(f"{url}/router/split", timeout=5).json()
    except (httpx.HTTPError, ValueError) as err:
        raise DrillError(f"no router answers at {url}/router/split: {err}") from None


def _roll_back(change: Callable[[float], None], current: float, original: float) -> str | None:
    """Set the challenger's share back to `original` when the drill left it at `current`.

    Returns:
        None when there was nothing to undo, else a sentence saying what was done (or that the
        rollback failed too, with the command that does it by hand). Never raises.
    """
    if current == original:
        return None
    try:
        change(original)
    except Exception as err:
        return (
            f"rolling the split back to challenger {original:g} % failed too ({type(err).__name__}:"
            f" {err}): set it with `fraudlab route set --challenger {original:g}` (or patch the "
            f"ConfigMap traffic-split)"
        )
    return f"the split was rolled back to challenger {original:g} %"


def promotion_drill(
    url: str,
    model_name: str,
    change: Callable[[float], None],
    to: float = 100.0,
    apply_timeout_s: float = 180.0,
    out_dir: Path | None = None,
) -> dict:
    """Promote under load, then roll back, and report.

    Args:
        url: the router's base URL.
        model_name: the model in the inference path.
        change: sets the challenger's share (percent) where the router reads it.
        to: the challenger's share during the promotion (100: all traffic).
        apply_timeout_s: how long to wait for the router to apply a split.
        out_dir: where to write `promotion-drill.json` (None: not written).

    Returns:
        `started`, `split_before`, `to`, `requests`, `failed` (status ≠ 200 or no answer),
        `failures` (the first 10, as text), and per phase (`before`, `promoted`, `rolled_back`)
        its `requests`, `challenger_share` (percent) and `split` (the router's).

    Raises:
        DrillError: the router does not answer at the start, a split is not applied in time, or
            a phase gets fewer than `MIN_REQUESTS_PER_PHASE` requests within `apply_timeout_s`.
            When the split had been changed, `change(original share)` runs first and the
            message says whether that rollback worked (any other exception gets the same
            rollback and a note).
    """
    before = router_split(url)["split"]
    original = before[CHALLENGER]
    infer = f"{url}/v2/models/{model_name}/infer"
    phase = {"name": "before", "generation": 0}
    results: dict[str, list[str | None]] = {"before": [], "promoted": [], "rolled_back": []}
    failures: list[str] = []
    sent = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(worker: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not stop.is_set():
                with lock:
                    name, generation = phase["name"], phase["generation"]
                key = f"drill-{worker}-{i}"
                try:
                    r = client.post(infer, json=_sample_request(i), headers={KEY_HEADER: key})
                    variant = r.headers.get(VARIANT_HEADER)
                    problem = (
                        None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:120]}"
                    )
                except httpx.HTTPError as err:
                    variant, problem = None, f"{type(err).__name__}: {err}"
                with lock:
                    sent[0] += 1
                    # A request counts in its phase only when no switch began while it ran.
                    if name != "switching" and generation == phase["generation"]:
                        results[name].append(variant)
                    if problem:
                        failures.append(problem)
                i += 1

    def wait_phase(name: str) -> None:
        deadline = time.monotonic() + apply_timeout_s
        while True:
            with lock:
                if len(results[name]) >= MIN_REQUESTS_PER_PHASE:
                    return
            if time.monotonic() > deadline:
                raise DrillError(f"phase {name}: fewer than {MIN_REQUESTS_PER_PHASE} requests")
            time.sleep(0.05)

    changed = {"share": original}  # the last share given to `change`

    def switch(share: float, name: str) -> dict:
        with lock:
            phase["name"], phase["generation"] = "switching", phase["generation"] + 1
        changed["share"] = share  # before the call: a change that fails half-way is undone too
        change(share)
        deadline = time.monotonic() + apply_timeout_s
        while router_split(url)["split"][CHALLENGER] != share:
            if time.monotonic() > deadline:
                raise DrillError(
                    f"the router did not apply challenger {share:g} % within {apply_timeout_s:.0f} s"
                )
            time.sleep(0.5)
        split = router_split(url)["split"]
        with lock:
            phase["name"], phase["generation"] = name, phase["generation"] + 1
        return split

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    splits = {"before": before}
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client_loop, w) for w in range(CLIENTS)]
        try:
            wait_phase("before")
            splits["promoted"] = switch(to, "promoted")
            wait_phase("promoted")
            splits["rolled_back"] = switch(original, "rolled_back")
            wait_phase("rolled_back")
        except BaseException as err:
            note = _roll_back(change, changed["share"], original)
            if note and isinstance(err, DrillError):
                raise DrillError(f"{err}; {note}") from err
            if note:
                err.add_note(note)
            raise
        finally:
            stop.set()
            for f in futures:
                f.result()
    phases = {
        name: {
            "requests": len(results[name]),
            "challenger_share": 100
            * sum(v == CHALLENGER for v in results[name])
            / max(1, len(results[name])),
            "split": splits[name],
        }
        for name in ("before", "promoted", "rolled_back")
    }
    report = {
        "started": started,
        "router": url,
        "split_before": before,
        "to": to,
        "requests": sent[0],
        "failed": len(failures),
        "failures": failures[:10],
        "phases": phases,
    }
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / REPORT_NAME).write_text(json.dumps(report, indent=2))
    return report
