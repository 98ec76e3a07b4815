"""Supervision in the OTP vocabulary: one_for_one, restart types, intensity, escalation.

A child is restarted on a *new* instance (from its factory) with the *same* mailbox, after an
exponential backoff. ``permanent`` children always restart; ``transient`` ones only after a
crash; ``temporary`` ones never. More than ``max_restarts`` restarts within ``within`` seconds
make the supervisor give up: it cancels its children and raises ``SupervisorEscalation`` out of
``run`` to its owner.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from patchbay.actors._actor import Actor, ActorRef, Mailbox, RunEnd, run_actor
from patchbay.actors._errors import ActorStopped, SupervisorEscalation


class Restart(enum.Enum):
    permanent = "permanent"
    transient = "transient"
    temporary = "temporary"


@attrs.frozen
class ChildSpec:
    name: str
    factory: Callable[[], Actor[Any]]
    restart: Restart = Restart.transient
    mailbox_size: int = 256
    idle_timeout: float | None = None


@attrs.frozen
class Intensity:
    max_restarts: int = 5
    within: float = 5.0
    backoff_initial: float = 0.01
    backoff_max: float = 1.0


class Supervisor:
    def __init__(self, name: str, intensity: Intensity = Intensity()) -> None:
        self.name = name
        self.intensity = intensity
        self._nursery: trio.Nursery | None = None
        self._children: dict[str, ActorRef[Any]] = {}
        self._mailboxes: dict[str, Mailbox] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._escalation: SupervisorEscalation | None = None
        self.restarts = 0
        self.backing_off = 0  # children waiting out a backoff before their restart
        self._no_backoff = trio.Event()  # set while no child waits out a backoff
        self._no_backoff.set()
        self._gone: dict[str, trio.Event] = {}  # set when that child's instance has ended for good

    @property
    def children(self) -> Mapping[str, ActorRef[Any]]:
        return dict(self._children)

    def child(self, name: str) -> ActorRef[Any] | None:
        return self._children.get(name)

    async def backoffs_over(self) -> None:
        """Return once no child is waiting out a restart backoff."""
        await self._no_backoff.wait()

    async def gone(self, name: str) -> None:
        """Return once the child ``name`` has ended (stopped, passivated or given up on);
        at once if there is no such child."""
        if name in self._children:
            await self._gone.setdefault(name, trio.Event()).wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the children until cancelled; raises SupervisorEscalation when it gives up."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for name in list(self._mailboxes):
                self._forget(name)
        if self._escalation is not None:
            raise self._escalation

    def start_child(self, spec: ChildSpec) -> ActorRef[Any]:
        """Start a child now; messages queue in its mailbox while its ``on_start`` runs."""
        if self._nursery is None:
            raise ActorStopped(f"supervisor {self.name} is not running")
        existing = self._children.get(spec.name)
        if existing is not None and existing.alive:
            return existing
        mailbox = Mailbox(spec.mailbox_size)
        ref: ActorRef[Any] = ActorRef(spec.name, mailbox)
        self._children[spec.name] = ref
        self._mailboxes[spec.name] = mailbox
        scope = trio.CancelScope()
        self._scopes[spec.name] = scope
        self._nursery.start_soon(self._supervise, spec, mailbox, scope)
        return ref

    async def stop_child(self, name: str) -> None:
        scope = self._scopes.get(name)
        if scope is not None:
            scope.cancel()
        self._forget(name)

    def _forget(self, name: str) -> None:
        mailbox = self._mailboxes.pop(name, None)
        if mailbox is not None:
            mailbox.close()
        self._children.pop(name, None)
        self._scopes.pop(name, None)
        gone = self._gone.pop(name, None)
        if gone is not None:
            gone.set()

    async def _supervise(self, spec: ChildSpec, mailbox: Mailbox, scope: trio.CancelScope) -> None:
        recent: deque[float] = deque()
        backoff = self.intensity.backoff_initial
        with scope:
            while True:
                actor = spec.factory()
                actor.name = spec.name
                crashed: BaseException | None = None
                started = trio.current_time()
                try:
                    ended = await run_actor(actor, mailbox, spec.idle_timeout)
                except Exception as error:
                    crashed = error
                else:
                    if ended is RunEnd.passivated:
                        break  # the mailbox is closed; the next message starts a fresh instance
                if crashed is None and spec.restart is not Restart.permanent:
                    break
                if crashed is not None and spec.restart is Restart.temporary:
                    break
                now = trio.current_time()
                if now - started > self.intensity.within:
                    backoff = self.intensity.backoff_initial  # it ran well for a while: start over
                recent.append(now)
                while recent and recent[0] < now - self.intensity.within:
                    recent.popleft()
                if len(recent) > self.intensity.max_restarts:
                    self._escalation = SupervisorEscalation(self.name, spec.name, crashed)
                    assert self._nursery is not None
                    self._nursery.cancel_scope.cancel()
                    break
                self.restarts += 1
                self.backing_off += 1
                if self.backing_off == 1:
                    self._no_backoff = trio.Event()
                try:
                    await trio.sleep(backoff)
                finally:
                    self.backing_off -= 1
                    if self.backing_off == 0:
                        self._no_backoff.set()
                backoff = min(backoff * 2, self.intensity.backoff_max)
        if self._mailboxes.get(spec.name) is mailbox:
            self._forget(spec.name)

    async def aclose(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
