"""JSON views of core records for the HTTP API, the stream, and the CLI's ``--json``.

Names are the registry's, verbatim. Secrets and hashes never appear in a view.
"""

from __future__ import annotations

from typing import Any

from patchbay.domain.model import (
    AdapterRecord,
    CommandRecord,
    CoreState,
    ElicitationRecord,
    EndpointRecord,
    GrantRecord,
    LeaseRecord,
    OperatorSessionRecord,
    SessionRecord,
)
from patchbay.registry import CommandKind, ElicitationState, IdempotencyStrength, SnapshotTier

JSON = dict[str, Any]


def elicitation_view(record: ElicitationRecord) -> JSON:
    return {
        "elicitation_id": record.elicitation_id,
        "kind": record.kind.value,
        "state": record.state.value,
        "target": record.target,
        "generation": record.generation,
        "command_id": record.command_id,
        "title": record.title,
        "body": record.body,
        "options": list(record.options),
        "expires_at": record.expires_at,
        "answer": record.answer,
        "resolved_by": record.resolved_by,
        "opened_ts": record.opened_ts,
        "revision": record.revision,
    }


def retry_advice(strength: str | None) -> str:
    """What a failed command's operator may safely do, from the adapter's idempotency strength."""
    if strength == IdempotencyStrength.end_to_end.value:
        return "safe_to_retry"
    return "check_before_retry"


def command_view(record: CommandRecord, state: CoreState | None = None) -> JSON:
    elicitations = []
    if state is not None:
        elicitations = [elicitation_view(state.elicitations[e]) for e in record.elicitations
                        if e in state.elicitations]
    adapter = state.adapters.get(record.adapter_id) if state is not None else None
    strength = adapter.manifest.get("idempotency") if adapter is not None else None
    return {
        "command_id": record.command_id,
        "idempotency_key": record.idempotency_key,
        "kind": record.kind.value,
        "target": record.target,
        "adapter_id": record.adapter_id,
        "deployment_scope": record.deployment_scope,
        "runtime_session_id": record.runtime_session_id,
        "generation": record.generation,
        "payload": record.payload,
        "state": record.state.value,
        "terminal": record.terminal,
        "failure": record.failure.value if record.failure else None,
        "result": record.result,
        "reason": record.reason,
        "expires_at": record.expires_at,
        "supersedes": record.supersedes,
        "accepted_lsn": record.accepted_lsn,
        "accepted_ts": record.accepted_ts,
        "history": [
            {"state": t.state.value, "lsn": t.lsn, "ts": t.ts, "failure": t.failure.value if t.failure else None}
            for t in record.history
        ],
        "late_outcomes": list(record.late_outcomes),
        "elicitations": elicitations,
        "retry_advice": retry_advice(strength),
        "revision": record.revision,
    }


def session_view(record: SessionRecord, state: CoreState) -> JSON:
    adapter = state.adapters.get(record.adapter_id)
    pending = [e.elicitation_id for e in state.elicitations.values()
               if e.target == record.target and e.state is ElicitationState.pending]
    return {
        "target": record.target,
        "adapter_id": record.adapter_id,
        "deployment_scope": record.deployment_scope,
        "runtime_session_id": record.runtime_session_id,
        "generation": record.generation,
        "connectivity": record.connectivity.value,
        "activity": record.activity.value,
        "label": record.label,
        "metadata": record.metadata,
        "usage": record.metadata.get("usage"),  # tokens, cost, context use, as the adapter reports them
        "snapshot_tier": record.snapshot_tier.value,
        "updated_ts": record.updated_ts,
        "tombstoned_generations": list(record.tombstoned),
        "pending_elicitations": pending,
        "capabilities": capabilities(adapter),
        "revision": record.revision,
    }


def capabilities(adapter: AdapterRecord | None) -> JSON:
    """The adapter's manifest for the UI; kinds it does not declare render unavailable."""
    if adapter is None:
        return {"kinds": [], "attached": False}
    manifest = adapter.manifest
    return {
        "attached": adapter.attached,
        "kinds": [k for k in manifest.get("kinds", []) if k in {c.value for c in CommandKind}],
        "streaming": bool(manifest.get("streaming")),
        "cancellation": bool(manifest.get("cancellation")),
        "session_replacement": bool(manifest.get("session_replacement")),
        "steer": bool(manifest.get("steer")),
        "spawn": bool(manifest.get("spawn")),
        "features": [str(f) for f in manifest.get("features", [])],
        "snapshot_tier": manifest.get("snapshot_tier", SnapshotTier.none.value),
        "idempotency": manifest.get("idempotency", IdempotencyStrength.none.value),
    }


def adapter_view(record: AdapterRecord) -> JSON:
    return {
        "adapter_id": record.adapter_id,
        "kind": record.kind,
        "attached": record.attached,
        "adapter_generation": record.adapter_generation,
        "deployment_scope": record.deployment_scope,
        "manifest": record.manifest,
        "attach_lsn": record.attach_lsn,
        "last_change_ts": record.last_change_ts,
    }


def lease_view(record: LeaseRecord) -> JSON:
    return {
        "lease_id": record.lease_id,
        "resource": record.resource,
        "scope": record.scope,
        "holder": record.holder,
        "expires_at": record.expires_at,
        "state": record.state.value,
        "revision": record.revision,
    }


def grant_view(record: GrantRecord) -> JSON:
    return {
        "grant_id": record.grant_id,
        "subject": record.subject,
        "endpoint_id": record.endpoint_id,
        "scope": record.scope,
        "kinds": [k.value for k in record.kinds],
        "created_ts": record.created_ts,
        "provenance": record.provenance,
        "expires_at": record.expires_at,
        "revocation_policy": record.revocation_policy.value,
        "revoked": record.revoked,
        "revoked_ts": record.revoked_ts,
    }


def operator_session_view(record: OperatorSessionRecord, current_session_id: str | None = None) -> JSON:
    return {
        "session_id": record.session_id,
        "endpoint_id": record.endpoint_id,
        "kind": record.kind,
        "created_ts": record.created_ts,
        "absolute_expiry": record.absolute_expiry,
        "address": record.address,
        "revoked": record.revoked,
        "ended_reason": record.ended_reason,
        "current": record.session_id == current_session_id,
    }


def endpoint_view(record: EndpointRecord, current_endpoint_id: str | None = None) -> JSON:
    return {
        "endpoint_id": record.endpoint_id,
        "kind": record.kind,
        "label": record.label,
        "enrolled_ts": record.enrolled_ts,
        "revoked": record.revoked,
        "current": record.endpoint_id == current_endpoint_id,
    }
