"""The core's public async API: what the web app, the adapter endpoint, the CLI and the tests use.

``Core`` wires the journaled state, the event bus, timers, the supervised entity actors
(commands, sessions, leases) and the adapter connections. Decisions come from
``patchbay.domain``; this module only supplies time, ids, durability and delivery.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

import attrs
import trio

from patchbay import faults
from patchbay.actors import ActorError, ActorRef, ActorSystem, Intensity, Supervisor
from patchbay.core._entities import Expire, command_spec, lease_spec
from patchbay.core._health import Health
from patchbay.core._state import JournaledState
from patchbay.core.bus import EventBus
from patchbay.core.ports import Clock, IdSource, RandomIds, SystemClock
from patchbay.core.secrets import hash_password, token_hash, verify_password
from patchbay.core.timers import TimerKey, Timers
from patchbay.domain import access, history, lifecycle
from patchbay.domain.acceptance import Submission, decide_submission
from patchbay.domain.events import AUDIT_KINDS, AUDIT_REDACTED_FIELDS, EventKind, Fact
from patchbay.domain.model import (
    ArchivedCommand,
    CommandRecord,
    CoreState,
    Issuer,
    OperatorSessionRecord,
)
from patchbay.errors import CoreStopped, NotFound, Refused
from patchbay.journal import (
    JournalStore,
    JournalWriteFailed,
    NewEvent,
    StoredEvent,
    read_head,
    write_head,
)
from patchbay.registry import (
    CommandKind,
    CommandState,
    ElicitationState,
    Failure,
    LeaseState,
    RevocationPolicy,
    SubmissionOutcome,
)

OPERATOR_ID = "operator"
TIMER_RETRY = 1.0  # seconds before a deadline whose entity actor failed is tried again
ALL_KINDS = [kind.value for kind in CommandKind]
QUIET_CHECKPOINT_AFTER = 0.5  # seconds without a commit before a quiet checkpoint
QUIET_CHECKPOINT_MIN = 1_000  # events since the last checkpoint that make one worth it


@attrs.frozen
class CoreSettings:
    stale_after: float = 15.0
    offline_after: float = 45.0
    heartbeat_interval: float = 5.0
    checkpoint_every: int = 20_000
    session_idle: float = 7 * 24 * 3600.0
    session_absolute: float = 30 * 24 * 3600.0
    ask_timeout: float = 30.0


@attrs.frozen
class SubmissionResult:
    outcome: SubmissionOutcome
    failure: Failure | None
    reason: str
    command: CommandRecord | None


@attrs.frozen
class LoginResult:
    session_id: str
    token: str
    operator_id: str
    endpoint_id: str


def initialize_journal(path: Path, domain_id: str, password: str | None, clock: Clock | None = None,
                       ids: IdSource | None = None) -> None:
    """Create a new journal with its authority domain, the operator and the default grant."""
    clock = clock or SystemClock()
    ids = ids or RandomIds()
    store = JournalStore.create(path, domain_id)
    try:
        now = clock.now()
        facts = [Fact(EventKind.domain_initialized, "domain", {"authority_domain_id": domain_id})]
        if password is not None:  # else: the operator is created through the one-time setup secret
            facts += [
                Fact(EventKind.operator_created, f"operator:{OPERATOR_ID}",
                     {"operator_id": OPERATOR_ID, "password_hash": hash_password(password)}),
                *access.decide_grant(ids.new_id("grant"), OPERATOR_ID, {"type": "all"}, ALL_KINDS, None,
                                     RevocationPolicy.continue_.value,
                                     "patchbay init: the operator's default grant").facts,
            ]
        store.append_batch([NewEvent(kind=f.kind.value, entity=f.entity, payload=f.payload, ts=now) for f in facts])
    finally:
        store.close()


class Core:
    """One authority domain's core. Use ``async with Core.open(...) as core`` or ``run``."""

    def __init__(self, journal_path: Path, *, expected_domain: str | None = None,
                 clock: Clock | None = None, ids: IdSource | None = None,
                 settings: CoreSettings | None = None, synchronous: str = "FULL") -> None:
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self.settings = settings or CoreSettings()
        self.journal_path = journal_path
        # Recovery reads the journal before this run's generation is written: a journal found
        # damaged on the way is refused with nothing written to it.
        self.health = Health()  # failed checkpoints, journal write failures: GET /api/status
        self._store = JournalStore.open(journal_path, expected_domain=expected_domain, synchronous=synchronous,
                                        start_generation=False)
        self._reader = JournalStore.open(journal_path, expected_domain=expected_domain, read_only=True)
        try:
            self.journal = JournaledState(self._store, self.clock, checkpoint_every=self.settings.checkpoint_every,
                                          on_commit=self._after_commit, health=self.health)
            self._store.start_generation()
            self._head_claim = read_head(journal_path, self._store.domain_id)
        except BaseException:
            self._reader.close()
            self._store.close()
            raise
        self.bus: EventBus[StoredEvent] = EventBus()
        self.timers = Timers(self.clock, self._fire)
        self.supervisor = Supervisor("core", Intensity(max_restarts=20, within=10.0))
        self.actors = ActorSystem(self.supervisor)
        self._session_last_seen: dict[str, float] = {}
        self._nursery: trio.Nursery | None = None
        self._checkpointing = False
        self._last_commit = self.clock.now()
        self._quiet_wanted = trio.Event()  # enough committed since the last checkpoint
        self._quiet_min = max(QUIET_CHECKPOINT_MIN, self.settings.checkpoint_every // 10)
        self._running = False
        self._started_ts = self.clock.now()
        self._inflight: dict[str, trio.Event] = {}
        # Archived commands by accepted LSN, per target and all (key None), for `commands`;
        # built lazily from the committed archive, which only grows (in archive order).
        self._archive_index: dict[str | None, list[ArchivedCommand]] = {}
        self._archive_indexed = 0
        self.stopping = trio.Event()  # set by serve on SIGINT/SIGTERM: websockets close with a reason
        from patchbay.core._adapters import AdapterPlane

        self.adapters = AdapterPlane(self)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def state(self) -> CoreState:
        """The committed state: what is durable. Read-only for callers."""
        return self.journal.committed

    @property
    def domain_id(self) -> str:
        return self._store.domain_id

    @property
    def core_generation(self) -> int:
        return self._store.core_generation

    async def run(self, *, task_status: trio.TaskStatus[Core] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the core until cancelled. Reports readiness once recovery is complete."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.journal.run)
                await nursery.start(self.timers.run)
                await nursery.start(self.supervisor.run)
                try:
                    await self.journal.persist([Fact(EventKind.core_started, "core",
                                                     {"core_generation": self.core_generation})])
                except CoreStopped as stopped:  # e.g. a full disk: refuse to start, clearly
                    raise JournalWriteFailed(f"{self.journal_path} cannot take writes, so the core cannot start: "
                                             f"{stopped}. If the disk is full, free space on it and start again "
                                             "(docs/RUNBOOK.md, \"Recovery\")") from None
                if self._head_claim is not None:
                    self.history_beyond_head("the journal's head file (journal.db-head)", self._head_claim)
                await self._recover()
                nursery.start_soon(self._checkpoint_when_quiet)
                self._running = True
                task_status.started(self)
        finally:
            if self._running:  # an orderly stop: what is committed is the head
                with contextlib.suppress(OSError):
                    write_head(self.journal_path, self.domain_id, self.state.last_lsn)
            self._running = False
            # The reader first: the last connection to close merges the WAL into the file, and
            # only the writing one can.
            self._reader.close()
            self._store.close()

    async def _recover(self) -> None:
        """After a restart nothing is attached: settle what the previous run left open."""
        await self.adapters.recover()
        now = self.clock.now()
        for record in list(self.state.commands.values()):
            if not record.terminal and record.expires_at is not None:
                self.timers.arm(("command-expiry", record.command_id), record.expires_at)
        for elicitation in self.state.elicitations.values():
            if elicitation.state is ElicitationState.pending and elicitation.expires_at is not None:
                self.timers.arm(("elicitation-expiry", elicitation.elicitation_id), elicitation.expires_at)
        for lease in self.state.leases.values():
            if lease.live_at(now) or lease.state is LeaseState.held:
                self.timers.arm(("lease-expiry", lease.lease_id), lease.expires_at)
        for session in self.state.operator_sessions.values():
            if not session.revoked:
                self._arm_session_expiry(session)

    def history_beyond_head(self, source: str, claimed: int) -> None:
        """``source`` knows of LSN ``claimed`` (an adapter's acknowledged frame, a client's
        cursor, the head file): beyond the journal's head, that is evidence durable history
        was lost. Never silent: logged, shown in ``GET /api/status`` and journaled as an audit
        record (once per source and claim)."""
        head = self.state.last_lsn
        if claimed > head and self.health.history_lost(source, claimed, head) and self._nursery is not None:
            self._nursery.start_soon(self._record_history_lost, source, claimed, head)

    async def _record_history_lost(self, source: str, claimed: int, head: int) -> None:
        with contextlib.suppress(CoreStopped):  # the journal takes no writes: the status shows it
            await self.record(EventKind.history_lost, "journal", {"source": source, "claimed": claimed,
                                                                  "head": head})

    def stop(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _after_commit(self, stored: list[StoredEvent]) -> None:
        """Runs synchronously after each commit: publish, then schedule what the events imply."""
        self.bus.publish(stored)
        for event in stored:
            if event.kind == EventKind.command_accepted:
                expires_at = event.payload.get("expires_at")
                if expires_at is not None:
                    self.timers.arm(("command-expiry", event.payload["command_id"]), float(expires_at))
            elif event.kind == EventKind.elicitation_opened and event.payload.get("expires_at"):
                self.timers.arm(("elicitation-expiry", event.payload["elicitation_id"]),
                                float(event.payload["expires_at"]))
            elif event.kind in (EventKind.lease_acquired, EventKind.lease_renewed):
                self.timers.arm(("lease-expiry", event.payload["lease_id"]), float(event.payload["expires_at"]))
        self.adapters.after_commit(stored)
        self._last_commit = self.clock.now()
        if self.journal.checkpoint_due():
            self.timers.arm(("checkpoint",), self.clock.now())
        elif self.journal.since_checkpoint >= self._quiet_min:
            self._quiet_wanted.set()

    async def _checkpoint_when_quiet(self) -> None:
        """Checkpoint, unpaced, once the journal has had no commit for
        ``QUIET_CHECKPOINT_AFTER`` seconds and at least ``_quiet_min`` events came since the
        last checkpoint: what a burst of work changed is written while nothing else waits for
        the loop, instead of at the next interval, in the middle of whatever comes next.
        Sleeps while nothing is committed (no wake-ups in an idle core)."""
        while True:
            await self._quiet_wanted.wait()
            while self.clock.now() < (due := self._last_commit + QUIET_CHECKPOINT_AFTER):
                await self.clock.sleep_until(due)
            self._quiet_wanted = trio.Event()
            if self._checkpointing or self.journal.since_checkpoint < self._quiet_min:
                continue
            self._checkpointing = True
            await self._checkpoint(paced=False)

    async def _checkpoint(self, *, paced: bool = True) -> None:
        """One checkpoint; ``_checkpointing`` is set by the caller (at most one at a time).

        A checkpoint is only an optimisation (the journal is the truth): one that fails is
        logged and counted (``GET /api/status``), and the next is tried after the next
        interval; it never stops the core."""
        try:
            await self.journal.checkpoint(paced=paced)
        except Exception as error:  # noqa: BLE001 - counted and logged; Cancelled passes
            self.health.checkpoint_failed(error)
        finally:
            self._checkpointing = False
        if self.journal.checkpoint_due():  # the state moved on by a whole interval meanwhile
            self.timers.arm(("checkpoint",), self.clock.now())

    async def _timer_ask(self, key: TimerKey, actor: ActorRef[Any], message: Any) -> None:
        """A deadline's message to its entity actor. If the actor crashed on it (its supervisor
        restarts it) or did not answer in time, the deadline is armed again a little later:
        a deadline is never dropped, and a failing entity never takes the timers down."""
        try:
            await actor.ask(message, timeout=self.settings.ask_timeout)
        except ActorError:
            self.timers.arm(key, self.clock.now() + TIMER_RETRY)

    async def _fire(self, key: TimerKey) -> None:
        """A deadline passed: decide what it means. While the journal takes no writes, the
        deadline is armed again a little later (never dropped)."""
        try:
            await self._fire_now(key)
        except CoreStopped:
            self.timers.arm(key, self.clock.now() + TIMER_RETRY)

    async def _fire_now(self, key: TimerKey) -> None:
        now = self.clock.now()
        kind = key[0]
        if kind == "command-expiry":
            command_id = str(key[1])
            record = self.journal.speculative.commands.get(command_id)
            if record is not None and not record.terminal:
                actor = self.actors.get_or_start(f"command:{command_id}", lambda: command_spec(self, command_id))
                await self._timer_ask(key, actor, Expire(now))
        elif kind == "elicitation-expiry":
            elicitation = self.journal.speculative.elicitations.get(str(key[1]))
            if elicitation is not None and elicitation.expires_at is not None and now >= elicitation.expires_at:
                outcome = lifecycle.decide_elicitation_closed(self.journal.speculative, elicitation.elicitation_id,
                                                              ElicitationState.expired.value, "deadline passed")
                await self.journal.persist(outcome.facts, now=now)
        elif kind == "lease-expiry":
            lease = self.journal.speculative.leases.get(str(key[1]))
            if lease is not None and lease.state is LeaseState.held:
                resource, scope = lease.resource, lease.scope
                actor = self.actors.get_or_start(f"lease:{scope}:{resource}",
                                                 lambda: lease_spec(self, resource, scope))
                await self._timer_ask(key, actor, Expire(now))
        elif kind == "checkpoint":
            # In a task of its own: a checkpoint of a large state takes a while (in short steps),
            # and the deadlines behind it must not wait for it.
            if not self._checkpointing and self._nursery is not None:
                self._checkpointing = True
                self._nursery.start_soon(self._checkpoint)
        elif kind == "operator-session":
            await self._expire_operator_session(str(key[1]), now)
        else:
            await self.adapters.fire(key, now)

    # -- operator access -----------------------------------------------------------------

    def operator_password_ok(self, password: str) -> bool:
        stored = self.state.operators.get(OPERATOR_ID)
        return stored is not None and verify_password(stored, password)

    async def record(self, kind: EventKind, entity: str, payload: dict[str, Any]) -> None:
        """Journal an audit fact that changes nothing (login failures, refused requests)."""
        await self.journal.persist([Fact(kind, entity, payload)])

    async def create_operator_session(self, *, session_kind: str, address: str, label: str,
                                      endpoint_id: str | None = None) -> LoginResult:
        """After a verified login: enroll the endpoint (unless given) and open a session."""
        from patchbay.core.secrets import new_token

        now = self.clock.now()
        token = new_token()
        session_id = self.ids.new_id("ses")
        facts = []
        if endpoint_id is None or endpoint_id not in self.journal.speculative.endpoints:
            endpoint_id = self.ids.new_id("end")
            facts.append(Fact(EventKind.endpoint_enrolled, f"endpoint:{endpoint_id}", {
                "endpoint_id": endpoint_id, "endpoint_kind": session_kind, "label": label[:120],
                "operator_id": OPERATOR_ID,
            }))
        facts.append(Fact(EventKind.operator_session_created, f"operator_session:{session_id}", {
            "session_id": session_id, "operator_id": OPERATOR_ID, "endpoint_id": endpoint_id,
            "session_kind": session_kind, "token_hash": token_hash(token),
            "idle_timeout": self.settings.session_idle, "absolute_expiry": now + self.settings.session_absolute,
            "address": address,
        }))
        facts.append(Fact(EventKind.login_succeeded, f"operator_session:{session_id}", {
            "operator_id": OPERATOR_ID, "address": address, "session_kind": session_kind,
            "session_id": session_id,
        }))
        await self.journal.persist(facts, now=now)
        self._session_last_seen[session_id] = now
        self._arm_session_expiry(self.state.operator_sessions[session_id])
        return LoginResult(session_id, token, OPERATOR_ID, endpoint_id)

    def _last_seen(self, session: OperatorSessionRecord) -> float:
        # Idle time is tracked in memory; a core restart counts as activity, so a restart
        # never logs anyone out (the absolute expiry still holds).
        return max(self._session_last_seen.get(session.session_id, session.created_ts), self._started_ts)

    def _arm_session_expiry(self, session: OperatorSessionRecord) -> None:
        """One timer per session at its next possible expiry; activity is checked when it fires."""
        deadline = min(session.absolute_expiry, self._last_seen(session) + session.idle_timeout)
        self.timers.arm(("operator-session", session.session_id), deadline)

    async def _expire_operator_session(self, session_id: str, now: float) -> None:
        """Journal (and so audit) the expiry of a session that was not used in time."""
        session = self.journal.speculative.operator_sessions.get(session_id)
        if session is None or session.revoked:
            return
        if now >= session.absolute_expiry:
            reason = "absolute expiry"
        elif now - self._last_seen(session) >= session.idle_timeout:
            reason = "idle timeout"
        else:
            self._arm_session_expiry(session)
            return
        await self.journal.persist([Fact(EventKind.operator_session_expired, f"operator_session:{session_id}",
                                         {"session_id": session_id, "reason": reason})], now=now)

    def authenticate(self, token: str) -> OperatorSessionRecord | None:
        """The live operator session a bearer/cookie token belongs to, or None."""
        hashed = token_hash(token)
        now = self.clock.now()
        for session in self.state.operator_sessions.values():
            if session.token_hash == hashed:
                last_seen = self._last_seen(session)
                endpoint = self.state.endpoints.get(session.endpoint_id)
                if (endpoint is None or endpoint.revoked or not session.usable_at(now, last_seen)) \
                        and not faults.active("session_check_off"):
                    return None
                self._session_last_seen[session.session_id] = now
                return session
        return None

    async def end_operator_session(self, session_id: str, reason: str, *, logout: bool = False) -> None:
        record = self.state.operator_sessions.get(session_id)
        if record is None:
            raise NotFound(f"no operator session {session_id}")
        kind = EventKind.logout if logout else EventKind.operator_session_revoked
        await self.journal.persist([Fact(kind, f"operator_session:{session_id}",
                                         {"session_id": session_id, "reason": reason})])

    async def revoke_all_sessions(self, reason: str) -> int:
        facts = [Fact(EventKind.operator_session_revoked, f"operator_session:{s.session_id}",
                      {"session_id": s.session_id, "reason": reason})
                 for s in self.journal.speculative.operator_sessions.values() if not s.revoked]
        await self.journal.persist(facts)
        return len(facts)

    async def revoke_endpoint(self, endpoint_id: str, reason: str) -> None:
        endpoint = self.journal.speculative.endpoints.get(endpoint_id)
        if endpoint is None:
            raise NotFound(f"no endpoint {endpoint_id}")
        if not endpoint.revoked:
            await self.journal.persist([Fact(EventKind.endpoint_revoked, f"endpoint:{endpoint_id}",
                                             {"endpoint_id": endpoint_id, "reason": reason})])

    async def add_grant(self, *, scope: dict[str, Any], kinds: list[str], expires_at: float | None,
                        revocation_policy: str, provenance: str, endpoint_id: str | None = None) -> str:
        grant_id = self.ids.new_id("grant")
        outcome = access.decide_grant(grant_id, OPERATOR_ID, scope, kinds, expires_at, revocation_policy,
                                      provenance, endpoint_id)
        if not outcome.ok:
            raise Refused(outcome.error or "grant refused")
        await self.journal.persist(outcome.facts)
        return grant_id

    async def revoke_grant(self, grant_id: str, reason: str) -> None:
        outcome = access.decide_grant_revocation(self.journal.speculative, grant_id, reason)
        if not outcome.ok:
            raise NotFound(outcome.error or f"no grant {grant_id}")
        pending = self.journal.decide(outcome.facts)
        await self.journal.wait(pending)
        grant = self.state.grants[grant_id]
        if grant.revocation_policy is RevocationPolicy.cancel:
            # Only the runtime can stop what is running: ask its adapter, which reports the end.
            for record in self.state.commands.values():
                if record.grant_id == grant_id and record.state is CommandState.running:
                    self.adapters.withdraw(record, f"grant {grant_id} was revoked (policy cancel)")

    async def enter_lockdown(self, reason: str, by: str) -> None:
        outcome = access.decide_lockdown_enter(self.journal.speculative, reason, by)
        if not outcome.ok:
            raise Refused(outcome.error or "lockdown refused")
        await self.journal.persist(outcome.facts)

    async def exit_lockdown(self, by: str) -> None:
        """Only the local bootstrap channel calls this; the web app has no route to it."""
        await self.journal.persist(access.decide_lockdown_exit(self.journal.speculative, by).facts)

    # -- commands ------------------------------------------------------------------------

    async def submit(self, submission: Submission, issuer: Issuer) -> SubmissionResult:
        """Run the acceptance pipeline; answers only once the outcome is durable.

        A duplicate of a command whose acceptance is still committing waits for that commit
        and then answers with the record.
        """
        if not self._running:
            raise CoreStopped("the core is not running")
        now = self.clock.now()
        decision = decide_submission(self.journal.speculative, submission, issuer, now)
        try:
            pending = self.journal.decide(decision.facts, now=now)
        except CoreStopped as stopped:
            return _not_recorded(stopped)
        if decision.outcome is not SubmissionOutcome.accepted or decision.command_id is None:
            try:
                await self.journal.wait(pending)
            except CoreStopped as stopped:
                return _not_recorded(stopped)
            return SubmissionResult(decision.outcome, decision.failure, decision.reason, None)
        if decision.duplicate:
            inflight = self._inflight.get(decision.command_id)
            if inflight is not None:  # the original's acceptance is still committing
                await inflight.wait()
            record = self.find_command(decision.command_id)
            if record is None:
                return _not_recorded(CoreStopped("the original submission did not commit"))
            return SubmissionResult(decision.outcome, None, decision.reason, record)
        committed = self._inflight[decision.command_id] = trio.Event()
        try:
            await self.journal.wait(pending)
        except CoreStopped as stopped:
            return _not_recorded(stopped)
        finally:
            committed.set()
            del self._inflight[decision.command_id]
        record = self._committed_command(decision.command_id)
        if record.kind in (CommandKind.cancel, CommandKind.interrupt) \
                or self.actors.lookup(f"command:{record.command_id}") is not None:
            await self.adapters.command_accepted(record)
        else:
            # A plain command needs no decision to be delivered: hand it over in this step (no
            # await, so atomic like a message its actor handles at once). Its actor starts on
            # demand when the adapter reports; no task and mailbox live per queued command.
            live = self.journal.speculative.commands.get(record.command_id)
            if live is not None and not live.terminal:
                self.adapters.send_delivery(live)
        return SubmissionResult(decision.outcome, None, decision.reason,
                                self._committed_command(decision.command_id))

    def _committed_command(self, command_id: str) -> CommandRecord:
        record = self.find_command(command_id)
        assert record is not None, f"command {command_id} is committed"
        return record

    def find_command(self, command_id: str) -> CommandRecord | None:
        """The full committed record of a command, live or archived (rebuilt from the journal)."""
        record = self.state.commands.get(command_id)
        if record is not None:
            return record
        archived = self.state.archived.get(command_id)
        return self._rebuild(archived) if archived is not None else None

    def _rebuild(self, archived: ArchivedCommand) -> CommandRecord:
        """An archived command's full record: its own events folded by the reducer. A few
        indexed reads (``events_entity``) of the committed prefix, on the caller's edge."""
        until = self.state.last_lsn
        events = [event for entity in history.entities(archived)
                  for event in self._reader.read(entity=entity, until_lsn=until)]
        record = history.rebuild_command(archived.command_id, events)
        if record is None:  # the journal lost events the state was built from: never invent
            raise NotFound(f"command {archived.command_id} is archived but its events are missing")
        return record

    def command(self, command_id: str) -> CommandRecord:
        record = self.find_command(command_id)
        if record is None:
            raise NotFound(f"no command {command_id}")
        return record

    def command_by_key(self, idempotency_key: str) -> CommandRecord | None:
        command_id = self.state.idempotency.get(idempotency_key)
        return self.find_command(command_id) if command_id else None

    def commands(self, *, target: str | None = None, limit: int = 200) -> list[CommandRecord]:
        """The ``limit`` most recently accepted commands (of ``target``), newest first. Archived
        ones among them are rebuilt from the journal: at most ``limit`` of them."""
        limit = max(limit, 0)
        state = self.state
        live = [c for c in state.commands.values() if target is None or c.target == target]
        archived = self._archived_newest(target, limit) if limit else []
        briefs: list[CommandRecord | ArchivedCommand] = [*live, *archived]
        wanted = heapq.nlargest(limit, briefs, key=_ACCEPTED_LSN)
        return [b if isinstance(b, CommandRecord) else self._rebuild(b) for b in wanted]

    def _archived_newest(self, target: str | None, limit: int) -> list[ArchivedCommand]:
        """The ``limit`` archived commands (of ``target``) accepted last, newest first; the
        index catches up with what was archived since the last call (new entries only)."""
        archived = self.state.archived
        fresh = len(archived) - self._archive_indexed
        if fresh:
            for entry in reversed(list(itertools.islice(reversed(archived.values()), fresh))):
                for key in (None, entry.target):
                    bisect.insort(self._archive_index.setdefault(key, []), entry, key=_ACCEPTED_LSN)
            self._archive_indexed = len(archived)
        newest = self._archive_index.get(target, [])[-limit:]
        # an entry may have been replaced since (an elicitation about it): read the current one
        return [archived[entry.command_id] for entry in reversed(newest)]

    # -- journal reads -------------------------------------------------------------------

    def events_after(self, cursor: int, *, limit: int | None = None, entity: str | None = None,
                     kinds: list[str] | None = None) -> Iterator[StoredEvent]:
        return self._reader.read(after_lsn=cursor, entity=entity, kinds=kinds, limit=limit,
                                 until_lsn=self.state.last_lsn)

    def events_before(self, before: int | None, *, limit: int, entity: str) -> list[StoredEvent]:
        """The newest ``limit`` events of ``entity`` below LSN ``before`` (None: the newest), oldest first."""
        last = self.state.last_lsn
        bound = last + 1 if before is None else min(before, last + 1)
        return list(reversed(self._reader.read_descending(before_lsn=bound, entity=entity, limit=limit)))

    def audit(self, *, before_lsn: int | None = None, limit: int = 100,
              kinds: list[str] | None = None) -> list[dict[str, Any]]:
        wanted = [k for k in (kinds or sorted(AUDIT_KINDS)) if k in AUDIT_KINDS]
        events = self._reader.read_descending(before_lsn=before_lsn, kinds=wanted, limit=limit)
        return [audit_view(event) for event in events]


_ACCEPTED_LSN = attrgetter("accepted_lsn")


def _not_recorded(stopped: CoreStopped) -> SubmissionResult:
    """The journal failed under this submission: its transaction rolled back, so nothing of it
    exists and the client must not assume acceptance (SubmissionOutcome ``failed``)."""
    return SubmissionResult(SubmissionOutcome.failed, None,
                            f"not recorded: {stopped}; nothing was accepted, submit it again later", None)


def audit_view(event: StoredEvent) -> dict[str, Any]:
    """An event as the audit log shows it: secrets, hashes and prompt bodies removed."""
    payload = {k: v for k, v in event.payload.items() if k not in AUDIT_REDACTED_FIELDS}
    return {"lsn": event.lsn, "ts": event.ts, "kind": event.kind, "entity": event.entity,
            "core_generation": event.core_generation, "details": payload}
