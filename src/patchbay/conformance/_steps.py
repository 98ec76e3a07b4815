"""The operations a vector step can name; each returns a JSON-like result to match ``expect``."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

import trio

from patchbay.conformance._driver import DOMAIN, LOOPBACK, ORIGIN, PASSWORD, CoreHost
from patchbay.conformance._match import VectorFailure, match
from patchbay.core import Core
from patchbay.domain.acceptance import Submission
from patchbay.domain.model import CommandRecord, CoreState, Issuer
from patchbay.registry import CommandKind, RevocationPolicy, SnapshotTier
from patchbay.replay import replay_journal

JSON = dict[str, Any]
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")


class Context:
    """What a vector run remembers between steps: issuers, web logins and named values."""

    def __init__(self, host: CoreHost) -> None:
        self.host = host
        self.issuers: dict[str, Issuer] = {}
        self.vars: dict[str, Any] = {}

    @property
    def core(self) -> Core:
        return self.host.core

    def resolve(self, value: Any) -> Any:
        """Replace ``"$name"`` / ``"$name.field"`` strings with remembered values."""
        if isinstance(value, dict):
            return {k: (v if k in ("do",) else self.resolve(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str) and "$" in value:
            whole = _VARIABLE.fullmatch(value)
            if whole:
                return self._lookup(whole.group(1), whole.group(2))
            return _VARIABLE.sub(lambda m: str(self._lookup(m.group(1), m.group(2))), value)
        return value

    def _lookup(self, name: str, field: str | None) -> Any:
        if name not in self.vars:
            raise VectorFailure(f"unknown variable ${name}")
        found = self.vars[name]
        return found[field] if field else found


def command_summary(state: CoreState, command_id: str) -> JSON | None:
    return summarize(state.commands.get(command_id))


def summarize(record: CommandRecord | None) -> JSON | None:
    if record is None:
        return None
    return {"command_id": record.command_id, "idempotency_key": record.idempotency_key,
            "kind": record.kind.value, "target": record.target, "generation": record.generation,
            "deployment_scope": record.deployment_scope, "state": record.state.value,
            "failure": record.failure.value if record.failure else None, "result": record.result,
            "history": [t.state.value for t in record.history], "late_outcomes": len(record.late_outcomes)}


def state_summary(state: CoreState) -> JSON:
    """The observable state two replays (or a replay and the live core) must agree on."""
    return {
        "last_lsn": state.last_lsn,
        "commands": {c: command_summary(state, c) for c in sorted(state.commands)},
        "archived": {c: (a.state.value, a.failure.value if a.failure else None)
                     for c, a in sorted(state.archived.items())},
        "sessions": {t: (s.generation, s.label, s.deployment_scope, list(s.tombstoned))
                     for t, s in sorted(state.sessions.items())},
        "leases": {i: (lease.resource, lease.holder, lease.state.value) for i, lease in sorted(state.leases.items())},
        "lockdown": state.lockdown.active,
        "grants": {g: grant.revoked for g, grant in sorted(state.grants.items())},
    }


# -- operator side -----------------------------------------------------------------------


async def login(ctx: Context, step: JSON) -> JSON:
    name = step.get("as", "op")
    result = await ctx.core.create_operator_session(session_kind="browser", address="127.0.0.1", label=name)
    ctx.issuers[name] = Issuer(result.operator_id, result.endpoint_id, result.session_id, "web")
    ctx.vars[name] = {"session_id": result.session_id, "endpoint_id": result.endpoint_id}
    return {"session_id": result.session_id}


async def end_session(ctx: Context, step: JSON, *, logout: bool) -> JSON:
    name = step.get("as", "op")
    await ctx.core.end_operator_session(ctx.vars[name]["session_id"], "vector", logout=logout)
    return {}


async def submit(ctx: Context, step: JSON) -> JSON:
    issuer = ctx.issuers[step.get("as", "op")]
    if "issuer" in step:
        issuer = Issuer(**{**issuer.to_json(), **step["issuer"]})
    command_id = step["command_id"]
    expires_at = ctx.host.clock.now() + step["expires_in"] if "expires_in" in step else None
    submission = Submission(
        command_id=command_id, idempotency_key=step.get("key", f"key-{command_id}"),
        kind=step.get("kind", CommandKind.instruct), target=step.get("target", "shell-1/demo"),
        payload=step.get("payload", {"text": step.get("text", "true")}), generation=step.get("generation"),
        expires_at=expires_at, supersedes=step.get("supersedes"))
    result = await ctx.core.submit(submission, issuer)
    return {"outcome": result.outcome.value, "failure": result.failure.value if result.failure else None,
            "reason": result.reason,
            "command": summarize(ctx.core.find_command(result.command.command_id)) if result.command else None}


async def submit_concurrently(ctx: Context, step: JSON) -> JSON:
    """The same submission ``count`` times at once (a client retrying before any answer)."""
    results: list[JSON] = []

    async def one() -> None:
        results.append(await submit(ctx, step))

    async with trio.open_nursery() as nursery:
        for _ in range(int(step.get("count", 2))):
            nursery.start_soon(one)
    return {"outcomes": sorted({r["outcome"] for r in results}),
            "command_ids": sorted({r["command"]["command_id"] for r in results if r["command"]}),
            "duplicates": sum(1 for r in results if "duplicate" in r["reason"])}


async def grant_add(ctx: Context, step: JSON) -> JSON:
    grant_id = await ctx.core.add_grant(scope=step.get("scope", {"type": "all"}), kinds=step["kinds"],
                                        expires_at=None, revocation_policy=step.get("revocation_policy", RevocationPolicy.continue_.value),
                                        provenance="conformance vector")
    ctx.vars[step.get("name", "grant")] = grant_id
    return {"grant_id": grant_id}


async def grant_revoke(ctx: Context, step: JSON) -> JSON:
    grant = step["grant"]
    if grant == "default":
        ids = [g.grant_id for g in ctx.core.state.grants.values() if g.provenance.startswith("patchbay init")]
    else:
        ids = [grant]
    for grant_id in ids:
        await ctx.core.revoke_grant(grant_id, "conformance vector")
    return {"revoked": len(ids)}


# -- adapter side ------------------------------------------------------------------------


async def attach(ctx: Context, step: JSON) -> JSON:
    adapter = await ctx.host.adapter(step.get("adapter", "shell-1"))
    return await adapter.attach(ctx.core, generation=step.get("generation", adapter.generation),
                                deployment_scope=step.get("deployment_scope", "vector-host"),
                                kinds=step.get("kinds"))


async def detach(ctx: Context, step: JSON) -> JSON:
    adapter = await ctx.host.adapter(step.get("adapter", "shell-1"))
    if adapter.connection is None:
        raise VectorFailure(f"adapter {adapter.adapter_id} is not attached")
    await ctx.core.adapters.detached(adapter.connection, step.get("reason", "vector detach"))
    return {}


async def send(ctx: Context, step: JSON, frame: JSON) -> JSON:
    adapter = await ctx.host.adapter(step.get("adapter", "shell-1"))
    answer = await adapter.send(ctx.core, frame)
    for var, field in step.get("save", {}).items():
        ctx.vars[var] = answer.get(field)
    return answer


async def session(ctx: Context, step: JSON) -> JSON:
    frame: JSON = {"type": "session", "runtime_session_id": step.get("runtime_session_id", "demo"),
             "generation": step.get("generation", 1), "snapshot_tier": SnapshotTier.authoritative,
             **{k: step[k] for k in ("label", "metadata", "activity", "connectivity") if k in step}}
    return await send(ctx, step, frame)


async def report(ctx: Context, step: JSON) -> JSON:
    frame: JSON = {"type": "report", "command_id": step["command_id"], "state": step["state"],
             **{k: step[k] for k in ("failure", "result", "reason") if k in step}}
    return await send(ctx, step, frame)


async def frame(ctx: Context, step: JSON) -> JSON:
    return await send(ctx, step, dict(step["frame"]))


# -- browser side ------------------------------------------------------------------------


async def http_login(ctx: Context, step: JSON) -> JSON:
    name = step.get("as", "web")
    response = await ctx.host.client.post("/api/login", json={"password": PASSWORD},
                                          headers={"Origin": ORIGIN}, scope_base=LOOPBACK)
    body = await response.get_json()
    if response.status_code != 200:
        raise VectorFailure(f"login answered {response.status_code}: {body}")
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    morsel = next(iter(cookie.values()))
    ctx.vars[name] = {"cookie": f"{morsel.key}={morsel.value}", "csrf": body["csrf_token"],
                      "session_id": body["session_id"], "endpoint_id": body["endpoint_id"]}
    return {"status": response.status_code}


def _headers(ctx: Context, step: JSON) -> dict[str, str]:
    login_vars = ctx.vars.get(step.get("as", "web"), {})
    headers: dict[str, str] = {}
    if step.get("cookie", True) and login_vars:
        headers["Cookie"] = login_vars["cookie"]
    origin = step.get("origin", "same")
    if origin == "same":
        headers["Origin"] = ORIGIN
    elif origin != "none":
        headers["Origin"] = str(origin)
    csrf = step.get("csrf", "valid")
    if csrf == "valid" and login_vars:
        headers["X-Patchbay-CSRF"] = login_vars["csrf"]
    elif csrf == "wrong":
        headers["X-Patchbay-CSRF"] = "0" * 64
    elif csrf not in ("missing", "valid"):
        headers["X-Patchbay-CSRF"] = str(csrf)
    return headers


async def http(ctx: Context, step: JSON) -> JSON:
    client = ctx.host.app.test_client(use_cookies=False)
    response = await client.open(step["path"], method=step.get("method", "POST"), json=step.get("json"),
                                 headers=_headers(ctx, step), scope_base=LOOPBACK)
    return {"status": response.status_code, "json": await response.get_json()}


async def resume(ctx: Context, step: JSON) -> JSON:
    """Open the client stream with a cursor; read until ``live``; check a snapshot's prefix."""
    head = ctx.core.state.last_lsn
    cursor = step.get("cursor", -1)
    if isinstance(cursor, str) and cursor.startswith("head"):
        cursor = head + int(cursor[4:] or 0)
    query = f"/api/stream?cursor={cursor}" + (f"&domain={step['domain']}" if "domain" in step else "")
    client = ctx.host.app.test_client(use_cookies=False)
    headers = _headers(ctx, {**step, "csrf": "missing"})
    messages: list[JSON] = []
    async with client.websocket(query, headers={**headers, "Host": "localhost"}, scope_base=LOOPBACK) as ws:
        while not messages or messages[-1].get("type") != "live":
            messages.append(json.loads(await ws.receive()))
    hello = messages[0]
    result: JSON = {"verdict": hello.get("verdict"), "lsn": hello.get("lsn"), "head": head,
                    "domain": hello.get("authority_domain_id") == DOMAIN}
    snapshots = [m for m in messages if m.get("type") == "snapshot"]
    if snapshots:
        snap = snapshots[0]
        prefix = replay_journal(ctx.host.path, until_lsn=snap["lsn"], check=False).state
        shown = {c["command_id"]: c["state"] for c in snap["commands"]}
        expected = {c: r.state.value for c, r in prefix.commands.items()}
        result["snapshot_lsn"] = snap["lsn"]
        result["prefix_consistent"] = shown == expected
        result["snapshot_commands"] = shown
    return result


