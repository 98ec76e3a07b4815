"""Test-only fault switch: break one coordination rule at a time, to prove the checks can fail.

``ACTIVE`` is empty in normal operation; nothing in the product sets it. The conformance
runner sets it in-process (``injected``); a ``serve`` subprocess honours the environment
variable ``PATCHBAY_TEST_FAULTS`` only when ``PATCHBAY_TEST_MODE=1`` is set as well (read once,
at the edge, by ``install_from_environment``). The domain reads this constant; it never reads
the environment itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

FAULTS = {
    "dedup_off": "a duplicate idempotency key creates a new command (BoundaryDedup)",
    "terminal_overwrite": "a later terminal report rewrites a terminal command (TerminalFinality)",
    "generation_check_off": "frames for old session generations are applied (LateGenerationInert)",
    "generation_regress": "a lower session generation replaces the live one (GenerationMonotonic)",
    "grant_check_off": "commands are accepted without a matching grant (NoCommandWithoutGrant)",
    "issuer_check_off": "the issuer's endpoint and session are not verified (CompoundIssuer)",
    "lockdown_off": "lockdown does not reject submissions (Lockdown)",
    "csrf_check_off": "browser mutations are accepted without the CSRF proof (CsrfRejectsMissingProof)",
    "session_check_off": "revoked or missing operator sessions are accepted (RevokedSessionCannotCommand)",
    "lease_exclusive_off": "a held lease can be acquired again (LeaseExclusive)",
    "lease_expiry_off": "an expired lease still blocks and renews (ExpiredLeaseInert)",
    "stale_cursor_ok": "a cursor from another domain resumes with verdict ok (SnapshotCrossDomainRejected)",
    "reply_correlation_off": "replies may name unknown commands (TypedCorrelation)",
    "expiry_off": "validity windows are ignored at acceptance (validity window)",
    "recovery_tail_off": "recovery stops at the latest checkpoint and drops the tail (CommandDurability)",
    "checkpoint_off_by_one": "recovery skips the first event after the checkpoint (SnapshotConsistentPrefix)",
    "retry_key_only": "a known key with a new command id is answered as a retry (RetryReusesIdAndKey)",
    "timeout_is_success": "a command running when its adapter is lost completes (TimeoutNeitherSuccessNorDenial)",
    "scope_check_off": "a session report from another deployment scope takes the session over (SessionIdentityTuple)",
    "label_routing": "a target naming a session's label resolves to that session (LabelsCannotOverrideIdentity)",
    "grant_kinds_off": "a grant authorizes every command kind (GrantAuthorityIsCommandKinds)",
    "revocation_off": "a revoked grant still authorizes new commands (RevocationPreventsFuture)",
    "stale_snapshot_ok": "a resume cursor ahead of the journal head resumes with verdict ok (SnapshotStaleRejected)",
}

ACTIVE: frozenset[str] = frozenset()


def active(name: str) -> bool:
    return name in ACTIVE


@contextmanager
def injected(*names: str) -> Iterator[None]:
    """Activate faults for the duration of a block (test runner only)."""
    global ACTIVE
    unknown = set(names) - FAULTS.keys()
    if unknown:
        raise ValueError(f"unknown faults: {sorted(unknown)}")
    previous = ACTIVE
    ACTIVE = frozenset(names)
    try:
        yield
    finally:
        ACTIVE = previous


def install_from_environment() -> None:
    global ACTIVE
    if os.environ.get("PATCHBAY_TEST_MODE") == "1" and os.environ.get("PATCHBAY_TEST_FAULTS"):
        names = {n.strip() for n in os.environ["PATCHBAY_TEST_FAULTS"].split(",") if n.strip()}
        ACTIVE = frozenset(names & FAULTS.keys())
