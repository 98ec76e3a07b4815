"""The quart-trio application: cockpit files, JSON API, client stream, adapter endpoint.

``create_app`` is a factory (one app per core; a module-level app shared between trio runs
breaks). Every response carries the security headers; every state-changing route goes through
``Guard.require``. There is deliberately no route that exits a lockdown.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from functools import wraps
from importlib import resources
from typing import Any

from quart import Response, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from patchbay.core import Core
from patchbay.domain.acceptance import Submission
from patchbay.errors import CoreStopped, NotFound, ProtocolError, Refused
from patchbay.registry import (
    CommandKind,
    ElicitationKind,
    SubmissionOutcome,
    registry_document,
)
from patchbay.web import _history, _render
from patchbay.web._errors import register_errors
from patchbay.web._fast import (
    MAX_BODY,
    SECURITY_HEADERS,
    FastRoutes,
)
from patchbay.web._guard import Caller, Guard, RateLimiter, Refusal, forwarded_client, is_loopback
from patchbay.web._input import body_object, int_arg, text_arg, typed
from patchbay.web._known_lsn import head_value, report_known_lsn
from patchbay.web._login import register_login
from patchbay.web._push_routes import PushService, install_push_routes, push_views
from patchbay.web._stream import EncodedEvents, serve_adapter, serve_stream
from patchbay.web._worker import install_worker_route
from patchbay.wire import api
from patchbay.wire._admit import INT_MAX
from patchbay.wire.known_lsn import HEAD_LSN_HEADER
from patchbay.wire.requests import GrantRequest

STATIC_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
    ".png": "image/png", ".webmanifest": "application/manifest+json",
}


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(json.dumps({"error": message, **extra}), status=status, content_type="application/json")


def ok(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def create_app(core: Core, *, server_key: bytes, secure_cookies: bool = False, trusted_proxy: bool = False,
               setup: Any = None, limiter: RateLimiter | None = None,
               public_origins: tuple[str, ...] = (), push: PushService | None = None) -> QuartTrio:
    app = QuartTrio("patchbay", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    guard = Guard(core, server_key, secure_cookies=secure_cookies, limiter=limiter, public_origins=public_origins)
    app.extensions["patchbay_guard"] = guard
    cockpit = resources.files("patchbay_cockpit")

    def scheme() -> str:
        if trusted_proxy:
            return request.headers.get("X-Forwarded-Proto", request.scheme)
        return request.scheme

    def address() -> str:
        if trusted_proxy:
            return forwarded_client(request.headers.get("X-Forwarded-For", "")) or request.remote_addr or ""
        return request.remote_addr or ""

    @app.before_request
    async def refuse_plain_http_from_afar() -> Response | None:
        # Behind a trusted proxy the client is the one it names (it terminated TLS, or did not).
        refusal = guard.transport_refusal(scheme(), address())
        if refusal is not None:
            await guard.audit_refusal(refusal, request.method, request.path, address())
            return error(refusal.status, refusal.message, check=refusal.check)
        return None

    @app.before_websocket
    async def refuse_plain_websocket_from_afar() -> Response | None:
        forwarded = websocket.headers.get("X-Forwarded-For", "") if trusted_proxy else ""
        peer = forwarded_client(forwarded) or websocket.remote_addr or ""
        if scheme_ws() != "wss" and not is_loopback(peer):
            refusal = Refusal(403, "tls", "non-loopback access needs HTTPS (wss)")
            await guard.audit_refusal(refusal, "WS", websocket.path, peer)
            return error(refusal.status, refusal.message, check=refusal.check)
        return None

    @app.after_request
    async def headers(response: Response) -> Response:
        # Consume an unread body (a refusal answers without reading it): an unread body stalls
        # the next request on a kept-alive connection. One too large was refused already (413).
        with contextlib.suppress(HTTPException):
            await request.get_data()
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CoreStopped)
    async def journal_unavailable(problem: CoreStopped) -> Response:
        """Anything that needed a write while the journal takes none (a full disk): nothing
        was recorded; reads go on."""
        return error(503, str(problem), outcome=SubmissionOutcome.failed.value)

    register_errors(app, guard, error=error, address=address)

    @app.errorhandler(404)
    async def not_found(_problem: Any) -> Response:
        return error(404, f"no route {request.method} {request.path}")

    @app.errorhandler(405)
    async def wrong_method(_problem: Any) -> Response:
        """A GET (or other verb) on a state-changing route: refused, named, and audited."""
        refusal = Refusal(405, "method", f"{request.method} is not allowed on {request.path}")
        if request.path.startswith("/api/"):
            await guard.audit_refusal(refusal, request.method, request.path, address())
        return error(refusal.status, refusal.message, check=refusal.check)

    Handler = Callable[..., Awaitable[Response]]

    def guarded(mutating: bool) -> Callable[[Handler], Handler]:
        def wrap(handler: Handler) -> Handler:
            @wraps(handler)
            async def inner(*args: Any, **kwargs: Any) -> Response:
                try:
                    caller = guard.require(request.method, request.headers, request.cookies, scheme(),
                                           mutating=mutating, server=request.scope.get("server"))
                except Refusal as refusal:
                    if refusal.status == 403 or mutating:
                        await guard.audit_refusal(refusal, request.method, request.path, address())
                    return error(refusal.status, refusal.message, check=refusal.check)
                report_known_lsn(core, request.headers, caller.session.endpoint_id)
                try:
                    answer = await handler(caller, *args, **kwargs)
                    answer.headers[HEAD_LSN_HEADER] = head_value(core)
                    return answer
                except NotFound as missing:
                    return error(404, str(missing))
                except Refused as refused:
                    return error(409, str(refused))
                except CoreStopped as stopped:
                    return error(503, str(stopped), outcome=SubmissionOutcome.unknown.value)
            return inner
        return wrap

    async def body() -> dict[str, Any]:
        return body_object(await request.get_data())

    # -- cockpit -------------------------------------------------------------------------

    @app.get("/")
    async def index() -> Response:
        return static_file("index.html")

    @app.get("/static/<path:name>")
    async def cockpit_file(name: str) -> Response:
        return static_file(name)

    install_worker_route(app, cockpit)

    @app.get("/manifest.webmanifest")
    async def manifest() -> Response:
        return static_file("manifest.webmanifest")

    def static_file(name: str) -> Response:
        if ".." in name.split("/") or name.startswith("/"):
            return error(404, "not found")
        node = cockpit.joinpath(*name.split("/"))
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        try:
            found = suffix in STATIC_TYPES and node.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL
            found = False
        if not found:
            return error(404, "not found")
        response = Response(node.read_bytes(), content_type=STATIC_TYPES[suffix])
        response.headers["Cache-Control"] = "no-cache"
        return response

    # -- setup, login, logout ------------------------------------------------------------

    @app.get("/api/registry")
    async def registry() -> Response:
        return ok(registry_document())

    @app.get("/api/status")
    async def status() -> Response:
        # signed_in lets the cockpit choose the login page without a 401 on /api/me.
        signed_in = guard.identify(request.headers, request.cookies) is not None
        return ok({"setup_required": not core.state.operators, "lockdown": core.state.lockdown.active,
                   "authority_domain_id": core.domain_id, "core_generation": core.core_generation,
                   "signed_in": signed_in, **core.health.view(detail=signed_in)})

    register_login(app, core, guard, setup, error=error, ok=ok, scheme=scheme, address=address)

    @app.post("/api/logout")
    @guarded(mutating=True)
    async def logout(caller: Caller) -> Response:
        await core.end_operator_session(caller.session.session_id, "logout", logout=True)
        response = ok({"ok": True})
        if caller.transport == "web":
            response.headers["Set-Cookie"] = guard.clear_cookie_header()
        return response

    @app.get("/api/me")
    @guarded(mutating=False)
    async def me(caller: Caller) -> Response:
        return ok({"session_id": caller.session.session_id, "endpoint_id": caller.session.endpoint_id,
                   "csrf_token": guard.csrf_for(caller.session.session_id), "transport": caller.transport,
                   "lockdown": lockdown_view()})

    def lockdown_view() -> dict[str, Any]:
        lock = core.state.lockdown
        return {"active": lock.active, "reason": lock.reason, "since_ts": lock.since_ts}

    # -- sessions, commands, elicitations ------------------------------------------------

    @app.get("/api/sessions")
    @guarded(mutating=False)
    async def sessions(caller: Caller) -> Response:
        state = core.state
        views = [api.session_view(s, state) for s in sorted(state.sessions.values(), key=lambda s: s.target)]
        return ok({"sessions": views, "lsn": state.last_lsn})

    @app.get("/api/sessions/<path:target>/transcript")
    @guarded(mutating=False)
    async def transcript(caller: Caller, target: str) -> Response:
        after = int_arg(request.args, "after", 0, low=0, high=INT_MAX)
        limit = int_arg(request.args, "limit", 500, low=1, high=2000, cap=True)
        events = [stream_event(e) for e in core.events_after(after, limit=limit, entity=f"session:{target}")]
        return ok({"target": target, "events": events, "lsn": core.state.last_lsn})

    _render.register(app, guarded, error, ok)
    _history.register(app, core, guarded, error, ok)

    # POST /api/commands is served by FastRoutes, in front of Quart (see _fast.py).

    @app.get("/api/commands/<command_id>")
    @guarded(mutating=False)
    async def command(caller: Caller, command_id: str) -> Response:
        return ok(api.command_view(core.command(command_id), core.state))

    @app.get("/api/commands")
    @guarded(mutating=False)
    async def commands(caller: Caller) -> Response:
        key = text_arg(request.args, "idempotency_key")
        if key:
            record = core.command_by_key(key)
            return ok({"commands": [api.command_view(record, core.state)] if record else []})
        target = text_arg(request.args, "target")
        limit = int_arg(request.args, "limit", 200, low=1, high=1000, cap=True)
        return ok({"commands": [api.command_view(c, core.state) for c in core.commands(target=target, limit=limit)],
                   "lsn": core.state.last_lsn})

    @app.get("/api/elicitations")
    @guarded(mutating=False)
    async def elicitations(caller: Caller) -> Response:
        wanted = request.args.get("state")
        views = [api.elicitation_view(e) for e in core.state.elicitations.values()
                 if wanted is None or e.state.value == wanted]
        views.sort(key=lambda v: v["opened_ts"], reverse=True)
        return ok({"elicitations": views[:500]})

    @app.post("/api/elicitations/<elicitation_id>")
    @guarded(mutating=True)
    async def answer(caller: Caller, elicitation_id: str) -> Response:
        data = await body()
        record = core.state.elicitations.get(elicitation_id)
        if record is None:
            raise NotFound(f"no elicitation {elicitation_id}")
        kind = CommandKind.approval_response if record.kind is ElicitationKind.approval else CommandKind.elicitation_response
        payload: dict[str, Any] = {"elicitation_id": elicitation_id}
        for field in ("decision", "answer", "decline"):
            if field in data:
                payload[field] = data[field]
        command_id = data.get("command_id") or core.ids.new_id("cmd")
        submission = Submission(command_id=command_id, idempotency_key=data.get("idempotency_key") or command_id,
                                kind=kind.value, target=record.target, payload=payload)
        result = await core.submit(submission, caller.issuer)
        status_code = 200 if result.outcome is SubmissionOutcome.accepted else (
            503 if result.outcome is SubmissionOutcome.failed else 409)
        return ok({"outcome": result.outcome.value, "failure": result.failure.value if result.failure else None,
                   "reason": result.reason, "elicitation": api.elicitation_view(core.state.elicitations[elicitation_id]),
                   "command": api.command_view(result.command, core.state) if result.command else None}, status_code)

    # -- security ------------------------------------------------------------------------

    @app.get("/api/audit")
    @guarded(mutating=False)
    async def audit(caller: Caller) -> Response:
        before = int_arg(request.args, "before", 0, low=0, high=INT_MAX) or None
        kinds = [k for k in (text_arg(request.args, "kind", limit=2000) or "").split(",") if k][:64] or None
        limit = int_arg(request.args, "limit", 100, low=1, high=500, cap=True)
        return ok({"records": core.audit(before_lsn=before, limit=limit, kinds=kinds)})

    @app.get("/api/security")
    @guarded(mutating=False)
    async def security(caller: Caller) -> Response:
        state = core.state
        return ok({
            "operator_sessions": [api.operator_session_view(s, caller.session.session_id)
                                  for s in state.operator_sessions.values()],
            "endpoints": [api.endpoint_view(e, caller.session.endpoint_id) for e in state.endpoints.values()],
            "grants": [api.grant_view(g) for g in state.grants.values()],
            "lockdown": lockdown_view(),
            "push_subscriptions": push_views(state),
        })

    @app.post("/api/security/sessions/<session_id>/revoke")
    @guarded(mutating=True)
    async def revoke_session(caller: Caller, session_id: str) -> Response:
        await core.end_operator_session(session_id, "revoked by the operator")
        return ok({"ok": True})

    @app.post("/api/security/sessions/revoke-all")
    @guarded(mutating=True)
    async def revoke_all(caller: Caller) -> Response:
        return ok({"revoked": await core.revoke_all_sessions("all sessions revoked by the operator")})

    @app.post("/api/security/endpoints/<endpoint_id>/revoke")
    @guarded(mutating=True)
    async def revoke_endpoint(caller: Caller, endpoint_id: str) -> Response:
        await core.revoke_endpoint(endpoint_id, "revoked by the operator")
        return ok({"ok": True})

    @app.get("/api/grants")
    @guarded(mutating=False)
    async def grants(caller: Caller) -> Response:
        return ok({"grants": [api.grant_view(g) for g in core.state.grants.values()]})

    @app.post("/api/grants")
    @guarded(mutating=True)
    async def add_grant(caller: Caller) -> Response:
        wanted = typed(await body(), GrantRequest)
        grant_id = await core.add_grant(scope=wanted.scope.as_json(), kinds=wanted.kinds, expires_at=wanted.expires_at,
                                        revocation_policy=wanted.revocation_policy,
                                        provenance=f"added by {caller.transport} endpoint {caller.session.endpoint_id}",
                                        endpoint_id=wanted.endpoint_id)
        return ok(api.grant_view(core.state.grants[grant_id]))

    @app.post("/api/grants/<grant_id>/revoke")
    @guarded(mutating=True)
    async def revoke_grant(caller: Caller, grant_id: str) -> Response:
        await core.revoke_grant(grant_id, "revoked by the operator")
        return ok(api.grant_view(core.state.grants[grant_id]))

    @app.post("/api/lockdown")
    @guarded(mutating=True)
    async def lockdown(caller: Caller) -> Response:
        data = await body()
        await core.enter_lockdown(str(data.get("reason", "")), f"{caller.transport}:{caller.session.endpoint_id}")
        return ok(lockdown_view())

    @app.get("/api/leases")
    @guarded(mutating=False)
    async def leases(caller: Caller) -> Response:
        return ok({"leases": [api.lease_view(lease) for lease in core.state.leases.values()]})

    @app.get("/api/adapters")
    @guarded(mutating=False)
    async def adapters(caller: Caller) -> Response:
        return ok({"adapters": [api.adapter_view(a) for a in core.state.adapters.values()]})

    # -- websockets ----------------------------------------------------------------------

    encoded_events = EncodedEvents(core)

    @app.websocket("/api/stream")
    async def stream() -> None:
        caller = guard.identify(websocket.headers, websocket.cookies)
        if caller is None:  # accepted first, so a browser can read the close code and reason
            await websocket.accept()
            await websocket.close(4401, "log in first")
            return
        if caller.transport == "web":
            try:
                guard.check_origin(websocket.headers, "https" if scheme_ws() == "wss" else "http",
                                   websocket.scope.get("server"))
            except Refusal as refusal:
                await guard.audit_refusal(refusal, "WS", "/api/stream", websocket.remote_addr or "")
                await websocket.accept()
                await websocket.close(4403, refusal.message)
                return
        await serve_stream(core, websocket, caller, encoded_events)

    def scheme_ws() -> str:
        if trusted_proxy:
            proto = websocket.headers.get("X-Forwarded-Proto")
            if proto:
                return "wss" if proto == "https" else "ws"
        return websocket.scheme

    @app.websocket("/adapter/v1")
    async def adapter_endpoint() -> None:
        await serve_adapter(core, websocket)

    install_push_routes(app, core, push, guarded)
    app.extensions["patchbay_stream_event"] = stream_event
    app.asgi_app = FastRoutes(app.asgi_app, core, guard, trusted_proxy=trusted_proxy)  # type: ignore[method-assign, assignment]
    _ = ProtocolError
    return app


def stream_event(event: Any) -> dict[str, Any]:
    from patchbay.web._stream import event_view

    return event_view(event)
