"""Server glue in-process: the heap is frozen after the load."""

from __future__ import annotations

import gc

import pytest

from predictor.server import settle_heap


def test_settle_heap_moves_live_objects_out_of_later_collections():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the interpreter, kserve, numpy ... are out of gen 2
        gc.collect()
        # collections leave frozen objects where they are; the few a collection can still
        # free are those only garbage referred to (finalizers of earlier tests' loops)
        assert frozen - 100 <= gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_loop_factory_follows_the_setting():
    uvloop = pytest.importorskip("uvloop")

    from predictor.server import loop_factory

    assert loop_factory("asyncio") is None  # asyncio.Runner's own loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("auto") is uvloop.new_event_loop  # installed here
