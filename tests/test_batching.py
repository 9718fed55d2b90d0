"""Adaptive batcher: merging, splitting, limits, latency bound, error isolation."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

from predictor.batching import Batcher, BatchError


class Recorder:
    """A run function that records each call's key and row count, optionally slow."""

    def __init__(self, delay: float = 0.0, fail_when=None):
        self.delay = delay
        self.calls: list[tuple[tuple[str, ...], int]] = []
        self.threads: set[str] = set()
        self.fail_when = fail_when
        self._lock = threading.Lock()

    def __call__(self, key, x):
        with self._lock:
            self.calls.append((key, len(x)))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        arr = x.to_numpy() if hasattr(x, "to_numpy") else np.asarray(x)
        if self.fail_when is not None and self.fail_when(arr):
            raise RuntimeError(f"engine failed on a batch of {len(arr)} rows")
        # every output's first axis is rows: the row's id back, and a 2-D derived output
        return {"id": arr[:, 0].copy(), "double": arr * 2.0}


def rows(ident: int, n: int = 1, width: int = 3) -> np.ndarray:
    out = np.zeros((n, width))
    out[:, 0] = ident + np.arange(n) / 1000.0
    out[:, 1:] = ident
    return out


def test_idle_request_does_not_wait_for_max_latency():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=2_000_000)
        t0 = time.perf_counter()
        out = await b.submit(("predict",), rows(7))
        took = time.perf_counter() - t0
        await b.close()
        return out, took

    out, took = asyncio.run(main())
    assert took < 0.5, f"an idle batcher waited {took:.3f}s (max_latency is 2 s)"
    assert out["id"].tolist() == [7.0]
    assert rec.calls == [(("predict",), 1)]


def test_concurrent_requests_are_merged_and_split_back_by_rows():
    rec = Recorder(delay=0.05)
    sizes = [1, 2, 3, 1, 5, 1, 2, 4, 1, 1, 3, 2, 1, 1, 2, 1, 1, 1, 2, 1]

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=500_000)
        outs = await asyncio.gather(
            *(b.submit(("predict",), rows(100 * i, n)) for i, n in enumerate(sizes))
        )
        await b.close()
        return outs

    outs = asyncio.run(main())
    # the first request finds the engine idle and runs alone; the other 19 queue up
    # behind it and go out together when it finishes
    assert len(rec.calls) <= 3, rec.calls
    assert rec.calls[0][1] == 1
    assert sum(n for _, n in rec.calls) == sum(sizes)
    for i, (n, out) in enumerate(zip(sizes, outs, strict=True)):
        expected = rows(100 * i, n)
        assert out["id"].shape == (n,)
        np.testing.assert_array_equal(out["id"], expected[:, 0])
        np.testing.assert_array_equal(out["double"], expected * 2.0)


def test_batches_never_exceed_max_batch_size_but_a_large_request_runs_alone():
    rec = Recorder(delay=0.03)

    async def main():
        b = Batcher(rec, max_batch_size=8, max_latency_us=500_000)
        small = [b.submit(("p",), rows(i, 3)) for i in range(10)]
        big = b.submit(("p",), rows(999, 20))
        outs = await asyncio.gather(*small, big)
        await b.close()
        return outs

    outs = asyncio.run(main())
    sizes = [n for _, n in rec.calls]
    assert 20 in sizes, sizes  # the big one alone
    assert all(n <= 8 for n in sizes if n != 20), sizes
    assert sum(sizes) == 10 * 3 + 20
    assert len(sizes) < 11, "small requests were not merged at all"
    assert outs[-1]["id"].shape == (20,)
    np.testing.assert_array_equal(outs[3]["id"], rows(3, 3)[:, 0])


def test_different_keys_are_never_merged():
    rec = Recorder(delay=0.03)

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=200_000)
        reqs = [b.submit(("predict",) if i % 2 else ("predict_proba",), rows(i)) for i in range(8)]
        outs = await asyncio.gather(*reqs)
        await b.close()
        return outs

    outs = asyncio.run(main())
    for key, _n in rec.calls:
        assert key in (("predict",), ("predict_proba",))
    assert [o["id"][0] for o in outs] == [float(i) for i in range(8)]
    assert len(rec.calls) <= 4


