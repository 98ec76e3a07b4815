"""Invariants a journal can show, checked from the raw events alone (``replay --check``).

This is an independent oracle: it keeps its own small bookkeeping instead of calling the
reducer or the deciders, so a bug in either is caught rather than repeated. Each violation
names the SPEC §10 property it breaks and the LSN where it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

from patchbay.domain.events import EventKind
from patchbay.registry import COMMAND_TRANSITIONS, CommandState


class RawEvent(Protocol):
    @property
    def lsn(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


@attrs.frozen
class Violation:
    property: str
    lsn: int
    detail: str

    def __str__(self) -> str:
        return f"{self.property} violated at LSN {self.lsn}: {self.detail}"


@attrs.define
class _Grant:
    subject: str
    kinds: frozenset[str]
    expires_at: float | None
    revoked_lsn: int | None = None


@attrs.define
class JournalChecker:
    """Feed events in LSN order with ``check``; read ``violations`` at the end."""

    violations: list[Violation] = attrs.field(factory=list)
    events_checked: int = 0
    _last_lsn: int = 0
    _command_state: dict[str, str] = attrs.field(factory=dict)
    _keys: dict[str, str] = attrs.field(factory=dict)
    _generation: dict[str, int] = attrs.field(factory=dict)
    _grants: dict[str, _Grant] = attrs.field(factory=dict)
    _lockdown: bool = False
    _lease_holder: dict[tuple[str, str], tuple[str, float]] = attrs.field(factory=dict)
    _lease_key: dict[str, tuple[str, str]] = attrs.field(factory=dict)
    _scope: dict[str, str] = attrs.field(factory=dict)
    _command_target: dict[str, str] = attrs.field(factory=dict)

    def _flag(self, prop: str, lsn: int, detail: str) -> None:
        self.violations.append(Violation(prop, lsn, detail))

    def check_all(self, events: Iterable[RawEvent]) -> list[Violation]:
        for event in events:
            self.check(event)
        return self.violations

    def check(self, event: RawEvent) -> None:
        self.events_checked += 1
        lsn = event.lsn
        if lsn != self._last_lsn + 1:
            self._flag("CommandDurability", lsn, f"LSN gap: expected {self._last_lsn + 1}, found {lsn}")
        self._last_lsn = lsn
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, event.payload)

    def _grant_created(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        self._grants[p["grant_id"]] = _Grant(p["subject"], frozenset(p["kinds"]), p.get("expires_at"))

    def _grant_revoked(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        grant = self._grants.get(p["grant_id"])
        if grant is not None and grant.revoked_lsn is None:
            grant.revoked_lsn = event.lsn

    def _lockdown_entered(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        self._lockdown = True

    def _lockdown_exited(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        self._lockdown = False

    def _reply_recorded(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        if p.get("correlates_kind") != "command" or self._command_target.get(p.get("correlates_id", "")) != p["target"]:
            self._flag("TypedCorrelation", event.lsn,
                       f"reply {p.get('reply_id')} correlates to {p.get('correlates_kind')} {p.get('correlates_id')}, "
                       f"not to a known command of {p['target']}")

    def _session_fact(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        live = self._generation.get(p["target"])
        if live is not None and int(p["generation"]) < live:
            self._flag("LateGenerationInert", event.lsn,
                       f"{event.kind} for tombstoned generation {p['generation']} of {p['target']} (live {live})")

    def _lease_ended(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        key = self._lease_key.get(p["lease_id"])
        if key is not None and self._lease_holder.get(key, ("", 0.0))[0] == p["lease_id"]:
            del self._lease_holder[key]

    def _lease_renewed(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        key = self._lease_key.get(p["lease_id"])
        holder = self._lease_holder.get(key) if key else None
        if holder is None or holder[0] != p["lease_id"]:
            self._flag("ExpiredLeaseInert", event.lsn, f"renewal of lease {p['lease_id']} that is not held")
        elif holder[1] <= event.ts:
            self._flag("ExpiredLeaseInert", event.lsn, f"renewal of expired lease {p['lease_id']}")
        else:
            self._lease_holder[key] = (p["lease_id"], float(p["expires_at"]))  # type: ignore[index]

    def _accepted(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        command_id = p["command_id"]
        if command_id in self._command_state:
            self._flag("BoundaryDedup", event.lsn, f"command {command_id} accepted twice")
            return
        key = p["idempotency_key"]
        keys = self._keys
        if key in keys:
            self._flag("BoundaryDedup", event.lsn,
                       f"idempotency key {key!r} accepted again (first by {keys[key]})")
        keys[key] = command_id
        self._command_state[command_id] = _ACCEPTED
        target = p["target"]
        self._command_target[command_id] = target
        if target != f"{p.get('adapter_id')}/{p.get('runtime_session_id')}":
            self._flag("LabelsCannotOverrideIdentity", event.lsn,
                       f"command {command_id} targets {p['target']} but is bound to session "
                       f"{p.get('adapter_id')}/{p.get('runtime_session_id')}")
        scope = self._scope.get(target)
        if scope and p.get("deployment_scope") != scope:
            self._flag("SessionIdentityTuple", event.lsn,
                       f"command {command_id} bound to scope {p.get('deployment_scope')}, the session's is {scope}")
        if self._lockdown:
            self._flag("Lockdown", event.lsn, f"command {command_id} accepted during lockdown")
        grant = self._grants.get(p.get("grant_id", ""))
        issuer = p.get("issuer") or {}
        if grant is None:
            self._flag("NoCommandWithoutGrant", event.lsn, f"command {command_id} names no known grant")
        else:
            if grant.revoked_lsn is not None:
                self._flag("RevocationPreventsFuture", event.lsn,
                           f"command {command_id} accepted under grant revoked at LSN {grant.revoked_lsn}")
            if p["kind"] not in grant.kinds:
                self._flag("GrantAuthorityIsCommandKinds", event.lsn,
                           f"grant does not allow kind {p['kind']} of command {command_id}")
            if grant.subject != issuer.get("operator_id"):
                self._flag("CompoundIssuer", event.lsn, f"command {command_id} issuer is not the grant's subject")
            if grant.expires_at is not None and event.ts >= grant.expires_at:
                self._flag("NoCommandWithoutGrant", event.lsn, f"command {command_id} accepted under an expired grant")
        if not issuer.get("endpoint_id") or not issuer.get("session_id"):
            self._flag("CompoundIssuer", event.lsn, f"command {command_id} lacks endpoint or session of its issuer")
        live = self._generation.get(target)
        if live is not None and int(p["generation"]) != live:
            self._flag("GenerationMonotonic", event.lsn,
                       f"command {command_id} bound to generation {p['generation']}, live is {live}")

    def _transitioned(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        command_id = p["command_id"]
        current = self._command_state.get(command_id)
        if current is None:
            self._flag("CommandDurability", event.lsn, f"transition of command {command_id} never accepted")
            return
        target = p["state"]
        if current in _TERMINAL:
            self._flag("TerminalFinality", event.lsn,
                       f"command {command_id} moved from terminal {current} to {target}")
            return
        if current == _RUNNING and target == _COMPLETED and "adapter_frame" not in p:
            self._flag("TimeoutNeitherSuccessNorDenial", event.lsn,
                       f"command {command_id} completed without its adapter reporting it")
        try:
            allowed = target in _ALLOWED[current]
        except TypeError:  # an unhashable state: CommandState() below says what is wrong with it
            allowed = False
        if not allowed:
            CommandState(target)  # a value that is no command state raises ValueError here, as it always did
            self._flag("TerminalFinality", event.lsn,
                       f"command {command_id}: {current} -> {target} is not an allowed transition")
            return
        self._command_state[command_id] = target

    def _session_reported(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        target = p["target"]
        generation = int(p["generation"])
        scope = self._scope.get(target)
        if not scope:
            self._scope[target] = p.get("deployment_scope", "")
        elif p.get("deployment_scope", "") != scope:
            self._flag("SessionIdentityTuple", event.lsn,
                       f"session {target} reported from deployment scope {p.get('deployment_scope')}, "
                       f"it belongs to {scope}")
        live = self._generation.get(target)
        if live is not None and generation < live:
            self._flag("GenerationMonotonic", event.lsn,
                       f"session {target} went back from generation {live} to {generation}")
            return
        self._generation[target] = generation

    def _lease_acquired(self, event: RawEvent, p: Mapping[str, Any]) -> None:
        key = (p["resource"], p["scope"])
        holder = self._lease_holder.get(key)
        if holder is not None and holder[1] > event.ts:
            self._flag("LeaseExclusive", event.lsn,
                       f"{p['resource']} ({p['scope']}) acquired by {p['holder']} while lease {holder[0]} was live")
        self._lease_holder[key] = (p["lease_id"], float(p["expires_at"]))
        self._lease_key[p["lease_id"]] = key

    def command_states(self) -> dict[str, str]:
        return dict(self._command_state)


# Transition rules as plain strings (a StrEnum member hashes and compares as its value), so a
# check is a set lookup rather than three ``CommandState(...)`` calls per transition.
_TERMINAL: frozenset[str] = frozenset(state.value for state in CommandState if state.terminal)
_ALLOWED: dict[str, frozenset[str]] = {
    current.value: frozenset(target.value for target in targets) for current, targets in COMMAND_TRANSITIONS.items()
}
_ACCEPTED = CommandState.accepted.value
_RUNNING = CommandState.running.value
_COMPLETED = CommandState.completed.value

_Handler = Callable[[JournalChecker, RawEvent, Mapping[str, Any]], None]
# One handler per kind, looked up once per event instead of a chain of comparisons.
_HANDLERS: dict[str, _Handler] = {
    EventKind.command_accepted.value: JournalChecker._accepted,
    EventKind.command_transitioned.value: JournalChecker._transitioned,
    EventKind.grant_created.value: JournalChecker._grant_created,
    EventKind.grant_revoked.value: JournalChecker._grant_revoked,
    EventKind.lockdown_entered.value: JournalChecker._lockdown_entered,
    EventKind.lockdown_exited.value: JournalChecker._lockdown_exited,
    EventKind.session_reported.value: JournalChecker._session_reported,
    EventKind.reply_recorded.value: JournalChecker._reply_recorded,
    EventKind.session_activity.value: JournalChecker._session_fact,
    EventKind.session_connectivity.value: JournalChecker._session_fact,
    EventKind.session_observation.value: JournalChecker._session_fact,
    EventKind.elicitation_opened.value: JournalChecker._session_fact,
    EventKind.lease_acquired.value: JournalChecker._lease_acquired,
    EventKind.lease_released.value: JournalChecker._lease_ended,
    EventKind.lease_expired.value: JournalChecker._lease_ended,
    EventKind.lease_renewed.value: JournalChecker._lease_renewed,
}
