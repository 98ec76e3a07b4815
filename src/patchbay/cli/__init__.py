"""``patchbay``: setup, administration, debugging and scripted access (same semantics as the web).

Exit codes: 0 ok; 1 local or transport error; 2 rejected before acceptance; 3 the command
ended in a non-success terminal state; 4 outcome unknown. Every listing has ``--json``;
secrets are read from stdin, the environment or a prompt, never from argv.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import click
import trio
from rich import box
from rich.console import Console
from rich.table import Table

from patchbay.cli._client import (
    EXIT_REJECTED,
    EXIT_TERMINAL_FAILURE,
    EXIT_UNKNOWN,
    Client,
    CliError,
    Login,
    OutcomeUnknown,
    load_login,
)
from patchbay.core.config import Config, Home, default_home, render_config
from patchbay.registry import CommandKind, CommandState, RevocationPolicy, SubmissionOutcome

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # messages stay whole lines for scripts


def home_option(function: Any) -> Any:
    return click.option("--home", "home_dir", type=click.Path(path_type=Path), default=None,
                        help="Patchbay home (default: $PATCHBAY_HOME or ~/.local/share/patchbay)")(function)


def resolve_home(home_dir: Path | None) -> Home:
    return Home(home_dir or default_home())


def emit(data: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))


def when(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "-"


class PatchbayGroup(click.Group):
    """Maps CliError to its exit code with a one-line message (no tracebacks for users)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as problem:
            err_console.print(f"[red]error:[/red] {problem}", highlight=False)
            if problem.body is not None and ctx.params.get("as_json"):
                click.echo(json.dumps(problem.body, indent=2))
            ctx.exit(problem.exit_code)


@click.group(cls=PatchbayGroup)
@click.version_option(package_name="patchbay")
def main() -> None:
    """Patchbay: drive agent sessions on many machines from one trustworthy control plane."""


# -- setup and the daemon --------------------------------------------------------------------