def test_a_request_waits_at_most_max_latency_while_the_engine_is_busy():
    gate = threading.Event()

    def run(key, x):
        if key == ("slow",):
            gate.wait(2.0)  # occupies the only concurrency slot
        return {"id": np.asarray(x)[:, 0]}

    async def main():
        b = Batcher(run, max_batch_size=64, max_latency_us=30_000)
        slow = asyncio.ensure_future(b.submit(("slow",), rows(1)))
        await asyncio.sleep(0.02)
        t0 = time.perf_counter()
        fast = await b.submit(("fast",), rows(2))
        waited = time.perf_counter() - t0
        gate.set()
        await slow
        await b.close()
        return fast, waited

    fast, waited = asyncio.run(main())
    assert fast["id"].tolist() == [2.0]
    assert 0.02 <= waited < 0.5, f"waited {waited:.3f}s with max_latency 30 ms"


def test_an_engine_error_fails_only_the_requests_of_that_batch():
    # the batch that contains a row with marker -1 fails; all others succeed
    rec = Recorder(delay=0.03, fail_when=lambda a: bool((a[:, 1] == -1).any()))

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=500_000)
        first = asyncio.ensure_future(b.submit(("p",), np.array([[0.0, -1.0, 0.0]])))
        await asyncio.sleep(0)  # first runs alone (engine idle) ...
        others = [b.submit(("p",), rows(i)) for i in range(1, 6)]  # ... these queue
        other_key = b.submit(("q",), np.array([[9.0, -1.0, 0.0]]))
        res = await asyncio.gather(first, *others, other_key, return_exceptions=True)
        await b.close()
        return res

    res = asyncio.run(main())
    assert isinstance(res[0], RuntimeError) and "engine failed" in str(res[0])
    for i, r in enumerate(res[1:6], start=1):
        assert not isinstance(r, BaseException), r
        assert r["id"].tolist() == [float(i)]
    assert isinstance(res[6], RuntimeError)


def test_all_requests_of_a_failing_batch_get_the_error():
    calls = []

    def run(key, x):
        calls.append(len(x))
        if len(calls) > 1:
            raise ValueError("boom in batch")
        time.sleep(0.05)
        return {"id": np.asarray(x)[:, 0]}

    async def main():
        b = Batcher(run, max_batch_size=64, max_latency_us=500_000)
        first = asyncio.ensure_future(b.submit(("p",), rows(0)))
        await asyncio.sleep(0)
        queued = [b.submit(("p",), rows(i)) for i in range(1, 4)]
        res = await asyncio.gather(first, *queued, return_exceptions=True)
        await b.close()
        return res

    res = asyncio.run(main())
    assert calls == [1, 3]
    assert res[0]["id"].tolist() == [0.0]
    assert all(isinstance(r, ValueError) and str(r) == "boom in batch" for r in res[1:])


def test_outputs_with_wrong_row_count_fail_the_batch_clearly():
    def run(key, x):
        time.sleep(0.02)
        return {"summary": np.zeros(1)}  # not one row per input row

    async def main():
        b = Batcher(run, max_batch_size=64, max_latency_us=500_000)
        first = asyncio.ensure_future(b.submit(("p",), rows(0)))
        await asyncio.sleep(0)
        queued = [b.submit(("p",), rows(i)) for i in range(1, 3)]
        res = await asyncio.gather(first, *queued, return_exceptions=True)
        await b.close()
        return res

    res = asyncio.run(main())
    assert not isinstance(res[0], BaseException)  # alone: nothing to split
    assert all(isinstance(r, BatchError) and "expected 2" in str(r) for r in res[1:])


def test_run_executes_in_a_thread_and_the_event_loop_keeps_running():
    rec = Recorder(delay=0.2)

    async def main():
        b = Batcher(rec, max_batch_size=4, max_latency_us=1000)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        await b.submit(("p",), rows(1))
        t.cancel()
        await b.close()
        return ticks

    ticks = asyncio.run(main())
    assert ticks >= 5, f"event loop was blocked (only {ticks} ticks in 200 ms)"
    assert threading.main_thread().name not in rec.threads


