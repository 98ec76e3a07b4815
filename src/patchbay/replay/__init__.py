"""``patchbay replay``: rebuild state from a journal offline and check it.

It opens the journal read-only (a damaged or foreign file is reported and left untouched),
folds every event through the same ``apply`` the live core uses, and with ``--check`` runs the
independent ``JournalChecker`` plus a consistency check between the two (every command the
checker saw is in the rebuilt state with the same state). Exit 0 when clean, 1 on a violation
or an unreadable journal.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from patchbay._collector import collector_paused
from patchbay.domain import history
from patchbay.domain.events import EventKind
from patchbay.domain.invariants import JournalChecker, Violation
from patchbay.domain.model import CoreState
from patchbay.domain.reducer import apply
from patchbay.journal import JournalError, JournalStore, StoredEvent
from patchbay.registry import LeaseState
from patchbay.wire import api

# The latest time a journal may name (the end of year 9999): what the platform can show.
MAX_TIME = 253402300799.0
_TIMED_KINDS = frozenset({EventKind.lease_acquired.value, EventKind.lease_renewed.value,
                          EventKind.command_accepted.value, EventKind.elicitation_opened.value})


def time_problem(event: StoredEvent) -> Violation | None:
    """An event whose time or deadline is not a time (NaN, infinite, past year 9999, not a
    number): journaled by an older core that took it from an adapter or a client."""
    values = [("ts", event.ts)]
    if event.kind in _TIMED_KINDS and event.payload.get("expires_at") is not None:
        values.append(("expires_at", event.payload["expires_at"]))
    for name, value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or abs(value) > MAX_TIME:
            return Violation("FiniteTimes", event.lsn, f"{event.kind} on {event.entity}: {name} {value!r} is not a time")
    return None


def clock_time(value: float) -> str:
    """HH:MM:SS of a timestamp, or the value itself when it is not a time."""
    try:
        return time.strftime("%H:%M:%S", time.localtime(value))
    except (OverflowError, ValueError, OSError, TypeError):
        return repr(value)


@attrs.define
class ReplayResult:
    state: CoreState
    events: int
    violations: list[Violation]
    seconds: float


def replay_journal(path: Path, *, until_lsn: int | None = None, check: bool = True,
                   on_event: Callable[[StoredEvent], None] | None = None) -> ReplayResult:
    """Fold the journal (up to ``until_lsn``) through ``apply``; raises JournalError if unreadable."""
    started = time.perf_counter()
    store = JournalStore.open(path, read_only=True)
    try:
        with collector_paused():
            state = CoreState()
            checker = JournalChecker()
            count = 0
            check_event = checker.check if check else None
            times: list[Violation] = []
            for event in store.read(until_lsn=until_lsn):
                apply(state, event)
                if check_event is not None:
                    check_event(event)
                    if (problem := time_problem(event)) is not None:
                        times.append(problem)
                if on_event is not None:
                    on_event(event)
                count += 1
        violations = [*checker.violations, *times] if check else []
        if check:
            for command_id, checked_state in checker.command_states().items():
                record = state.command_brief(command_id)  # live or archived
                if record is None or record.state.value != checked_state:
                    violations.append(Violation(
                        "IdempotentLogReplay", state.last_lsn,
                        f"command {command_id}: reducer says {record.state.value if record else 'missing'}, "
                        f"the journal says {checked_state}"))
        return ReplayResult(state, count, violations, time.perf_counter() - started)
    finally:
        store.close()


def run_replay(path: Path, *, check: bool, until_lsn: int | None, command_id: str | None, target: str | None,
               as_json: bool, echo: Callable[[str], None]) -> int:
    timeline: list[dict[str, Any]] = []
    own_events: list[StoredEvent] = []  # what rebuilds the command's record if it was archived

    def collect(event: StoredEvent) -> None:
        entity = event.entity
        if command_id and (entity == f"command:{command_id}" or (
                event.kind == EventKind.elicitation_opened and event.payload.get("command_id") == command_id)):
            own_events.append(event)
        if (command_id and entity == f"command:{command_id}") or (target and entity == f"session:{target}") or (
            command_id and event.payload.get("command_id") == command_id and entity != f"command:{command_id}"
        ):
            timeline.append({"lsn": event.lsn, "ts": event.ts, "kind": event.kind,
                             "payload": {k: v for k, v in event.payload.items() if k != "payload"}})

    try:
        result = replay_journal(path, until_lsn=until_lsn, check=check,
                                on_event=collect if (command_id or target) else None)
    except JournalError as problem:
        echo(f"error: {problem}")
        return 1
    state = result.state
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    summary: dict[str, Any] = {
        "journal": str(path), "authority_domain_id": state.authority_domain_id, "last_lsn": state.last_lsn,
        "events": result.events, "seconds": round(result.seconds, 3), "events_per_second": round(rate),
        "commands": state.command_count(), "sessions": len(state.sessions), "leases": len(state.leases),
        "lockdown": state.lockdown.active,
        "violations": [str(v) for v in result.violations] if check else None,
        "held_leases": [api.lease_view(lease) for lease in state.leases.values() if lease.state is LeaseState.held],
    }
    if command_id:
        record = state.commands.get(command_id) or (
            history.rebuild_command(command_id, own_events) if command_id in state.archived else None)
        summary["command"] = api.command_view(record, state) if record else None
        summary["timeline"] = timeline
    if target:
        session = state.sessions.get(target)
        summary["session"] = api.session_view(session, state) if session else None
        summary["timeline"] = timeline
    if as_json:
        echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        echo(f"{path}: {result.events} events up to LSN {state.last_lsn} in {result.seconds:.3f} s "
             f"({rate:,.0f} events/s); {state.command_count()} commands, {len(state.sessions)} sessions")
        for lease in summary["held_leases"]:
            echo(f"  lease {lease['lease_id']} held: {lease['resource']} ({lease['scope']}) by {lease['holder']} "
                 f"until {clock_time(lease['expires_at'])}")
        for entry in timeline:
            echo(f"  {entry['lsn']:>8} {clock_time(entry['ts'])} "
                 f"{entry['kind']:<28} {json.dumps(entry['payload'])[:120]}")
        if check:
            if result.violations:
                for violation in result.violations:
                    echo(f"VIOLATION {violation}")
            else:
                echo("check: no violations")
    return 1 if check and result.violations else 0
