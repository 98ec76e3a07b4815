"""The acceptance pipeline of SPEC §5, as one pure decision.

``decide_submission`` answers a submission with a SubmissionOutcome and the facts to journal.
The order is the SPEC's, with one deliberate refinement: once the issuer is verified, a key
that is already known is answered from its record *before* the target, window, grant and
lockdown checks. A retry asks about intent that was already accepted; it creates nothing, so
the current liveness of the target or a later lockdown must not turn it into a denial
(RetryAfterTerminalReturnsExisting). Nothing is accepted without every check passing.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import attrs

from patchbay import faults
from patchbay.domain.events import EventKind, Fact, entity_for_command, entity_for_elicitation
from patchbay.domain.model import CommandBrief, CoreState, GrantRecord, Issuer
from patchbay.registry import (
    SESSION_ACTIONS,
    CommandKind,
    CommandState,
    ElicitationKind,
    ElicitationState,
    Failure,
    SessionConnectivityState,
    SubmissionOutcome,
)

MAX_ID_LENGTH = 128
MAX_PAYLOAD_BYTES = 64 * 1024
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


@attrs.frozen
class Submission:
    """A client's request to create a command; ids are chosen by the client so a retry can reuse them."""

    command_id: str
    idempotency_key: str
    kind: str
    target: str
    payload: dict[str, Any]
    generation: int | None = None
    expires_at: float | None = None
    supersedes: str | None = None


@attrs.frozen
class SubmissionDecision:
    outcome: SubmissionOutcome
    failure: Failure | None
    reason: str
    command_id: str | None
    facts: tuple[Fact, ...] = ()
    duplicate: bool = False