def test_dataframes_are_concatenated_and_split():
    seen = []

    def run(key, x):
        seen.append(type(x).__name__)
        time.sleep(0.03)
        assert list(x.columns) == ["a", "b"]
        return {"sum": (x["a"] + x["b"]).to_numpy()}

    async def main():
        b = Batcher(run, max_batch_size=64, max_latency_us=500_000)
        first = asyncio.ensure_future(b.submit(("p",), pd.DataFrame({"a": [1.0], "b": [2.0]})))
        await asyncio.sleep(0)
        queued = [
            b.submit(("p",), pd.DataFrame({"a": [float(i), 10.0 * i], "b": [1.0, 1.0]}))
            for i in range(1, 4)
        ]
        res = await asyncio.gather(first, *queued)
        await b.close()
        return res

    res = asyncio.run(main())
    assert seen == ["DataFrame", "DataFrame"]
    assert res[0]["sum"].tolist() == [3.0]
    assert [r["sum"].tolist() for r in res[1:]] == [[2.0, 11.0], [3.0, 21.0], [4.0, 31.0]]


def test_close_runs_queued_requests_and_then_refuses_new_ones():
    rec = Recorder(delay=0.05)

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=5_000_000)
        first = asyncio.ensure_future(b.submit(("p",), rows(0)))
        await asyncio.sleep(0)
        queued = asyncio.ensure_future(b.submit(("p",), rows(1)))
        await asyncio.sleep(0)
        await b.close()
        res = await asyncio.gather(first, queued)
        with pytest.raises(RuntimeError, match="closed"):
            await b.submit(("p",), rows(2))
        return res

    res = asyncio.run(main())
    assert [r["id"].tolist() for r in res] == [[0.0], [1.0]]


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        Batcher(lambda k, x: {}, max_batch_size=0, max_latency_us=10)
    with pytest.raises(ValueError):
        Batcher(lambda k, x: {}, max_batch_size=4, max_latency_us=-1)


# ----------------------------------------------------------------- on the event loop


def test_cheap_requests_of_one_loop_pass_run_together_on_the_loop_thread():
    rec = Recorder()
    seen: list[tuple[tuple[str, ...], int]] = []

    def inline(key, n):
        seen.append((key, n))
        return True

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=2_000_000, inline=inline)
        outs = await asyncio.gather(*(b.submit(("predict",), rows(i, 2)) for i in range(10)))
        await b.close()
        return outs, threading.current_thread().name

    outs, loop_thread = asyncio.run(main())
    assert rec.calls == [(("predict",), 20)]  # one merged call for the whole pass
    assert rec.threads == {loop_thread}  # no worker thread, no hand-off
    assert [o["id"].tolist() for o in outs] == [[i, i + 0.001] for i in range(10)]
    assert (("predict",), 20) in seen  # the merged size was checked before running it


def test_a_merged_batch_too_big_for_the_loop_goes_to_a_worker_thread():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=0, inline=lambda key, n: n <= 4)
        outs = await asyncio.gather(*(b.submit(("predict",), rows(i, 3)) for i in range(4)))
        await b.close()
        return outs, threading.current_thread().name

    outs, loop_thread = asyncio.run(main())
    assert rec.calls == [(("predict",), 12)]
    assert loop_thread not in rec.threads
    assert [o["id"].tolist()[0] for o in outs] == [0, 1, 2, 3]


def test_expensive_requests_never_run_on_the_loop():
    rec = Recorder(delay=0.02)

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=0, inline=lambda key, n: False)
        await asyncio.gather(*(b.submit(("predict",), rows(i)) for i in range(3)))
        await b.close()
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert loop_thread not in rec.threads
    assert sum(n for _, n in rec.calls) == 3


def test_an_inline_batch_that_fails_fails_only_its_requests():
    rec = Recorder(fail_when=lambda arr: bool((arr[:, 0] == 13).any()))

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=0, inline=lambda key, n: True)
        first = await asyncio.gather(
            b.submit(("predict",), rows(13)),
            b.submit(("predict",), rows(1)),
            return_exceptions=True,
        )
        later = await b.submit(("predict",), rows(2))  # the batcher keeps serving
        await b.close()
        return first, later

    first, later = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in first)
    assert "engine failed on a batch of 2 rows" in str(first[0])
    assert later["id"].tolist() == [2.0]


def test_more_cheap_rows_than_a_batch_holds_go_out_over_several_passes():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch_size=8, max_latency_us=0, inline=lambda key, n: True)
        outs = await asyncio.gather(*(b.submit(("predict",), rows(i, 3)) for i in range(6)))
        await b.close()
        return outs

    outs = asyncio.run(main())
    assert [n for _, n in rec.calls] == [6, 6, 6]  # never more than 8 rows
    assert [o["id"].tolist()[0] for o in outs] == list(range(6))


