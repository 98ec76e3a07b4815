"""``collector_paused()``: no cyclic garbage collection while a state is folded or decoded."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; the collector is as it was afterwards.

    Folding a journal (replay, the recovery tail) or decoding a checkpoint allocates millions
    of objects that all stay alive (records, payload dicts, history tuples) and makes no
    reference cycles, so every collection is pure overhead, and the full ones walk the whole
    growing state again: ~15% of a replay's CPU, ~1/3 of a checkpoint recovery's. Reference
    counting still frees everything that dies. A collector that was off stays off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()



FULL_COLLECTION_EVERY = 100  # young-generation collections between full ones (CPython's default: 10)
WHOLE_HEAP_EVERY = 10  # full collections between two that walk every object again


def settle_for_serving() -> int:
    """Set the collector up for a long-running daemon; returns how many objects were frozen.

    ``serve`` calls it once the core has recovered and the web app is built. Three things, all
    found as the p99 of the benches (every full collection stops the event loop, and each
    stop delayed every answer and stream delivery in flight):

    - Collect once, then move everything alive now out of the collector's reach
      (``gc.freeze``). What exists then (modules, classes, the recovered state, Quart's and
      hypercorn's machinery) lives for the whole run, yet every full collection walked all of
      it again: ~30 ms each, several times a minute under load. Frozen objects are still freed
      by reference counting; only a reference cycle among them that dies later stays.
    - Full collections ten times rarer. What survives young collections here is long-lived
      (connections' tasks, channels and cancel scopes: ~50,000 objects with 200 stream
      subscribers, ~11 ms to walk) and a full collection found nothing to free in the bench;
      cyclic garbage waits longer, reference-counted garbage is freed at once as always.
    - After a full collection, what survived it is frozen too (``_after_collection``), so the
      next one walks only what was made since: with tens of thousands of live commands a full
      collection took 50-100 ms, frozen 5-10. Every ``WHOLE_HEAP_EVERY``-th one unfreezes
      first and walks the whole heap, so a reference cycle that died after it was frozen is
      freed by then: one long stop in ten, not a leak.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    if _after_collection not in gc.callbacks:
        gc.callbacks.append(_after_collection)
    return gc.get_freeze_count()


def stop_settling() -> None:
    """Undo the per-collection part of ``settle_for_serving`` (tests)."""
    if _after_collection in gc.callbacks:
        gc.callbacks.remove(_after_collection)
    _full[0] = 0


_full = [0]  # full collections since settle_for_serving


def _after_collection(phase: str, info: dict[str, int]) -> None:
    if phase != "stop" or info.get("generation") != 2:
        return
    _full[0] += 1
    if _full[0] % WHOLE_HEAP_EVERY == WHOLE_HEAP_EVERY - 1:
        gc.unfreeze()  # the next full collection walks everything
    else:
        gc.freeze()
