"""The collector settings ``serve`` runs with (``patchbay._collector``)."""

from __future__ import annotations

import gc
import weakref

from patchbay._collector import FULL_COLLECTION_EVERY, settle_for_serving, stop_settling


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector could free it


def tracked(thing: object) -> bool:
    return any(each is thing for each in gc.get_objects())


def test_settle_for_serving_freezes_what_lives_and_makes_full_collections_rarer() -> None:
    threshold = gc.get_threshold()
    old = Node()
    garbage = weakref.ref(Node())  # unreachable already: the collection it starts with frees it
    assert garbage() is not None
    assert tracked(old)
    try:
        frozen = settle_for_serving()
        assert garbage() is None  # collected, not frozen
        assert frozen == gc.get_freeze_count() > 1000  # modules, classes, this test's objects
        assert not tracked(old)  # out of every generation: no full collection walks it again
        assert gc.get_threshold() == (threshold[0], threshold[1], FULL_COLLECTION_EVERY)
        assert FULL_COLLECTION_EVERY > threshold[2]
        new = Node()
        assert tracked(new)  # what comes later is collected as before
    finally:
        stop_settling()
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert tracked(old)


def test_after_serving_settles_each_full_collection_freezes_its_survivors_and_every_tenth_walks_all() -> None:
    from patchbay import _collector

    threshold = gc.get_threshold()
    try:
        settle_for_serving()
        frozen = gc.get_freeze_count()
        survivor = Node()
        assert tracked(survivor)
        gc.collect()  # a full collection: what survives it is frozen
        assert not tracked(survivor) and gc.get_freeze_count() > frozen
        dead = weakref.ref(Node())  # cyclic garbage made after: freed by the next full one
        gc.collect()
        assert dead() is None
        kept = Node()
        cycle = weakref.ref(kept)
        gc.collect()  # kept is frozen now; it dies as cyclic garbage the collector cannot see
        del kept
        gc.collect()
        assert cycle() is not None
        while _collector._full[0] % _collector.WHOLE_HEAP_EVERY != _collector.WHOLE_HEAP_EVERY - 1:
            gc.collect()
        assert gc.get_freeze_count() == 0  # unfrozen after this one: the next walks everything
        gc.collect()
        assert cycle() is None  # so the cycle that died frozen is freed, not leaked
        assert gc.get_freeze_count() > 1000
    finally:
        _collector.stop_settling()
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert _collector._after_collection not in gc.callbacks
