"""Decisions that move accepted commands, sessions and elicitations after acceptance.

Each function is pure: it reads state and the inputs (times included) and returns the facts to
journal plus a short answer for the caller. None of them rewrites a terminal command: a late
terminal candidate becomes a ``command.late_outcome`` reconciliation record.
"""

from __future__ import annotations

from typing import Any

import attrs

from patchbay import faults
from patchbay.domain.events import (
    EventKind,
    Fact,
    entity_for_command,
    entity_for_elicitation,
    entity_for_session,
)
from patchbay.domain.model import CommandBrief, CommandRecord, CoreState, SessionRecord
from patchbay.registry import (
    OBSERVABLE_ACTIVITY,
    OBSERVABLE_CONNECTIVITY,
    CommandKind,
    CommandState,
    ElicitationKind,
    ElicitationState,
    Failure,
    SessionActivityState,
    SessionConnectivityState,
    SnapshotTier,
    command_transition_allowed,
)


@attrs.frozen
class Outcome:
    """Facts to journal and what to tell the caller: ``ok`` or an error naming the problem."""

    facts: tuple[Fact, ...] = ()
    ok: bool = True
    error: str | None = None
    stale: bool = False
    settled: bool = False  # the command already has its outcome: the report is recorded as late


def _transition(record: CommandBrief, state: CommandState, failure: Failure | None,
                result: dict[str, Any] | None, reason: str | None) -> Fact:
    return Fact(EventKind.command_transitioned, entity_for_command(record.command_id), {
        "command_id": record.command_id,
        "state": state.value,
        "failure": failure.value if failure else None,
        "result": result,
        "reason": reason,
    })


def _late(record: CommandBrief, state: CommandState, failure: Failure | None, reason: str) -> Fact:
    return Fact(EventKind.command_late_outcome, entity_for_command(record.command_id), {
        "command_id": record.command_id,
        "candidate_state": state.value,
        "candidate_failure": failure.value if failure else None,
        "recorded_state": record.state.value,
        "reason": reason,
    })


def move_command(record: CommandBrief, state: CommandState, failure: Failure | None = None,
                 result: dict[str, Any] | None = None, reason: str | None = None) -> Outcome:
    """Ask for ``record -> state``; a terminal record turns the request into a late outcome."""
    if record.state is state and not state.terminal:
        return Outcome()  # a repeated report of the current state: nothing to record
    if record.terminal and faults.active("terminal_overwrite") and state.terminal:
        return Outcome((_transition(record, state, failure, result, reason),))
    if record.terminal:
        if state is record.state and failure is record.failure:
            return Outcome()  # the same outcome reported again (e.g. resent after a reconnect)
        if state.terminal or state in (CommandState.delivered, CommandState.running):
            return Outcome((_late(record, state, failure, reason or "reported after the outcome"),),
                           ok=False, settled=True,
                           error=f"command {record.command_id} is already {record.state.value}")
        return Outcome()
    if not command_transition_allowed(record.state, state):
        if state is CommandState.delivered and record.state is CommandState.running:
            return Outcome()  # a redelivery acknowledgement that arrives after `running`
        return Outcome(ok=False, error=f"command {record.command_id} cannot go from "
                                       f"{record.state.value} to {state.value}")
    facts = [_transition(record, state, failure, result, reason)]
    return Outcome(tuple(facts))


def decide_adapter_report(
    state: CoreState, adapter_id: str, command_id: str, report_state: str,
    failure: str | None, result: dict[str, Any] | None, reason: str | None,
) -> Outcome:
    """An adapter's report about a command it was given (delivered, running or an outcome).

    An archived command is terminal: a report about it becomes a late outcome."""
    record = state.command_brief(command_id)
    if record is None:
        return Outcome(ok=False, error=f"unknown command {command_id}")
    if record.adapter_id != adapter_id:
        return Outcome(ok=False, error=f"command {command_id} does not belong to adapter {adapter_id}")
    try:
        target_state = CommandState(report_state)
        failure_name = Failure(failure) if failure else None
    except ValueError:
        return Outcome(ok=False, error=f"unknown state {report_state!r} or failure {failure!r}")
    if target_state is CommandState.accepted:
        return Outcome(ok=False, error=f"adapters cannot report {CommandState.accepted.value!r}")
    if target_state is CommandState.failed and failure_name is None:
        failure_name = Failure.execution_failed
    if target_state is CommandState.rejected and failure_name is None:
        failure_name = Failure.delivery_rejected
    return move_command(record, target_state, failure_name, result, reason)


