"""How the CLI shows things to a person: listings, command summaries, one line per event.

Ids are never wrapped or cut (they are meant to be copied); free text (a command's text, a
title) is what gets folded when the terminal is narrow. ``--json`` output never passes here.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from patchbay.cli._listing import Listing, print_listing
from patchbay.registry import CommandState

# On a terminal tables fit its width; into a pipe or a file nothing is cut or folded.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)  # messages stay whole lines for scripts


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def when(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "-"


def day_and_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def table(*columns: str, ids: tuple[str, ...] = (), folded: tuple[str, ...] = ()) -> Listing:
    """A listing whose ``ids`` columns are never cut and whose ``folded`` columns fold to fit."""
    return Listing(columns, ids, folded)


def show(listing: Listing, empty: str | None = None) -> None:
    """Print a listing, or ``empty`` when it has no rows."""
    print_listing(console, listing, empty)


def one_line(text: str | None, width: int = 200) -> str:
    """Free text on one line (newlines shown as ⏎), cut at ``width`` with an ellipsis."""
    flat = (text or "").replace("\r", "").replace("\n", " ⏎ ").strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def command_text(record: dict[str, Any]) -> str:
    payload = record.get("payload") or {}
    text = payload.get("text")
    if text is None and payload.get("command_id"):
        text = f"→ {payload['command_id']}"
    if text is None and payload.get("elicitation_id"):
        text = f"answer {payload['elicitation_id']}"
    return one_line(text if isinstance(text, str) else json.dumps(payload) if payload else "")


def state_text(record: dict[str, Any]) -> Text:
    state = record["state"]
    style = "green" if state == CommandState.completed else "red" if record.get("terminal") else "yellow"
    label = Text(state, style=style)
    if record.get("failure"):
        label.append(f" ({record['failure']})")
    return label


def result_text(result: Any) -> str | None:
    """A command's result as text: shell output, an assistant's reply, or compact JSON."""
    if not result:
        return None
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        for field in ("output", "text", "reply", "message"):
            value = result.get(field)
            if isinstance(value, str) and value:
                return value
        if "output" in result and not result["output"]:
            return None
    return json.dumps(result, sort_keys=True)


def summary(record: dict[str, Any], *, with_reason: bool = True) -> Text:
    """``cmd-… instruct → shell-1/demo (generation 1): failed (execution_failed) — exit code 3``."""
    line = Text(f"{record['command_id']} {record['kind']} → {record['target']} "
                f"(generation {record['generation']}): ")
    line.append_text(state_text(record))
    if with_reason and record.get("reason") and record.get("terminal"):
        line.append(f" — {one_line(record['reason'])}")
    return line


def describe_command(record: dict[str, Any], note: str | None = None) -> None:
    """The summary line of a command, its reason, then its result as text on stdout."""
    console.print(summary(record, with_reason=False), soft_wrap=True)
    if note and note.startswith("duplicate"):
        console.print(f"  {note}", soft_wrap=True, markup=False)
    if record.get("reason"):
        console.print(f"  {record['reason']}", soft_wrap=True, markup=False)
    text = result_text(record.get("result"))
    if text:
        click.echo(text.rstrip("\n"))


def event_line(event: dict[str, Any]) -> str:
    """One human line per stream event: ``12:00:01 shell-1/demo cmd-3f2a… running  #1234``."""
    from patchbay.domain.events import EventKind

    payload = event.get("payload") or {}
    command, session, elicitation = event.get("command"), event.get("session"), event.get("elicitation")
    target = (command or session or elicitation or {}).get("target") or payload.get("target") or ""
    kind = event["kind"]
    if elicitation:
        what = f"{elicitation['elicitation_id']} {elicitation['kind']} {elicitation['state']}: " \
               f"{one_line(elicitation['title'], 120)}"
    elif command and kind in (EventKind.command_accepted, EventKind.command_transitioned):
        failure = f" ({command['failure']})" if command.get("failure") else ""
        state = payload.get("state") or command["state"]
        what = f"{command['command_id']} {state}{failure}"
        if kind == EventKind.command_accepted:
            what = f"{command['command_id']} {command['kind']} accepted: {command_text(command)}"
    elif kind == EventKind.session_observation:
        observation = payload.get("observation") or {}
        text = observation.get("text")
        what = f"{payload.get('command_id') or ''} {observation.get('type', 'observation')}".strip()
        if isinstance(text, str) and text:
            what += f": {one_line(text, 120)}"
    elif session and kind != EventKind.session_observation:
        what = f"session {session['connectivity']}, {session['activity']} (generation {session['generation']})"
    else:
        what = f"{kind} {event['entity']}"
    return " ".join(part for part in (when(event.get("ts")), target, what) if part) + f"  #{event['lsn']}"
