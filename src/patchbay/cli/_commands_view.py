"""Reading what happened: ``sessions``, ``commands``, ``inspect``, ``watch``, ``audit``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import trio
from rich.text import Text

from patchbay.cli._app import client, json_option, main
from patchbay.cli._client import Client
from patchbay.cli._errors import EXIT_REJECTED, CliError, unreachable
from patchbay.cli._follow import OUTPUT_TYPES
from patchbay.cli._ids import complete_command, complete_target, resolve_command
from patchbay.cli._render import (
    command_text,
    console,
    day_and_time,
    describe_command,
    emit,
    event_line,
    one_line,
    result_text,
    show,
    state_text,
    table,
    when,
)
from patchbay.cli._send import exit_for
from patchbay.domain.events import AUDIT_KINDS, EventKind
from patchbay.registry import SubmissionOutcome

# What `audit` shows without --all or --kind: who got in, what they were allowed, what was
# refused, which adapters joined, and what the operator asked for or answered.
SECURITY_KINDS = frozenset({
    EventKind.domain_initialized, EventKind.core_started, EventKind.operator_created,
    EventKind.operator_password_changed, EventKind.endpoint_enrolled, EventKind.endpoint_revoked,
    EventKind.operator_session_created, EventKind.operator_session_revoked, EventKind.operator_session_expired,
    EventKind.login_succeeded, EventKind.login_failed, EventKind.logout, EventKind.request_refused,
    EventKind.authorization_denied, EventKind.grant_created, EventKind.grant_revoked, EventKind.lockdown_entered,
    EventKind.lockdown_exited, EventKind.adapter_registered, EventKind.adapter_attached, EventKind.adapter_detached,
    EventKind.adapter_failed, EventKind.protocol_error, EventKind.session_generation_rejected,
    EventKind.command_accepted, EventKind.submission_refused, EventKind.elicitation_resolved,
    EventKind.elicitation_answer_refused,
})


@main.command()
@json_option
def sessions(as_json: bool) -> None:
    """List every session with its identity, connectivity and activity."""
    data = client().get("/api/sessions")["sessions"]
    if as_json:
        return emit(data)
    grid = table("target", "gen", "connectivity", "activity", "label", "updated", ids=("target",), folded=("label",))
    for s in data:
        grid.add_row(s["target"], str(s["generation"]), s["connectivity"], s["activity"], s["label"],
                     when(s["updated_ts"]))
    show(grid, "no sessions yet: start an adapter (patchbay adapter run …)")


@main.command()
@click.option("--session", "target", default=None, shell_complete=complete_target, help="Only commands for this TARGET (ADAPTER_ID/SESSION).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="How many of the newest commands to list.")
@json_option
def commands(target: str | None, limit: int, as_json: bool) -> None:
    """List recent commands, newest first, with their text and state.

    \b
    Examples:
      patchbay commands --session shell-1/demo
      patchbay commands --json | jq -r '.[].command_id'
    """
    data = client().get("/api/commands", target=target, limit=limit)["commands"]
    if as_json:
        return emit(data)
    grid = table("command", "kind", "target", "state", "text", "time", ids=("command",), folded=("text",))
    for c in data:
        grid.add_row(c["command_id"], c["kind"], c["target"], state_text(c), command_text(c), when(c["accepted_ts"]))
    show(grid, "no commands yet" + (f" for {target}" if target else ""))


@main.command()
@click.argument("command_id", required=False, shell_complete=complete_command)
@click.option("--key", default=None, help="Find the command by idempotency key (to reconcile).")
@json_option
def inspect(command_id: str | None, key: str | None, as_json: bool) -> None:
    """Show one command: text, state timeline, output and elicitations.

    COMMAND_ID may be any unique prefix of at least 6 characters. Exits 3 when the command
    ended in a non-success state (like send --wait).

    \b
    Examples:
      patchbay inspect cmd-3f2a9c
      patchbay inspect --key my-retry-key --json
    """
    http = client()
    if key:
        found = http.get("/api/commands", idempotency_key=key)["commands"]
        if not found:
            if as_json:
                emit({"outcome": SubmissionOutcome.rejected, "idempotency_key": key, "command": None})
            else:
                click.echo(f"no command with idempotency key {key}: it was never accepted; resend it")
            raise SystemExit(EXIT_REJECTED)
        record = found[0]
    elif command_id:
        record = resolve_command(http, command_id)
    else:
        raise CliError("give a COMMAND_ID or --key", EXIT_REJECTED)
    if as_json:
        emit(record)
        exit_for(record)
        return
    describe_command({**record, "result": None})
    text = (record.get("payload") or {}).get("text")
    if isinstance(text, str) and "\n" in text.strip():
        console.print("  text:\n" + "\n".join(f"    {line}" for line in text.strip().splitlines()), markup=False)
    else:
        console.print(f"  text: {text.strip() if isinstance(text, str) else command_text(record)}", markup=False)
    console.print(f"  key: {record['idempotency_key']} · retry advice: {record['retry_advice']}", markup=False)
    console.print("timeline:")
    for step in record["history"]:
        line = Text(f"  {day_and_time(step['ts'])}  LSN {step['lsn']:<6} ")
        line.append_text(state_text({**step, "terminal": step is record["history"][-1] and record["terminal"]}))
        console.print(line)
    for e in record["elicitations"]:
        console.print(f"elicitation {e['elicitation_id']} ({e['kind']}): {e['state']} — {one_line(e['title'])}",
                      markup=False, soft_wrap=True)
    output = streamed_output(http, record)
    if output:
        console.print("output:")
        click.echo(output.rstrip("\n"))
    result = result_text(record.get("result"))
    if result and result.strip() not in output:
        console.print("result:")
        click.echo(result.rstrip("\n"))
    exit_for(record)


def streamed_output(http: Client, record: dict[str, Any]) -> str:
    """The output a command streamed, from its session's transcript (its first 2,000 events)."""
    after = max(int(record.get("accepted_lsn") or 0) - 1, 0)
    events = http.get(f"/api/sessions/{record['target']}/transcript", about=("session", record["target"]),
                      after=after, limit=2000)["events"]
    pieces = []
    for event in events:
        payload = event.get("payload") or {}
        observation = payload.get("observation") or {}
        if payload.get("command_id") == record["command_id"] and observation.get("type") in OUTPUT_TYPES:
            pieces.append(str(observation.get("text") or ""))
    return "".join(pieces)


