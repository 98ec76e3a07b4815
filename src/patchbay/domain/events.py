"""The journal's event vocabulary: every durable fact the core records has one of these kinds.

Events are the only way state changes. Payloads are plain JSON objects whose fields are listed
beside each kind; the reducer (`patchbay.domain.reducer.apply`) is the one reader of them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class EventKind(StrEnum):
    domain_initialized = "domain.initialized"  # {authority_domain_id}
    core_started = "core.started"  # {core_generation}
    journal_unwritable = "journal.unwritable"  # {error, since, refused}: commits failed from `since` until this one
    history_lost = "journal.history_lost"  # {source, claimed, head}: `source` knew an LSN beyond the journal's head
    operator_created = "operator.created"  # {operator_id, password_hash}
    operator_password_changed = "operator.password_changed"  # {operator_id, password_hash}

    endpoint_enrolled = "endpoint.enrolled"  # {endpoint_id, endpoint_kind, label, operator_id}
    endpoint_revoked = "endpoint.revoked"  # {endpoint_id, reason}
    operator_session_created = "operator_session.created"  # {session_id, operator_id, endpoint_id, session_kind, token_hash, idle_timeout, absolute_expiry, address}
    operator_session_revoked = "operator_session.revoked"  # {session_id, reason}
    operator_session_expired = "operator_session.expired"  # {session_id, reason}
    login_succeeded = "login.succeeded"  # {operator_id, address, session_kind}
    login_failed = "login.failed"  # {account, address, reason}
    logout = "logout"  # {session_id}
    request_refused = "security.request_refused"  # {check, method, path, address, session_id}
    authorization_denied = "security.authorization_denied"  # {issuer, kind, target, reason}

    grant_created = "grant.created"  # {grant_id, subject, endpoint_id, scope, kinds, expires_at, revocation_policy, provenance}
    grant_revoked = "grant.revoked"  # {grant_id, reason}
    lockdown_entered = "lockdown.entered"  # {reason, by}
    lockdown_exited = "lockdown.exited"  # {by}

    adapter_registered = "adapter.registered"  # {adapter_id, adapter_kind, credential_hash}
    adapter_attached = "adapter.attached"  # {adapter_id, adapter_generation, deployment_scope, manifest, connection_id}
    adapter_detached = "adapter.detached"  # {adapter_id, adapter_generation, reason}
    adapter_failed = "adapter.failed"  # {adapter_id, adapter_generation, reason}
    adapter_capabilities_changed = "adapter.capabilities_changed"  # {adapter_id, manifest}
    protocol_error = "adapter.protocol_error"  # {adapter_id, reason, frame_type}

    session_reported = "session.reported"  # {target, adapter_id, deployment_scope, runtime_session_id, generation, label, metadata, connectivity, activity, snapshot_tier}
    session_superseded = "session.superseded"  # {target, old_generation, new_generation}
    session_generation_rejected = "session.generation_rejected"  # {target, reported, current}
    session_connectivity = "session.connectivity"  # {target, generation, connectivity, reason}
    session_activity = "session.activity"  # {target, generation, activity}
    session_observation = "session.observation"  # {target, generation, command_id, observation}
    stale_event = "session.stale_event"  # {target, generation, current_generation, frame_type, reason}

    command_accepted = "command.accepted"  # {command_id, idempotency_key, kind, target, adapter_id, deployment_scope, runtime_session_id, generation, payload, payload_digest, expires_at, issuer, grant_id, supersedes}
    command_transitioned = "command.transitioned"  # {command_id, state, failure, result, reason}
    command_late_outcome = "command.late_outcome"  # {command_id, candidate_state, candidate_failure, recorded_state, reason}
    submission_refused = "submission.refused"  # {command_id, idempotency_key, kind, target, outcome, failure, reason, issuer}
    reply_recorded = "reply.recorded"  # {reply_id, target, generation, correlates_kind, correlates_id, content}

    elicitation_opened = "elicitation.opened"  # {elicitation_id, elicitation_kind, target, generation, command_id, title, body, options, expires_at}
    elicitation_resolved = "elicitation.resolved"  # {elicitation_id, state, answer, by_command_id, reason}
    elicitation_answer_refused = "elicitation.answer_refused"  # {elicitation_id, existing_state, command_id}

    lease_acquired = "lease.acquired"  # {lease_id, resource, scope, holder, expires_at}
    lease_renewed = "lease.renewed"  # {lease_id, expires_at}
    lease_released = "lease.released"  # {lease_id, reason}
    lease_expired = "lease.expired"  # {lease_id}
    lease_denied = "lease.denied"  # {resource, scope, holder, current_holder, reason}

    push_subscribed = "push.subscribed"  # {subscription_id, endpoint_id, session_id, push_endpoint, push_origin, keys, expiration_time}
    push_unsubscribed = "push.unsubscribed"  # {subscription_id, reason}


# Kinds shown in the audit log (SPEC §8). Observations and routine activity are transcript,
# not audit. Payload fields named in AUDIT_REDACTED_FIELDS never appear in audit output.
AUDIT_KINDS: Final = frozenset(set(EventKind) - {EventKind.session_observation, EventKind.session_activity})
AUDIT_REDACTED_FIELDS: Final = frozenset({"payload", "password_hash", "token_hash", "credential_hash", "content",
                                          "keys", "push_endpoint"})


def entity_for_command(command_id: str) -> str:
    return f"command:{command_id}"


def entity_for_session(target: str) -> str:
    return f"session:{target}"


def entity_for_lease(lease_id: str) -> str:
    return f"lease:{lease_id}"


def entity_for_elicitation(elicitation_id: str) -> str:
    return f"elicitation:{elicitation_id}"


class Fact:
    """An event a decider wants journaled: kind, entity and payload; the core adds the time.

    A plain slotted class rather than attrs: deciders create many per second.
    """

    __slots__ = ("kind", "entity", "payload")

    def __init__(self, kind: EventKind, entity: str, payload: dict[str, object]) -> None:
        self.kind = kind
        self.entity = entity
        self.payload = payload

    def __repr__(self) -> str:
        return f"Fact({self.kind.value!r}, {self.entity!r}, {self.payload!r})"