def test_requests_arriving_one_per_loop_pass_merge_while_the_loop_is_busy():
    # gRPC hands calls to the loop one per pass; a flush waits while other work is ready
    rec = Recorder()

    async def main():
        loop = asyncio.get_running_loop()
        b = Batcher(rec, max_batch_size=64, max_latency_us=200_000, inline=lambda k, n: True)
        futures = []

        def arrive(i):
            futures.append(asyncio.ensure_future(b.submit(("predict",), rows(i))))
            if i < 9:
                loop.call_soon(arrive, i + 1)  # the next call comes in the next pass

        arrive(0)
        await asyncio.sleep(0.05)
        outs = await asyncio.gather(*futures)
        await b.close()
        return outs

    outs = asyncio.run(main())
    assert len(rec.calls) <= 3, rec.calls  # not ten one-row calls
    assert [o["id"].tolist() for o in outs] == [[float(i)] for i in range(10)]


def test_a_busy_loop_delays_a_flush_no_longer_than_max_latency():
    rec = Recorder()

    async def main():
        loop = asyncio.get_running_loop()
        b = Batcher(rec, max_batch_size=64, max_latency_us=20_000, inline=lambda k, n: True)
        stop = time.monotonic() + 1.0

        def spin():  # keeps something ready on the loop for a whole second
            if time.monotonic() < stop:
                loop.call_soon(spin)

        spin()
        t0 = time.monotonic()
        out = await b.submit(("predict",), rows(5))
        waited = time.monotonic() - t0
        await b.close()
        return out, waited

    out, waited = asyncio.run(main())
    assert out["id"].tolist() == [5.0]
    assert waited < 0.5, f"waited {waited:.3f}s behind a busy loop (max_latency is 20 ms)"


