"""One live attachment of an adapter process: its identity, its bounded outbox, how it ends.

Deliveries never overflow the outbox: once it is nearly full they wait, in order, in a backlog
of command ids (the commands themselves are durable in the journal), and every frame taken from
the outbox refills it from the backlog. So re-attaching with thousands of queued commands is
paced by the adapter's reading, while a truly stuck adapter still overflows on its control
frames and is cut off.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import trio

OUTBOX_CAPACITY = 2048
FRAME_WINDOW = 64  # frames of one connection decided but not yet answered; beyond, it stops reading
DELIVERY_HEADROOM = 64  # outbox slots kept for control frames (answers, withdrawals, welcome)
CLOSE_GOING_AWAY = 1001  # the core is shutting down
CLOSE_TOO_SLOW = 4408  # outbox overflow or heartbeat lost
CLOSE_REPLACED = 4409  # a newer attachment of the same adapter took over


class AdapterConnection:
    """One live attachment of an adapter process to this core."""

    def __init__(self, adapter_id: str, adapter_generation: int, deployment_scope: str,
                 manifest: dict[str, Any], connection_id: str, now: float,
                 render_delivery: Callable[[str], str | None] = lambda command_id: None,
                 ack_ranges: bool = False) -> None:
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
        self.in_flight = 0  # frames decided and not yet answered (at most FRAME_WINDOW)
        self.ack_ranges = ack_ranges  # the adapter takes one ack for a run of frames (hello)
        self.backlog: deque[str] = deque()  # command ids waiting for room in the outbox, in order
        self._render_delivery = render_delivery  # a command's deliver frame, or None once settled

    def deliver(self, command_id: str, frame: str) -> None:
        """Queue a delivery behind every earlier one; it waits in the backlog when the outbox
        has no room to spare for deliveries."""
        if self.backlog or self._room() <= DELIVERY_HEADROOM:
            self.backlog.append(command_id)
        else:
            self.send_nowait(frame)

    def receive_nowait(self) -> str:
        """The next outbound frame (raises trio.WouldBlock / EndOfChannel like the channel)."""
        frame = self.outbox.receive_nowait()
        self._refill()
        return frame

    async def receive(self) -> str:
        """The next outbound frame; raises trio.EndOfChannel once the attachment is closed."""
        frame = await self.outbox.receive()
        self._refill()
        return frame

    def _room(self) -> int:
        return OUTBOX_CAPACITY - self._send.statistics().current_buffer_used

    def _refill(self) -> None:
        while self.backlog and self._room() > DELIVERY_HEADROOM and not self.closed.is_set():
            frame = self._render_delivery(self.backlog.popleft())
            if frame is not None:
                self.send_nowait(frame)

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
