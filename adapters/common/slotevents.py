"""What a slot's tasks wait on: its ``changed`` event, and the streamed text its transcript
holds back until it is due.

``notify`` sets ``changed`` and replaces it, so a waiter sees every change after it started
waiting. ``held`` says the transcript holds text back; ``flush_held`` (a task of the slot's
process nursery) sleeps until that text is due and observes what the transcript flushes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import trio


class Holding(Protocol):
    def due(self) -> float | None: ...

    def flush(self) -> list[dict[str, Any]]: ...


T = TypeVar("T", bound=Holding)


class SlotEvents(Generic[T]):
    transcript: T  # a slot may replace its transcript: the flusher reads it each time

    def __init__(self) -> None:
        self.changed = trio.Event()
        self._held = trio.Event()

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def held(self) -> None:
        self._held.set()

    async def flush_held(self, observe: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        while True:
            due = self.transcript.due()
            if due is None:
                await self._held.wait()
                self._held = trio.Event()
                continue
            await trio.sleep_until(due)
            for observation in self.transcript.flush():
                await observe(observation)
