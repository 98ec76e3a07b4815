"""The canonical registries of SPEC §4: the one place these names are spelled.

Everything else (wire frames, JSON API, CLI output, cockpit labels, conformance vectors,
formal models) derives from the enums and tables here. Values are the normative names used
verbatim on the wire, so ``CommandState.completed == "completed"``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class CommandKind(StrEnum):
    """What an operator may ask of a runtime session; grants are expressed only in these."""

    instruct = "instruct"
    cancel = "cancel"
    interrupt = "interrupt"
    query = "query"
    approval_response = "approval-response"
    elicitation_response = "elicitation-response"
    reconfigure = "reconfigure"
    session_management = "session-management"
    spawn = "spawn"
    attach = "attach"


# session-management actions an adapter may take (each adapter declares those it does)
SESSION_ACTIONS = ("new_session", "compact", "fork", "clone", "switch_session", "set_session_name",
                   "clear_queue", "abort_retry")


class CommandState(StrEnum):
    """Durable, core-owned lifecycle of an accepted command."""

    accepted = "accepted"
    delivered = "delivered"
    running = "running"
    completed = "completed"
    rejected = "rejected"
    failed = "failed"
    expired = "expired"
    cancelled = "cancelled"
    superseded = "superseded"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_COMMAND_STATES


TERMINAL_COMMAND_STATES: Final = frozenset(
    {
        CommandState.completed,
        CommandState.rejected,
        CommandState.failed,
        CommandState.expired,
        CommandState.cancelled,
        CommandState.superseded,
    }
)

COMMAND_TRANSITIONS: Final[dict[CommandState, frozenset[CommandState]]] = {
    CommandState.accepted: frozenset(
        {
            CommandState.delivered,
            CommandState.rejected,
            CommandState.failed,
            CommandState.expired,
            CommandState.cancelled,
            CommandState.superseded,
        }
    ),
    CommandState.delivered: frozenset(
        {
            CommandState.running,
            CommandState.completed,
            CommandState.rejected,
            CommandState.failed,
            CommandState.expired,
            CommandState.cancelled,
            CommandState.superseded,
        }
    ),
    CommandState.running: frozenset(
        {
            CommandState.completed,
            CommandState.failed,
            CommandState.expired,
            CommandState.cancelled,
            CommandState.superseded,
        }
    ),
    **{state: frozenset() for state in TERMINAL_COMMAND_STATES},
}


def command_transition_allowed(current: CommandState, target: CommandState) -> bool:
    """True when ``current -> target`` is in the SPEC §4 transition table."""
    return target in COMMAND_TRANSITIONS[current]


class SubmissionOutcome(StrEnum):
    """The answer to a submission (before or at acceptance)."""

    accepted = "accepted"
    rejected = "rejected"
    failed = "failed"
    unknown = "unknown"


class LocalSubmissionState(StrEnum):
    """Client-only submission states; never stored by the core."""

    draft = "draft"
    submitting = "submitting"
    submit_failed = "submit_failed"
    unknown = "unknown"


class SessionConnectivityState(StrEnum):
    """Is a runtime session reachable and is what we show of it fresh (SPEC §4)."""

    live = "live"
    stale = "stale"
    offline = "offline"
    unknown = "unknown"
    failed = "failed"


class SessionActivityState(StrEnum):
    """Is the runtime working; only meaningful while connectivity is ``live``."""

    idle = "idle"
    working = "working"
    unknown = "unknown"


OBSERVABLE_CONNECTIVITY: Final = frozenset(
    {
        SessionConnectivityState.live,
        SessionConnectivityState.offline,
        SessionConnectivityState.unknown,
        SessionConnectivityState.failed,
    }
)
"""Connectivity an adapter may report about its own session. ``stale`` is never observed: it
is the core's judgment that what it holds is no longer fresh (adapter silence, core restart,
lockdown), so an adapter cannot claim it, and cannot clear it except by a fresh report."""

OBSERVABLE_ACTIVITY: Final = frozenset(SessionActivityState)
"""Activity an adapter may report; the core never invents ``working`` or ``idle`` itself."""

ACTIVITY_TRUSTED_WHEN: Final = frozenset({SessionConnectivityState.live})
"""Connectivity under which the activity axis is current. Anything else dominates it:
stale working is not working."""


def presentation_label(connectivity: SessionConnectivityState, activity: SessionActivityState) -> str:
    """The UI label over the two axes ("Live idle", "Working", "Stale working", "Offline")."""
    if connectivity is SessionConnectivityState.live:
        return {
            SessionActivityState.idle: "Live idle",
            SessionActivityState.working: "Working",
            SessionActivityState.unknown: "Live",
        }[activity]
    if connectivity is SessionConnectivityState.stale:
        return {
            SessionActivityState.idle: "Stale idle",
            SessionActivityState.working: "Stale working",
            SessionActivityState.unknown: "Stale",
        }[activity]
    return connectivity.value.capitalize()


class Failure(StrEnum):
    """The failure vocabulary; use the narrowest name that is true."""

    validation_failed = "validation_failed"
    authorization_denied = "authorization_denied"
    target_not_found = "target_not_found"
    unsupported_command = "unsupported_command"
    target_offline = "target_offline"
    adapter_unavailable = "adapter_unavailable"
    transport_timeout = "transport_timeout"
    delivery_rejected = "delivery_rejected"
    execution_failed = "execution_failed"
    execution_outcome_unknown = "execution_outcome_unknown"
    expired = "expired"
    cancelled = "cancelled"
    superseded = "superseded"
    stale_event = "stale_event"


class ElicitationKind(StrEnum):
    approval = "approval"
    question = "question"


class ElicitationState(StrEnum):
    pending = "pending"
    answered = "answered"
    declined = "declined"
    expired = "expired"
    cancelled = "cancelled"
    withdrawn = "withdrawn"
    superseded = "superseded"
    stale = "stale"


TERMINAL_ELICITATION_STATES: Final = frozenset(set(ElicitationState) - {ElicitationState.pending})


class SnapshotTier(StrEnum):
    authoritative = "authoritative"
    partial = "partial"
    none = "none"


class IdempotencyStrength(StrEnum):
    none = "none"
    at_patchbay_boundary = "at-patchbay-boundary"
    end_to_end = "end-to-end"


class RevocationPolicy(StrEnum):
    """What revoking a grant does to commands it already authorized."""

    continue_ = "continue"
    cancel = "cancel"
    require_reauthorization = "require-reauthorization"


class LeaseState(StrEnum):
    """Lifecycle of an exclusive, time-bounded claim (its own registry, never CommandState)."""

    held = "held"
    released = "released"
    expired = "expired"

    @property
    def terminal(self) -> bool:
        return self is not LeaseState.held


LEASE_TRANSITIONS: Final[dict[LeaseState, frozenset[LeaseState]]] = {
    LeaseState.held: frozenset({LeaseState.held, LeaseState.released, LeaseState.expired}),
    LeaseState.released: frozenset(),
    LeaseState.expired: frozenset(),
}
"""``held -> held`` is a renewal by the holder; a released or expired lease is final (a new
claim is a new lease id)."""


class ResumeVerdict(StrEnum):
    """What a reconnecting stream client is told about the gap since its cursor."""

    ok = "ok"
    snapshot = "snapshot"


def registry_document() -> dict[str, object]:
    """All registries as plain JSON, for the cockpit and the vector runner."""
    return {
        "command_kinds": [k.value for k in CommandKind],
        "command_states": [s.value for s in CommandState],
        "terminal_command_states": sorted(s.value for s in TERMINAL_COMMAND_STATES),
        "command_transitions": {
            s.value: sorted(t.value for t in targets) for s, targets in COMMAND_TRANSITIONS.items()
        },
        "submission_outcomes": [o.value for o in SubmissionOutcome],
        "local_submission_states": [s.value for s in LocalSubmissionState],
        "connectivity_states": [s.value for s in SessionConnectivityState],
        "activity_states": [s.value for s in SessionActivityState],
        "observable_connectivity": sorted(s.value for s in OBSERVABLE_CONNECTIVITY),
        "observable_activity": sorted(s.value for s in OBSERVABLE_ACTIVITY),
        "activity_trusted_when": sorted(s.value for s in ACTIVITY_TRUSTED_WHEN),
        "presentation_labels": {
            c.value: {a.value: presentation_label(c, a) for a in SessionActivityState}
            for c in SessionConnectivityState
        },
        "failures": [f.value for f in Failure],
        "elicitation_kinds": [k.value for k in ElicitationKind],
        "elicitation_states": [s.value for s in ElicitationState],
        "snapshot_tiers": [t.value for t in SnapshotTier],
        "idempotency_strengths": [s.value for s in IdempotencyStrength],
        "revocation_policies": [p.value for p in RevocationPolicy],
        "lease_states": [s.value for s in LeaseState],
        "lease_transitions": {
            s.value: sorted(t.value for t in targets) for s, targets in LEASE_TRANSITIONS.items()
        },
        "resume_verdicts": [v.value for v in ResumeVerdict],
    }
