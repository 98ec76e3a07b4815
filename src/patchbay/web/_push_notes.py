"""What is pushed, decided from committed events (pure: no I/O, no clock).

Pushed: an approval or question waiting; a command that ended failed, cancelled or expired, or
whose outcome is unknown; a command that completed after running longer than
``finished_after_s``; a session that went offline with work running. A payload names the
session (label and target), the state, and the elicitation or command id — never command text,
prompts, outputs or secrets — and carries a tag per session, so a newer notification about a
session replaces the older one, and the cockpit URL a tap opens.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from patchbay.domain.events import EventKind
from patchbay.domain.model import CoreState
from patchbay.registry import (
    CommandKind,
    CommandState,
    ElicitationKind,
    ElicitationState,
    Failure,
    SessionActivityState,
    SessionConnectivityState,
)

ENDED_BADLY = {CommandState.failed, CommandState.cancelled, CommandState.expired}
KIND_WORDS = {CommandKind.instruct: "Message", CommandKind.spawn: "Spawn", CommandKind.reconfigure: "Reconfigure",
              CommandKind.session_management: "Session action", CommandKind.query: "Query",
              CommandKind.cancel: "Cancel", CommandKind.interrupt: "Interrupt"}
OFFLINE = SessionConnectivityState.offline.value


def _session_words(state: CoreState, target: str) -> tuple[str, str]:
    session = state.sessions.get(target)
    label = (session.label if session is not None else "") or target.rpartition("/")[2]
    return label, f"{label} ({target})"


def _note(state: CoreState, target: str, kind: str, what: str, title: str, url: str,
          **ids: Any) -> dict[str, Any]:
    label, named = _session_words(state, target)
    return {"v": 1, "kind": kind, "state": what, "target": target, "session_label": label,
            "title": title, "body": named, "tag": f"session:{target}", "url": url, **ids}


def _session_url(target: str) -> str:
    return "/#/session/" + quote(target, safe="/")


def notification_for(event: Any, state: CoreState, finished_after_s: float) -> dict[str, Any] | None:
    """The push for one committed event, or None when it is not worth a notification."""
    p = event.payload
    if event.kind == EventKind.elicitation_opened:
        approval = p.get("elicitation_kind") == ElicitationKind.approval.value
        kind = ElicitationKind.approval if approval else ElicitationKind.question
        return _note(state, p["target"], kind.value, ElicitationState.pending.value,
                     "Approval waiting" if approval else "Question waiting", _session_url(p["target"]),
                     elicitation_id=p["elicitation_id"])
    if event.kind == EventKind.command_transitioned:
        command = state.commands.get(p["command_id"])
        if command is None:
            return None
        try:
            ended = CommandState(p.get("state"))
        except ValueError:
            return None
        kind_word = KIND_WORDS.get(command.kind, command.kind.value)
        url = _session_url(command.target)
        if ended is CommandState.failed and p.get("failure") == Failure.execution_outcome_unknown.value:
            return _note(state, command.target, "command", ended.value, f"{kind_word}: outcome unknown", url,
                         command_id=command.command_id, failure=Failure.execution_outcome_unknown.value)
        if ended in ENDED_BADLY:
            return _note(state, command.target, "command", ended.value, f"{kind_word} {ended.value}", url,
                         command_id=command.command_id)
        if ended is CommandState.completed:
            started = next((t.ts for t in command.history if t.state is CommandState.running), None)
            if started is not None and event.ts - started > finished_after_s:
                return _note(state, command.target, "command", ended.value, f"{kind_word} finished", url,
                             command_id=command.command_id)
        return None
    if event.kind == EventKind.session_connectivity and p.get("connectivity") == OFFLINE:
        target = p["target"]
        session = state.sessions.get(target)
        working = session is not None and session.activity is SessionActivityState.working
        running = any(c.target == target and c.state in (CommandState.delivered, CommandState.running)
                      for c in state.commands.values())
        if working or running:
            return _note(state, target, "session", OFFLINE, "Session offline with work running",
                         _session_url(target))
    return None