def decide_core_cancel(state: CoreState, cancel: CommandRecord) -> tuple[Outcome, bool]:
    """A `cancel`/`interrupt` command whose target the core can settle without the adapter.

    Returns the outcome and whether the cancel still has to be delivered to the adapter
    (because the target command is already in the adapter's hands).
    """
    target_id = cancel.payload.get("command_id")
    if target_id is None:
        return Outcome(), True  # cancels the current turn: only the adapter knows it
    target = state.command_brief(target_id)
    if target is None or target.target != cancel.target:
        return _settle(cancel, CommandState.rejected, Failure.target_not_found,
                       {"target_command_id": target_id, "effect": "not_found"},
                       f"no command {target_id} on {cancel.target}"), False
    if target.terminal:
        return _settle(cancel, CommandState.completed, None,
                       {"target_command_id": target_id, "effect": "too_late",
                        "target_state": target.state.value},
                       f"command {target_id} was already {target.state.value} before the cancel arrived"), False
    if target.state is CommandState.accepted:
        facts = _settle(cancel, CommandState.completed, None,
                        {"target_command_id": target_id, "effect": CommandState.cancelled.value,
                         "target_state": CommandState.cancelled.value},
                        "cancelled before delivery").facts
        cancelled = _transition(target, CommandState.cancelled, Failure.cancelled, None,
                                f"cancelled by command {cancel.command_id} before delivery")
        return Outcome((cancelled, *facts)), False
    return Outcome(), True


def _settle(record: CommandRecord, final: CommandState, failure: Failure | None,
            result: dict[str, Any], reason: str) -> Outcome:
    """The core itself handles a command: it records taking responsibility, then the outcome."""
    facts = []
    if final is not CommandState.rejected:
        facts.append(_transition(record, CommandState.delivered, None, None, "handled by the core"))
    facts.append(_transition(record, final, failure, result, reason))
    return Outcome(tuple(facts))


def decide_expiry(record: CommandRecord, now: float) -> Outcome:
    """The validity window closed before a terminal outcome: the command expires."""
    if record.terminal or record.expires_at is None or now < record.expires_at:
        return Outcome()
    return move_command(record, CommandState.expired, Failure.expired, None,
                        "validity window closed before completion")


def decide_adapter_lost(state: CoreState, adapter_id: str, *, new_attachment: bool) -> Outcome:
    """Give the in-flight commands of an adapter an honest outcome.

    A command that was ``running`` may have had effects: ``failed`` with
    ``execution_outcome_unknown``. One that was only ``delivered`` or ``accepted`` never started
    (adapters report ``running`` before any side effect): ``failed`` with
    ``adapter_unavailable`` — except on a new attachment, which gets them redelivered.
    """
    facts: list[Fact] = []
    for record in state.commands.values():
        if record.adapter_id != adapter_id or record.terminal:
            continue
        if record.state is CommandState.running and faults.active("timeout_is_success"):
            facts.append(_transition(record, CommandState.completed, None, None, "the adapter was lost"))
        elif record.state is CommandState.running:
            facts.append(_transition(record, CommandState.failed, Failure.execution_outcome_unknown, None,
                                     "the adapter was lost while the command was running; it may have run"))
        elif not new_attachment:
            facts.append(_transition(record, CommandState.failed, Failure.adapter_unavailable, None,
                                     "the adapter was unavailable for longer than the bound"))
    return Outcome(tuple(facts))


# -- sessions ----------------------------------------------------------------------------


