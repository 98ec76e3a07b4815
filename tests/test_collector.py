"""The collector settings ``serve`` runs with (``patchbay._collector``)."""

from __future__ import annotations

import gc
import weakref

from patchbay._collector import FULL_COLLECTION_EVERY, settle_for_serving


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
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert tracked(old)
