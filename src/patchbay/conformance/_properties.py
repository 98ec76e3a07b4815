"""The SPEC §10 properties: the only ids a model, a vector or a report may name.

A vector whose ``property`` is not a key here is refused when it is loaded, so a misspelled id
cannot silently drop a property from the verification.
"""

from __future__ import annotations

from typing import Final

PROPERTIES: Final[dict[str, tuple[str, str]]] = {
    # id: (group, what it means for the product)
    "CommandDurability": ("command", "an accepted command never vanishes, across restarts"),
    "TerminalFinality": ("command", "a terminal command never changes state again"),
    "LsnDeterminesTerminalWinner": ("command", "the first durable terminal candidate (lowest LSN) is the outcome"),
    "BoundaryDedup": ("command", "one idempotency key creates at most one command"),
    "RetryReusesIdAndKey": ("command", "a retry is the same command id and key; a key reused by a new id is refused"),
    "RetryAfterTerminalReturnsExisting": ("command", "a retry after the outcome answers with the existing record"),
    "TimeoutNeitherSuccessNorDenial": ("command", "losing the adapter mid-run is failed/outcome unknown, never success or denial"),
    "SessionIdentityTuple": ("session", "a session is (adapter, deployment scope, runtime session, generation)"),
    "LabelsCannotOverrideIdentity": ("session", "labels are display metadata, never routing"),
    "GenerationMonotonic": ("session", "a session's generation only moves forward"),
    "LateGenerationInert": ("session", "events of a tombstoned generation never mutate the live one"),
    "TypedCorrelation": ("reply", "a reply references a known command in the same session"),
    "NoCommandWithoutGrant": ("authority", "no command is accepted without a live grant"),
    "CompoundIssuer": ("authority", "the endpoint and the operator session behind it are both verified"),
    "GrantAuthorityIsCommandKinds": ("authority", "a grant authorizes only its command kinds"),
    "RevocationPreventsFuture": ("authority", "a revoked grant authorizes nothing new"),
    "Lockdown": ("authority", "lockdown rejects all new commands and survives restarts"),
    "CsrfRejectsUnauthenticated": ("browser", "a mutation without a live session is refused, whatever proof it carries"),
    "CsrfRejectsMissingProof": ("browser", "a browser mutation without the session's CSRF token is refused"),
    "RevokedSessionCannotCommand": ("browser", "a revoked operator session cannot submit"),
    "SnapshotStaleRejected": ("snapshot", "a cursor ahead of the journal is answered with a fresh snapshot, never an ok resume"),
    "SnapshotCrossDomainRejected": ("snapshot", "a cursor from another authority domain is never resumed"),
    "SnapshotConsistentPrefix": ("snapshot", "a snapshot at LSN n reflects exactly the events LSN <= n"),
    "LateEventNoRewrite": ("recovery", "a late terminal report is an audit record and never rewrites the outcome"),
    "CrashNoAcceptedLost": ("recovery", "after a crash every accepted command is back and continues"),
    "IdempotentLogReplay": ("recovery", "replaying the same journal prefix twice gives the same state as the live core"),
    "LeaseExclusive": ("lease", "two live leases never own the same resource and scope"),
    "ExpiredLeaseInert": ("lease", "an expired lease authorizes nothing and cannot be renewed"),
}


class UnknownProperty(ValueError):
    """A model, vector or report named a property that SPEC §10 does not define."""


def require_property(name: str, where: str) -> str:
    if name not in PROPERTIES:
        raise UnknownProperty(f"{where}: unknown property {name!r}; SPEC §10 defines {', '.join(PROPERTIES)}")
    return name
