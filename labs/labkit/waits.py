"""Bounded waits: no check waits longer than MAX_WAIT_S (60 s). `bounded` runs a
call that may hang (kubectl exec, docker exec) with a deadline; `wait_until` polls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .names import MAX_WAIT_S


class Timeout(RuntimeError):
    """A call did not return within its bound."""


def bounded(fn: Callable[[], Any], seconds: float = 30.0, what: str = "the call") -> Any:
    """Run `fn` in a daemon thread; raise `Timeout` if it takes longer than `seconds` (≤ 60)."""
    seconds = min(seconds, MAX_WAIT_S)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Timeout(f"{what} did not answer within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_until(predicate: Callable[[], bool], seconds: float, interval: float = 1.0) -> bool:
    """Poll `predicate` until it is true or `seconds` (≤ 60) have passed."""
    deadline = time.monotonic() + min(seconds, MAX_WAIT_S)
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
