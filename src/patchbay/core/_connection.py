"""One live attachment of an adapter process: its identity, its bounded outbox, how it ends."""

from __future__ import annotations

from typing import Any

import trio

OUTBOX_CAPACITY = 2048
CLOSE_GOING_AWAY = 1001  # the core is shutting down
CLOSE_TOO_SLOW = 4408  # outbox overflow or heartbeat lost
CLOSE_REPLACED = 4409  # a newer attachment of the same adapter took over


class AdapterConnection:
    """One live attachment of an adapter process to this core."""

    def __init__(self, adapter_id: str, adapter_generation: int, deployment_scope: str,
                 manifest: dict[str, Any], connection_id: str, now: float) -> None:
        self.adapter_id = adapter_id
        self.adapter_generation = adapter_generation
        self.deployment_scope = deployment_scope
        self.manifest = manifest
        self.connection_id = connection_id
        self.last_seen = now
        self._last_armed = 0.0
        self._send, self.outbox = trio.open_memory_channel[str](OUTBOX_CAPACITY)
        self.closed = trio.Event()
        self.close_reason = ""
        self.close_code = 1000
        self.last_seq = 0  # the highest seq answered on this attachment (frames must grow)
        self.retry_from = 0  # a frame that could not be handled: nothing after it until it is resent

    def send_nowait(self, frame: str) -> bool:
        if self.closed.is_set():
            return False
        try:
            self._send.send_nowait(frame)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.close("outbox overflow: the adapter is not reading", CLOSE_TOO_SLOW)
            return False
        return True

    @property
    def holder(self) -> str:
        """The lease holder this attachment acts as: a new adapter process is a new holder."""
        return f"adapter:{self.adapter_id}#{self.adapter_generation}"

    def close(self, reason: str, code: int = 1000) -> None:
        """End the attachment; the transport closes the websocket with ``code`` and ``reason``."""
        if not self.closed.is_set():
            self.close_reason = reason
            self.close_code = code
            self.closed.set()
            self._send.close()