def payload_digest(kind: str, target: str, payload: dict[str, Any], supersedes: str | None) -> str:
    """A stable digest of what a submission asks for, to tell a retry from a different request."""
    canonical = json.dumps(
        {"kind": kind, "target": target, "payload": payload, "supersedes": supersedes},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def split_target(target: str) -> tuple[str, str] | None:
    """``ADAPTER_ID/RUNTIME_SESSION_ID`` -> the two parts, or None when malformed."""
    adapter_id, sep, runtime_session_id = target.partition("/")
    if not sep or not adapter_id or not runtime_session_id:
        return None
    return adapter_id, runtime_session_id


def _valid_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and bool(_ID_PATTERN.match(value))


def _text(payload: dict[str, Any], field: str) -> str | None:
    value = payload.get(field)
    return value if isinstance(value, str) and value.strip() else None


def validate_payload(kind: CommandKind, payload: dict[str, Any]) -> str | None:
    """Kind-specific shape checks; returns the problem in plain words, or None."""
    if kind is CommandKind.reconfigure and isinstance(payload.get("mode"), str) and payload["mode"]:
        return None  # an agent's session mode (ACP): the adapter checks it is one the agent offers
    if kind is CommandKind.instruct:
        if _text(payload, "text") is None and _text(payload, "bash") is None:
            return "instruct needs a non-empty 'text' (or 'bash': a command line)"
        mode = payload.get("mode", "followUp")
        if mode not in ("followUp", "steer"):
            return "instruct 'mode' must be 'followUp' or 'steer'"
    elif kind in (CommandKind.cancel, CommandKind.interrupt):
        target_command = payload.get("command_id")
        if target_command is not None and not _valid_id(target_command):
            return f"{kind.value} 'command_id' must be a command id"
    elif kind is CommandKind.approval_response:
        if not _valid_id(payload.get("elicitation_id")):
            return "approval-response needs an 'elicitation_id'"
        if payload.get("decision") not in ("approve", "deny"):
            return "approval-response 'decision' must be 'approve' or 'deny'"
    elif kind is CommandKind.elicitation_response:
        if not _valid_id(payload.get("elicitation_id")):
            return "elicitation-response needs an 'elicitation_id'"
        if "answer" not in payload and not payload.get("decline"):
            return "elicitation-response needs an 'answer' (or 'decline': true)"
    elif kind is CommandKind.reconfigure:
        if not any(k in payload for k in ("model", "thinking_level", "list_models", "auto_retry", "auto_compaction")):
            return "reconfigure needs 'model', 'thinking_level', 'list_models', 'auto_retry' or 'auto_compaction'"
    elif kind is CommandKind.session_management:
        if payload.get("action") not in SESSION_ACTIONS:
            return f"session-management 'action' must be one of: {', '.join(SESSION_ACTIONS)}"
    elif kind is CommandKind.spawn:
        if _text(payload, "directory") is None:
            return "spawn needs a 'directory'"
    return None


def verify_issuer(state: CoreState, issuer: Issuer) -> str | None:
    """CompoundIssuer: the endpoint *and* the operator session behind it must both be valid."""
    session = state.operator_sessions.get(issuer.session_id)
    if faults.active("session_check_off"):
        return None
    if session is None:
        return "unknown operator session"
    if session.revoked:
        return f"operator session was ended ({session.ended_reason or 'revoked'})"
    if session.operator_id != issuer.operator_id or issuer.operator_id not in state.operators:
        return "operator does not match the session"
    endpoint = state.endpoints.get(issuer.endpoint_id)
    if endpoint is None or endpoint.endpoint_id != session.endpoint_id:
        return "endpoint does not match the session"
    if endpoint.revoked:
        return "endpoint was revoked"
    return None


def find_grant(
    state: CoreState, issuer: Issuer, kind: CommandKind, target: str, adapter_id: str, now: float
) -> GrantRecord | None:
    """A live, unrevoked grant for this issuer, kind and target scope; deny by default."""
    for grant in state.grants.values():
        if (
            grant.subject == issuer.operator_id
            and (grant.endpoint_id is None or grant.endpoint_id == issuer.endpoint_id)
            and (grant.live_at(now) or (grant.revoked and faults.active("revocation_off")))
            and (kind in grant.kinds or faults.active("grant_kinds_off"))
            and grant.covers(target, adapter_id)
        ):
            return grant
    return None


def _refuse(
    submission: Submission,
    issuer: Issuer | None,
    outcome: SubmissionOutcome,
    failure: Failure,
    reason: str,
) -> SubmissionDecision:
    audit = Fact(
        EventKind.submission_refused,
        entity_for_command(submission.command_id) if _valid_id(submission.command_id) else "",
        {
            "command_id": submission.command_id if isinstance(submission.command_id, str) else None,
            "idempotency_key": submission.idempotency_key
            if isinstance(submission.idempotency_key, str)
            else None,
            "kind": submission.kind if isinstance(submission.kind, str) else None,
            "target": submission.target if isinstance(submission.target, str) else None,
            "outcome": outcome.value,
            "failure": failure.value,
            "reason": reason,
            "issuer": issuer.to_json() if issuer else None,
        },
    )
    return SubmissionDecision(outcome, failure, reason, None, (audit,))


def _existing(submission: Submission, record: CommandBrief, digest: str) -> SubmissionDecision | None:
    """Answer for a key or command id already in use; None when both are unused."""
    if record.idempotency_key != submission.idempotency_key:
        return None
    if record.command_id != submission.command_id and not faults.active("retry_key_only"):
        return SubmissionDecision(
            SubmissionOutcome.rejected,
            Failure.validation_failed,
            f"idempotency key is already used by command {record.command_id}; "
            "a new action needs a new key",
            None,
        )
    if record.payload_digest != digest:
        return SubmissionDecision(
            SubmissionOutcome.rejected,
            Failure.validation_failed,
            f"idempotency key was used for a different request (command {record.command_id})",
            None,
        )
    return SubmissionDecision(
        SubmissionOutcome.accepted,
        None,
        f"duplicate of command {record.command_id} ({record.state.value})",
        record.command_id,
        duplicate=True,
    )


def decide_submission(
    state: CoreState, submission: Submission, issuer: Issuer, now: float
) -> SubmissionDecision:
    """Run the acceptance pipeline; pure. The facts must be journaled before answering."""
    # (1) shape and kind
    if not _valid_id(submission.command_id):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       "command_id must be 1-128 characters of letters, digits, '.', '_', ':', '-'")
    if not _valid_id(submission.idempotency_key):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       "idempotency_key must be 1-128 characters of letters, digits, '.', '_', ':', '-'")
    try:
        kind = CommandKind(submission.kind)
    except ValueError:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       f"unknown command kind {submission.kind!r}")
    if not isinstance(submission.target, str) or split_target(submission.target) is None:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       "target must be ADAPTER_ID/RUNTIME_SESSION_ID")
    if not isinstance(submission.payload, dict):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       "payload must be a JSON object")
    encoded = json.dumps(submission.payload, sort_keys=True, separators=(",", ":"))
    if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    problem = validate_payload(kind, submission.payload)
    if problem is not None:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed, problem)
    if submission.expires_at is not None and not isinstance(submission.expires_at, (int, float)):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       "expires_at must be a number of seconds since the epoch")
    if submission.supersedes is not None and not _valid_id(submission.supersedes):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       "supersedes must be a command id")

    # (2) authenticated issuer (CompoundIssuer)
    issuer_problem = None if faults.active("issuer_check_off") else verify_issuer(state, issuer)
    if issuer_problem is not None:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.authorization_denied,
                       issuer_problem)

    # (4, early) a known key or command id answers from its record
    digest = payload_digest(kind.value, submission.target, submission.payload, submission.supersedes)
    by_key = None if faults.active("dedup_off") else state.idempotency.get(submission.idempotency_key)
    known = state.command_brief(by_key) if by_key is not None else None  # live or archived
    if known is not None:
        answer = _existing(submission, known, digest)
        if answer is not None:
            return answer
    if state.has_command(submission.command_id) and not faults.active("dedup_off"):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                       f"command id {submission.command_id} is already used with another idempotency key")

    # (3) target identity and generation
    session = state.sessions.get(submission.target)
    if session is None and faults.active("label_routing"):
        session = next((s for s in state.sessions.values() if s.label == submission.target), None)
    if session is None:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.target_not_found,
                       f"no session {submission.target}")
    if submission.generation is not None and submission.generation != session.generation:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.target_not_found,
                       f"session {submission.target} generation {submission.generation} is not the live "
                       f"generation ({session.generation})")
    if session.connectivity in (SessionConnectivityState.offline, SessionConnectivityState.failed):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.target_offline,
                       f"session {submission.target} is {session.connectivity.value}")
    adapter = state.adapters.get(session.adapter_id)
    if kind is CommandKind.instruct and submission.payload.get("mode") == "steer" and adapter is not None \
            and adapter.manifest.get("steer") is False:  # the adapter's manifest declares no steering
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.unsupported_command,
                       f"adapter {session.adapter_id} takes no steering mid-turn: send it as a follow-up")

    # (5) validity window
    if submission.expires_at is not None and submission.expires_at <= now and not faults.active("expiry_off"):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.expired,
                       "the validity window closed before acceptance")

    # (6) a live grant for this issuer, kind and scope
    grant = find_grant(state, issuer, kind, submission.target, session.adapter_id, now)
    if grant is None and faults.active("grant_check_off"):
        grant = next(iter(state.grants.values()), None)
    if grant is None:
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.authorization_denied,
                       f"no live grant allows {kind.value} on {submission.target}")

    # (7) lockdown
    if state.lockdown.active and not faults.active("lockdown_off"):
        return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.authorization_denied,
                       f"security lockdown is active ({state.lockdown.reason})")

    extra: list[Fact] = []
    refusal = _kind_rules(state, submission, kind, issuer, extra)
    if refusal is not None:
        return refusal

    accepted = Fact(
        EventKind.command_accepted,
        entity_for_command(submission.command_id),
        {
            "command_id": submission.command_id,
            "idempotency_key": submission.idempotency_key,
            "kind": kind.value,
            "target": submission.target,
            "adapter_id": session.adapter_id,
            "deployment_scope": session.deployment_scope,
            "runtime_session_id": session.runtime_session_id,
            "generation": session.generation,
            "payload": submission.payload,
            "payload_digest": digest,
            "expires_at": submission.expires_at,
            "issuer": issuer.to_json(),
            "grant_id": grant.grant_id,
            "supersedes": submission.supersedes,
        },
    )
    return SubmissionDecision(
        SubmissionOutcome.accepted, None, SubmissionOutcome.accepted.value, submission.command_id, (accepted, *extra)
    )