def decide_session_report(
    state: CoreState, adapter_id: str, deployment_scope: str, runtime_session_id: str,
    generation: int, label: str, metadata: dict[str, Any], activity: str,
    snapshot_tier: str, connectivity: str = SessionConnectivityState.live,
) -> Outcome:
    """Apply the generation rules: greater supersedes, equal refreshes, lower is rejected.

    Only the registry's observable values are accepted: an adapter cannot report ``stale``,
    which is the core's own judgment of freshness.
    """
    target = f"{adapter_id}/{runtime_session_id}"
    try:
        activity_state = SessionActivityState(activity)
        tier = SnapshotTier(snapshot_tier)
        connectivity_state = SessionConnectivityState(connectivity)
    except ValueError as error:
        return Outcome(ok=False, error=str(error))
    if connectivity_state not in OBSERVABLE_CONNECTIVITY:
        return Outcome(ok=False, error=f"an adapter cannot report connectivity {connectivity_state.value!r}; "
                                       f"it may report {sorted(c.value for c in OBSERVABLE_CONNECTIVITY)}")
    current = state.sessions.get(target)
    reported = Fact(EventKind.session_reported, entity_for_session(target), {
        "target": target,
        "adapter_id": adapter_id,
        "deployment_scope": deployment_scope,
        "runtime_session_id": runtime_session_id,
        "generation": generation,
        "label": label,
        "metadata": metadata,
        "connectivity": connectivity_state.value,
        "activity": activity_state.value,
        "snapshot_tier": tier.value,
    })
    if current is None:
        return Outcome((reported,))
    if current.deployment_scope and deployment_scope != current.deployment_scope \
            and not faults.active("scope_check_off"):
        return Outcome(ok=False, error=f"session {target} belongs to deployment scope "
                                       f"{current.deployment_scope!r}, not {deployment_scope!r}")
    if generation < current.generation and not faults.active("generation_regress"):
        rejected = Fact(EventKind.session_generation_rejected, entity_for_session(target), {
            "target": target, "reported": generation, "current": current.generation,
        })
        return Outcome((rejected,), ok=False, error=f"generation {generation} is older than the live "
                                                   f"generation {current.generation}", stale=True)
    if generation == current.generation:
        unchanged = (current.label == label and current.metadata == metadata
                     and current.activity is activity_state and current.connectivity is connectivity_state
                     and current.snapshot_tier is tier)
        return Outcome() if unchanged else Outcome((reported,))
    superseded = Fact(EventKind.session_superseded, entity_for_session(target), {
        "target": target, "old_generation": current.generation, "new_generation": generation,
    })
    facts = [superseded, reported]
    for record in state.commands.values():
        if record.target == target and record.generation < generation and record.state in (
            CommandState.accepted, CommandState.delivered
        ) and record.kind is not CommandKind.session_management:
            facts.append(_transition(record, CommandState.superseded, Failure.superseded, None,
                                     f"session {target} was replaced by generation {generation}"))
    for elicitation in state.elicitations.values():
        if elicitation.target == target and elicitation.generation < generation \
                and elicitation.state is ElicitationState.pending:
            facts.append(Fact(EventKind.elicitation_resolved, entity_for_elicitation(elicitation.elicitation_id), {
                "elicitation_id": elicitation.elicitation_id, "state": ElicitationState.superseded.value,
                "answer": None, "by_command_id": None,
                "reason": f"session replaced by generation {generation}",
            }))
    return Outcome(tuple(facts))


def stale_event(target: str, generation: int, current: int, frame_type: str, reason: str) -> Fact:
    return Fact(EventKind.stale_event, entity_for_session(target), {
        "target": target, "generation": generation, "current_generation": current,
        "frame_type": frame_type, "reason": reason,
    })


def live_session(state: CoreState, adapter_id: str, runtime_session_id: str, generation: int,
                 frame_type: str) -> tuple[SessionRecord | None, Outcome | None]:
    """Resolve an adapter frame's session; old generations yield a `stale_event` instead."""
    target = f"{adapter_id}/{runtime_session_id}"
    session = state.sessions.get(target)
    if session is None:
        return None, Outcome(ok=False, error=f"unknown session {target}")
    if generation != session.generation and not faults.active("generation_check_off"):
        fact = stale_event(target, generation, session.generation, frame_type,
                           "event for a generation that is not live")
        return None, Outcome((fact,), ok=False, error=f"generation {generation} of {target} is not live "
                                                      f"({session.generation})", stale=True)
    return session, None


