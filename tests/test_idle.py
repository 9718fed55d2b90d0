"""Event loop idleness: pending work on the loop, and when a batch waits through a lull."""

from __future__ import annotations

import asyncio
import socket

import pytest

from predictor.idle import IdleWait, has_work


def test_an_idle_loop_has_no_work_a_ready_callback_is_work():
    async def main():
        loop = asyncio.get_running_loop()
        idle = has_work(loop)
        loop.call_soon(lambda: None)
        return idle, has_work(loop)

    assert asyncio.run(main()) == (False, True)


def test_bytes_waiting_on_a_socket_are_work_and_are_not_consumed():
    a, b = socket.socketpair()
    a.setblocking(False)
    got: list[bytes] = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_reader(a, lambda: got.append(a.recv(16)))
        before = has_work(loop)
        b.send(b"x")
        pending = has_work(loop)
        again = has_work(loop)  # polling twice still sees it: nothing was consumed
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.001)
        loop.remove_reader(a)
        return before, pending, again, has_work(loop)

    try:
        assert asyncio.run(main()) == (False, True, True, False)
        assert got == [b"x"]  # the reader still got its data
    finally:
        a.close()
        b.close()


def test_a_loop_that_exposes_nothing_is_unknown():
    uvloop = pytest.importorskip("uvloop")

    async def main():
        return has_work(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) is None


def test_an_idle_wait_lasts_until_the_limit_when_nobody_joins():
    w = IdleWait(0.001)
    assert w.waits("k", 2, now=10.0, work=False)  # the loop went idle: wait
    assert w.waits("k", 2, now=10.0009, work=False)
    assert not w.waits("k", 2, now=10.0011, work=False)  # over 1 ms idle, nobody: run
    assert w.gain == pytest.approx(1 - IdleWait.WEIGHT)  # 0 joined, averaged in
    assert w.spent == pytest.approx(0.0011 * IdleWait.WEIGHT)


def test_a_busy_loop_keeps_the_batch_waiting_and_starts_no_idle_wait():
    w = IdleWait(0.001)
    assert all(w.waits("k", 1, now=t / 1000, work=True) for t in range(10))
    w.end("k", 1)
    assert (w.gain, w.spent) == (1.0, 0.0)  # no idle wait was made: nothing to count
    assert w.waits("k", 1, now=0.01, work=False)  # the first idle moment starts one


def test_a_zero_limit_makes_no_idle_wait():
    w = IdleWait(0)
    assert w.waits("k", 1, now=5.0, work=True)  # other work: still waits for it
    assert not w.waits("k", 1, now=5.0, work=False)


def test_only_idle_time_counts_and_only_requests_joining_count_as_gain():
    w = IdleWait(0.001)
    assert w.waits("k", 1, now=0.0, work=False)  # the wait begins
    assert w.waits("k", 1, now=0.0002, work=True)  # other work, no request
    assert w.waits("k", 1, now=0.0005, work=False)  # the 0.3 ms busy did not count
    assert w.waits("k", 1, now=0.0011, work=False)  # 0.6 ms idle so far
    assert not w.waits("k", 1, now=0.0016, work=False)  # 1.1 ms idle: run, nobody came
    assert w.gain == pytest.approx(1 - IdleWait.WEIGHT)
    assert w.spent == pytest.approx(0.0011 * IdleWait.WEIGHT)
    assert not w.worth_it  # 1.1 ms idle for nothing outweighs what waits gained
    w.gain = 3.0  # say earlier waits gained three requests each
    gain, spent = w.gain, w.spent
    assert w.waits("k", 1, now=1.0, work=False)  # the next batch waits
    assert w.waits("k", 4, now=1.0001, work=False)  # three joined in 0.1 ms idle
    w.end("k", 4)  # it runs (full, say)
    assert w.gain == pytest.approx(gain + (3 - gain) * IdleWait.WEIGHT)
    assert w.spent == pytest.approx(spent + (0.0001 - spent) * IdleWait.WEIGHT)


def test_when_waits_stop_paying_only_every_probe_th_idle_moment_waits():
    w = IdleWait(0.0002)
    t = 0.0
    while w.worth_it:  # idle waits of 0.2 ms nobody joins
        assert w.waits("k", 1, now=t, work=False)
        assert not w.waits("k", 1, now=t + 0.00021, work=False)
        t += 1
    waited = 0
    for _ in range(IdleWait.PROBE * 4):
        t += 1
        if w.waits("k", 1, now=t, work=False):
            waited += 1
            assert not w.waits("k", 1, now=t + 0.00021, work=False)
    assert waited == 4
    assert not w.worth_it
    probes = 0
    while not w.worth_it:  # probes that many requests join bring the waits back
        t += 1
        if w.waits("k", 1, now=t, work=False):
            probes += 1
            w.end("k", 10)
    assert 1 <= probes <= 6
    assert w.waits("k", 1, now=t + 1, work=False)


def test_keys_wait_independently_and_forget_drops_a_wait_uncounted():
    w = IdleWait(0.0002)
    assert w.waits("a", 1, now=0.0, work=False)
    assert w.waits("b", 1, now=0.0, work=False)
    w.forget("a")
    assert (w.gain, w.spent) == (1.0, 0.0)
    assert not w.waits("b", 1, now=0.00021, work=False)
    assert w.gain == pytest.approx(1 - IdleWait.WEIGHT)
    w.forget()
    assert w.waits("a", 1, now=1.0, work=False)


def test_own_ready_callbacks_are_not_work():
    async def main():
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: None)
        loop.call_soon(lambda: None)
        return has_work(loop, own=1), has_work(loop, own=2)

    assert asyncio.run(main()) == (True, False)


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match="idle wait"):
        IdleWait(-1)
