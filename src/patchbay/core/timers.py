"""Deadlines without polling: one task sleeps until the earliest deadline, then fires it.

Entries are keyed, so re-arming a key replaces its deadline. Nothing runs while nothing is
due: an idle core sleeps in ``Clock.sleep_until`` (no periodic wake-ups).
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Awaitable, Callable, Hashable

import trio

from patchbay.core.ports import Clock

TimerKey = tuple[Hashable, ...]


class Timers:
    def __init__(self, clock: Clock, fire: Callable[[TimerKey], Awaitable[None]]) -> None:
        self._clock = clock
        self._fire = fire
        self._heap: list[tuple[float, int, TimerKey]] = []
        self._deadlines: dict[TimerKey, float] = {}
        self._counter = itertools.count()
        self._changed = trio.Event()

    def arm(self, key: TimerKey, deadline: float) -> None:
        self._deadlines[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._counter), key))
        self._changed.set()

    def cancel(self, key: TimerKey) -> None:
        self._deadlines.pop(key, None)

    def pending(self) -> int:
        return len(self._deadlines)

    async def _sleep_until_due_or_changed(self, deadline: float) -> None:
        """Return when ``deadline`` passes or an earlier deadline may have been armed."""
        changed = self._changed = trio.Event()
        async with trio.open_nursery() as nursery:

            async def first(wait: Callable[[], Awaitable[None]]) -> None:
                await wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(first, changed.wait)
            nursery.start_soon(first, functools.partial(self._clock.sleep_until, deadline))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            while self._heap and self._deadlines.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # cancelled or re-armed entry
            if not self._heap:
                self._changed = trio.Event()
                await self._changed.wait()
                continue
            deadline, _, key = self._heap[0]
            if self._clock.now() < deadline:
                await self._sleep_until_due_or_changed(deadline)
                continue
            heapq.heappop(self._heap)
            del self._deadlines[key]
            await self._fire(key)
