"""Decisions about who may act: operator sessions, endpoints, grants, lockdown, and leases.

Secrets never enter these functions: callers pass hashes, and the facts carry hashes only.
"""

from __future__ import annotations

from typing import Any

from patchbay import faults
from patchbay.domain.events import EventKind, Fact, entity_for_lease
from patchbay.domain.lifecycle import Outcome, move_command
from patchbay.domain.model import CoreState
from patchbay.registry import CommandKind, CommandState, Failure, LeaseState, RevocationPolicy

# -- grants ------------------------------------------------------------------------------


def decide_grant(grant_id: str, subject: str, scope: dict[str, Any], kinds: list[str],
                 expires_at: float | None, revocation_policy: str, provenance: str,
                 endpoint_id: str | None = None) -> Outcome:
    scope_type = scope.get("type")
    if scope_type not in ("all", "adapter", "session"):
        return Outcome(ok=False, error="grant scope type must be 'all', 'adapter' or 'session'")
    if scope_type == "adapter" and not scope.get("adapter_id"):
        return Outcome(ok=False, error="an adapter scope needs 'adapter_id'")
    if scope_type == "session" and "/" not in str(scope.get("target", "")):
        return Outcome(ok=False, error="a session scope needs 'target' as ADAPTER_ID/RUNTIME_SESSION_ID")
    try:
        kind_names = [CommandKind(k).value for k in kinds]
        policy = RevocationPolicy(revocation_policy)
    except ValueError as error:
        return Outcome(ok=False, error=str(error))
    if not kind_names:
        return Outcome(ok=False, error="a grant needs at least one command kind")
    return Outcome((Fact(EventKind.grant_created, f"grant:{grant_id}", {
        "grant_id": grant_id, "subject": subject, "endpoint_id": endpoint_id, "scope": scope,
        "kinds": kind_names, "expires_at": expires_at, "revocation_policy": policy.value,
        "provenance": provenance,
    }),))


def decide_grant_revocation(state: CoreState, grant_id: str, reason: str) -> Outcome:
    """Revoke a grant and apply its policy to the commands it authorized that are not finished.

    ``continue`` leaves them; ``cancel`` cancels those not yet running (a running one ends only
    when its runtime stops: the core asks the adapter to stop it, and the adapter reports the
    outcome); ``require-reauthorization`` fails the ones not yet running with
    ``authorization_denied`` so the operator must submit them again under a live grant.
    """
    grant = state.grants.get(grant_id)
    if grant is None:
        return Outcome(ok=False, error=f"no grant {grant_id}")
    if grant.revoked:
        return Outcome()
    facts = [Fact(EventKind.grant_revoked, f"grant:{grant_id}", {"grant_id": grant_id, "reason": reason})]
    if grant.revocation_policy is not RevocationPolicy.continue_:
        for record in state.commands.values():
            if record.grant_id != grant_id or record.terminal or record.state is CommandState.running:
                continue
            if grant.revocation_policy is RevocationPolicy.cancel:
                outcome = move_command(record, CommandState.cancelled, Failure.cancelled, None,
                                       f"grant {grant_id} was revoked (policy cancel)")
            else:
                outcome = move_command(record, CommandState.failed, Failure.authorization_denied, None,
                                       f"grant {grant_id} was revoked (policy require-reauthorization)")
            facts.extend(outcome.facts)
    return Outcome(tuple(facts))


# -- lockdown ----------------------------------------------------------------------------


def decide_lockdown_enter(state: CoreState, reason: str, by: str) -> Outcome:
    if state.lockdown.active:
        return Outcome()
    if not reason.strip():
        return Outcome(ok=False, error="lockdown needs a reason")
    return Outcome((Fact(EventKind.lockdown_entered, "lockdown", {"reason": reason, "by": by}),))


def decide_lockdown_exit(state: CoreState, by: str) -> Outcome:
    if not state.lockdown.active:
        return Outcome()
    return Outcome((Fact(EventKind.lockdown_exited, "lockdown", {"by": by}),))


# -- leases ------------------------------------------------------------------------------


def scope_owner(state: CoreState, scope: str) -> str | None:
    """The adapter a lease scope belongs to: a scope that is an adapter's id, or starts with
    ``ADAPTER_ID/``, is that adapter's alone (its spawn leases live there); other scopes are
    shared (None)."""
    head = scope.partition("/")[0]
    return head if head in state.adapters else None


def decide_lease_acquire(state: CoreState, lease_id: str, resource: str, scope: str, holder: str,
                         ttl: float, now: float) -> Outcome:
    """LeaseExclusive: one live holder per (resource, scope); an expired lease holds nothing."""
    if ttl <= 0:
        return Outcome(ok=False, error="a lease needs a positive duration")
    current = state.live_lease(resource, scope, now)
    if faults.active("lease_expiry_off") and current is None:
        current = next((lease for lease in state.leases.values() if lease.resource == resource
                        and lease.scope == scope and lease.state is LeaseState.held), None)
    if current is not None and not faults.active("lease_exclusive_off"):
        denied = Fact(EventKind.lease_denied, entity_for_lease(current.lease_id), {
            "resource": resource, "scope": scope, "holder": holder,
            "current_holder": current.holder, "reason": LeaseState.held.value,
        })
        return Outcome((denied,), ok=False,
                       error=f"{resource} ({scope}) is held by {current.holder} until {current.expires_at:.0f}")
    facts: list[Fact] = []
    for lease in state.leases.values():
        if lease.resource == resource and lease.scope == scope and lease.state is LeaseState.held:
            facts.append(Fact(EventKind.lease_expired, entity_for_lease(lease.lease_id), {"lease_id": lease.lease_id}))
    facts.append(Fact(EventKind.lease_acquired, entity_for_lease(lease_id), {
        "lease_id": lease_id, "resource": resource, "scope": scope, "holder": holder,
        "expires_at": now + ttl,
    }))
    return Outcome(tuple(facts))


def decide_lease_renew(state: CoreState, lease_id: str, holder: str, ttl: float, now: float) -> Outcome:
    lease = state.leases.get(lease_id)
    if lease is None:
        return Outcome(ok=False, error=f"no lease {lease_id}")
    if lease.holder != holder:
        return Outcome(ok=False, error=f"lease {lease_id} is held by {lease.holder}, not {holder}")
    if not lease.live_at(now) and not faults.active("lease_expiry_off"):
        return Outcome(ok=False, error=f"lease {lease_id} is no longer live ({lease.state.value})")
    return Outcome((Fact(EventKind.lease_renewed, entity_for_lease(lease_id),
                         {"lease_id": lease_id, "expires_at": now + ttl}),))


def decide_lease_release(state: CoreState, lease_id: str, holder: str, reason: str) -> Outcome:
    lease = state.leases.get(lease_id)
    if lease is None:
        return Outcome(ok=False, error=f"no lease {lease_id}")
    if lease.holder != holder:
        return Outcome(ok=False, error=f"lease {lease_id} is held by {lease.holder}, not {holder}")
    if lease.state is not LeaseState.held:
        return Outcome()
    return Outcome((Fact(EventKind.lease_released, entity_for_lease(lease_id),
                         {"lease_id": lease_id, "reason": reason}),))


def decide_lease_expiry(state: CoreState, lease_id: str, now: float) -> Outcome:
    lease = state.leases.get(lease_id)
    if lease is None or lease.state is not LeaseState.held or now < lease.expires_at:
        return Outcome()
    return Outcome((Fact(EventKind.lease_expired, entity_for_lease(lease_id), {"lease_id": lease_id}),))