def read_secret(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\n")
    else:
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    if len(value) < 8:
        raise CliError("choose a password of at least 8 characters")
    return value


@main.command()
@home_option
@click.option("--password-stdin", is_flag=True, help="Read the operator password from stdin.")
@click.option("--web-setup", is_flag=True, help="Create no operator: serve prints a one-time setup secret.")
@click.option("--listen", default="127.0.0.1:8765", show_default=True)
def init(home_dir: Path | None, password_stdin: bool, web_setup: bool, listen: str) -> None:
    """Create a home: configuration, journal and the operator (with its default grant)."""
    from patchbay.core import initialize_journal
    from patchbay.core.config import write_private

    home = resolve_home(home_dir)
    if home.config_file.exists() or home.journal_file.exists():
        raise CliError(f"{home.path} already holds a Patchbay home; choose another --home")
    home.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = Config(authority_domain_id=f"dom-{secrets.token_hex(8)}", listen=listen)
    password = None if web_setup else read_secret(password_stdin, "Operator password")
    initialize_journal(home.journal_file, config.authority_domain_id, password)
    write_private(home.config_file, render_config(config))
    home.server_key()
    click.echo(f"initialized Patchbay home {home.path} (authority domain {config.authority_domain_id})")


@main.command()
@home_option
@click.option("--listen", default=None, help="HOST:PORT (default from patchbay.toml; port 0 picks one)")
def serve(home_dir: Path | None, listen: str | None) -> None:
    """Run the core, the cockpit and the adapter endpoint until SIGINT/SIGTERM."""
    from patchbay.core.config import ConfigError
    from patchbay.daemon import ServeError
    from patchbay.daemon import serve as run_serve
    from patchbay.journal import JournalError

    home = resolve_home(home_dir)

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        trio.run(lambda: run_serve(home, listen=listen, announce=announce))
    except (ServeError, ConfigError, JournalError) as problem:
        raise CliError(str(problem)) from None
    except KeyboardInterrupt:
        pass


# -- adapters --------------------------------------------------------------------------------


@main.group()
def adapter() -> None:
    """Mint adapter credentials and run adapter processes."""


@adapter.command("add")
@click.argument("adapter_id")
@click.option("--kind", type=click.Choice(["pi", "shell"]), required=True)
@home_option
def adapter_add(adapter_id: str, kind: str, home_dir: Path | None) -> None:
    """Mint a unique credential for one adapter; prints the credential file's path last."""
    from patchbay.cli._local import local_action
    from patchbay.daemon import mint_credential

    home = resolve_home(home_dir)
    if not home.exists():
        raise CliError(f"no Patchbay home at {home.path}: run `patchbay init` first")
    credential, path = mint_credential(home, adapter_id)
    local_action(home, {"op": "adapter_register", "adapter_id": adapter_id, "kind": kind, "credential": credential})
    click.echo(f"adapter {adapter_id} ({kind}) registered; its credential (mode 0600) is in:")
    click.echo(str(path))


def parse_workspaces(values: tuple[str, ...]) -> dict[str, Path]:
    workspaces: dict[str, Path] = {}
    for value in values:
        name, sep, directory = value.partition(":")
        if not sep or not name or not directory:
            raise CliError(f"--workspace must be NAME:DIR, not {value!r}")
        path = Path(directory).expanduser().resolve()
        if not path.is_dir():
            raise CliError(f"workspace {name}: {path} is not a directory")
        workspaces[name] = path
    return workspaces


@adapter.command("run")
@click.argument("kind", type=click.Choice(["pi", "shell"]))
@click.option("--id", "adapter_id", required=True)
@click.option("--core", "core_url", required=True, help="The core's URL, e.g. http://127.0.0.1:8765")
@click.option("--credential-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--workspace", "workspaces", multiple=True, help="NAME:DIR (repeatable)")
@click.option("--spawn-root", "spawn_roots", multiple=True, type=click.Path(path_type=Path),
              help="Directory under which spawn may create sessions (repeatable)")
@click.option("--deployment-scope", default=None, help="Where this adapter runs (default: host name)")
@click.option("--cancel-grace", type=click.FloatRange(min=0.0), default=3.0, show_default=True,
              help="[shell] seconds between SIGTERM and SIGKILL when a job is cancelled")
@click.option("--pi", "pi_path", default="pi", help="[pi] the pi executable")
@click.option("--pi-arg", "pi_args", multiple=True, help="[pi] an extra argument for pi (repeatable)")
@click.option("--pi-env", "pi_env", multiple=True, help="[pi] NAME to copy, or NAME=VALUE to set (repeatable)")
@click.option("--pi-state-dir", type=click.Path(path_type=Path), default=None,
              help="[pi] slot generations and Pi sessions (default: <ID>.pi-state beside the credential)")
@click.option("--pi-approve", default="bash,edit,write", show_default=True,
              help="[pi] tools that need an operator approval (comma-separated, * for all, none)")
@click.option("--pi-approval-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="[pi] seconds before an unanswered approval expires and the tool is blocked")
def adapter_run(kind: str, adapter_id: str, core_url: str, credential_file: Path, workspaces: tuple[str, ...],
                spawn_roots: tuple[Path, ...], deployment_scope: str | None, cancel_grace: float, pi_path: str,
                pi_args: tuple[str, ...], pi_env: tuple[str, ...], pi_state_dir: Path | None,
                pi_approve: str, pi_approval_timeout: float) -> None:
    """Run an adapter process that connects out to the core."""
    from patchbay_adapters.common.run import run_adapter

    spaces = parse_workspaces(workspaces)
    runtime: Any
    if kind == "shell":
        from patchbay_adapters.shell.runtime import ShellRuntime

        runtime = ShellRuntime(spaces, spawn_roots=list(spawn_roots), grace=cancel_grace)
    else:
        from patchbay_adapters.pi.adapter import build_runtime

        try:
            runtime = build_runtime(spaces, spawn_roots=list(spawn_roots), pi_path=pi_path, pi_args=list(pi_args),
                                    pi_env=list(pi_env), approve=pi_approve, approval_timeout=pi_approval_timeout,
                                    state_dir=pi_state_dir or credential_file.parent / f"{adapter_id}.pi-state")
        except ValueError as problem:
            raise CliError(str(problem)) from None
    try:
        trio.run(lambda: run_adapter(runtime, adapter_id=adapter_id, core_url=core_url,
                                     credential_file=credential_file, deployment_scope=deployment_scope))
    except KeyboardInterrupt:
        pass


# -- login -----------------------------------------------------------------------------------


@main.command()
@click.option("--url", required=True, help="The core's URL, e.g. http://127.0.0.1:8765")
@click.option("--password-stdin", is_flag=True)
@click.option("--label", default="patchbay CLI")
def login(url: str, password_stdin: bool, label: str) -> None:
    """Enroll this CLI as an endpoint and keep its bearer token (0600)."""
    import httpx

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True)
    try:
        response = httpx.post(url.rstrip("/") + "/api/login", timeout=30,
                              json={"password": password, "endpoint_kind": "cli", "label": label})
    except httpx.HTTPError as problem:
        raise CliError(f"cannot reach {url}: {problem}") from None
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise CliError(f"login refused: {body.get('error', response.status_code)}", EXIT_REJECTED)
    path = Login(url=url.rstrip("/"), token=body["token"], session_id=body["session_id"],
                 endpoint_id=body["endpoint_id"]).save()
    click.echo(f"logged in as endpoint {body['endpoint_id']}; login saved in {path}")


@main.command()
def logout() -> None:
    """End this CLI's operator session and forget the token."""
    from patchbay.cli._client import config_path

    login_data = load_login()
    client = Client(login_data)
    try:
        client.post("/api/logout")
    finally:
        client.close()
        config_path().unlink(missing_ok=True)
    click.echo("logged out")


def client() -> Client:
    return Client(load_login())


# -- sessions and commands -------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True)
def sessions(as_json: bool) -> None:
    """List every session with its identity, connectivity and activity."""
    data = client().get("/api/sessions")["sessions"]
    if as_json:
        return emit(data, True)
    table = Table("target", "gen", "connectivity", "activity", "label", "updated")
    for s in data:
        table.add_row(s["target"], str(s["generation"]), s["connectivity"], s["activity"], s["label"],
                      when(s["updated_ts"]))
    console.print(table)


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
                          f"patchbay send ... --command-id {command_id} --idempotency-key {key})")
        if as_json:
            emit({"outcome": SubmissionOutcome.unknown, "command_id": command_id, "idempotency_key": key}, True)
        raise SystemExit(EXIT_UNKNOWN) from None
    if answer["outcome"] != SubmissionOutcome.accepted:
        if as_json:
            emit(answer, True)
        else:
            err_console.print(f"[red]{answer['outcome']}[/red] ({answer['failure']}): {answer['reason']}")
        raise SystemExit(EXIT_REJECTED)
    record = answer["command"]
    if wait and not record["terminal"]:
        record = wait_for_terminal(http, record, timeout)
    if as_json:
        emit(record, True)
    else:
        describe_command(record, answer.get("reason"))
    exit_for(record)