# -- expectations --------------------------------------------------------------------------


async def expect_command(ctx: Context, step: JSON) -> JSON:
    summary = summarize(ctx.core.find_command(step["command_id"]))  # archived ones rebuilt
    if summary is None:
        raise VectorFailure(f"no command {step['command_id']} in the core")
    wanted = {k: v for k, v in step.items() if k not in ("do", "command_id")}
    match(wanted, summary, f"command {step['command_id']}: ")
    return summary


async def expect_no_command(ctx: Context, step: JSON) -> JSON:
    if ctx.core.state.has_command(step["command_id"]):
        raise VectorFailure(f"command {step['command_id']} exists but must not")
    return {}


async def expect_session(ctx: Context, step: JSON) -> JSON:
    record = ctx.core.state.sessions.get(step["target"])
    if record is None:
        raise VectorFailure(f"no session {step['target']}")
    summary = {"generation": record.generation, "label": record.label,
               "deployment_scope": record.deployment_scope, "connectivity": record.connectivity.value,
               "activity": record.activity.value, "tombstoned": list(record.tombstoned)}
    match({k: v for k, v in step.items() if k not in ("do", "target")}, summary, f"session {step['target']}: ")
    return summary


async def expect_audit(ctx: Context, step: JSON) -> JSON:
    where = step.get("where", {})
    events = [e for e in ctx.core.events_after(0, kinds=[step["kind"]])
              if all(e.payload.get(k) == v for k, v in where.items())]
    if "count" in step and len(events) != step["count"]:
        raise VectorFailure(f"{len(events)} {step['kind']} records {where or ''}, expected {step['count']}")
    if len(events) < step.get("at_least", 0):
        raise VectorFailure(f"{len(events)} {step['kind']} records, expected at least {step['at_least']}")
    return {"count": len(events)}


