"""Security administration: ``grants``, ``security``, ``revoke``, ``lockdown``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from patchbay.cli._app import CONTEXT, client, home_option, json_option, main, resolve_home
from patchbay.cli._ids import checked
from patchbay.cli._render import console, emit, show, table, when
from patchbay.registry import CommandKind, RevocationPolicy


@main.group(context_settings=CONTEXT)
def grants() -> None:
    """List, add and revoke grants (who may send which command kinds where)."""


@grants.command("list")
@json_option
def grants_list(as_json: bool) -> None:
    """List grants: scope, kinds, expiry, revocation policy."""
    data = client().get("/api/grants")["grants"]
    if as_json:
        return emit(data)
    grid = table("grant", "scope", "kinds", "expires", "policy", "revoked", ids=("grant",), folded=("kinds",))
    for g in data:
        grid.add_row(g["grant_id"], json.dumps(g["scope"]), ",".join(g["kinds"]), when(g["expires_at"]),
                     g["revocation_policy"], "yes" if g["revoked"] else "")
    show(grid, "no grants")


@grants.command("add")
@click.option("--scope", default="all", show_default=True, help="all | adapter:ID | session:ADAPTER/SESSION")
@click.option("--kind", "kinds", multiple=True, required=True, type=click.Choice([k.value for k in CommandKind]),
              help="A command kind, e.g. instruct (repeatable).")
@click.option("--expires-in", type=float, default=None, help="Seconds until the grant expires (default: never).")
@click.option("--revocation-policy", type=click.Choice([p.value for p in RevocationPolicy]),
              default=RevocationPolicy.continue_.value, show_default=True,
              help="What revoking this grant does to the unfinished commands it authorized.")
@click.option("--endpoint", "endpoint_id", default=None, help="Only for this endpoint (default: any of the operator's).")
@json_option
def grants_add(scope: str, kinds: tuple[str, ...], expires_in: float | None, revocation_policy: str,
               endpoint_id: str | None, as_json: bool) -> None:
    """Grant command kinds on a scope: all, adapter:ID or session:ADAPTER/SESSION.

    \b
    Example:
      patchbay grants add --scope session:shell-1/demo --kind instruct --kind cancel --expires-in 3600
    """
    scope_type, _, value = scope.partition(":")
    scope_doc: dict[str, Any] = {"type": scope_type}
    if scope_type == "adapter":
        scope_doc["adapter_id"] = value
    elif scope_type == "session":
        scope_doc["target"] = value
    body = {"scope": scope_doc, "kinds": list(kinds), "revocation_policy": revocation_policy,
            "expires_at": time.time() + expires_in if expires_in else None, "endpoint_id": endpoint_id}
    _, grant = client().post("/api/grants", body)
    if as_json:
        return emit(grant)
    click.echo(f"grant {grant['grant_id']} added")


@grants.command("revoke")
@click.argument("grant_id")
def grants_revoke(grant_id: str) -> None:
    """Revoke a grant; its revocation policy applies to the unfinished commands it authorized."""
    client().post(f"/api/grants/{checked('a grant', grant_id)}/revoke", about=("grant", grant_id))
    click.echo(f"grant {grant_id} revoked")


@main.command()
@json_option
def security(as_json: bool) -> None:
    """Operator sessions and endpoints (the ids `patchbay revoke` takes), and the lockdown state."""
    data = client().get("/api/security")
    if as_json:
        return emit(data)
    lock = data["lockdown"]
    status = f"ACTIVE since {when(lock['since_ts'])}: {lock['reason']}" if lock["active"] else "off"
    console.print(f"lockdown: {status}", markup=False)
    sessions_table = table("operator session", "kind", "address", "created", "state", ids=("operator session",))
    for s in data["operator_sessions"]:
        state = f"ended ({s['ended_reason']})" if s["revoked"] else "signed in"
        sessions_table.add_row(s["session_id"] + (" *" if s["current"] else ""), s["kind"], s["address"],
                               when(s["created_ts"]), state)
    show(sessions_table)
    endpoints_table = table("endpoint", "kind", "label", "enrolled", "state", ids=("endpoint",), folded=("label",))
    for e in data["endpoints"]:
        endpoints_table.add_row(e["endpoint_id"] + (" *" if e["current"] else ""), e["kind"], e["label"],
                                when(e["enrolled_ts"]), "revoked" if e["revoked"] else "active")
    show(endpoints_table)
    console.print("* this CLI", markup=False)


@main.group(context_settings=CONTEXT)
def revoke() -> None:
    """Revoke operator sessions or endpoints (ids from patchbay security)."""


@revoke.command("session")
@click.argument("session_id")
def revoke_session(session_id: str) -> None:
    """End one operator session (a browser or a CLI login)."""
    client().post(f"/api/security/sessions/{checked('an operator session', session_id)}/revoke",
                  about=("operator session", session_id))
    click.echo(f"operator session {session_id} revoked")


@revoke.command("all-sessions")
def revoke_all_sessions() -> None:
    """End every operator session, this CLI's included."""
    _, answer = client().post("/api/security/sessions/revoke-all")
    click.echo(f"revoked {answer['revoked']} operator sessions (including this CLI's)")


@revoke.command("endpoint")
@click.argument("endpoint_id")
def revoke_endpoint(endpoint_id: str) -> None:
    """Revoke an endpoint: its sessions end and it can no longer log in with its token."""
    client().post(f"/api/security/endpoints/{checked('an endpoint', endpoint_id)}/revoke",
                  about=("endpoint", endpoint_id))
    click.echo(f"endpoint {endpoint_id} revoked")


@main.group(context_settings=CONTEXT)
def lockdown() -> None:
    """Security lockdown: enter from any surface; exit only locally."""


@lockdown.command("enter")
@click.option("--reason", required=True, help="Why (recorded in the audit log and shown to operators).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def lockdown_enter(reason: str, yes: bool) -> None:
    """Reject every new command and log out every operator session."""
    if not yes:
        click.confirm("Lockdown rejects every new command and logs out every operator session. "
                      "Only `patchbay lockdown exit` on the core's host can end it. Continue?", abort=True)
    client().post("/api/lockdown", {"reason": reason})
    click.echo("lockdown entered; exit it with `patchbay lockdown exit --home DIR` on the core's host")


@lockdown.command("exit")
@home_option
def lockdown_exit(home_dir: Path | None) -> None:
    """End a lockdown (local bootstrap channel: needs access to the home folder)."""
    from patchbay.cli._local import local_action

    local_action(resolve_home(home_dir), {"op": "lockdown_exit"})
    click.echo("lockdown exited; operators must log in again")
