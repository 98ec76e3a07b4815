"""The adapter plane: attachment, frames from adapters, delivery to them, and honest failure.

One ``AdapterConnection`` per attached adapter. Inbound frames are decided one at a time per
connection, in the order the adapter sent them, so they take effect in that order; their answers
go out in the same order, each once the frame's effects are durable, while later frames are
already being decided (a bounded window of ``FRAME_WINDOW`` frames per connection). Outbound
frames go through a bounded outbox; an adapter that does not drain it is disconnected rather
than buffered without bound, and gets everything again on re-attach (at-least-once delivery;
adapters deduplicate by command id).

Failure bounds: an adapter that sends nothing for ``stale_after`` seconds is considered lost;
its sessions are ``stale`` from the moment it is lost and ``offline`` ``offline_after`` seconds
later, when its in-flight commands are settled (``execution_outcome_unknown`` if running,
``adapter_unavailable`` otherwise). So no command stays ``running`` longer than
``stale_after + offline_after`` after its adapter goes silent.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from patchbay.actors import ActorError
from patchbay.core._connection import (
    CLOSE_REPLACED,
    CLOSE_TOO_SLOW,
    FRAME_WINDOW,
    AdapterConnection,
)
from patchbay.core._entities import (
    Decided,
    Deliver,
    LeaseRequest,
    Report,
    command_spec,
    lease_spec,
)
from patchbay.core._refusals import BoundedAudit, bounded_id
from patchbay.core._state import _Pending
from patchbay.core.secrets import token_hash
from patchbay.core.timers import TimerKey
from patchbay.domain import access, lifecycle
from patchbay.domain.events import EventKind, Fact
from patchbay.domain.model import ArchivedCommand, CommandRecord
from patchbay.errors import CoreStopped, ProtocolError, Refused
from patchbay.journal import StoredEvent
from patchbay.registry import CommandState, Failure, LeaseState, SessionConnectivityState
from patchbay.wire import adapter as wire

if TYPE_CHECKING:
    from patchbay.core._core import Core


class FrameCrashed(Exception):
    """Deciding a frame raised (a bug): nothing of it was queued; it is answered ``retry``."""


class Answer:
    """A frame's answer, to be sent once ``commit`` (what the frame decided, or its audit
    record) is durable. ``seq`` is the frame's (0 when it has none or is unnumbered)."""

    __slots__ = ("text", "commit", "seq", "plain")

    def __init__(self, text: str, commit: _Pending | None, seq: int | None, *, plain: bool = False) -> None:
        self.text = text
        self.commit = commit
        self.seq = seq or 0
        self.plain = plain  # a bare ack of a frame that took effect: can join a range

    def durable(self) -> bool:
        """Whether the answer can go out now (its commit, if any, succeeded)."""
        return self.commit is None or (self.commit.done.is_set() and self.commit.error is None)


async def _room(window: trio.Semaphore) -> None:
    """A place in the window; no task switch while it has room."""
    try:
        window.acquire_nowait()
    except trio.WouldBlock:
        await window.acquire()


def _retry(seq: int, retry_from: int) -> str:
    return wire.encode("error", seq=seq, code="retry",
                       error=f"frame {retry_from} could not be handled: send it again first")


