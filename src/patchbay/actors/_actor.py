"""Actors: one task, one bounded mailbox, messages handled one at a time in arrival order.

``tell`` queues a message; ``ask`` queues it with a reply slot and waits (with a timeout) for
the handler's return value. A handler that raises crashes the actor: the asker of that message
gets ``ActorCrashed``, the message is not redelivered, and the supervisor decides about a
restart. The mailbox outlives a crash, so messages queued behind the crashing one are handled
by the restarted instance. An error with a true ``actor_survives`` attribute is no crash: the
asker gets it as the answer and the actor goes on (a journal that takes no writes for now).
"""

from __future__ import annotations

import enum
import math
from typing import Any, Generic, TypeVar

import trio

from patchbay.actors._errors import ActorCrashed, ActorStopped, AskTimeout, MailboxFull

Msg = TypeVar("Msg")


class Envelope:
    __slots__ = ("message", "reply", "result", "error")

    def __init__(self, message: Any, reply: trio.Event | None) -> None:
        self.message = message
        self.reply = reply
        self.result: Any = None
        self.error: BaseException | None = None

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.reply is not None and not self.reply.is_set():
            self.result = result
            self.error = error
            self.reply.set()


class Actor(Generic[Msg]):
    """Subclass and override ``handle``; ``on_start`` recovers state (runs on every start)."""

    name: str = ""

    async def on_start(self) -> None:
        """Recover state before the first message (e.g. from the journal)."""

    async def handle(self, message: Msg) -> Any:
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Release what the actor holds; runs on a normal stop and on passivation."""

    def stop(self) -> None:
        """Stop after the current message (a normal stop, not a crash)."""
        self._stopping = True

    _stopping: bool = False


class Mailbox:
    """The bounded queue of one actor name; kept across restarts of the actor."""

    def __init__(self, capacity: int) -> None:
        self.send, self.receive = trio.open_memory_channel[Envelope](capacity)
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.send.close()
        while True:
            try:
                envelope = self.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
            envelope.answer(error=ActorStopped("the actor stopped before handling this message"))


class ActorRef(Generic[Msg]):
    """A handle to send messages to an actor by name; stays valid across restarts."""

    def __init__(self, name: str, mailbox: Mailbox) -> None:
        self.name = name
        self._mailbox = mailbox

    @property
    def alive(self) -> bool:
        return not self._mailbox.closed

    def tell_nowait(self, message: Msg) -> None:
        try:
            self._mailbox.send.send_nowait(Envelope(message, None))
        except trio.WouldBlock:
            raise MailboxFull(f"actor {self.name}: mailbox full") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"actor {self.name} is stopped") from None

    async def tell(self, message: Msg) -> None:
        try:
            await self._mailbox.send.send(Envelope(message, None))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"actor {self.name} is stopped") from None

    async def ask(self, message: Msg, *, timeout: float) -> Any:
        envelope = Envelope(message, trio.Event())
        assert envelope.reply is not None
        with trio.move_on_after(timeout) as scope:
            try:
                await self._mailbox.send.send(envelope)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise ActorStopped(f"actor {self.name} is stopped") from None
            await envelope.reply.wait()
        if scope.cancelled_caught:
            raise AskTimeout(f"actor {self.name} did not answer within {timeout} s")
        if envelope.error is not None:
            raise envelope.error
        return envelope.result


class RunEnd(enum.Enum):
    """How one actor instance ended without crashing."""

    stopped = "stopped"  # the actor called ``stop()``: its entity is finished
    passivated = "passivated"  # no message for ``idle_timeout`` seconds: its mailbox is closed


async def run_actor(actor: Actor[Any], mailbox: Mailbox, idle_timeout: float | None) -> RunEnd:
    """Run one instance until it stops or passivates; a crash propagates to the supervisor.

    Passivation is race-free: after the idle timeout the mailbox is checked once more and
    closed in the same step (no checkpoint between), so a message that arrived meanwhile is
    handled, and a later sender gets ``ActorStopped`` instead of a message lost in a dead
    mailbox. ``on_stop`` runs only after the mailbox is closed.
    """
    await actor.on_start()
    try:
        while not actor._stopping:
            envelope: Envelope | None = None
            with trio.move_on_after(math.inf if idle_timeout is None else idle_timeout):
                envelope = await mailbox.receive.receive()
            if envelope is None:
                try:
                    envelope = mailbox.receive.receive_nowait()
                except trio.WouldBlock:
                    mailbox.close()
                    return RunEnd.passivated
            try:
                result = await actor.handle(envelope.message)
            except trio.Cancelled:
                envelope.answer(error=ActorStopped(f"actor {actor.name} was cancelled"))
                raise
            except Exception as error:
                if getattr(error, "actor_survives", False):  # an answer, not a fault of the actor
                    envelope.answer(error=error)
                    continue
                envelope.answer(error=ActorCrashed(f"actor {actor.name} crashed: {error!r}"))
                raise
            envelope.answer(result)
        return RunEnd.stopped
    finally:
        with trio.CancelScope(shield=True):
            await actor.on_stop()