class TaskRecorder(Recorder):
    """Also records the asyncio task each engine call ran in (None: a loop callback)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.tasks: list[asyncio.Task | None] = []

    def __call__(self, key, x):
        self.tasks.append(asyncio.current_task())
        return super().__call__(key, x)


def test_a_lone_cheap_request_runs_at_once_in_its_own_task():
    rec = TaskRecorder()

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=2_000_000, inline=lambda k, n: True)
        out = await b.submit(("predict",), rows(4))
        await b.close()
        return out, asyncio.current_task(), b.batches, b.requests

    out, task, batches, requests = asyncio.run(main())
    assert rec.tasks == [task]  # no hand-off to a flush callback, no wake-up
    assert out["id"].tolist() == [4.0]
    assert (batches, requests) == (1, 1)


def test_a_cheap_request_waits_for_others_when_the_loop_has_work_ready():
    rec = TaskRecorder()

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=2_000_000, inline=lambda k, n: True)
        asyncio.get_running_loop().call_soon(lambda: None)  # something else is ready
        out = await b.submit(("predict",), rows(4))
        await b.close()
        return out

    out = asyncio.run(main())
    assert rec.tasks == [None]  # ran from the end-of-pass flush, where others could join
    assert out["id"].tolist() == [4.0]


def test_a_cheap_request_of_a_whole_batch_runs_at_once_even_on_a_busy_loop():
    rec = TaskRecorder()

    async def main():
        b = Batcher(rec, max_batch_size=8, max_latency_us=2_000_000, inline=lambda k, n: True)
        asyncio.get_running_loop().call_soon(lambda: None)
        out = await b.submit(("predict",), rows(1, n=8))
        await b.close()
        return out, asyncio.current_task()

    out, task = asyncio.run(main())
    assert rec.tasks == [task]  # nothing could join a full batch: no wait
    assert rec.calls == [(("predict",), 8)]
    assert len(out["id"]) == 8


def test_a_lone_request_whose_engine_call_fails_gets_the_error_and_the_batcher_serves_on():
    rec = Recorder(fail_when=lambda arr: bool((arr[:, 0] == 13).any()))

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=0, inline=lambda k, n: True)
        with pytest.raises(RuntimeError, match="engine failed on a batch of 1 rows"):
            await b.submit(("predict",), rows(13))
        later = await b.submit(("predict",), rows(2))
        await b.close()
        return later

    assert asyncio.run(main())["id"].tolist() == [2.0]


def test_an_open_batch_waits_for_io_waiting_on_the_loop():
    # bytes on a socket whose reader submits a third request (a REST request on its way,
    # or a gRPC call grpc's poller thread signalled): the open batch takes it in
    a, b = socket.socketpair()
    a.setblocking(False)

    def main(idle_wait_us):
        rec = Recorder()

        async def run():
            loop = asyncio.get_running_loop()
            bt = _inline_batcher(rec, idle_wait_us=idle_wait_us)
            late = []

            def on_data():
                a.recv(16)
                late.append(asyncio.ensure_future(bt.submit(("predict",), rows(3))))

            async def opener():
                # the bytes arrive after the loop's poll, in the pass the flush runs in
                loop.call_soon(b.send, b"x")
                return await bt.submit(("predict",), rows(1))

            loop.add_reader(a, on_data)
            first = await asyncio.gather(opener(), bt.submit(("predict",), rows(2)))
            while not late:
                await asyncio.sleep(0.001)
            outs = [*first, await late[0]]
            loop.remove_reader(a)
            await bt.close()
            return outs

        outs = asyncio.run(run())
        assert [o["id"].tolist() for o in outs] == [[1.0], [2.0], [3.0]]
        return rec.calls

    try:
        assert main(idle_wait_us=0) == [(("predict",), 3)]
    finally:
        a.close()
        b.close()


def test_a_lone_request_runs_at_once_even_with_io_waiting():
    rec = TaskRecorder()
    a, b = socket.socketpair()

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_reader(a, lambda: a.recv(16))
        bt = _inline_batcher(rec)
        b.send(b"x")
        out = await bt.submit(("predict",), rows(4))
        loop.remove_reader(a)
        await bt.close()
        return out, asyncio.current_task()

    try:
        out, task = asyncio.run(main())
    finally:
        a.close()
        b.close()
    assert rec.tasks == [task]  # ran in its own task, at once
    assert out["id"].tolist() == [4.0]


def _inline_batcher(run, **options) -> Batcher:
    """A batcher whose calls all run on the loop; 64 rows, 2 s max_latency by default."""
    options = {"max_batch_size": 64, "max_latency_us": 2_000_000, **options}
    return Batcher(run, inline=lambda k, n: True, **options)


def _arrivals(idle_wait_us: int, *, one_at_a_time: bool, n: int = 10):
    """Two requests in one loop pass, then the rest one by one from another thread, ~1 ms
    apart (the loop idles in between) or each after the previous one's answer; returns
    the engine calls."""
    rec = Recorder()

    async def main():
        loop = asyncio.get_running_loop()
        b = _inline_batcher(rec, idle_wait_us=idle_wait_us)
        futures = []
        answered = [threading.Event() for _ in range(n)]
        all_in = asyncio.Event()

        def arrive(i):
            fut = asyncio.ensure_future(b.submit(("predict",), rows(i)))
            fut.add_done_callback(lambda _: answered[i].set())
            futures.append(fut)
            if len(futures) == n:
                all_in.set()

        def feed():
            for i in range(2, n):
                if one_at_a_time:
                    answered[i - 1].wait(10)
                time.sleep(0.001)
                loop.call_soon_threadsafe(arrive, i)

        arrive(0)
        arrive(1)
        feeder = threading.Thread(target=feed)
        feeder.start()
        await all_in.wait()
        outs = await asyncio.gather(*futures)
        feeder.join()
        await b.close()
        return outs

    outs = asyncio.run(main())
    assert [o["id"].tolist() for o in outs] == [[float(i)] for i in range(n)]
    return rec.calls


def test_an_open_batch_waits_through_idle_moments_while_requests_keep_joining():
    calls = _arrivals(idle_wait_us=500_000, one_at_a_time=False)
    assert sum(n for _, n in calls) == 10
    assert len(calls) <= 2, calls  # ten requests ~1 ms apart: one engine call


def test_without_the_idle_wait_a_batch_runs_at_the_first_idle_moment():
    calls = _arrivals(idle_wait_us=0, one_at_a_time=True)
    assert calls == [(("predict",), 2)] + [(("predict",), 1)] * 8


def _together(keys, background=None, **options):
    """One request per key, submitted together to a fresh batcher (inline, 2 s
    max_latency unless ``options`` say otherwise); the outputs, seconds and calls."""
    rec = Recorder()

    async def main():
        b = _inline_batcher(rec, **options)
        stop = background(asyncio.get_running_loop()) if background else None
        t0 = time.monotonic()
        outs = await asyncio.gather(*(b.submit((k,), rows(i + 1)) for i, k in enumerate(keys)))
        took = time.monotonic() - t0
        if stop:
            stop()
        await b.close()
        return outs, took

    outs, took = asyncio.run(main())
    assert [o["id"].tolist() for o in outs] == [[float(i + 1)] for i in range(len(keys))]
    return took, sorted(rec.calls)


def _spin(loop):
    """A callback ready on every loop pass until the returned function is called."""
    running = [True]

    def again():
        if running[0]:
            loop.call_soon(again)

    loop.call_soon(again)
    return lambda: running.__setitem__(0, False)


def test_an_idle_wait_stays_within_max_latency():
    took, calls = _together(["predict"] * 2, max_latency_us=30_000, idle_wait_us=5_000_000)
    assert calls == [(("predict",), 2)]
    assert 0.02 <= took < 1.0, f"waited {took:.3f}s (max_latency 30 ms, idle wait 5 s)"


def _pairs(count: int, idle_wait_us: int, background=None):
    """``count`` rounds of two requests submitted together; per-round seconds, the calls
    and the batcher's ``IdleWait``."""
    rec = Recorder()

    async def main():
        b = _inline_batcher(rec, idle_wait_us=idle_wait_us)
        stop = background(asyncio.get_running_loop()) if background else None
        took = []
        for i in range(count):
            t0 = time.monotonic()
            await asyncio.gather(
                b.submit(("predict",), rows(i)), b.submit(("predict",), rows(i + 100))
            )
            took.append(time.monotonic() - t0)
        if stop:
            stop()
        await b.close()
        return took, b._idle

    took, idle = asyncio.run(main())
    return took, rec.calls, idle