async def expect_deliveries(ctx: Context, step: JSON) -> JSON:
    adapter = await ctx.host.adapter(step.get("adapter", "shell-1"))
    delivered = [f["command"]["command_id"] for f in adapter.received() if f.get("type") == "deliver"]
    if delivered != step["command_ids"]:
        raise VectorFailure(f"delivered {delivered}, expected {step['command_ids']}")
    return {"delivered": delivered}


async def expect_commands(ctx: Context, step: JSON) -> JSON:
    count = ctx.core.state.command_count()  # live and archived
    if count != step["count"]:
        raise VectorFailure(f"{count} commands in the core, expected {step['count']}")
    return {"count": count}


async def expect_replay(ctx: Context, step: JSON) -> JSON:
    """The live state equals an offline replay of the journal, and two replays agree."""
    await ctx.host.settle()
    first = state_summary(replay_journal(ctx.host.path, check=False).state)
    second = state_summary(replay_journal(ctx.host.path, check=False).state)
    live = state_summary(ctx.core.state)
    if first != second:
        raise VectorFailure("two replays of the same journal differ")
    if first != live:
        differing = sorted(k for k in live["commands"] if live["commands"][k] != first["commands"].get(k))
        raise VectorFailure(f"the live core differs from the replayed journal (commands {differing or 'same'})")
    return {"identical": True}