@main.command()
@click.option("--from", "cursor", default=None, type=int, help="Resume after this LSN (default: a snapshot first).")
@json_option
def watch(cursor: int | None, as_json: bool) -> None:
    """Follow committed events live, one line per event (Ctrl-C stops).

    \b
    Examples:
      patchbay watch
      patchbay watch --from 1200 --json
    """
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

    http = client()
    url = f"{http.stream_url}?cursor={cursor if cursor is not None else -1}"

    async def follow() -> None:
        async with open_websocket_url(url, http.ssl_context, extra_headers=http.stream_headers,
                                      max_message_size=64 * 1024 * 1024) as ws:
            while True:
                message = json.loads(await ws.get_message())
                if as_json:
                    click.echo(json.dumps(message))
                elif message["type"] == "hello":
                    click.echo(f"# resume verdict: {message['verdict']} (core at LSN {message['lsn']})")
                elif message["type"] == "snapshot":
                    click.echo(f"# snapshot at LSN {message['lsn']}: {len(message['sessions'])} sessions, "
                               f"{len(message['commands'])} commands")
                elif message["type"] == "events":
                    for event in message["events"]:
                        click.echo(event_line(event))
                sys.stdout.flush()

    try:
        trio.run(follow)
    except KeyboardInterrupt:
        pass
    except (OSError, HandshakeError) as problem:
        raise unreachable(http.login.url, problem) from None
    except ConnectionClosed as closed:
        reason = closed.reason
        code = getattr(reason, "code", None)
        if code == 4401:
            raise CliError("the core ended this login while watching; log in again") from None
        raise CliError(f"the core closed the stream ({getattr(reason, 'reason', None) or code}); "
                       "resume with patchbay watch --from LSN") from None


def _audit_kinds(kind: str | None, everything: bool) -> list[str] | None:
    if kind:
        asked = [k.strip() for k in kind.split(",") if k.strip()]
        unknown = [k for k in asked if k not in AUDIT_KINDS]
        if unknown:
            raise CliError(f"unknown audit kind {', '.join(unknown)}; valid kinds: "
                           f"{', '.join(sorted(AUDIT_KINDS))}", EXIT_REJECTED)
        return asked
    return None if everything else sorted(SECURITY_KINDS)


# Detail fields the table leaves out (the entity column names the record; --json has all).
QUIET_DETAILS = frozenset({"payload_digest", "issuer", "idempotency_key", "deployment_scope", "runtime_session_id",
                           "adapter_id", "generation", "command_id", "session_id", "endpoint_id", "grant_id",
                           "elicitation_id", "operator_id", "manifest", "connection_id", "metadata"})


def details_text(details: dict[str, object]) -> str:
    parts = []
    for name, value in details.items():
        if value in (None, "", [], {}) or name in QUIET_DETAILS:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        parts.append(f"{name}={one_line(str(shown), 80)}")
    return " ".join(parts)


@main.command()
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True,
              help="How many of the newest records to show.")
@click.option("--kind", default=None, help="Only these event kinds (comma-separated, e.g. login.failed,grant.revoked).")
@click.option("--all", "everything", is_flag=True, help="Every audited kind, not only the security-relevant ones.")
@json_option
def audit(limit: int, kind: str | None, everything: bool, as_json: bool) -> None:
    """Show the audit log, newest first: security-relevant records unless --all or --kind.

    \b
    Examples:
      patchbay audit
      patchbay audit --kind login.failed,security.request_refused --limit 20
      patchbay audit --all --json
    """
    kinds = _audit_kinds(kind, everything)
    records = client().get("/api/audit", limit=limit, kind=",".join(kinds) if kinds else None)["records"]
    if as_json:
        return emit(records)
    grid = table("lsn", "time", "kind", "entity", "details", ids=("entity",), folded=("details",))
    for r in records:
        grid.add_row(str(r["lsn"]), day_and_time(r["ts"]), r["kind"], r["entity"], details_text(r["details"]))
    show(grid, "no audit records" + (f" of kind {kind}" if kind else ""))
