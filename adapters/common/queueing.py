"""A slot's bounded queue of commands that wait for the agent to be free.

A command that may wait is reported ``delivered`` once queued, and the slot's session report
(its queue length) follows; a full queue rejects it with ``delivery_rejected``. The slot's
worker takes commands from the queue when ``notify`` wakes it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from patchbay_adapters.common.link import AdapterLink

from patchbay.registry import CommandState, Failure

QUEUE_LIMIT = 1000


class Queueing(Protocol):
    queue: deque[dict[str, Any]]
    link: AdapterLink

    async def report_session(self, *, wait: bool = False) -> None: ...

    def notify(self) -> None: ...


async def enqueue(slot: Queueing, command: dict[str, Any]) -> None:
    """Queue ``command`` (or reject it when the queue is full) and report either."""
    command_id = command["command_id"]
    if len(slot.queue) >= QUEUE_LIMIT:
        await slot.link.report(command_id, CommandState.rejected.value,
                               failure=Failure.delivery_rejected.value, reason="the slot's queue is full")
        return
    slot.queue.append(command)
    await slot.link.report(command_id, CommandState.delivered.value)
    await slot.report_session()
    slot.notify()
