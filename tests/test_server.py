"""Server glue in-process: the heap is frozen after the load."""

from __future__ import annotations

import gc

from predictor.server import settle_heap


def test_settle_heap_moves_live_objects_out_of_later_collections():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the interpreter, kserve, numpy ... are out of gen 2
        assert gc.collect() >= 0 and gc.get_freeze_count() == frozen  # collections skip them
    finally:
        gc.unfreeze()
