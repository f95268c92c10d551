"""How many requests may be in flight: an AIMD-controlled asyncio semaphore, and the counters."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

#: most entries kept in a limit history (a long throttled run must not grow it forever)
HISTORY_CAP = 10_000


@dataclass
class RequestStats:
    """Counters for everything the backend sent (cumulative over the model's life)."""

    requests: int = 0
    """logical requests finished (one per generate/loglikelihood request)"""
    ok: int = 0
    errors: int = 0
    http_calls: int = 0
    retries: int = 0
    throttled: int = 0
    """HTTP 429 answers"""
    server_errors: int = 0
    """HTTP 5xx answers"""
    timeouts: int = 0
    dropped: int = 0
    """connection errors: refused, reset, closed mid-response"""
    malformed: int = 0
    """HTTP 200 answers without the expected shape (not JSON, no choices, ``content: null``)"""
    scrubbed: int = 0
    """answers in which the API key appeared and was replaced by ``***``"""
    concurrency_min: int = 0
    """lowest concurrency limit the AIMD controller went down to"""
    concurrency_changes: list[int] = field(default_factory=list)
    """successive concurrency limits (the first is the starting one; capped length)"""

    def absorb(self, limiter: AdaptiveConcurrency) -> None:
        """Fold one limiter's lowest limit and its limit changes into these counters."""
        self.concurrency_min = min(self.concurrency_min, limiter.lowest)
        changes = self.concurrency_changes
        changes.extend(limiter.history[1:][: max(0, HISTORY_CAP - len(changes))])


class AdaptiveConcurrency:
    """An asyncio semaphore whose limit follows AIMD.

    ``on_throttle`` halves the limit once per congestion event: a 429 from a
    request that was admitted before the last halving belongs to the same event
    and does not halve again. ``on_success`` adds one after ``limit`` successes in
    a row. Waiters are served first-in, first-out. Bound to one event loop.
    """

    def __init__(self, maximum: int, start: int | None = None, minimum: int = 1) -> None:
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = max(self.minimum, min(start or maximum, maximum))
        self.lowest = self.limit
        self.history: list[int] = [self.limit]
        self._in_flight = 0
        self._successes = 0
        self._epoch = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> int:
        """Wait for a slot; returns the congestion epoch the request was admitted in."""
        if self._in_flight < self.limit and not self._waiters:
            self._in_flight += 1
            return self._epoch
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise
        return self._epoch

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def on_throttle(self, epoch: int) -> None:
        if epoch != self._epoch:
            return
        self._epoch += 1
        self._successes = 0
        new = max(self.minimum, self.limit // 2)
        if new != self.limit:
            self.limit = new
            self._record()

    def on_success(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self._successes = 0
            self.limit += 1
            self._record()
            self._wake()

    def _record(self) -> None:
        self.lowest = min(self.lowest, self.limit)
        if len(self.history) < HISTORY_CAP:
            self.history.append(self.limit)

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self._in_flight += 1
                fut.set_result(None)