def exit_for(record: dict[str, Any]) -> None:
    if record["terminal"] and record["state"] != CommandState.completed:
        raise SystemExit(EXIT_TERMINAL_FAILURE)
    if record["terminal"] is False and record.get("_timed_out"):
        raise SystemExit(EXIT_UNKNOWN)


def describe_command(record: dict[str, Any], note: str | None = None) -> None:
    failure = f" ({record['failure']})" if record.get("failure") else ""
    console.print(f"{record['command_id']} {record['kind']} → {record['target']} (generation {record['generation']}): "
                  f"[bold]{record['state']}[/bold]{failure}", highlight=False)
    if note and note.startswith("duplicate"):
        console.print(f"  {note}", highlight=False)
    if record.get("reason"):
        console.print(f"  {record['reason']}", highlight=False)
    result = record.get("result") or {}
    if "output" in result and result["output"]:
        click.echo(result["output"].rstrip("\n"))
    elif record.get("result") is not None and "output" not in result:
        console.print(f"  result: {json.dumps(result)[:500]}", highlight=False)


def wait_for_terminal(http: Client, record: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Follow the stream until the command is terminal (push, not polling)."""
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

    command_id = record["command_id"]
    latest = dict(record)

    async def follow() -> None:
        nonlocal latest
        headers = [(b"Authorization", f"Bearer {http.login.token}".encode())]
        url = f"{http.stream_url}?cursor={record['accepted_lsn']}"
        async with open_websocket_url(url, extra_headers=headers, max_message_size=16 * 1024 * 1024) as ws:
            while True:
                message = json.loads(await ws.get_message())
                events = message.get("events", [])
                if message.get("type") == "snapshot":
                    events = [{"command": c} for c in message["commands"]]
                for event in events:
                    command = event.get("command")
                    if command and command["command_id"] == command_id and command["revision"] >= latest["revision"]:
                        latest = command
                if latest["terminal"]:
                    return

    try:
        finished = trio.run(_bounded, follow, timeout)
    except (OSError, HandshakeError, ConnectionClosed) as problem:
        raise OutcomeUnknown(f"{command_id} was accepted, but the stream was lost while waiting for its outcome "
                             f"({problem}); follow with: patchbay inspect {command_id}") from None
    if not finished:
        latest = {**latest, "_timed_out": True}
        err_console.print(f"[yellow]still {latest['state']} after {timeout:.0f} s[/yellow]; "
                          f"follow with: patchbay inspect {command_id}")
    return latest


async def _bounded(function: Any, timeout: float) -> bool:
    with trio.move_on_after(timeout):
        await function()
        return True
    return False


@main.command()
@click.argument("target")
@click.argument("text")
@click.option("--wait", is_flag=True, help="Wait for a terminal state.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait with --wait.")
@click.option("--command-id", default=None, help="Reuse to retry safely (with the same key).")
@click.option("--idempotency-key", "key", default=None)
@click.option("--mode", type=click.Choice(["followUp", "steer"]), default=None,
              help="While the session is busy: queue as a follow-up (default) or steer.")
@click.option("--generation", type=int, default=None, help="Refuse unless this is the live generation.")
@click.option("--json", "as_json", is_flag=True)
def send(target: str, text: str, wait: bool, timeout: float, command_id: str | None, key: str | None,
         mode: str | None, generation: int | None, as_json: bool) -> None:
    """Send an instruction (a prompt, or a shell command line) to TARGET (ADAPTER_ID/SESSION)."""
    payload: dict[str, Any] = {"text": text}
    if mode:
        payload["mode"] = mode
    submit(CommandKind.instruct, target, payload, command_id=command_id, key=key, wait=wait, as_json=as_json,
           timeout=timeout, generation=generation)


def stop_command(kind: str, command_id: str, wait: bool, as_json: bool) -> None:
    record = client().get(f"/api/commands/{command_id}")
    submit(kind, record["target"], {"command_id": command_id}, command_id=None, key=None, wait=wait,
           as_json=as_json, timeout=60.0)


@main.command()
@click.argument("command_id")
@click.option("--wait", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def cancel(command_id: str, wait: bool, as_json: bool) -> None:
    """Cancel a command (queued: removed; running: stopped by the adapter)."""
    stop_command(CommandKind.cancel, command_id, wait, as_json)


@main.command()
@click.argument("command_id")
@click.option("--wait", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def interrupt(command_id: str, wait: bool, as_json: bool) -> None:
    """Interrupt a running command (a harder stop than cancel where the runtime has one)."""
    stop_command(CommandKind.interrupt, command_id, wait, as_json)


@main.command()
@click.argument("command_id", required=False)
@click.option("--key", default=None, help="Find the command by idempotency key (to reconcile).")
@click.option("--json", "as_json", is_flag=True)
def inspect(command_id: str | None, key: str | None, as_json: bool) -> None:
    """Show one command: state, failure, result, history and elicitations."""
    http = client()
    if key:
        found = http.get("/api/commands", idempotency_key=key)["commands"]
        if not found:
            if as_json:
                emit({"outcome": SubmissionOutcome.rejected, "idempotency_key": key, "command": None}, True)
            else:
                click.echo(f"no command with idempotency key {key}: it was never accepted; resend it")
            raise SystemExit(EXIT_REJECTED)
        record = found[0]
    elif command_id:
        record = http.get(f"/api/commands/{command_id}")
    else:
        raise CliError("give a COMMAND_ID or --key")
    if as_json:
        emit(record, True)
    else:
        describe_command(record)
        for step in record["history"]:
            console.print(f"  {when(step['ts'])} LSN {step['lsn']}: {step['state']}"
                          + (f" ({step['failure']})" if step["failure"] else ""), highlight=False)
        for e in record["elicitations"]:
            console.print(f"  elicitation {e['elicitation_id']} ({e['kind']}): {e['state']} — {e['title']}",
                          highlight=False)
    exit_for(record)


@main.command()
@click.option("--session", "target", default=None, help="Only commands for this TARGET.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def commands(target: str | None, limit: int, as_json: bool) -> None:
    """List recent commands, newest first."""
    data = client().get("/api/commands", target=target, limit=limit)["commands"]
    if as_json:
        return emit(data, True)
    table = Table("command", "kind", "target", "state", "failure", "accepted")
    for c in data:
        table.add_row(c["command_id"], c["kind"], c["target"], c["state"], c["failure"] or "", when(c["accepted_ts"]))
    console.print(table)


@main.command()
@click.option("--from", "cursor", default=None, type=int, help="Resume after this LSN.")
@click.option("--json", "as_json", is_flag=True)
def watch(cursor: int | None, as_json: bool) -> None:
    """Follow committed events live (from a cursor, or a snapshot)."""
    from trio_websocket import open_websocket_url

    http = client()
    url = f"{http.stream_url}?cursor={cursor if cursor is not None else -1}"

    async def follow() -> None:
        async with open_websocket_url(url, extra_headers=[(b"Authorization", f"Bearer {http.login.token}".encode())],
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
                        click.echo(f"{event['lsn']:>8} {when(event['ts'])} {event['kind']:<28} {event['entity']}")
                sys.stdout.flush()

    try:
        trio.run(follow)
    except KeyboardInterrupt:
        pass
    except OSError as problem:
        raise CliError(f"cannot stream from {http.login.url}: {problem}") from None


@main.command()
@click.argument("elicitation_id")
@click.option("--allow", "decision", flag_value="approve", help="Approve.")
@click.option("--deny", "decision", flag_value="deny", help="Deny.")
@click.option("--json", "as_json", is_flag=True)
def approve(elicitation_id: str, decision: str | None, as_json: bool) -> None:
    """Answer an approval elicitation exactly once."""
    if decision is None:
        raise CliError("choose --allow or --deny")
    status, answer = client().post(f"/api/elicitations/{elicitation_id}", {"decision": decision}, allow=(409,))
    if as_json:
        emit(answer, True)
    else:
        click.echo(f"{answer['outcome']}: {answer['reason']}")
    if answer["outcome"] != SubmissionOutcome.accepted:
        raise SystemExit(EXIT_REJECTED)


# -- security ------------------------------------------------------------------------------------


@main.command()
@click.option("--limit", default=50, show_default=True)
@click.option("--kind", default=None, help="Comma-separated event kinds.")
@click.option("--json", "as_json", is_flag=True)
def audit(limit: int, kind: str | None, as_json: bool) -> None:
    """Show the audit log, newest first."""
    records = client().get("/api/audit", limit=limit, kind=kind)["records"]
    if as_json:
        return emit(records, True)
    table = Table("lsn", "time", "kind", "entity", "details")
    for r in records:
        table.add_row(str(r["lsn"]), when(r["ts"]), r["kind"], r["entity"], json.dumps(r["details"])[:80])
    console.print(table)


@main.group()
def grants() -> None:
    """List, add and revoke grants."""


@grants.command("list")
@click.option("--json", "as_json", is_flag=True)
def grants_list(as_json: bool) -> None:
    """List grants: scope, kinds, expiry, revocation policy."""
    data = client().get("/api/grants")["grants"]
    if as_json:
        return emit(data, True)
    table = Table("grant", "scope", "kinds", "expires", "policy", "revoked")
    for g in data:
        table.add_row(g["grant_id"], json.dumps(g["scope"]), ",".join(g["kinds"]), when(g["expires_at"]),
                      g["revocation_policy"], "yes" if g["revoked"] else "")
    console.print(table)


@grants.command("add")
@click.option("--scope", default="all", help="all | adapter:ID | session:ADAPTER/SESSION")
@click.option("--kind", "kinds", multiple=True, required=True, help="A command kind (repeatable)")
@click.option("--expires-in", type=float, default=None, help="Seconds until the grant expires")
@click.option("--revocation-policy", type=click.Choice([p.value for p in RevocationPolicy]),
              default=RevocationPolicy.continue_.value, show_default=True)
@click.option("--endpoint", "endpoint_id", default=None, help="Only for this endpoint (default: any of the operator's)")
@click.option("--json", "as_json", is_flag=True)
def grants_add(scope: str, kinds: tuple[str, ...], expires_in: float | None, revocation_policy: str,
               endpoint_id: str | None, as_json: bool) -> None:
    """Grant command kinds on a scope: all, adapter:ID or session:ADAPTER/SESSION."""
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
        return emit(grant, True)
    click.echo(f"grant {grant['grant_id']} added")


@grants.command("revoke")
@click.argument("grant_id")
def grants_revoke(grant_id: str) -> None:
    """Revoke a grant; its revocation policy applies to the unfinished commands it authorized."""
    client().post(f"/api/grants/{grant_id}/revoke")
    click.echo(f"grant {grant_id} revoked")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def security(as_json: bool) -> None:
    """Operator sessions and endpoints (the ids `patchbay revoke` takes), and the lockdown state."""
    data = client().get("/api/security")
    if as_json:
        return emit(data, True)
    lock = data["lockdown"]
    status = f"ACTIVE since {when(lock['since_ts'])}: {lock['reason']}" if lock["active"] else "off"
    console.print(f"lockdown: {status}", highlight=False)
    sessions_table = Table(box=box.SIMPLE)  # ids are never wrapped: they are meant to be copied
    sessions_table.add_column("operator session", no_wrap=True)
    for title in ("kind", "address", "created", "state"):
        sessions_table.add_column(title)
    for s in data["operator_sessions"]:
        state = f"ended ({s['ended_reason']})" if s["revoked"] else "live"
        sessions_table.add_row(s["session_id"] + (" *" if s["current"] else ""), s["kind"], s["address"],
                               when(s["created_ts"]), state)
    console.print(sessions_table)
    endpoints_table = Table(box=box.SIMPLE)
    endpoints_table.add_column("endpoint", no_wrap=True)
    for title in ("kind", "label", "enrolled", "state"):
        endpoints_table.add_column(title)
    for e in data["endpoints"]:
        endpoints_table.add_row(e["endpoint_id"] + (" *" if e["current"] else ""), e["kind"], e["label"],
                                when(e["enrolled_ts"]), "revoked" if e["revoked"] else "active")
    console.print(endpoints_table)
    console.print("* this CLI", highlight=False)


@main.group()
def revoke() -> None:
    """Revoke operator sessions or endpoints."""


@revoke.command("session")
@click.argument("session_id")
def revoke_session(session_id: str) -> None:
    client().post(f"/api/security/sessions/{session_id}/revoke")
    click.echo(f"operator session {session_id} revoked")


@revoke.command("all-sessions")
def revoke_all_sessions() -> None:
    _, answer = client().post("/api/security/sessions/revoke-all")
    click.echo(f"revoked {answer['revoked']} operator sessions (including this CLI's)")


@revoke.command("endpoint")
@click.argument("endpoint_id")
def revoke_endpoint(endpoint_id: str) -> None:
    client().post(f"/api/security/endpoints/{endpoint_id}/revoke")
    click.echo(f"endpoint {endpoint_id} revoked")


@main.group()
def lockdown() -> None:
    """Security lockdown: enter from any surface; exit only locally."""


@lockdown.command("enter")
@click.option("--reason", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def lockdown_enter(reason: str, yes: bool) -> None:
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


# -- replay ----------------------------------------------------------------------------------


@main.command()
@click.argument("journal", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--check", is_flag=True, help="Verify the invariants; exit 1 on a violation.")
@click.option("--until", "until_lsn", type=int, default=None)
@click.option("--command", "command_id", default=None, help="Timeline of one command.")
@click.option("--session", "target", default=None, help="Timeline of one session (TARGET).")
@click.option("--json", "as_json", is_flag=True)
def replay(journal: Path, check: bool, until_lsn: int | None, command_id: str | None, target: str | None,
           as_json: bool) -> None:
    """Rebuild state from a journal offline, with the same reducer as the live core."""
    from patchbay.replay import run_replay

    raise SystemExit(run_replay(journal, check=check, until_lsn=until_lsn, command_id=command_id,
                                target=target, as_json=as_json, echo=click.echo))



from patchbay.cli._export import export_command  # noqa: E402  (a module of its own)

main.add_command(export_command)