async def _simple(ctx: Context, step: JSON) -> JSON:
    do = step["do"]
    host = ctx.host
    if do == "advance":
        await host.advance(float(step["seconds"]))
    elif do == "restart":
        await host.restart()
    elif do == "checkpoint":
        return {"lsn": await ctx.core.journal.checkpoint()}
    elif do == "lockdown_enter":
        await ctx.core.enter_lockdown(step.get("reason", "conformance vector"), by="operator")
    elif do == "lockdown_exit":
        await ctx.core.exit_lockdown(by="local")
    return {}


async def _logout(ctx: Context, step: JSON) -> JSON:
    return await end_session(ctx, step, logout=True)


async def _revoke(ctx: Context, step: JSON) -> JSON:
    return await end_session(ctx, step, logout=False)


Operation = Callable[[Context, JSON], Awaitable[JSON]]
OPERATIONS: dict[str, Operation] = {
    "login": login, "logout": _logout, "submit_concurrently": submit_concurrently, "revoke_session": _revoke, "submit": submit,
    "grant_add": grant_add, "grant_revoke": grant_revoke, "attach": attach, "detach": detach,
    "session": session, "report": report, "frame": frame, "http_login": http_login, "http": http,
    "resume": resume, "expect_command": expect_command, "expect_no_command": expect_no_command,
    "expect_session": expect_session, "expect_audit": expect_audit, "expect_deliveries": expect_deliveries,
    "expect_commands": expect_commands, "expect_replay": expect_replay,
    "advance": _simple, "restart": _simple, "checkpoint": _simple, "lockdown_enter": _simple,
    "lockdown_exit": _simple,
}
