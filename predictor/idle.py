"""Whether the event loop has other work, and whether a batch should wait through a lull.

The batcher (``predictor.batching``) runs cheap batches on the event loop once the loop
has nothing else to do, so that every request that is already on its way joins the
batch. "Something to do" is a callback ready to run or I/O already waiting: a REST
request on a socket, or a gRPC call that grpc's poller thread has signalled (grpc.aio
hands calls to the loop one per pass, so they arrive between passes).

Under a closed-loop load (64 gRPC clients, say) the loop is idle only for moments
between calls, and a batch that waits through those moments merges many more requests
into one engine call, cheaper per row: RF one row over gRPC at c=64 went from ~2.5 rows
to ~15 rows per call and ~6.2 k to ~8.5 k req/s on the 2-core benchmark VM. With two
clients whose requests are both in the batch already, nothing more is coming and the
wait is lost time. :class:`IdleWait` tells the two apart by keeping the share of recent
waits that ended with new work.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any


def has_work(loop: Any) -> bool | None:
    """Whether ``loop`` has work besides the running callback.

    Args:
        loop: The running event loop.

    Returns:
        True when callbacks are ready to run or I/O is waiting on the loop's selector
        (polled with a zero timeout, which consumes nothing: epoll is level-triggered);
        False when the loop would sleep next; None for a loop that exposes neither
        (uvloop).
    """
    ready = getattr(loop, "_ready", None)  # asyncio's own loop
    if ready is None:
        return None
    if ready:
        return True
    selector = getattr(loop, "_selector", None)
    return selector is not None and bool(selector.select(0))


class IdleWait:
    """Whether an open batch waits through an idle loop for the next request.

    A batch waits through idleness for at most ``limit_s`` while at least ``THRESHOLD``
    of recent waits ended with new work on the loop (``paid``, a moving average over
    about ``1 / WEIGHT`` waits); otherwise it runs at the first idle moment, except that
    every ``PROBE``-th batch waits anyway, so the share follows the load. A wait costs the
    loop nothing it could have done (it only waits while the loop has nothing to do) but
    delays the batch by up to ``limit_s``.
    """

    THRESHOLD = 0.9
    PROBE = 32
    WEIGHT = 1 / 16

    def __init__(self, limit_s: float) -> None:
        if limit_s < 0:
            raise ValueError("the idle wait must be >= 0")
        self.limit_s = limit_s
        self.paid = 1.0
        self._batches = 0
        self._since: dict[Hashable, float] = {}  # key -> start of the wait in progress

    def busy(self, key: Hashable) -> None:
        """The loop has work again: the wait in progress for ``key`` (if any) paid off."""
        if self._since.pop(key, None) is not None:
            self.paid += (1.0 - self.paid) * self.WEIGHT

    def wait(self, key: Hashable, now: float) -> bool:
        """The loop is idle: whether the batch for ``key`` waits another loop pass.

        Args:
            key: The batch's key.
            now: ``time.monotonic()``.

        Returns:
            True to check again on the next loop pass, False to run the batch now.
        """
        since = self._since.get(key)
        if since is None:
            self._batches += 1
            if self.limit_s == 0 or (self.paid < self.THRESHOLD and self._batches % self.PROBE):
                return False
            self._since[key] = now
            return True
        if now - since < self.limit_s:
            return True
        del self._since[key]  # nothing came: a wait that did not pay
        self.paid -= self.paid * self.WEIGHT
        return False

    def end(self, key: Hashable) -> None:
        """The batch for ``key`` runs (full, old enough, or the loop is idle)."""
        self._since.pop(key, None)