def _kind_rules(
    state: CoreState, submission: Submission, kind: CommandKind, issuer: Issuer, extra: list[Fact]
) -> SubmissionDecision | None:
    """Checks that depend on other records: elicitation answers and explicit supersession."""
    if kind in (CommandKind.approval_response, CommandKind.elicitation_response):
        elicitation_id = submission.payload["elicitation_id"]
        elicitation = state.elicitations.get(elicitation_id)
        if elicitation is None or elicitation.target != submission.target:
            return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.target_not_found,
                           f"no elicitation {elicitation_id} on {submission.target}")
        expected = ElicitationKind.approval if kind is CommandKind.approval_response else ElicitationKind.question
        if elicitation.kind is not expected:
            return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                           f"elicitation {elicitation_id} is a {elicitation.kind.value}, not a {expected.value}")
        if elicitation.state is not ElicitationState.pending:
            by = f" by command {elicitation.resolved_by}" if elicitation.resolved_by else ""
            decision = _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                               f"elicitation {elicitation_id} is already {elicitation.state.value}{by}")
            refused = Fact(EventKind.elicitation_answer_refused, entity_for_elicitation(elicitation_id), {
                "elicitation_id": elicitation_id,
                "existing_state": elicitation.state.value,
                "command_id": submission.command_id,
            })
            return attrs.evolve(decision, facts=(*decision.facts, refused))
        if kind is CommandKind.approval_response:
            approve = submission.payload["decision"] == "approve"
            new_state = ElicitationState.answered if approve else ElicitationState.declined
            answer: dict[str, Any] = {"decision": submission.payload["decision"]}
        else:
            declined = bool(submission.payload.get("decline"))
            chosen = submission.payload.get("answer")
            if not declined and elicitation.options and chosen not in elicitation.options:
                # A choice question is answered with one of its options; anything else would
                # resolve the elicitation with an answer the runtime cannot use.
                return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.validation_failed,
                               f"elicitation {elicitation_id} must be answered with one of its options: "
                               + ", ".join(repr(option) for option in elicitation.options))
            new_state = ElicitationState.declined if declined else ElicitationState.answered
            answer = {"answer": None if declined else chosen}
        extra.append(Fact(EventKind.elicitation_resolved, entity_for_elicitation(elicitation_id), {
            "elicitation_id": elicitation_id,
            "state": new_state.value,
            "answer": answer,
            "by_command_id": submission.command_id,
            "reason": "answered by the operator",
        }))
    if submission.supersedes is not None:
        older = state.command_brief(submission.supersedes)
        if older is None or older.target != submission.target:
            return _refuse(submission, issuer, SubmissionOutcome.rejected, Failure.target_not_found,
                           f"no command {submission.supersedes} on {submission.target} to supersede")
        if older.state in (CommandState.accepted, CommandState.delivered):
            extra.append(Fact(EventKind.command_transitioned, entity_for_command(older.command_id), {
                "command_id": older.command_id,
                "state": CommandState.superseded.value,
                "failure": Failure.superseded.value,
                "result": None,
                "reason": f"superseded by command {submission.command_id}",
            }))
    return None
