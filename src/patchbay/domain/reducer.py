"""The one reducer: ``apply(state, event)`` for live state, crash recovery and offline replay.

It is deterministic and touches nothing but the state it is given: no clock (times come from
the event), no I/O, no randomness. It enforces the durable rules that must hold whatever a
decider did, so a journal is read the same way by every path:

- a command's first durable terminal commit wins; a later terminal candidate is kept on the
  record as a late outcome and never rewrites the state (LsnDeterminesTerminalWinner);
- a transition outside the registry's table is ignored (and flagged by ``replay --check``);
- a session generation only moves forward (GenerationMonotonic);
- a command that settles enters the window of ``SETTLED_WINDOW`` settled commands kept in
  full; the oldest one leaving the window is archived to a compact entry, so the state follows
  live work rather than history. Events about an archived command change nothing in the state
  (it is terminal: they are late outcomes); its full record is rebuilt from its events
  (``domain.history``) with this same reducer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from patchbay.domain import model, push_subscriptions
from patchbay.domain.events import EventKind
from patchbay.domain.model import (
    AdapterRecord,
    ArchivedCommand,
    CommandRecord,
    CoreState,
    ElicitationRecord,
    EndpointRecord,
    GrantRecord,
    Issuer,
    LeaseRecord,
    Lockdown,
    OperatorSessionRecord,
    SessionRecord,
    Transition,
)
from patchbay.domain.records import constructor, evolve
from patchbay.registry import COMMAND_TRANSITIONS as _TRANSITIONS
from patchbay.registry import TERMINAL_COMMAND_STATES as _TERMINAL
from patchbay.registry import (
    CommandKind,
    CommandState,
    ElicitationKind,
    ElicitationState,
    Failure,
    LeaseState,
    RevocationPolicy,
    SessionActivityState,
    SessionConnectivityState,
    SnapshotTier,
)


class Event(Protocol):
    """What the reducer needs of a journaled event (``patchbay.journal.StoredEvent`` fits)."""

    @property
    def lsn(self) -> int: ...
    @property
    def core_generation(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


Handler = Callable[[CoreState, Event], None]
_HANDLERS: dict[str, Handler] = {}


def _on(kind: EventKind) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[kind.value] = handler
        return handler

    return register


def apply(state: CoreState, event: Event) -> CoreState:
    """Fold one committed event into ``state`` (in place) and return it.

    Unknown kinds are skipped, so an older core can still read a newer journal's prefix of
    kinds it knows; ``replay --check`` reports them.
    """
    handler = _HANDLERS.get(event.kind)
    if handler is not None:
        handler(state, event)
    frame = event.payload.get("adapter_frame")
    if frame is not None:
        adapter_id, generation, seq = frame
        previous = state.adapter_frames.get(adapter_id, (0, 0))
        if (generation, seq) > previous:
            state.adapter_frames[adapter_id] = (generation, seq)
    state.last_lsn = event.lsn
    return state


# Registry values by their journal string: a dict lookup instead of an enum call per event
# (``Enum.__call__`` costs ~0.4 µs). A value not found (or unhashable) falls back to the enum
# call itself, so a bad value still raises exactly what it raised before.
_COMMAND_STATES: dict[str, CommandState] = {member.value: member for member in CommandState}
_FAILURES: dict[str, Failure] = {member.value: member for member in Failure}
_COMMAND_KINDS: dict[str, CommandKind] = {member.value: member for member in CommandKind}


def _optional_failure(value: Any) -> Failure | None:
    if not value:
        return None
    try:
        return _FAILURES[value]
    except (KeyError, TypeError):
        return Failure(value)


# ``Transition(state, lsn, ts, failure)`` with its slots set directly (one per command transition).
_transition = constructor(Transition)


def _command_kind(value: Any) -> CommandKind:
    try:
        return _COMMAND_KINDS[value]
    except (KeyError, TypeError):
        return CommandKind(value)


# -- domain and operators ------------------------------------------------------------------


@_on(EventKind.domain_initialized)
def _domain_initialized(state: CoreState, event: Event) -> None:
    state.authority_domain_id = str(event.payload["authority_domain_id"])


@_on(EventKind.core_started)
def _core_started(state: CoreState, event: Event) -> None:
    state.core_generation = int(event.payload["core_generation"])


@_on(EventKind.operator_created)
@_on(EventKind.operator_password_changed)
def _operator(state: CoreState, event: Event) -> None:
    state.operators[str(event.payload["operator_id"])] = str(event.payload["password_hash"])


@_on(EventKind.endpoint_enrolled)
def _endpoint_enrolled(state: CoreState, event: Event) -> None:
    p = event.payload
    state.endpoints[p["endpoint_id"]] = EndpointRecord(
        endpoint_id=p["endpoint_id"],
        kind=p["endpoint_kind"],
        label=p.get("label", ""),
        operator_id=p["operator_id"],
        enrolled_ts=event.ts,
    )


@_on(EventKind.endpoint_revoked)
def _endpoint_revoked(state: CoreState, event: Event) -> None:
    endpoint_id = event.payload["endpoint_id"]
    record = state.endpoints.get(endpoint_id)
    if record is not None:
        state.endpoints[endpoint_id] = evolve(record, revoked=True)
    for session_id, session in list(state.operator_sessions.items()):
        if session.endpoint_id == endpoint_id and not session.revoked:
            state.operator_sessions[session_id] = evolve(
                session, revoked=True, ended_reason="endpoint revoked"
            )
    push_subscriptions.drop(state, lambda s: s.endpoint_id == endpoint_id)


@_on(EventKind.operator_session_created)
def _operator_session_created(state: CoreState, event: Event) -> None:
    p = event.payload
    state.operator_sessions[p["session_id"]] = OperatorSessionRecord(
        session_id=p["session_id"],
        operator_id=p["operator_id"],
        endpoint_id=p["endpoint_id"],
        kind=p["session_kind"],
        token_hash=p["token_hash"],
        created_ts=event.ts,
        idle_timeout=float(p["idle_timeout"]),
        absolute_expiry=float(p["absolute_expiry"]),
        address=p.get("address", ""),
    )


@_on(EventKind.operator_session_revoked)
@_on(EventKind.operator_session_expired)
@_on(EventKind.logout)
def _operator_session_ended(state: CoreState, event: Event) -> None:
    session_id = event.payload["session_id"]
    record = state.operator_sessions.get(session_id)
    if record is not None and not record.revoked:
        reason = event.payload.get("reason") or event.kind
        state.operator_sessions[session_id] = evolve(record, revoked=True, ended_reason=reason)
    push_subscriptions.drop(state, lambda s: s.session_id == session_id)


_on(EventKind.push_subscribed)(push_subscriptions.subscribed)
_on(EventKind.push_unsubscribed)(push_subscriptions.unsubscribed)


# -- authority ---------------------------------------------------------------------------


@_on(EventKind.grant_created)
def _grant_created(state: CoreState, event: Event) -> None:
    p = event.payload
    state.grants[p["grant_id"]] = GrantRecord(
        grant_id=p["grant_id"],
        subject=p["subject"],
        scope=dict(p["scope"]),
        kinds=tuple(CommandKind(k) for k in p["kinds"]),
        created_ts=event.ts,
        provenance=p.get("provenance", ""),
        revocation_policy=RevocationPolicy(p.get("revocation_policy", RevocationPolicy.continue_)),
        endpoint_id=p.get("endpoint_id"),
        expires_at=p.get("expires_at"),
    )


@_on(EventKind.grant_revoked)
def _grant_revoked(state: CoreState, event: Event) -> None:
    grant_id = event.payload["grant_id"]
    record = state.grants.get(grant_id)
    if record is not None and not record.revoked:
        state.grants[grant_id] = evolve(record, revoked=True, revoked_ts=event.ts)


@_on(EventKind.lockdown_entered)
def _lockdown_entered(state: CoreState, event: Event) -> None:
    state.lockdown = Lockdown(
        active=True, reason=str(event.payload.get("reason", "")), since_ts=event.ts, since_lsn=event.lsn
    )
    for session_id, session in list(state.operator_sessions.items()):
        if not session.revoked:
            state.operator_sessions[session_id] = evolve(
                session, revoked=True, ended_reason="lockdown"
            )
    for target, runtime_session in list(state.sessions.items()):
        if runtime_session.connectivity is SessionConnectivityState.live:
            state.sessions[target] = evolve(
                runtime_session, connectivity=SessionConnectivityState.stale, revision=event.lsn
            )


@_on(EventKind.lockdown_exited)
def _lockdown_exited(state: CoreState, event: Event) -> None:
    state.lockdown = Lockdown()


# -- adapters and sessions ---------------------------------------------------------------


@_on(EventKind.adapter_registered)
def _adapter_registered(state: CoreState, event: Event) -> None:
    p = event.payload
    state.adapters[p["adapter_id"]] = AdapterRecord(
        adapter_id=p["adapter_id"],
        kind=p["adapter_kind"],
        credential_hash=p["credential_hash"],
        registered_ts=event.ts,
    )


@_on(EventKind.adapter_attached)
def _adapter_attached(state: CoreState, event: Event) -> None:
    p = event.payload
    record = state.adapters.get(p["adapter_id"])
    if record is None:
        return
    state.adapters[record.adapter_id] = evolve(
        record,
        attached=True,
        adapter_generation=int(p["adapter_generation"]),
        deployment_scope=p.get("deployment_scope", ""),
        manifest=dict(p.get("manifest", {})),
        attach_lsn=event.lsn,
        connection_id=p.get("connection_id", ""),
        last_change_ts=event.ts,
    )


@_on(EventKind.adapter_detached)
@_on(EventKind.adapter_failed)
def _adapter_detached(state: CoreState, event: Event) -> None:
    record = state.adapters.get(event.payload["adapter_id"])
    if record is None or not record.attached:
        return
    if int(event.payload.get("adapter_generation", record.adapter_generation)) != record.adapter_generation:
        return
    state.adapters[record.adapter_id] = evolve(
        record, attached=False, connection_id="", last_change_ts=event.ts
    )


@_on(EventKind.adapter_capabilities_changed)
def _adapter_capabilities(state: CoreState, event: Event) -> None:
    record = state.adapters.get(event.payload["adapter_id"])
    if record is not None:
        state.adapters[record.adapter_id] = evolve(record, manifest=dict(event.payload["manifest"]))


@_on(EventKind.session_reported)
def _session_reported(state: CoreState, event: Event) -> None:
    p = event.payload
    target = p["target"]
    current = state.sessions.get(target)
    generation = int(p["generation"])
    tombstoned: tuple[int, ...] = ()
    if current is not None:
        if generation < current.generation:
            return
        tombstoned = current.tombstoned
        if generation > current.generation:
            tombstoned = (*tombstoned, current.generation)
    state.sessions[target] = SessionRecord(
        adapter_id=p["adapter_id"],
        deployment_scope=p.get("deployment_scope", ""),
        runtime_session_id=p["runtime_session_id"],
        generation=generation,
        connectivity=SessionConnectivityState(p.get("connectivity", SessionConnectivityState.live)),
        activity=SessionActivityState(p.get("activity", SessionActivityState.unknown)),
        label=p.get("label", ""),
        metadata=dict(p.get("metadata", {})),
        snapshot_tier=SnapshotTier(p.get("snapshot_tier", SnapshotTier.none)),
        updated_ts=event.ts,
        revision=event.lsn,
        tombstoned=tombstoned,
    )


@_on(EventKind.session_connectivity)
def _session_connectivity(state: CoreState, event: Event) -> None:
    session = state.sessions.get(event.payload["target"])
    if session is None or int(event.payload["generation"]) != session.generation:
        return
    connectivity = SessionConnectivityState(event.payload["connectivity"])
    activity = session.activity
    if connectivity in (SessionConnectivityState.offline, SessionConnectivityState.failed):
        activity = SessionActivityState.unknown
    state.sessions[session.target] = evolve(
        session, connectivity=connectivity, activity=activity, updated_ts=event.ts, revision=event.lsn
    )


@_on(EventKind.session_activity)
def _session_activity(state: CoreState, event: Event) -> None:
    session = state.sessions.get(event.payload["target"])
    if session is None or int(event.payload["generation"]) != session.generation:
        return
    changes: dict[str, Any] = {
        "activity": SessionActivityState(event.payload["activity"]),
        "updated_ts": event.ts,
        "revision": event.lsn,
    }
    if "metadata" in event.payload:
        changes["metadata"] = {**session.metadata, **event.payload["metadata"]}
    if "label" in event.payload:
        changes["label"] = event.payload["label"]
    state.sessions[session.target] = evolve(session, **changes)


# -- commands ----------------------------------------------------------------------------


@_on(EventKind.command_accepted)
def _command_accepted(state: CoreState, event: Event) -> None:
    p = event.payload
    command_id = p["command_id"]
    if command_id in state.commands or command_id in state.archived:
        return
    issuer = p["issuer"]
    state.commands[command_id] = CommandRecord(
        command_id=command_id,
        idempotency_key=p["idempotency_key"],
        kind=_command_kind(p["kind"]),
        target=p["target"],
        adapter_id=p["adapter_id"],
        deployment_scope=p.get("deployment_scope", ""),
        runtime_session_id=p["runtime_session_id"],
        generation=int(p["generation"]),
        payload=dict(p["payload"]),
        payload_digest=p["payload_digest"],
        state=CommandState.accepted,
        accepted_lsn=event.lsn,
        accepted_ts=event.ts,
        issuer=Issuer(
            operator_id=issuer["operator_id"],
            endpoint_id=issuer["endpoint_id"],
            session_id=issuer["session_id"],
            transport=issuer["transport"],
        ),
        grant_id=p["grant_id"],
        expires_at=p.get("expires_at"),
        supersedes=p.get("supersedes"),
        history=(_transition(CommandState.accepted, event.lsn, event.ts, None),),
        revision=event.lsn,
    )
    state.idempotency[p["idempotency_key"]] = command_id


@_on(EventKind.command_transitioned)
def _command_transitioned(state: CoreState, event: Event) -> None:
    p = event.payload
    record = state.commands.get(p["command_id"])
    if record is None:
        return
    try:
        target_state = _COMMAND_STATES[p["state"]]
    except (KeyError, TypeError):
        target_state = CommandState(p["state"])
    failure = _optional_failure(p.get("failure"))
    current = record.state
    if current in _TERMINAL:
        # First durable terminal commit wins: a later candidate is reconciliation data only.
        late = {
            "candidate_state": target_state.value,
            "candidate_failure": failure.value if failure else None,
            "lsn": event.lsn,
        }
        state.commands[record.command_id] = evolve(
            record, late_outcomes=(*record.late_outcomes, late)
        )
        return
    if target_state not in _TRANSITIONS[current]:  # registry.command_transition_allowed
        return
    result = p.get("result")
    state.commands[record.command_id] = evolve(
        record,
        state=target_state,
        failure=failure,
        result=dict(result) if result is not None else record.result,
        reason=p.get("reason") or record.reason,
        history=(*record.history, _transition(target_state, event.lsn, event.ts, failure)),
        revision=event.lsn,
    )
    if target_state in _TERMINAL:
        _settled(state, record.command_id)


def _settled(state: CoreState, command_id: str) -> None:
    """Enter the window of settled commands; archive whatever falls out of it."""
    state.settled.append(command_id)
    while len(state.settled) > max(1, model.SETTLED_WINDOW):
        oldest = state.commands.pop(state.settled.popleft(), None)
        if oldest is not None:
            state.archived[oldest.command_id] = ArchivedCommand.of(oldest)


@_on(EventKind.command_late_outcome)
def _command_late_outcome(state: CoreState, event: Event) -> None:
    p = event.payload
    record = state.commands.get(p["command_id"])
    if record is None:
        return
    late = {
        "candidate_state": p.get("candidate_state"),
        "candidate_failure": p.get("candidate_failure"),
        "lsn": event.lsn,
    }
    state.commands[record.command_id] = evolve(record, late_outcomes=(*record.late_outcomes, late))


# -- elicitations ------------------------------------------------------------------------


@_on(EventKind.elicitation_opened)
def _elicitation_opened(state: CoreState, event: Event) -> None:
    p = event.payload
    elicitation_id = p["elicitation_id"]
    if elicitation_id in state.elicitations:
        return
    state.elicitations[elicitation_id] = ElicitationRecord(
        elicitation_id=elicitation_id,
        kind=ElicitationKind(p["elicitation_kind"]),
        target=p["target"],
        generation=int(p["generation"]),
        command_id=p.get("command_id"),
        title=p.get("title", ""),
        body=p.get("body", ""),
        options=tuple(p.get("options", ())),
        state=ElicitationState.pending,
        opened_lsn=event.lsn,
        opened_ts=event.ts,
        expires_at=p.get("expires_at"),
        revision=event.lsn,
    )
    command_id = p.get("command_id")
    command = state.commands.get(command_id) if command_id else None
    if command is not None:
        state.commands[command.command_id] = evolve(
            command, elicitations=(*command.elicitations, elicitation_id)
        )
    elif command_id and command_id in state.archived:
        archived = state.archived[command_id]
        state.archived[command_id] = archived._replace(elicitations=(*archived.elicitations, elicitation_id))


@_on(EventKind.elicitation_resolved)
def _elicitation_resolved(state: CoreState, event: Event) -> None:
    p = event.payload
    record = state.elicitations.get(p["elicitation_id"])
    if record is None or record.state is not ElicitationState.pending:
        return
    answer = p.get("answer")
    state.elicitations[record.elicitation_id] = evolve(
        record,
        state=ElicitationState(p["state"]),
        answer=dict(answer) if answer is not None else None,
        resolved_by=p.get("by_command_id"),
        revision=event.lsn,
    )


# -- leases ------------------------------------------------------------------------------


@_on(EventKind.lease_acquired)
def _lease_acquired(state: CoreState, event: Event) -> None:
    p = event.payload
    state.leases[p["lease_id"]] = LeaseRecord(
        lease_id=p["lease_id"],
        resource=p["resource"],
        scope=p["scope"],
        holder=p["holder"],
        expires_at=float(p["expires_at"]),
        state=LeaseState.held,
        revision=event.lsn,
    )


@_on(EventKind.lease_renewed)
def _lease_renewed(state: CoreState, event: Event) -> None:
    record = state.leases.get(event.payload["lease_id"])
    if record is not None and record.state is LeaseState.held:
        state.leases[record.lease_id] = evolve(
            record, expires_at=float(event.payload["expires_at"]), revision=event.lsn
        )


@_on(EventKind.lease_released)
def _lease_released(state: CoreState, event: Event) -> None:
    record = state.leases.get(event.payload["lease_id"])
    if record is not None and record.state is LeaseState.held:
        state.leases[record.lease_id] = evolve(record, state=LeaseState.released, revision=event.lsn)


@_on(EventKind.lease_expired)
def _lease_expired(state: CoreState, event: Event) -> None:
    record = state.leases.get(event.payload["lease_id"])
    if record is not None and record.state is LeaseState.held:
        state.leases[record.lease_id] = evolve(record, state=LeaseState.expired, revision=event.lsn)
