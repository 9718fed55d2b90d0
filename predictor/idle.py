"""Whether the event loop has other work, and how long a batch waits for more requests.

The batcher (``predictor.batching``) runs cheap batches on the event loop itself. An open
batch waits while the loop has other work, so that requests already on their way join
it: a REST request on a socket, or a gRPC call that grpc's poller thread has signalled
(grpc.aio hands calls to the loop one per pass, so they arrive between passes).
:func:`has_work` tells whether the loop has such work; :class:`IdleWait` decides whether
the batch also waits through a moment the loop is idle.

Under a closed-loop load (64 gRPC clients, say) the loop is idle only for moments
between calls, and a batch that waits through those moments merges many more requests
into one engine call, cheaper per row (numbers: bench/README.md, item 16). With two
clients whose requests are both in the batch already, nothing more is coming and the
wait is lost time: :class:`IdleWait` tells the two apart by what recent waits gained.
"""

from __future__ import annotations

import selectors
from collections.abc import Hashable
from typing import Any


def has_work(loop: Any, own: int = 0, io: bool = True) -> bool | None:
    """Whether ``loop`` has work besides the running callback.

    Args:
        loop: The running event loop.
        own: How many of the ready callbacks are the caller's own (a batcher's pending
            flushes of other keys), not counted as work.
        io: Whether to poll the selector for I/O waiting too (a system call).

    Returns:
        True when other callbacks are ready to run or I/O is waiting on the loop's
        selector (polled with a zero timeout: a selector only reports readiness, so the
        loop's own next poll sees the same events); False when the loop would sleep
        next; None for a loop that exposes neither (uvloop).
    """
    ready = getattr(loop, "_ready", None)  # asyncio's own loop
    if ready is None:
        return None
    if len(ready) > own:
        return True
    if not io:
        return False
    selector = getattr(loop, "_selector", None)  # Windows' proactor loop: not a selector
    return isinstance(selector, selectors.BaseSelector) and bool(selector.select(0))


class IdleWait:
    """Whether an open batch waits through moments the loop is idle.

    While the loop has other work, an open batch waits (the batcher bounds that by
    ``max_latency_us``): the work may be a request on its way, and waiting takes nothing
    from the loop. While the loop is idle, waiting means spinning it a pass at a time and
    answering later, so a batch waits through at most ``limit_s`` of idleness in all, and
    only while recent waits were worth it: each request that joins a waiting batch saves
    an engine call (``JOIN_S``, about what a call of a small model costs in a loaded
    server), so a batch waits while the requests that joined recent waiting batches
    (``gain``, a moving average over about ``1 / WEIGHT`` of them) saved more than the idle
    time those batches spent (``spent``). Otherwise it runs at its first idle moment,
    except every ``PROBE``-th one, so the averages follow the load. ``limit_s`` 0: no idle
    waits.
    """

    JOIN_S = 25e-6
    PROBE = 32
    WEIGHT = 1 / 16

    def __init__(self, limit_s: float) -> None:
        if limit_s < 0:
            raise ValueError("the idle wait must be >= 0")
        self.limit_s = limit_s
        self.gain = 1.0  # requests that joined a waiting batch
        self.spent = 0.0  # idle seconds a waiting batch spent
        self._chances = 0
        # key -> [requests in the batch when it began to wait, idle seconds so far,
        #          time of the previous check if the loop was idle then, else None]
        self._waiting: dict[Hashable, list[Any]] = {}

    @property
    def worth_it(self) -> bool:
        """Whether recent waits saved more than they cost."""
        return self.gain * self.JOIN_S >= self.spent

    def waits(self, key: Hashable, queued: int, now: float, work: bool) -> bool:
        """Whether the open batch for ``key`` waits another loop pass.

        Args:
            key: The batch's key.
            queued: Requests in the batch now.
            now: ``time.monotonic()``.
            work: Whether the loop has other work (``has_work``).

        Returns:
            True to check again on the next loop pass, False to run the batch now.
        """
        state = self._waiting.get(key)
        if work:
            if state is not None:
                state[2] = None  # busy time is not idle time
            return True
        if state is None:
            self._chances += 1  # the batch's first idle moment
            if self.limit_s == 0 or (not self.worth_it and self._chances % self.PROBE):
                return False
            self._waiting[key] = [queued, 0.0, now]
            return True
        if state[2] is not None:
            state[1] += now - state[2]
        state[2] = now
        if state[1] < self.limit_s:
            return True
        self.end(key, queued)
        return False

    def end(self, key: Hashable, queued: int) -> None:
        """The batch for ``key`` runs: if it waited, count who joined and the idle time."""
        state = self._waiting.pop(key, None)
        if state is None:
            return
        self.gain += (queued - state[0] - self.gain) * self.WEIGHT
        self.spent += (state[1] - self.spent) * self.WEIGHT

    def forget(self, key: Hashable | None = None) -> None:
        """Drop the wait in progress for ``key`` (every key: None), counting nothing."""
        if key is None:
            self._waiting.clear()
        else:
            self._waiting.pop(key, None)
