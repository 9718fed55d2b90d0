"""Adaptive (dynamic) batching of concurrent inference requests.

Knows nothing about protocols. Requests with the same key (the tuple of requested method
names) are merged into one ``run(key, X)`` call and the results are split back by row
counts. A batch runs on the event loop itself when ``inline(key, rows)`` says it is cheap
(see ``predictor.costs``), otherwise in a worker thread. The policy follows Triton's
dynamic batcher:

* no waiting when the engine is idle: a cheap request that finds no other callback
  ready on the loop and nothing queued for its key runs at once, on the loop, without a
  wake-up (so does a cheap request of ``max_batch_size`` rows or more: it would run
  alone); otherwise a cheap request is run on the loop, together with the requests that
  join it (no timer, no thread hand-off): the batch waits while the loop has other work
  (ready callbacks, I/O waiting: gRPC hands calls over one per loop pass), and through
  moments of idleness, at most ``idle_wait_us`` of them in all, while recent waiting
  batches gained more requests than the idle time cost (``predictor.idle.IdleWait``);
  otherwise it runs at the first idle moment; always by the time it is full or its
  oldest request has waited ``max_latency_us``; any other request that arrives while
  fewer than ``max_concurrency`` batches are in flight is sent to a worker thread at
  once;
* otherwise it queues; queued requests go out together as soon as a batch finishes, or
  once ``max_batch_size`` rows are waiting, or when the oldest has waited
  ``max_latency_us`` (then the batch is dispatched even though the engine is busy);
* a batch holds at most ``max_batch_size`` rows; a single larger request runs alone;
* an exception raised by ``run`` fails only the requests of that batch, each re-raising it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from predictor.idle import IdleWait, has_work

log = logging.getLogger("predictor.batching")

Key = tuple[str, ...]
RunFn = Callable[[Key, Any], dict[str, np.ndarray]]
InlineFn = Callable[[Key, int], bool]


class BatchError(RuntimeError):
    """A batch produced outputs that cannot be split back into the requests."""


class _Pending:
    """One request waiting in a queue."""

    __slots__ = ("enqueued", "future", "rows", "x")

    def __init__(self, x: Any, rows: int, future: asyncio.Future) -> None:
        self.x, self.rows, self.future = x, rows, future
        self.enqueued = time.monotonic()


def _rows(x: Any) -> int:
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    return len(x)


def _merge(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if any(hasattr(p, "columns") for p in parts):
        import pandas as pd

        cols = next(p.columns for p in parts if hasattr(p, "columns"))
        frames = [p if hasattr(p, "columns") else pd.DataFrame(p, columns=cols) for p in parts]
        return pd.concat(frames, ignore_index=True)
    return np.concatenate([np.asarray(p) for p in parts], axis=0)


class Batcher:
    """Merge concurrent ``submit`` calls with the same key into one ``run`` call."""

    def __init__(
        self,
        run: RunFn,
        *,
        max_batch_size: int,
        max_latency_us: int,
        executor: concurrent.futures.Executor | None = None,
        max_concurrency: int = 1,
        inline: InlineFn | None = None,
        idle_wait_us: int = 200,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if max_latency_us < 0:
            raise ValueError("max_latency_us must be >= 0")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._run = run
        self._inline = inline
        self._soon: dict[Key, asyncio.Handle] = {}  # end-of-pass inline flushes
        self.max_batch_size = int(max_batch_size)
        self.max_latency_s = max_latency_us / 1e6
        self.max_concurrency = int(max_concurrency)
        self._own_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=max(2, min(8, (os.cpu_count() or 2) * 2)),
            thread_name_prefix="batcher",
        )
        self._queues: dict[Key, collections.deque[_Pending]] = {}
        self._queued_rows: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._in_flight = 0
        self._tasks: set[asyncio.Future] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle = IdleWait(idle_wait_us / 1e6)
        # counters, handy for metrics and tests
        self.batches = 0
        self.requests = 0

    # ------------------------------------------------------------------ public

    async def submit(self, key: Key, X: Any) -> dict[str, np.ndarray]:  # noqa: N803
        """Queue ``X`` (validated 2-D rows) for ``key``; returns this request's outputs."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        loop = asyncio.get_running_loop()
        self._loop = loop
        key = tuple(key)
        rows = _rows(X)
        if self._run_now(loop, key, rows):
            # Alone (no callback ready on the loop, nothing queued for this key), or a
            # full batch by itself: no one can join it, so it runs here without a wait.
            self.requests += 1
            self.batches += 1
            return self._run(key, X)
        item = _Pending(X, rows, loop.create_future())
        self.requests += 1
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = collections.deque()
            self._queued_rows[key] = 0
        queue.append(item)
        self._queued_rows[key] += item.rows
        if key in self._soon:
            pass  # joins the inline batch flushed at the end of this loop pass
        elif self._inline is not None and self._inline(key, item.rows):
            self._soon[key] = loop.call_soon(self._flush_inline, key)
        elif (
            self._in_flight < self.max_concurrency or self._queued_rows[key] >= self.max_batch_size
        ):
            self._dispatch(key)
        elif key not in self._timers:
            self._arm(key)
        return await item.future

    async def close(self) -> None:
        """Run what is queued, wait for batches in flight, then refuse new requests."""
        self._closed = True
        for handle in self._soon.values():
            handle.cancel()
        self._soon.clear()
        self._idle.forget()
        for key in list(self._queues):
            while self._queues.get(key):
                self._dispatch(key)
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._own_executor:
            self._executor.shutdown(wait=False)

    # ------------------------------------------------------------------ internals

    def _arm(self, key: Key) -> None:
        queue = self._queues.get(key)
        if not queue or self._loop is None:
            return
        deadline = queue[0].enqueued + self.max_latency_s
        delay = max(0.0, deadline - time.monotonic())
        self._timers[key] = self._loop.call_later(delay, self._on_timer, key)

    def _on_timer(self, key: Key) -> None:
        self._timers.pop(key, None)
        if self._queues.get(key):
            self._dispatch(key)

    def _take(self, key: Key) -> list[_Pending]:
        queue = self._queues[key]
        batch: list[_Pending] = []
        rows = 0
        while queue:
            head = queue[0]
            if head.future.done():  # cancelled by its caller while queued
                queue.popleft()
                self._queued_rows[key] -= head.rows
                continue
            if batch and rows + head.rows > self.max_batch_size:
                break
            queue.popleft()
            self._queued_rows[key] -= head.rows
            batch.append(head)
            rows += head.rows
            if rows >= self.max_batch_size:
                break
        if not queue:
            del self._queues[key]
            del self._queued_rows[key]
        return batch

    def _dispatch(self, key: Key) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        batch = self._take(key)
        if key in self._queues:  # rows left over: they keep their own deadline
            self._arm(key)
        if batch:
            self._start(key, batch)

    def _flush_inline(self, key: Key) -> None:
        """End of a loop pass: run what queued for ``key``, on the loop when cheap."""
        self._soon.pop(key, None)
        queue = self._queues.get(key)
        if not queue:
            self._idle.forget(key)
            return
        if (
            self._queued_rows[key] < self.max_batch_size
            and time.monotonic() - queue[0].enqueued < self.max_latency_s
            and self._waits(key)
        ):
            # requests keep joining (gRPC calls arrive one per loop pass): let more in
            assert self._loop is not None
            self._soon[key] = self._loop.call_soon(self._flush_inline, key)
            return
        self._idle.end(key, len(queue))
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        batch = self._take(key)
        if key in self._queues:  # more than one batch waited: the rest next pass
            assert self._loop is not None
            self._soon[key] = self._loop.call_soon(self._flush_inline, key)
        if not batch:
            return
        rows = sum(p.rows for p in batch)
        if self._inline is None or not self._inline(key, rows):
            self._start(key, batch)  # the merged batch is too big for the loop
            return
        self.batches += 1
        try:
            outputs = self._execute(key, batch)
            self._deliver(outputs, batch)
        except Exception as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)

    def _run_now(self, loop: asyncio.AbstractEventLoop, key: Key, rows: int) -> bool:
        """Whether a request can run on the loop at once, as a batch of its own."""
        if self._inline is None or key in self._soon or self._queues.get(key):
            return False
        # Only ready callbacks count here, not I/O waiting: a request that merely might
        # join costs this one the queued path (A/B, RF one row REST c=2: -11 %).
        if rows < self.max_batch_size and has_work(loop, len(self._soon), io=False) is not False:
            return False  # others may join: the end-of-pass flush (uvloop: always)
        return self._inline(key, rows)

    def _waits(self, key: Key) -> bool:
        """Whether the inline batch for ``key`` waits another loop pass for more requests."""
        if self.max_latency_s <= 0:
            return False
        try:
            work = has_work(self._loop, own=len(self._soon))  # other keys' flushes: not work
            if work is None:  # uvloop: no way to tell, so no wait
                return False
            return self._idle.waits(key, len(self._queues[key]), time.monotonic(), work)
        except Exception:  # never strand a batch over the check: run it
            log.exception("batching: checking the event loop failed; running the batch")
            self._idle.forget(key)
            return False

    def _start(self, key: Key, batch: list[_Pending]) -> None:
        """Run ``batch`` in a worker thread."""
        assert self._loop is not None
        self._in_flight += 1
        self.batches += 1
        fut = self._loop.run_in_executor(self._executor, self._execute, key, batch)
        self._tasks.add(fut)
        fut.add_done_callback(functools.partial(self._finished, batch=batch))

    def _execute(self, key: Key, batch: list[_Pending]) -> dict[str, np.ndarray]:
        return self._run(key, _merge([p.x for p in batch]))

    def _finished(self, fut: asyncio.Future, *, batch: list[_Pending]) -> None:
        self._tasks.discard(fut)
        self._in_flight -= 1
        try:
            outputs = fut.result()
            self._deliver(outputs, batch)
        except BaseException as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
        self._next()

    def _deliver(self, outputs: dict[str, np.ndarray], batch: list[_Pending]) -> None:
        if len(batch) == 1:
            if not batch[0].future.done():
                batch[0].future.set_result(outputs)
            return
        total = sum(p.rows for p in batch)
        for name, arr in outputs.items():
            n = _rows(arr)
            if n != total:
                raise BatchError(
                    f"output {name!r} of a batched call has {n} rows, expected {total}"
                )
        start = 0
        for p in batch:
            stop = start + p.rows
            if not p.future.done():
                p.future.set_result({name: arr[start:stop] for name, arr in outputs.items()})
            start = stop

    def _next(self) -> None:
        """A batch finished: send the queue whose oldest request has waited longest."""
        while self._in_flight < self.max_concurrency and self._queues:
            key = min(self._queues, key=lambda k: self._queues[k][0].enqueued)
            self._dispatch(key)
