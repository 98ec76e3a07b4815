"""Entity actors: one per command and per lease resource.

Each serializes the messages for its entity and owns its behaviour (what to decide, what to
deliver, when to stop). Their state is the entity's record in the journal's reduction: an
actor reads it in ``on_start`` (so a restarted or re-activated actor recovers it from the
journal) and after every persist. Decisions come from ``patchbay.domain``; an actor's only
awaits are the journal's durability and its outbox. An adapter frame's decision is queued for
commit and answered at once as ``Decided``: the adapter plane sends the frame's answer once it
is durable, so one connection's frames are decided in order without a commit round trip each.

Frames about a runtime session (reports of sessions, observations, elicitations, replies) need
no actor: the adapter plane decides each in one step, with no await between its decision and
queueing its facts, which serializes them as an actor would.

Lifecycles: every entity actor is ``transient`` and passivates after ``IDLE`` seconds without
messages (a command that runs for hours holds no task meanwhile); a command actor also stops
as soon as its command is terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from patchbay.actors import Actor, ChildSpec, Restart
from patchbay.domain import access, lifecycle
from patchbay.domain.events import EventKind, Fact
from patchbay.domain.model import CommandRecord
from patchbay.registry import CommandKind, CommandState, LeaseState

if TYPE_CHECKING:
    from patchbay.core._core import Core

IDLE = 300.0
FrameKey = tuple[str, int, int] | None


@attrs.frozen
class Deliver:
    """The command was accepted (or its adapter re-attached): hand it to the adapter."""


@attrs.frozen
class Report:
    adapter_id: str
    state: str
    failure: str | None
    result: dict[str, Any] | None
    reason: str | None
    frame: FrameKey


@attrs.frozen
class Expire:
    now: float


@attrs.frozen
class Settle:
    """Persist facts decided elsewhere for this entity (adapter loss, revocation policy)."""

    facts: tuple[Fact, ...]


@attrs.frozen
class Decided:
    """An adapter frame's decision, queued for commit but not yet durable: the frame's answer
    waits for ``pending`` (so the actor can decide the connection's next frame meanwhile)."""

    outcome: lifecycle.Outcome
    pending: Any  # the journal's pending commit, or None when nothing was decided
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class LeaseRequest:
    op: str
    holder: str
    lease_id: str | None
    ttl: float
    frame_key: FrameKey = None


class CommandActor(Actor[Any]):
    """The lifecycle of one accepted command, until it is terminal."""

    def __init__(self, core: Core, command_id: str) -> None:
        self.core = core
        self.command_id = command_id
        self.record: CommandRecord | None = None

    async def on_start(self) -> None:
        # Started on demand with a message waiting: even a terminal command handles it (a late
        # report becomes a reconciliation record) and then stops.
        self.record = self.core.journal.speculative.commands.get(self.command_id)

    async def handle(self, message: Any) -> Any:
        core = self.core
        if isinstance(message, Deliver):
            await self._deliver()
            outcome = lifecycle.Outcome()
        elif isinstance(message, Report):
            outcome = lifecycle.decide_adapter_report(core.journal.speculative, message.adapter_id, self.command_id,
                                                      message.state, message.failure, message.result, message.reason)
            pending = core.journal.decide(outcome.facts, frame=message.frame)
            self.record = core.journal.speculative.commands.get(self.command_id)
            if self.record is None or self.record.terminal:
                self.stop()
            return Decided(outcome, pending)
        elif isinstance(message, Expire):
            before = core.journal.speculative.commands.get(self.command_id)
            if before is None:  # archived: settled long ago, nothing expires
                return lifecycle.Outcome()
            outcome = lifecycle.decide_expiry(before, message.now)
            await core.journal.persist(outcome.facts, now=message.now)
            if outcome.facts and before.state is not CommandState.accepted:
                core.adapters.withdraw(before, CommandState.expired.value)
        elif isinstance(message, Settle):
            await core.journal.persist(message.facts)
            outcome = lifecycle.Outcome(message.facts)
        else:
            raise TypeError(f"command actor cannot handle {message!r}")
        self.record = core.journal.speculative.commands.get(self.command_id)
        if self.record is None or self.record.terminal:
            self.stop()
        return outcome

    async def _deliver(self) -> None:
        core = self.core
        record = core.journal.speculative.commands.get(self.command_id)
        if record is None or record.terminal:
            return
        if record.kind in (CommandKind.cancel, CommandKind.interrupt) and record.state is CommandState.accepted:
            outcome, deliver = lifecycle.decide_core_cancel(core.journal.speculative, record)
            await core.journal.persist(outcome.facts)
            if not deliver:
                return
        live = core.journal.speculative.commands.get(self.command_id)
        if live is not None and not live.terminal:
            core.adapters.send_delivery(live)


class LeaseActor(Actor[Any]):
    """Acquire, renew, release and expire the lease of one (resource, scope)."""

    def __init__(self, core: Core, resource: str, scope: str) -> None:
        self.core = core
        self.resource = resource
        self.scope = scope

    async def handle(self, message: Any) -> Any:
        core = self.core
        state = core.journal.speculative
        now = core.clock.now()
        extra: dict[str, Any] = {}
        if isinstance(message, Expire):
            # The held one: a resource keeps its released and expired leases as history.
            lease = next((lease for lease in state.leases.values() if lease.resource == self.resource
                          and lease.scope == self.scope and lease.state is LeaseState.held), None)
            outcome = access.decide_lease_expiry(state, lease.lease_id, now) if lease else lifecycle.Outcome()
        elif message.op == "acquire":
            lease_id = core.ids.new_id("lease")
            outcome = access.decide_lease_acquire(state, lease_id, self.resource, self.scope, message.holder,
                                                  message.ttl, now)
            extra = {"lease_id": lease_id} if outcome.ok else {}
        elif message.op == "renew" and message.lease_id:
            outcome = access.decide_lease_renew(state, message.lease_id, message.holder, message.ttl, now)
            extra = {"lease_id": message.lease_id}
        elif message.op == "release" and message.lease_id:
            outcome = access.decide_lease_release(state, message.lease_id, message.holder, "released by holder")
        else:
            outcome = lifecycle.Outcome(ok=False, error=f"lease {message.op} needs a lease_id")
        if isinstance(message, LeaseRequest):  # an adapter frame: its answer waits for the commit
            return Decided(outcome, core.journal.decide(outcome.facts, now=now, frame=message.frame_key), extra)
        await core.journal.persist(outcome.facts, now=now)
        return outcome, extra


def command_spec(core: Core, command_id: str) -> ChildSpec:
    return ChildSpec(name=f"command:{command_id}", factory=lambda: CommandActor(core, command_id),
                     restart=Restart.transient, mailbox_size=256, idle_timeout=IDLE)


def lease_spec(core: Core, resource: str, scope: str) -> ChildSpec:
    return ChildSpec(name=f"lease:{scope}:{resource}", factory=lambda: LeaseActor(core, resource, scope),
                     restart=Restart.transient, mailbox_size=64, idle_timeout=IDLE)


def record_fact(kind: EventKind, entity: str, payload: dict[str, Any]) -> Fact:
    return Fact(kind, entity, payload)
