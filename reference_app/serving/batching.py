"""Score concurrent requests together, after each request's own checks.

MLServer's adaptive batching merges requests *before* the runtime sees them: one bad request
fails the whole merged batch, and a merged batch can exceed the per-request row limit. Here each
request is decoded and checked alone (`FraudRuntime._check_request`), and only its checked rows
join a batch: the model scores the batch once, and each request gets its own slice back. A bad
request never reaches the batcher, and a merged batch never holds more than `max_rows` rows.

No thread, no background task, no timer: the first request to arrive at an empty batch (the
leader) yields to the event loop once, so that the requests already in flight can join, then
scores them all. A request alone waits for nothing.

Merging pays only when one model call costs more than the rest of a request: `batching_pays`
times a one-row call when the model loads (measured here: the compiled models ≈ 0.02-0.15 ms,
the native forest ≈ 10 ms, the native pipeline and MLP ≈ 1-2 ms).

Example:
    >>> batcher = MicroBatcher(model.predict_proba, max_rows=10_000)
    >>> scores = await batcher.score(rows)   # rows: (n, 15); scores: (n,)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from ..features import FEATURE_NAMES

# NOTE: the cost of one model call above which merging requests pays. Below it, the extra hop
# through the event loop costs more than the call saved: with the compiled forest (≈ 0.1 ms a
# call) merging left the throughput at concurrency 64 unchanged and doubled p99; with the native
# forest (≈ 10 ms a call) it raised the throughput 4× (`python -m reference_app.serving.bench`).
MERGE_MIN_CALL_S = 0.5e-3


def batching_pays(score: Callable[[np.ndarray], np.ndarray], probes: int = 5) -> bool:
    """True when one model call on one row costs at least `MERGE_MIN_CALL_S` (median of `probes`)."""
    row = np.zeros((1, len(FEATURE_NAMES)))
    costs = []
    for _ in range(probes):
        started = time.perf_counter()
        score(row)
        costs.append(time.perf_counter() - started)
    return float(np.median(costs)) >= MERGE_MIN_CALL_S


# --8<-- [start:batcher]
class MicroBatcher:
    """Merge the checked rows of concurrent requests into one model call, then split the scores.

    Args:
        score: the model: (m, 15) rows → (m,) scores.
        max_rows: most rows in one model call (a request alone is never split).
        merge: False scores each request at once, alone (a model too cheap to batch).
        observe: called with the number of requests of each model call (a metric).
    """

    def __init__(
        self,
        score: Callable[[np.ndarray], np.ndarray],
        max_rows: int,
        merge: bool = True,
        observe: Callable[[int], None] | None = None,
    ):
        self._score = score
        self._max_rows = max_rows
        self.merge = merge
        self._observe = observe or (lambda requests: None)
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self._rows = 0
        self.calls = 0
        """Model calls so far (requests / calls = the mean batch, in requests)."""
        self.requests = 0
        """Requests scored so far."""

    async def score(self, rows: np.ndarray) -> np.ndarray:
        """Scores (n,) of one request's checked rows (n, 15), scored with whatever else is pending."""
        if not self.merge:
            self.calls, self.requests = self.calls + 1, self.requests + 1
            self._observe(1)
            return self._score(rows)
        if self._rows + len(rows) > self._max_rows:
            self._flush()  # this request would overflow the batch: score the others first
        future = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._rows += len(rows)
        if len(self._pending) == 1:  # the leader: let the requests in flight join, then score
            try:
                await asyncio.sleep(0)
            finally:
                self._flush()
        return await future

    def _flush(self) -> None:
        batch, self._pending, self._rows = self._pending, [], 0
        if batch:
            self._run(batch)

    def _run(self, batch: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        self.calls += 1
        try:
            rows = batch[0][0] if len(batch) == 1 else np.concatenate([r for r, _ in batch])
            scores = self._score(rows)
        except Exception as err:  # a model error: score each request alone, so it fails alone
            if len(batch) == 1:
                _settle(batch[0][1], error=err)
            else:
                for one in batch:
                    self._run([one])
            return
        self.requests += len(batch)
        self._observe(len(batch))
        start = 0
        for rows, future in batch:
            _settle(future, scores[start : start + len(rows)])
            start += len(rows)


# --8<-- [end:batcher]


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    """Resolve a request's future, unless it is done already (its request was cancelled)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