def test_idle_waits_nobody_joins_stop_being_made():
    # two clients, both in every batch: each wait for a third request is lost time
    took, calls, idle = _pairs(8, idle_wait_us=100_000)
    assert calls == [(("predict",), 2)] * 8
    assert took[0] >= 0.1  # the first pair waits out the whole 100 ms for nobody
    assert max(took[1:]) < 0.09, took  # then they run at the first idle moment
    assert not idle.worth_it


def test_other_work_now_and_then_neither_holds_a_batch_nor_counts_as_gain():
    def ticks(loop):  # work reaching the loop every 0.5 ms, idle in between
        stop = threading.Event()

        def tick():
            while not stop.wait(0.0005):
                loop.call_soon_threadsafe(lambda: None)

        threading.Thread(target=tick, daemon=True).start()
        return stop.set

    took, calls, idle = _pairs(4, idle_wait_us=20_000, background=ticks)
    assert calls == [(("predict",), 2)] * 4
    assert max(took) < 1.0, took  # the idle wait ends it, not max_latency (2 s)
    assert idle.gain < 1.0 and not idle.worth_it  # nobody joined: no gain


def test_a_loop_that_never_idles_holds_a_batch_at_most_max_latency():
    took, calls = _together(["predict"] * 2, background=_spin, max_latency_us=50_000)
    assert calls == [(("predict",), 2)]
    assert 0.05 <= took < 1.0, took


def test_two_open_batches_do_not_hold_each_other_open():
    took, calls = _together(["predict", "predict_proba"], idle_wait_us=20_000)
    assert calls == [(("predict",), 1), (("predict_proba",), 1)]
    assert took < 1.0, f"{took:.3f}s: each batch's flush kept the other's open"


def test_a_failing_loop_check_runs_the_batch_instead_of_stranding_it(monkeypatch):
    import predictor.batching as batching

    rec = Recorder()
    calls = {"n": 0}

    def broken(loop, own=0, io=True):
        calls["n"] += 1
        if calls["n"] > 1:  # the request's own check passes, the flush's check fails
            raise OSError("epoll went away")
        return True

    monkeypatch.setattr(batching, "has_work", broken)

    async def main():
        b = Batcher(rec, max_batch_size=64, max_latency_us=2_000_000, inline=lambda k, n: True)
        out = await asyncio.wait_for(b.submit(("predict",), rows(7)), 5)
        await b.close()
        return out

    assert asyncio.run(main())["id"].tolist() == [7.0]
    assert rec.calls == [(("predict",), 1)]
