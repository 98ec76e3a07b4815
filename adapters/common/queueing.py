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


async def cancel_queued(slot: Queueing, command_id: str, target: str | None) -> bool:
    """Cancel ``target`` if it still waits in the queue (it never started): report it
    ``cancelled``, the cancel ``completed``, and the session; False if it is not queued."""
    for queued in list(slot.queue):
        if target is not None and queued["command_id"] == target:
            slot.queue.remove(queued)
            await slot.link.report(target, CommandState.cancelled.value, failure=Failure.cancelled.value,
                                   reason=f"cancelled by {command_id} before it started")
            await slot.link.report(command_id, CommandState.completed.value,
                                   result={"target_command_id": target, "effect": CommandState.cancelled.value})
            await slot.report_session()
            return True
    return False
