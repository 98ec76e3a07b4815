"""The small ports through which time and ids reach the core (so tests can drive them).

``Clock.now()`` is wall-clock seconds since the epoch: it stamps events and is compared with
validity windows and lease expiries. ``Clock.sleep_until()`` waits for a wall-clock time; the
manual clock wakes sleepers when a test advances it, so timers run without real waiting.
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol

import trio


class Clock(Protocol):
    def now(self) -> float: ...
    async def sleep_until(self, deadline: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        await trio.sleep(max(0.0, deadline - time.time()))


class ManualClock:
    """A clock that moves only when told; for tests and conformance vectors."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._moved = trio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._moved.set()
        self._moved = trio.Event()

    async def sleep_until(self, deadline: float) -> None:
        while self._now < deadline:
            await self._moved.wait()


class IdSource(Protocol):
    def new_id(self, prefix: str) -> str: ...


class RandomIds:
    """Ids with 96 random bits: unguessable, so an id never doubles as a capability by accident."""

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(12)}"


class SequentialIds:
    """Predictable ids for tests and vectors."""

    def __init__(self) -> None:
        self._counter = 0

    def new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter:06d}"
