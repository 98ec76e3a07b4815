"""The records the core remembers, and the state that holds them.

Records are frozen; the reducer replaces a record with a copy (``records.evolve``) rather than editing it,
so a record handed to a reader never changes under it. ``CoreState`` is the only mutable
container: the reducer is the only code that writes to it.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any, NamedTuple, Protocol

import attrs

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

JSON = dict[str, Any]

# How many settled (terminal) commands keep their full record in ``CoreState.commands``; older
# ones become an ``ArchivedCommand``. Counted in settle order by the reducer, so live state,
# recovery and replay archive the same commands at the same LSN. At least 1.
SETTLED_WINDOW = 1000


@attrs.frozen
class Issuer:
    """Who submitted: the operator *and* the endpoint and session it came through (CompoundIssuer)."""

    operator_id: str
    endpoint_id: str
    session_id: str
    transport: str  # "web" | "cli" | "local"

    def to_json(self) -> JSON:
        return attrs.asdict(self)


@attrs.frozen
class Transition:
    state: CommandState
    lsn: int
    ts: float
    failure: Failure | None = None


@attrs.frozen
class CommandRecord:
    command_id: str
    idempotency_key: str
    kind: CommandKind
    target: str
    adapter_id: str
    deployment_scope: str
    runtime_session_id: str
    generation: int
    payload: JSON
    payload_digest: str
    state: CommandState
    accepted_lsn: int
    accepted_ts: float
    issuer: Issuer
    grant_id: str
    expires_at: float | None = None
    supersedes: str | None = None
    failure: Failure | None = None
    result: JSON | None = None
    reason: str | None = None
    history: tuple[Transition, ...] = ()
    late_outcomes: tuple[JSON, ...] = ()
    elicitations: tuple[str, ...] = ()
    revision: int = 0

    @property
    def terminal(self) -> bool:
        return self.state.terminal


class CommandBrief(Protocol):
    """What the deciders need to know of any accepted command, live or archived."""

    @property
    def command_id(self) -> str: ...
    @property
    def idempotency_key(self) -> str: ...
    @property
    def payload_digest(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def adapter_id(self) -> str: ...
    @property
    def state(self) -> CommandState: ...
    @property
    def failure(self) -> Failure | None: ...
    @property
    def accepted_lsn(self) -> int: ...
    @property
    def terminal(self) -> bool: ...


class ArchivedCommand(NamedTuple):
    """A settled command that left the window of full records: what decisions still need.

    Enough to answer a retry of its key (with its outcome), refuse its key with another payload
    or its id with another key, refuse to supersede or cancel it (too late), turn a late report
    into a late outcome, and list it by target. The full record (payload, history, result,
    late outcomes) is rebuilt from the journal on demand (``domain.history``). A named tuple:
    small, and cheap to build by the hundred thousand when a checkpoint is decoded.
    """

    command_id: str
    idempotency_key: str
    payload_digest: str
    target: str
    adapter_id: str
    state: CommandState
    failure: Failure | None
    accepted_lsn: int
    elicitations: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        return True  # only terminal commands are archived

    @classmethod
    def of(cls, record: CommandRecord) -> ArchivedCommand:
        # tuple.__new__ from C: the generated NamedTuple __new__ is a Python call (once per settle)
        return tuple.__new__(cls, (record.command_id, record.idempotency_key, record.payload_digest,
                                   sys.intern(record.target), sys.intern(record.adapter_id), record.state,
                                   record.failure, record.accepted_lsn, record.elicitations))


@attrs.frozen
class SessionRecord:
    adapter_id: str
    deployment_scope: str
    runtime_session_id: str
    generation: int
    connectivity: SessionConnectivityState
    activity: SessionActivityState
    label: str
    metadata: JSON
    snapshot_tier: SnapshotTier
    updated_ts: float
    revision: int
    tombstoned: tuple[int, ...] = ()

    @property
    def target(self) -> str:
        return f"{self.adapter_id}/{self.runtime_session_id}"


@attrs.frozen
class ElicitationRecord:
    elicitation_id: str
    kind: ElicitationKind
    target: str
    generation: int
    command_id: str | None
    title: str
    body: str
    options: tuple[str, ...]
    state: ElicitationState
    opened_lsn: int
    opened_ts: float
    expires_at: float | None = None
    answer: JSON | None = None
    resolved_by: str | None = None
    revision: int = 0


@attrs.frozen
class LeaseRecord:
    lease_id: str
    resource: str
    scope: str
    holder: str
    expires_at: float
    state: LeaseState
    revision: int = 0

    def live_at(self, now: float) -> bool:
        """A lease authorizes something only while held and before its expiry."""
        return self.state is LeaseState.held and now < self.expires_at


@attrs.frozen
class GrantRecord:
    grant_id: str
    subject: str  # operator id
    scope: JSON  # {"type": "all"} | {"type": "adapter", "adapter_id"} | {"type": "session", "target"}
    kinds: tuple[CommandKind, ...]
    created_ts: float
    provenance: str
    revocation_policy: RevocationPolicy
    endpoint_id: str | None = None
    expires_at: float | None = None
    revoked: bool = False
    revoked_ts: float | None = None

    def covers(self, target: str, adapter_id: str) -> bool:
        scope_type = self.scope.get("type")
        if scope_type == "all":
            return True
        if scope_type == "adapter":
            return bool(self.scope.get("adapter_id") == adapter_id)
        if scope_type == "session":
            return bool(self.scope.get("target") == target)
        return False

    def live_at(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


@attrs.frozen
class EndpointRecord:
    endpoint_id: str
    kind: str  # "browser" | "cli"
    label: str
    operator_id: str
    enrolled_ts: float
    revoked: bool = False


@attrs.frozen
class PushSubscriptionRecord:
    """A browser's Web Push subscription, owned by the operator session (and device) that made it."""

    subscription_id: str
    endpoint_id: str
    session_id: str
    push_endpoint: str
    p256dh: str  # the browser's P-256 public key, base64url
    auth: str  # the browser's auth secret, base64url
    created_ts: float
    expiration_time: float | None = None


