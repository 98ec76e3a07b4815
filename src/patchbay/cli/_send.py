"""Submitting commands: ``send``, ``cancel``, ``interrupt`` (and the submission every one shares).

A submission is accepted, rejected (exit 2) or of unknown outcome (exit 4: reconcile by the
idempotency key). With ``--wait`` the command is followed live until it ends: exit 0 when it
completed, 3 when it ended otherwise, 4 when it is still running at the timeout.
"""

from __future__ import annotations

import secrets
from typing import Any

import click

from patchbay.cli._app import client, json_option, main, wait_option
from patchbay.cli._errors import EXIT_REJECTED, EXIT_TERMINAL_FAILURE, EXIT_UNKNOWN, OutcomeUnknown
from patchbay.cli._follow import follow
from patchbay.cli._ids import complete_command, complete_target, resolve_command
from patchbay.cli._render import describe_command, emit, err_console, result_text, summary
from patchbay.registry import CommandKind, CommandState, SubmissionOutcome


def new_command_id() -> str:
    return f"cmd-{secrets.token_hex(10)}"


def submit(kind: str, target: str, payload: dict[str, Any], *, command_id: str | None, key: str | None,
           wait: bool, as_json: bool, timeout: float, generation: int | None = None) -> None:
    command_id = command_id or new_command_id()
    key = key or command_id
    http = client()
    body: dict[str, Any] = {"command_id": command_id, "idempotency_key": key, "kind": kind, "target": target,
                            "payload": payload}
    if generation is not None:
        body["generation"] = generation
    try:
        _, answer = http.post("/api/commands", body, allow=(403, 409, 422))
    except OutcomeUnknown as problem:
        err_console.print(f"[yellow]outcome unknown:[/yellow] {problem}")
        err_console.print(f"reconcile with: patchbay inspect --key {key}   (retry safely with: "
                          f"patchbay send ... --command-id {command_id} --idempotency-key {key})", markup=False)
        if as_json:
            emit({"outcome": SubmissionOutcome.unknown, "command_id": command_id, "idempotency_key": key})
        raise SystemExit(EXIT_UNKNOWN) from None
    if answer["outcome"] != SubmissionOutcome.accepted:
        if as_json:
            emit(answer)
        else:
            err_console.print(f"[red]{answer['outcome']}[/red] ({answer['failure']}): {answer['reason']}")
        raise SystemExit(EXIT_REJECTED)
    record = answer["command"]
    timed_out = streamed = False
    if wait and not record["terminal"]:
        if not as_json:
            err_console.print(f"{record['command_id']} {record['state']} → {record['target']}", markup=False)
        followed = follow(http, record, timeout, live=not as_json)
        record, timed_out, streamed = followed.record, followed.timed_out, followed.streamed
    if as_json:
        emit(record)
    elif wait:
        err_console.print(summary(record), markup=False, soft_wrap=True)
        text = None if streamed else result_text(record.get("result"))
        if text:
            click.echo(text.rstrip("\n"))
    else:
        describe_command(record, answer.get("reason"))
    exit_for(record, timed_out)


def exit_for(record: dict[str, Any], timed_out: bool = False) -> None:
    if record["terminal"] and record["state"] != CommandState.completed:
        raise SystemExit(EXIT_TERMINAL_FAILURE)
    if not record["terminal"] and timed_out:
        raise SystemExit(EXIT_UNKNOWN)


@main.command()
@click.argument("target", shell_complete=complete_target)
@click.argument("text")
@wait_option
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to follow with --wait before exit 4.")
@click.option("--command-id", default=None, help="Reuse to retry safely (with the same key).")
@click.option("--idempotency-key", "key", default=None,
              help="The key the core deduplicates by (default: the command id).")
@click.option("--mode", type=click.Choice(["followUp", "steer"]), default=None,
              help="While the session is busy: queue as a follow-up (default) or steer.")
@click.option("--generation", type=int, default=None, help="Refuse unless this is the live generation.")
@json_option
def send(target: str, text: str, wait: bool, timeout: float, command_id: str | None, key: str | None,
         mode: str | None, generation: int | None, as_json: bool) -> None:
    """Send an instruction (a prompt, or a shell command line) to TARGET (ADAPTER_ID/SESSION).

    With --wait its output streams to stdout as it arrives; state changes and approvals it
    waits for go to stderr. Exit 0 completed, 2 rejected, 3 ended otherwise, 4 unknown.

    \b
    Examples:
      patchbay send shell-1/demo 'make test' --wait
      patchbay send pi-1/main 'explain this repository' --wait
      patchbay send shell-1/demo 'sleep 60' --json          # accept and return at once
    """
    payload: dict[str, Any] = {"text": text}
    if mode:
        payload["mode"] = mode
    submit(CommandKind.instruct, target, payload, command_id=command_id, key=key, wait=wait, as_json=as_json,
           timeout=timeout, generation=generation)


def stop_command(kind: str, ident: str, wait: bool, as_json: bool) -> None:
    record = resolve_command(client(), ident)
    submit(kind, record["target"], {"command_id": record["command_id"]}, command_id=None, key=None, wait=wait,
           as_json=as_json, timeout=60.0)


@main.command()
@click.argument("command_id", shell_complete=complete_command)
@wait_option
@json_option
def cancel(command_id: str, wait: bool, as_json: bool) -> None:
    """Cancel a command (queued: removed; running: stopped by the adapter).

    COMMAND_ID may be any unique prefix of at least 6 characters.

    \b
    Example:
      patchbay cancel cmd-3f2a9c --wait
    """
    stop_command(CommandKind.cancel, command_id, wait, as_json)


@main.command()
@click.argument("command_id", shell_complete=complete_command)
@wait_option
@json_option
def interrupt(command_id: str, wait: bool, as_json: bool) -> None:
    """Interrupt a running command (a harder stop than cancel where the runtime has one).

    COMMAND_ID may be any unique prefix of at least 6 characters.
    """
    stop_command(CommandKind.interrupt, command_id, wait, as_json)
