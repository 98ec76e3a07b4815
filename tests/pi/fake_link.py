"""A stand-in for the adapter's link to the core: records every frame and acknowledges it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio


class FakeLink:
    adapter_id = "pi-test"

    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self._changed = trio.Event()

    def _record(self, frame_type: str, fields: dict[str, Any]) -> None:
        self.frames.append((frame_type, fields))
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], Any]) -> Any:
        with trio.fail_after(20):
            while not (found := predicate()):
                await self._changed.wait()
            return found

    async def send(self, frame_type: str, *, wait: bool = False, timeout: float = 30.0,
                   **fields: Any) -> dict[str, Any] | None:
        self._record(frame_type, fields)
        if frame_type == "lease" and fields.get("op") == "acquire":
            return {"type": "ack", "lease_id": "lease-1"}
        return {"type": "ack"} if wait else None

    async def session(self, runtime_session_id: str, generation: int, *, wait: bool = False,
                      **fields: Any) -> dict[str, Any] | None:
        self._record("session", {"runtime_session_id": runtime_session_id, "generation": generation, **fields})
        return {"type": "ack"} if wait else None

    async def report(self, command_id: str, state: str, *, wait: bool = False, **fields: Any) -> dict[str, Any] | None:
        self._record("report", {"command_id": command_id, "state": state, **fields})
        return {"type": "ack"} if wait else None

    async def observe(self, runtime_session_id: str, generation: int, observation: dict[str, Any], *,
                      command_id: str | None = None, activity: str | None = None) -> None:
        self._record("observation", {"runtime_session_id": runtime_session_id, "observation": observation})

    def of(self, frame_type: str) -> list[dict[str, Any]]:
        return [fields for kind, fields in self.frames if kind == frame_type]