@attrs.frozen
class OperatorSessionRecord:
    session_id: str
    operator_id: str
    endpoint_id: str
    kind: str  # "browser" | "cli"
    token_hash: str
    created_ts: float
    idle_timeout: float
    absolute_expiry: float
    address: str
    revoked: bool = False
    ended_reason: str | None = None

    def usable_at(self, now: float, last_seen: float) -> bool:
        return (
            not self.revoked
            and now < self.absolute_expiry
            and now - last_seen < self.idle_timeout
        )


@attrs.frozen
class AdapterRecord:
    adapter_id: str
    kind: str
    credential_hash: str
    registered_ts: float
    attached: bool = False
    adapter_generation: int = 0
    deployment_scope: str = ""
    manifest: JSON = attrs.field(factory=dict)
    attach_lsn: int = 0
    connection_id: str = ""
    last_change_ts: float = 0.0


@attrs.frozen
class Lockdown:
    active: bool = False
    reason: str = ""
    since_ts: float | None = None
    since_lsn: int = 0


@attrs.define
class CoreState:
    """Everything the core decides on, rebuilt from the journal by ``reducer.apply``.

    ``commands`` holds the full records of the live commands and of the ``SETTLED_WINDOW``
    most recently settled ones (``settled``, in settle order); an older settled command is kept
    in ``archived`` as a compact entry, so memory, checkpoints and scans follow live work, not
    history. ``idempotency`` maps a key to the command that owns it, for every command ever
    accepted (live or archived), so a retry after a terminal outcome still finds the original.
    """

    authority_domain_id: str = ""
    core_generation: int = 0
    last_lsn: int = 0
    operators: dict[str, str] = attrs.field(factory=dict)  # operator id -> password hash
    endpoints: dict[str, EndpointRecord] = attrs.field(factory=dict)
    operator_sessions: dict[str, OperatorSessionRecord] = attrs.field(factory=dict)
    grants: dict[str, GrantRecord] = attrs.field(factory=dict)
    lockdown: Lockdown = attrs.field(factory=Lockdown)
    adapters: dict[str, AdapterRecord] = attrs.field(factory=dict)
    sessions: dict[str, SessionRecord] = attrs.field(factory=dict)
    commands: dict[str, CommandRecord] = attrs.field(factory=dict)
    settled: deque[str] = attrs.field(factory=deque)
    archived: dict[str, ArchivedCommand] = attrs.field(factory=dict)
    idempotency: dict[str, str] = attrs.field(factory=dict)
    elicitations: dict[str, ElicitationRecord] = attrs.field(factory=dict)
    leases: dict[str, LeaseRecord] = attrs.field(factory=dict)
    # adapter id -> (adapter generation, highest frame seq whose effects are journaled):
    # a frame resent after a reconnect with a seq at or below it is acknowledged, not re-applied.
    adapter_frames: dict[str, tuple[int, int]] = attrs.field(factory=dict)
    push_subscriptions: dict[str, PushSubscriptionRecord] = attrs.field(factory=dict)

    def clone(self) -> CoreState:
        """An independent copy; records are frozen, so copying the containers suffices."""
        return CoreState(
            authority_domain_id=self.authority_domain_id,
            core_generation=self.core_generation,
            last_lsn=self.last_lsn,
            operators=dict(self.operators),
            endpoints=dict(self.endpoints),
            operator_sessions=dict(self.operator_sessions),
            grants=dict(self.grants),
            lockdown=self.lockdown,
            adapters=dict(self.adapters),
            sessions=dict(self.sessions),
            commands=dict(self.commands),
            settled=deque(self.settled),
            archived=dict(self.archived),
            idempotency=dict(self.idempotency),
            elicitations=dict(self.elicitations),
            leases=dict(self.leases),
            adapter_frames=dict(self.adapter_frames),
            push_subscriptions=dict(self.push_subscriptions),
        )

    def command_brief(self, command_id: str) -> CommandBrief | None:
        """The command's full record, or its archived entry, or None if never accepted."""
        record = self.commands.get(command_id)
        if record is not None:
            return record
        return self.archived.get(command_id)

    def has_command(self, command_id: str) -> bool:
        return command_id in self.commands or command_id in self.archived

    def command_count(self) -> int:
        return len(self.commands) + len(self.archived)

    def live_lease(self, resource: str, scope: str, now: float) -> LeaseRecord | None:
        for lease in self.leases.values():
            if lease.resource == resource and lease.scope == scope and lease.live_at(now):
                return lease
        return None
