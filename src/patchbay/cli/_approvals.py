"""What sessions wait on: ``approvals`` (list), ``approve ID --allow|--deny``, ``answer ID TEXT``.

Each answer is submitted once (an ``approval-response`` / ``elicitation-response`` command);
the CLI says in words what happened (``denied: Allow bash? on pi-1/main``). A second answer
is refused (exit 2) naming how the elicitation was already resolved.
"""

from __future__ import annotations

from typing import Any

import click

from patchbay.cli._app import client, json_option, main
from patchbay.cli._errors import EXIT_REJECTED, CliError
from patchbay.cli._ids import complete_elicitation, resolve_elicitation
from patchbay.cli._render import console, emit, err_console, one_line, show, table, when
from patchbay.registry import ElicitationKind, ElicitationState, SubmissionOutcome


@main.command()
@click.option("--all", "everything", is_flag=True, help="Also list resolved, expired and superseded ones.")
@json_option
def approvals(everything: bool, as_json: bool) -> None:
    """List the approvals and questions sessions are waiting on, newest first.

    \b
    Examples:
      patchbay approvals
      patchbay approve el-3f2a9c --allow
      patchbay answer el-77b1c0 'use the staging database'
    """
    state = None if everything else ElicitationState.pending.value
    data = client().get("/api/elicitations", state=state)["elicitations"]
    if as_json:
        return emit(data)
    grid = table("elicitation", "kind", "session", "state", "asks", "command", "expires",
                 ids=("elicitation", "session", "command"), folded=("asks",))
    for e in data:
        grid.add_row(e["elicitation_id"], e["kind"], e["target"], e["state"], one_line(e["title"]),
                     e.get("command_id") or "", when(e.get("expires_at")) if e.get("expires_at") else "never")
    show(grid, "nothing is waiting for an answer" if not everything else "no approvals or questions yet")
    if data and not everything:
        console.print("answer with: patchbay approve ID --allow|--deny, or patchbay answer ID TEXT", markup=False)


def _respond(elicitation: dict[str, Any], body: dict[str, Any], done: str, as_json: bool) -> None:
    """Submit one answer; print ``done: TITLE on TARGET`` (or why it was refused, exit 2)."""
    eid = elicitation["elicitation_id"]
    _, answer = client().post(f"/api/elicitations/{eid}", body, allow=(409,), about=("elicitation", eid))
    if as_json:
        emit(answer)
    where = f"{one_line(elicitation['title'], 160)} on {elicitation['target']}"
    if answer["outcome"] != SubmissionOutcome.accepted:
        now = (answer.get("elicitation") or {}).get("state", elicitation["state"])
        if not as_json:
            err_console.print(f"not answered: {where} is already {now} ({answer.get('reason')})", markup=False)
        raise SystemExit(EXIT_REJECTED)
    if not as_json:
        command = (answer.get("command") or {}).get("command_id")
        click.echo(f"{done}: {where}" + (f" (answer sent as {command})" if command else ""))


@main.command()
@click.argument("elicitation_id", shell_complete=complete_elicitation)
@click.option("--allow", "decision", flag_value="approve", help="Allow what is asked.")
@click.option("--deny", "decision", flag_value="deny", help="Deny what is asked.")
@json_option
def approve(elicitation_id: str, decision: str | None, as_json: bool) -> None:
    """Answer an approval exactly once: --allow or --deny.

    ELICITATION_ID may be any unique prefix of at least 6 characters (see patchbay approvals).

    \b
    Examples:
      patchbay approve el-3f2a9c --allow
      patchbay approve el-3f2a9c --deny
    """
    if decision is None:
        raise CliError("choose --allow or --deny", EXIT_REJECTED)
    elicitation = resolve_elicitation(client(), elicitation_id)
    if elicitation["kind"] != ElicitationKind.approval:
        raise CliError(f"{elicitation['elicitation_id']} is a question, not an approval: answer it with "
                       f"patchbay answer {elicitation['elicitation_id']} TEXT", EXIT_REJECTED)
    _respond(elicitation, {"decision": decision}, "allowed" if decision == "approve" else "denied", as_json)


@main.command()
@click.argument("elicitation_id", shell_complete=complete_elicitation)
@click.argument("text", required=False)
@click.option("--decline", is_flag=True, help="Decline to answer instead of giving TEXT.")
@json_option
def answer(elicitation_id: str, text: str | None, decline: bool, as_json: bool) -> None:
    """Answer a question exactly once with TEXT (or --decline).

    ELICITATION_ID may be any unique prefix of at least 6 characters (see patchbay approvals).

    \b
    Examples:
      patchbay answer el-77b1c0 'use the staging database'
      patchbay answer el-77b1c0 --decline
    """
    if (text is not None) == decline:
        raise CliError("give the answer TEXT, or --decline", EXIT_REJECTED)
    elicitation = resolve_elicitation(client(), elicitation_id)
    if elicitation["kind"] == ElicitationKind.approval:
        raise CliError(f"{elicitation['elicitation_id']} is an approval: answer it with "
                       f"patchbay approve {elicitation['elicitation_id']} --allow|--deny", EXIT_REJECTED)
    body: dict[str, Any] = {"decline": True} if decline else {"answer": text}
    _respond(elicitation, body, ElicitationState.declined.value if decline else f"answered {one_line(text, 60)!r}", as_json)