class AdapterPlane:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.connections: dict[str, AdapterConnection] = {}
        self.refusals = BoundedAudit(core)  # unauthenticated refusals, web ones too

    # -- attachment ----------------------------------------------------------------------

    def verify_credential(self, adapter_id: str, credential: str) -> bool:
        record = self.core.state.adapters.get(adapter_id)
        return record is not None and hmac.compare_digest(record.credential_hash, token_hash(credential))

    async def register(self, adapter_id: str, kind: str, credential: str) -> None:
        """Record a newly minted credential (hash only); re-registering replaces it."""
        await self.core.journal.persist([Fact(EventKind.adapter_registered, f"adapter:{adapter_id}", {
            "adapter_id": adapter_id, "adapter_kind": kind, "credential_hash": token_hash(credential),
        })])

    async def attach(self, hello: wire.Hello) -> AdapterConnection:
        """Verify the credential and generation, record the attachment, queue redelivery."""
        core = self.core
        if hello.protocol != wire.PROTOCOL_VERSION:
            await self._refused_hello(hello, f"protocol version {hello.protocol} is not supported")
            raise Refused(f"protocol version {hello.protocol} is not supported (this core speaks "
                          f"{wire.PROTOCOL_VERSION})")
        if not self.verify_credential(hello.adapter_id, hello.credential):
            await self._refused_hello(hello, "bad credential")
            shown = bounded_id(hello.adapter_id)["adapter_id"]
            raise Refused(f"adapter {shown!r}: unknown adapter or wrong credential")
        record = core.journal.speculative.adapters[hello.adapter_id]
        if hello.adapter_generation < record.adapter_generation:
            await core.record(EventKind.protocol_error, f"adapter:{hello.adapter_id}", {
                "adapter_id": hello.adapter_id, "frame_type": "hello", "code": "attach_refused",
                "reason": f"adapter generation {hello.adapter_generation} is older than "
                          f"{record.adapter_generation}"})
            raise Refused(f"adapter generation {hello.adapter_generation} is older than the attached "
                          f"generation {record.adapter_generation}")
        previous = self.connections.pop(hello.adapter_id, None)
        if previous is not None:
            previous.close(f"replaced by a new attachment (adapter generation {hello.adapter_generation})",
                           CLOSE_REPLACED)
        now = core.clock.now()
        connection = AdapterConnection(hello.adapter_id, hello.adapter_generation, hello.deployment_scope,
                                       wire.unstructure(hello.manifest), core.ids.new_id("conn"), now,
                                       render_delivery=self._render_delivery, ack_ranges=hello.ack_ranges)
        new_generation = hello.adapter_generation > record.adapter_generation
        facts = [Fact(EventKind.adapter_attached, f"adapter:{hello.adapter_id}", {
            "adapter_id": hello.adapter_id, "adapter_generation": hello.adapter_generation,
            "deployment_scope": hello.deployment_scope, "manifest": connection.manifest,
            "connection_id": connection.connection_id, "new_generation": new_generation,
        })]
        if record.manifest and record.manifest != connection.manifest:
            facts.append(Fact(EventKind.adapter_capabilities_changed, f"adapter:{hello.adapter_id}", {
                "adapter_id": hello.adapter_id, "previous": record.manifest, "manifest": connection.manifest}))
        if new_generation:
            facts.extend(lifecycle.decide_adapter_lost(core.journal.speculative, hello.adapter_id,
                                                       new_attachment=True).facts)
            facts.extend(self._release_leases(hello.adapter_id, f"holder disappeared: adapter generation "
                                                                f"{hello.adapter_generation} replaced it",
                                              keep=connection.holder))
        await core.journal.persist(facts, now=now)
        self.connections[hello.adapter_id] = connection
        core.timers.cancel(("adapter-offline", hello.adapter_id))
        self._arm_stale(connection, force=True)
        frame_gen, frame_seq = core.state.adapter_frames.get(hello.adapter_id, (0, 0))
        connection.send_nowait(wire.encode(
            "welcome", protocol=wire.PROTOCOL_VERSION, adapter_id=hello.adapter_id,
            adapter_generation=hello.adapter_generation, core_generation=core.core_generation,
            authority_domain_id=core.domain_id, heartbeat_interval=core.settings.heartbeat_interval,
            stale_after=core.settings.stale_after,
            acked_seq=frame_seq if frame_gen == hello.adapter_generation else 0,
            batch_max=wire.BATCH_MAX,
        ))
        for command in sorted(core.state.commands.values(), key=lambda c: c.accepted_lsn):
            if command.adapter_id == hello.adapter_id and command.state in (
                CommandState.accepted, CommandState.delivered
            ):
                self._deliver(connection, command)
        return connection

    async def _refused_hello(self, hello: wire.Hello, reason: str) -> None:
        """Audit an unauthenticated refused hello in bounded space (``core/_refusals.py``)."""
        fields = bounded_id(hello.adapter_id)
        await self.refusals.refused("hello", EventKind.protocol_error, f"adapter:{fields['adapter_id']}", {
            **fields, "frame_type": "hello", "code": "attach_refused", "reason": reason}, fields["adapter_id"])

    async def detached(self, connection: AdapterConnection, reason: str, *, failed: bool = False) -> None:
        """The transport closed (or heartbeats stopped): sessions go stale now, offline later."""
        connection.close(reason, CLOSE_TOO_SLOW if failed else 1000)
        if self.connections.get(connection.adapter_id) is not connection:
            return  # already replaced by a newer attachment
        del self.connections[connection.adapter_id]
        core = self.core
        kind = EventKind.adapter_failed if failed else EventKind.adapter_detached
        facts = [Fact(kind, f"adapter:{connection.adapter_id}", {
            "adapter_id": connection.adapter_id, "adapter_generation": connection.adapter_generation,
            "reason": reason})]
        facts.extend(self._sessions_to(connection.adapter_id, SessionConnectivityState.stale,
                                       f"adapter {connection.adapter_id} {reason}"))
        await core.journal.persist(facts)
        core.timers.arm(("adapter-offline", connection.adapter_id), core.clock.now() + core.settings.offline_after)

    def _sessions_to(self, adapter_id: str, connectivity: SessionConnectivityState, reason: str) -> list[Fact]:
        facts: list[Fact] = []
        for session in self.core.journal.speculative.sessions.values():
            if session.adapter_id == adapter_id and session.connectivity not in (
                connectivity, SessionConnectivityState.offline
            ):
                facts.extend(lifecycle.decide_connectivity(session, connectivity, reason).facts)
        return facts

    async def recover(self) -> None:
        """At core start no adapter is connected yet: what the journal shows as attached is not."""
        core = self.core
        facts: list[Fact] = []
        for record in core.journal.speculative.adapters.values():
            if record.attached:
                facts.append(Fact(EventKind.adapter_detached, f"adapter:{record.adapter_id}", {
                    "adapter_id": record.adapter_id, "adapter_generation": record.adapter_generation,
                    "reason": "core restarted"}))
            facts.extend(self._sessions_to(record.adapter_id, SessionConnectivityState.stale, "core restarted"))
        await core.journal.persist(facts)
        deadline = core.clock.now() + core.settings.offline_after
        for record in core.state.adapters.values():
            core.timers.arm(("adapter-offline", record.adapter_id), deadline)

    def _arm_stale(self, connection: AdapterConnection, *, force: bool = False) -> None:
        now = self.core.clock.now()
        connection.last_seen = now
        if force or now - connection._last_armed >= 1.0:
            connection._last_armed = now
            self.core.timers.arm(("adapter-stale", connection.adapter_id, connection.connection_id),
                                 now + self.core.settings.stale_after)

    async def fire(self, key: TimerKey, now: float) -> None:
        kind = key[0]
        if kind == "refusal-summary":
            await self.refusals.flush(str(key[1]))
        elif kind == "adapter-stale":
            connection = self.connections.get(str(key[1]))
            if connection is None or connection.connection_id != key[2]:
                return
            if now - connection.last_seen < self.core.settings.stale_after:
                self.core.timers.arm(key, connection.last_seen + self.core.settings.stale_after)
                return
            await self.detached(connection, f"sent nothing for {self.core.settings.stale_after:.0f} s "
                                            "(heartbeat lost)", failed=True)
        elif kind == "adapter-offline":
            adapter_id = str(key[1])
            if adapter_id in self.connections:
                return
            facts = self._sessions_to(adapter_id, SessionConnectivityState.offline,
                                      f"adapter {adapter_id} has been gone for "
                                      f"{self.core.settings.offline_after:.0f} s")
            facts.extend(lifecycle.decide_adapter_lost(self.core.journal.speculative, adapter_id,
                                                       new_attachment=False).facts)
            facts.extend(self._release_leases(adapter_id, "holder disappeared: its adapter is offline"))
            await self.core.journal.persist(facts, now=now)

    def _release_leases(self, adapter_id: str, reason: str, *, keep: str | None = None) -> list[Fact]:
        """Release the held leases of every process of this adapter except ``keep``."""
        state = self.core.journal.speculative
        facts: list[Fact] = []
        for lease in list(state.leases.values()):
            if (lease.state is LeaseState.held and lease.holder.startswith(f"adapter:{adapter_id}#")
                    and lease.holder != keep):
                facts.extend(access.decide_lease_release(state, lease.lease_id, lease.holder, reason).facts)
        return facts

    # -- delivery ------------------------------------------------------------------------

    def _deliver(self, connection: AdapterConnection, command: CommandRecord) -> None:
        connection.deliver(command.command_id, self._delivery_frame(command))

    def _render_delivery(self, command_id: str) -> str | None:
        """A backlogged delivery as it is now: nothing if the core settled it meanwhile."""
        command = self.core.state.commands.get(command_id)
        if command is None or command.state not in (CommandState.accepted, CommandState.delivered):
            return None
        return self._delivery_frame(command)

    @staticmethod
    def _delivery_frame(command: CommandRecord) -> str:
        return wire.encode("deliver", command={
            "command_id": command.command_id, "idempotency_key": command.idempotency_key,
            "kind": command.kind.value, "target": command.target,
            "runtime_session_id": command.runtime_session_id, "generation": command.generation,
            "payload": command.payload, "expires_at": command.expires_at, "state": command.state.value,
        })

    async def command_accepted(self, record: CommandRecord) -> None:
        """After an acceptance is durable: its command actor settles what the core can and
        delivers the rest."""
        core = self.core
        actor = core.actors.get_or_start(f"command:{record.command_id}", lambda: command_spec(core, record.command_id))
        await actor.ask(Deliver(), timeout=core.settings.ask_timeout)

    def send_delivery(self, record: CommandRecord) -> None:
        connection = self.connections.get(record.adapter_id)
        if connection is not None:
            self._deliver(connection, record)

    def withdraw(self, record: CommandRecord | ArchivedCommand, reason: str) -> None:
        """Tell the adapter to drop a command it holds that the core has settled."""
        connection = self.connections.get(record.adapter_id)
        if connection is not None:
            connection.send_nowait(wire.encode("withdraw", command_id=record.command_id, reason=reason))

    def after_commit(self, stored: list[StoredEvent]) -> None:
        """Withdraw delivered commands the core settled without the adapter (e.g. superseded)."""
        for event in stored:
            if event.kind == EventKind.command_transitioned and event.payload["state"] in (
                CommandState.superseded.value, CommandState.cancelled.value, CommandState.failed.value,
            ) and event.payload.get("adapter_frame") is None:
                command_id = event.payload["command_id"]
                record = self.core.state.commands.get(command_id)
                if record is not None:
                    if len(record.history) >= 2 and record.history[-2].state is not CommandState.accepted:
                        self.withdraw(record, event.payload["state"])
                    continue
                # Archived within this very batch (more commands settled together than the window
                # of full records holds): whether the adapter had it is no longer in memory, so
                # withdraw it anyway. A withdraw is advisory and adapters ignore unknown ids.
                archived = self.core.state.archived.get(command_id)
                if archived is not None:
                    self.withdraw(archived, event.payload["state"])

    # -- inbound frames ------------------------------------------------------------------

    async def serve(self, connection: AdapterConnection, receive: Callable[[], Awaitable[str | bytes | None]],
                    send: Callable[[str], Awaitable[None]]) -> None:
        """Read an attachment's frames and answer them, pipelined, until ``receive`` raises.

        Frames are decided one after the other in arrival order (``take``), each against the
        speculative state that includes the effects of the ones before it, without waiting for
        their commit; a second task sends the answers in the same order, each once what it
        depends on is durable. So one connection's frames share group commits instead of
        paying a commit round trip each. At most ``FRAME_WINDOW`` frames are decided and not yet
        answered: beyond that the connection stops reading (the transport pushes back). If a
        commit fails, ``CoreStopped`` ends the attachment and no later answer is sent.
        """
        window = trio.Semaphore(FRAME_WINDOW)
        to_answer, answers = trio.open_memory_channel[Answer](FRAME_WINDOW)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._answer_in_order, connection, answers, send, window)
            async with to_answer:
                while True:
                    await _room(window)
                    text = await receive()
                    for index, entry in enumerate(self._open(connection, text)):
                        if index:  # each frame of a batch takes its own place in the window
                            await _room(window)
                        answer = entry if isinstance(entry, Answer) else await self._take(connection, *entry)
                        connection.in_flight += 1
                        to_answer.send_nowait(answer)

    async def _answer_in_order(self, connection: AdapterConnection, answers: trio.MemoryReceiveChannel[Answer],
                               send: Callable[[str], Awaitable[None]], window: trio.Semaphore) -> None:
        retry_from = 0  # a frame whose commit timed out: later answers are retry until it comes again
        carried: Answer | None = None
        while True:
            if carried is not None:
                answer, carried = carried, None
            else:
                try:
                    answer = await answers.receive()
                except trio.EndOfChannel:
                    return
            if retry_from and answer.seq == retry_from:
                retry_from = 0
            if retry_from and answer.seq > retry_from:
                text = _retry(answer.seq, retry_from)
            else:
                text = await self._when_durable(connection, answer)
                if text is not answer.text:
                    retry_from = answer.seq
            count = 1
            if connection.ack_ranges and answer.plain and not retry_from:
                # The plain acks right behind it whose commits are done too (usually the same
                # group commit) go out as one ack for the run.
                last = answer.seq
                while True:
                    try:
                        following = answers.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    if following.plain and following.seq > last and following.durable():
                        last, count = following.seq, count + 1
                    else:
                        carried = following
                        break
                if count > 1:
                    text = wire.encode("ack", seq=last, first=answer.seq)
            await send(text)
            connection.in_flight -= count
            for _ in range(count):
                window.release()

    async def _when_durable(self, connection: AdapterConnection, answer: Answer) -> str:
        """The answer once its commit is durable; ``retry`` if that takes longer than the ask
        timeout (it may still commit: a resent frame is then acknowledged as a duplicate).
        Raises CoreStopped if the commit failed: the frame is never answered."""
        if answer.durable():  # nothing to wait for (common in a run that committed together)
            return answer.text
        with trio.move_on_after(self.core.settings.ask_timeout):
            await self.core.journal.wait(answer.commit)
            return answer.text
        if answer.seq < 1:  # an error answer without a seq: nothing to resend
            return answer.text
        if not connection.retry_from or connection.retry_from > answer.seq:
            connection.retry_from = answer.seq
        return wire.encode("error", seq=answer.seq, code="retry",
                           error=f"frame {answer.seq} was not durable within {self.core.settings.ask_timeout} s")

    async def handle(self, connection: AdapterConnection, text: str | bytes | None) -> str:
        """Apply one frame and wait until its answer may be sent (tests, bench, conformance)."""
        return await self._when_durable(connection, await self.take(connection, text))

    async def take(self, connection: AdapterConnection, text: str | bytes | None) -> Answer:
        """Decide one message that holds one frame; returns its answer (ack or error) and the
        commit it must wait for (tests, bench, conformance; ``serve`` also takes batches)."""
        entries = self._open(connection, text)
        if len(entries) != 1:
            reason = "a batch is taken only on a served attachment"
            return Answer(wire.encode("error", seq=None, error=reason, code="malformed"),
                          self._protocol_error(connection, "batch", reason, "malformed"), None)
        entry = entries[0]
        return entry if isinstance(entry, Answer) else await self._take(connection, *entry)

    def _open(self, connection: AdapterConnection, text: str | bytes | None) -> list[Answer | tuple[str, Any]]:
        """The frames of one message, decoded, in order: one, or each of a ``batch``. What
        cannot be decoded is its error answer (audited) in its place; a batch that is itself
        malformed (not a list, empty, more than ``BATCH_MAX`` frames, too large) is one
        error and nothing of it is taken."""
        self._arm_stale(connection)
        if text is None:  # the transport's value for an empty binary message
            text = b""
        size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
        if size > wire.MAX_FRAME_BYTES:
            reason = f"frame of {size} bytes is larger than {wire.MAX_FRAME_BYTES} bytes"
            return [Answer(wire.encode("error", seq=None, error=reason, code="oversized"),
                           self._protocol_error(connection, "unparsed", reason, "oversized"), None)]
        try:
            raw = wire.parse_message(text)
            if raw.get("type") != "batch":
                return [wire.structure_frame(raw)]
            frames = wire.batch_frames(raw)
        except ProtocolError as error:
            return [self._malformed(connection, error)]
        entries: list[Answer | tuple[str, Any]] = []
        for inner in frames:
            try:
                entries.append(wire.structure_frame(inner, in_batch=True))
            except ProtocolError as error:
                entries.append(self._malformed(connection, error))
        return entries

    def _malformed(self, connection: AdapterConnection, error: ProtocolError) -> Answer:
        return Answer(wire.encode("error", seq=None, error=str(error), code="malformed"),
                      self._protocol_error(connection, "unparsed", str(error), "malformed"), None)

    async def _take(self, connection: AdapterConnection, frame_type: str, frame: Any) -> Answer:
        """Decide one decoded frame; returns its answer and the commit it must wait for.

        Never raises for bad input. Checks, in order: attachment still current (a replaced
        attachment's late frames are ``stale_event``), seq (at or below what is journaled: a
        duplicate, acked once that is durable and not applied; not above the previous frame
        on this attachment: ``out_of_order``), then the entity actor's decision. Every refusal
        is audited (the answer waits for the audit record) and changes no state.
        """
        core = self.core
        seq = getattr(frame, "seq", 0)
        if frame_type == "heartbeat":
            return Answer(wire.encode("ack", seq=seq), None, 0)
        if frame_type == "hello":
            return Answer(wire.encode("error", seq=seq, error="already attached", code="out_of_order"),
                          self._protocol_error(connection, frame_type, "already attached", "out_of_order"), seq)
        current = self.connections.get(connection.adapter_id)
        if connection.closed.is_set() or current is not connection:
            if current is not None and current.adapter_generation > connection.adapter_generation:
                reason = (f"late {frame_type} frame from adapter generation {connection.adapter_generation}; "
                          f"generation {current.adapter_generation} is attached")
                return Answer(wire.encode("error", seq=seq, error=reason, code=Failure.stale_event.value),
                              self._protocol_error(connection, frame_type, reason, Failure.stale_event.value), seq)
            return Answer(wire.encode("error", seq=seq, error="this attachment was replaced", code="stale_attachment"),
                          None, seq)
        if seq < 1:
            reason = f"a {frame_type} frame needs a seq of 1 or more"
            return Answer(wire.encode("error", seq=seq, error=reason, code="malformed"),
                          self._protocol_error(connection, frame_type, reason, "malformed"), seq)
        key = (connection.adapter_generation, seq)
        if key <= core.journal.speculative.adapter_frames.get(connection.adapter_id, (0, 0)):
            # Already decided. Durable, or still committing (a frame resent on a new attachment
            # while the old one's commit is in flight): the ack waits for everything decided.
            durable = key <= core.state.adapter_frames.get(connection.adapter_id, (0, 0))
            if seq == connection.retry_from:  # the frame asked for again came: go on after it
                connection.retry_from = 0
            return Answer(wire.encode("ack", seq=seq, duplicate=True), None if durable else core.journal.barrier(), seq)
        if connection.retry_from:
            if seq != connection.retry_from:
                return Answer(_retry(seq, connection.retry_from), None, seq)
        elif seq <= connection.last_seq:
            reason = f"seq {seq} after seq {connection.last_seq}: frames must be numbered in order"
            return Answer(wire.encode("error", seq=seq, error=reason, code="out_of_order"),
                          self._protocol_error(connection, frame_type, reason, "out_of_order"), seq)
        connection.retry_from = 0
        connection.last_seq = seq
        frame_key = (connection.adapter_id, connection.adapter_generation, seq)
        try:
            decided = await self._route(connection, frame_type, frame, frame_key)
        except ProtocolError as error:
            return Answer(wire.encode("error", seq=seq, error=str(error), code="refused"),
                          self._protocol_error(connection, frame_type, str(error), "refused"), seq)
        except (ActorError, FrameCrashed) as error:
            # The entity actor crashed (and is being restarted) or timed out, or deciding the
            # frame failed: nothing of this frame was journaled. Later frames are answered ``retry`` too until this one comes
            # again, so the adapter resends its unacked frames in their order and none is skipped.
            connection.retry_from = seq
            return Answer(wire.encode("error", seq=seq, error=str(error), code="retry"), None, seq)
        outcome, pending = decided.outcome, decided.pending
        if not outcome.ok:
            if frame_type == "lease":
                return Answer(wire.encode("error", seq=seq, error=outcome.error, code="lease_held"), pending, seq)
            if outcome.settled:
                return Answer(wire.encode("error", seq=seq, error=outcome.error, code="settled"), pending, seq)
            if not outcome.stale:
                pending = self._protocol_error(connection, frame_type, outcome.error or "refused", "refused") \
                    or pending
            return Answer(wire.encode("error", seq=seq, error=outcome.error,
                                      code=Failure.stale_event.value if outcome.stale else "refused"), pending, seq)
        return Answer(wire.encode("ack", seq=seq, **decided.extra), pending, seq, plain=not decided.extra)

    def _protocol_error(self, connection: AdapterConnection, frame_type: str, reason: str,
                        code: str) -> _Pending | None:
        """Queue the audit record of a refused frame; its answer waits for it to be durable."""
        return self.core.journal.decide([Fact(EventKind.protocol_error, f"adapter:{connection.adapter_id}", {
            "adapter_id": connection.adapter_id, "adapter_generation": connection.adapter_generation,
            "frame_type": frame_type, "code": code, "reason": reason[:500]})])

    async def _route(self, connection: AdapterConnection, frame_type: str, frame: Any,
                     frame_key: tuple[str, int, int] | None) -> Decided:
        """Decide the frame: reports and leases by the entity actor that owns them (it answers
        once it has decided), session frames here; the facts are queued for commit, not yet
        durable."""
        core = self.core
        timeout = core.settings.ask_timeout
        decided: Decided
        if frame_type == "report":
            record = core.journal.speculative.command_brief(frame.command_id)  # archived: a late outcome
            if record is None or record.adapter_id != connection.adapter_id:
                raise ProtocolError(f"unknown command {frame.command_id} for adapter {connection.adapter_id}")
            actor = core.actors.get_or_start(f"command:{frame.command_id}",
                                             lambda: command_spec(core, frame.command_id))
            message = Report(connection.adapter_id, frame.state, frame.failure, frame.result, frame.reason, frame_key)
            decided = await actor.ask(message, timeout=timeout)
            return decided
        if frame_type == "lease":
            if frame.op == "acquire":
                resource, scope = frame.resource, frame.scope
                owner = access.scope_owner(core.journal.speculative, scope)
                if owner is not None and owner != connection.adapter_id:
                    raise ProtocolError(f"lease scope {scope!r} belongs to adapter {owner}, not to "
                                        f"{connection.adapter_id}")
            else:
                lease = core.journal.speculative.leases.get(frame.lease_id or "")
                if lease is None:
                    raise ProtocolError(f"unknown lease {frame.lease_id}")
                resource, scope = lease.resource, lease.scope
            actor = core.actors.get_or_start(f"lease:{scope}:{resource}", lambda: lease_spec(core, resource, scope))
            request = LeaseRequest(frame.op, connection.holder, frame.lease_id, frame.ttl, frame_key)
            decided = await actor.ask(request, timeout=timeout)
            return decided
        if frame_type == "elicitation_closed":
            elicitation = core.journal.speculative.elicitations.get(frame.elicitation_id)
            if elicitation is None or not elicitation.target.startswith(f"{connection.adapter_id}/"):
                raise ProtocolError(f"unknown elicitation {frame.elicitation_id}")
        # A session-scoped frame is decided here, in this step: nothing awaits between its
        # decision and queueing its facts, so frames about one session are serialized without
        # an actor (which would cost two task switches per frame on the streaming path).
        try:
            outcome = self.decide_session_frame(connection, frame_type, frame)
            return Decided(outcome, core.journal.decide(outcome.facts, frame=frame_key))
        except (ProtocolError, CoreStopped):
            raise
        except Exception as error:  # a decider bug: nothing was queued (decide rolls back)
            raise FrameCrashed(f"deciding the {frame_type} frame failed: {error!r}") from error

    def decide_session_frame(self, connection: AdapterConnection, frame_type: str, frame: Any) -> lifecycle.Outcome:
        """The decision for one session-scoped frame, against the speculative state."""
        state = self.core.journal.speculative
        adapter_id = connection.adapter_id
        if frame_type == "session":
            return lifecycle.decide_session_report(
                state, adapter_id, connection.deployment_scope, frame.runtime_session_id, frame.generation,
                frame.label, frame.metadata, frame.activity, frame.snapshot_tier, frame.connectivity)
        if frame_type == "elicitation_closed":
            return lifecycle.decide_elicitation_closed(state, frame.elicitation_id, frame.state, frame.reason)
        session, stale = lifecycle.live_session(state, adapter_id, frame.runtime_session_id, frame.generation,
                                                frame_type)
        if session is None:
            assert stale is not None
            return stale
        if frame_type == "observation":
            return lifecycle.decide_observation(session, frame.command_id, frame.observation, frame.activity)
        if frame_type == "elicitation":
            return lifecycle.decide_elicitation_opened(
                state, session, frame.elicitation_id, frame.kind, frame.command_id, frame.title,
                frame.body, frame.options, frame.expires_at)
        if frame_type == "reply":
            return lifecycle.decide_reply(state, session, frame.reply_id, frame.correlates_kind,
                                          frame.correlates_id, frame.content)
        raise ProtocolError(f"unexpected frame type {frame_type}")
