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


def test_a_batch_waits_through_idleness_up_to_the_limit():
    w = IdleWait(0.001)
    assert w.wait("k", 10.0)  # starts a wait
    assert w.wait("k", 10.0009)  # still within 1 ms
    assert not w.wait("k", 10.0011)  # over 1 ms of nothing: run the batch
    assert w.paid == pytest.approx(1 - IdleWait.WEIGHT)


def test_a_zero_limit_never_waits():
    w = IdleWait(0)
    assert [w.wait("k", float(t)) for t in range(40)] == [False] * 40


def test_new_work_ends_a_wait_as_paid_and_the_share_recovers():
    w = IdleWait(0.001)
    assert w.wait("k", 0.0)
    assert not w.wait("k", 0.5)  # a wait that found nothing
    low = w.paid
    assert low == pytest.approx(1 - IdleWait.WEIGHT)
    assert w.wait("k", 10.0)
    w.busy("k")  # the loop got work while the batch waited
    assert w.paid == pytest.approx(low + (1 - low) * IdleWait.WEIGHT)
    w.busy("k")  # no wait in progress: nothing changes
    assert w.paid == pytest.approx(low + (1 - low) * IdleWait.WEIGHT)


def test_when_waits_stop_paying_only_every_probe_th_batch_waits():
    w = IdleWait(0.001)
    t = 0.0
    while w.paid >= IdleWait.THRESHOLD:  # dry waits until the share is too low
        assert w.wait("k", t)
        assert not w.wait("k", t + 1)
        t += 2
    waited = 0
    for _ in range(IdleWait.PROBE * 4):
        t += 2
        if w.wait("k", t):
            waited += 1
            if waited == 1:
                w.busy("k")  # one probe pays: not enough to wait on every batch again
            else:
                assert not w.wait("k", t + 1)
    assert waited == 4
    assert w.paid < IdleWait.THRESHOLD


def test_keys_wait_independently_and_end_forgets_the_wait():
    w = IdleWait(0.001)
    assert w.wait("a", 0.0)
    assert w.wait("b", 0.0005)
    w.end("a")
    assert w.wait("a", 0.0012)  # a fresh wait for "a" (the old one was ended)
    assert not w.wait("b", 0.0016)  # "b" has waited 1.1 ms


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match="idle wait"):
        IdleWait(-1)
