"""Fan-out of committed events, in LSN order, to bounded subscribers.

A subscriber that falls ``capacity`` events behind is cut off (its channel is closed and
``overflowed`` is set) instead of being buffered without bound or slowing the journal; it
resumes from its cursor through the journal, like any reconnecting client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Subscription(Generic[T]):
    def __init__(self, bus: EventBus[T], capacity: int) -> None:
        self._bus = bus
        self._send, self.receive = trio.open_memory_channel[T](capacity)
        self.overflowed = False

    def _offer(self, item: T) -> bool:
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.overflowed = True
            self._send.close()
            return False
        except trio.BrokenResourceError:
            return False
        return True

    def close(self) -> None:
        self._bus._subscribers.discard(self)
        self._send.close()

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus(Generic[T]):
    def __init__(self) -> None:
        self._subscribers: set[Subscription[T]] = set()

    def subscribe(self, capacity: int = 4096) -> Subscription[T]:
        subscription = Subscription(self, capacity)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, items: Sequence[T]) -> None:
        """Offer items to every subscriber without waiting; slow subscribers are dropped."""
        if not self._subscribers:
            return
        for subscription in list(self._subscribers):
            for item in items:
                if not subscription._offer(item):
                    self._subscribers.discard(subscription)
                    break

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