def decide_observation(session: SessionRecord, command_id: str | None, observation: dict[str, Any],
                       activity: str | None) -> Outcome:
    """A runtime observation (transcript) of the live generation, with an optional activity."""
    facts = [Fact(EventKind.session_observation, entity_for_session(session.target), {
        "target": session.target, "generation": session.generation,
        "command_id": command_id, "observation": observation})]
    if activity is not None:
        try:
            observed = SessionActivityState(activity)
        except ValueError:
            return Outcome(ok=False, error=f"unknown activity {activity!r}; an adapter may report "
                                           f"{sorted(a.value for a in OBSERVABLE_ACTIVITY)}")
        if observed is not session.activity:
            facts.append(Fact(EventKind.session_activity, entity_for_session(session.target), {
                "target": session.target, "generation": session.generation, "activity": observed.value}))
    return Outcome(tuple(facts))


def decide_connectivity(session: SessionRecord, connectivity: SessionConnectivityState,
                        reason: str) -> Outcome:
    if session.connectivity is connectivity:
        return Outcome()
    return Outcome((Fact(EventKind.session_connectivity, entity_for_session(session.target), {
        "target": session.target, "generation": session.generation,
        "connectivity": connectivity.value, "reason": reason,
    }),))


# -- elicitations ------------------------------------------------------------------------


def decide_elicitation_opened(state: CoreState, session: SessionRecord, elicitation_id: str,
                              kind: str, command_id: str | None, title: str, body: str,
                              options: list[str], expires_at: float | None) -> Outcome:
    if elicitation_id in state.elicitations:
        return Outcome()  # a redelivered frame
    if state.has_command(elicitation_id):
        return Outcome(ok=False, error="an elicitation id cannot reuse a command id")
    try:
        elicitation_kind = ElicitationKind(kind)
    except ValueError:
        return Outcome(ok=False, error=f"unknown elicitation kind {kind!r}")
    if command_id is not None:
        command = state.command_brief(command_id)
        if command is None or command.target != session.target:
            return Outcome(ok=False, error=f"elicitation refers to unknown command {command_id}")
    return Outcome((Fact(EventKind.elicitation_opened, entity_for_elicitation(elicitation_id), {
        "elicitation_id": elicitation_id, "elicitation_kind": elicitation_kind.value,
        "target": session.target, "generation": session.generation, "command_id": command_id,
        "title": title, "body": body, "options": options, "expires_at": expires_at,
    }),))


def decide_elicitation_closed(state: CoreState, elicitation_id: str, new_state: str,
                              reason: str) -> Outcome:
    """The runtime withdrew or timed out an elicitation, or its deadline passed."""
    record = state.elicitations.get(elicitation_id)
    if record is None:
        return Outcome(ok=False, error=f"unknown elicitation {elicitation_id}")
    try:
        closed = ElicitationState(new_state)
    except ValueError:
        return Outcome(ok=False, error=f"unknown elicitation state {new_state!r}")
    if closed in (ElicitationState.pending, ElicitationState.answered, ElicitationState.declined):
        return Outcome(ok=False, error="only the operator answers or declines an elicitation")
    if record.state is not ElicitationState.pending:
        return Outcome()
    return Outcome((Fact(EventKind.elicitation_resolved, entity_for_elicitation(elicitation_id), {
        "elicitation_id": elicitation_id, "state": closed.value, "answer": None,
        "by_command_id": None, "reason": reason,
    }),))


def decide_reply(state: CoreState, session: SessionRecord, reply_id: str, correlates_kind: str,
                 correlates_id: str, content: dict[str, Any]) -> Outcome:
    """TypedCorrelation: a reply references a known command in the same session context."""
    if state.has_command(reply_id) or reply_id in state.elicitations:
        return Outcome(ok=False, error="a reply id cannot reuse a command or elicitation id")
    if faults.active("reply_correlation_off"):
        pass
    elif correlates_kind != "command":
        return Outcome(ok=False, error=f"replies correlate to commands, not {correlates_kind!r}")
    command = state.command_brief(correlates_id)
    if (command is None or command.target != session.target) and not faults.active("reply_correlation_off"):
        return Outcome(ok=False, error=f"reply refers to unknown command {correlates_id} on {session.target}")
    return Outcome((Fact(EventKind.reply_recorded, entity_for_command(correlates_id), {
        "reply_id": reply_id, "target": session.target, "generation": session.generation,
        "correlates_kind": correlates_kind, "correlates_id": correlates_id, "content": content,
    }),))
