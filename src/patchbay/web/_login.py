"""``POST /api/setup`` and ``POST /api/login``: the two routes a stranger may call.

Login order: the body (an admitted JSON object), the browser's Origin (login CSRF), then the
rate limit, checked and counted in one step before argon2 runs (``RateLimiter.attempt``), so
concurrent guesses can never get more verifications than the documented limits; then the
verification itself, at most ``VERIFY_CONCURRENCY`` at a time (each argon2id verification
holds 64 MiB), so memory stays bounded under any login flood.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

from patchbay.core import Core
from patchbay.domain.events import EventKind
from patchbay.web._guard import Guard, Refusal
from patchbay.web._input import body_object
from patchbay.wire._admit import printable

VERIFY_CONCURRENCY = 2  # argon2 verifications running at once, at most
Answer = Callable[..., Response]


def register_login(app: QuartTrio, core: Core, guard: Guard, setup: Any, *, error: Answer, ok: Answer,
                   scheme: Callable[[], str], address: Callable[[], str]) -> None:
    verifying = trio.CapacityLimiter(VERIFY_CONCURRENCY)

    async def origin_refused() -> Response | None:
        try:
            guard.check_origin(request.headers, scheme(), request.scope.get("server"))
        except Refusal as refusal:
            await guard.audit_refusal(refusal, request.method, request.path, address())
            return error(refusal.status, refusal.message, check=refusal.check)
        return None

    @app.post("/api/setup")
    async def do_setup() -> Response:
        if setup is None or core.state.operators:
            return error(409, "setup is closed: an operator exists")
        data = body_object(await request.get_data())
        refused = await origin_refused() if request.headers.get("Origin") else None
        if refused is not None:
            return refused
        secret, password = data.get("secret"), data.get("password")
        if not isinstance(secret, str) or not isinstance(password, str):
            return error(400, "setup needs 'secret' and 'password'")
        problem = await setup.complete(core, secret, password)
        if problem:  # a stranger's guess: aggregated under a flood (core/_refusals.py)
            await core.adapters.refusals.refused("login", EventKind.login_failed, "security", {
                "account": "setup", "address": printable(address(), 100), "reason": problem}, address())
            return error(403, problem, check="setup_secret")
        return ok({"ok": True})

    @app.post("/api/login")
    async def login() -> Response:
        data = body_object(await request.get_data())
        password = data.get("password")
        kind = "cli" if data.get("endpoint_kind") == "cli" else "browser"
        if kind == "browser":
            refused = await origin_refused()
            if refused is not None:
                return refused
        now = core.clock.now()
        keys = ["account:operator", f"address:{address()}"]
        wait, blocking = guard.limiter.attempt(keys, now)  # counted now, before verifying
        if wait > 0:  # a flood of these is aggregated (core/_refusals.py)
            await core.adapters.refusals.refused("login", EventKind.login_failed, "security", {
                "account": "operator", "address": printable(address(), 100), "reason": "rate_limited",
                "limit": (blocking or "").partition(":")[0]}, address())
            response = error(429, f"too many failed logins; try again in {math.ceil(wait)} s", check="rate_limit")
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        right = isinstance(password, str) and await trio.to_thread.run_sync(
            core.operator_password_ok, password, limiter=verifying)
        if not right:
            await core.record(EventKind.login_failed, "security", {  # at most the rate limit's worth
                "account": "operator", "address": printable(address(), 100), "reason": "wrong password"})
            return error(401, "wrong password", check="password")
        guard.limiter.succeeded(keys, now)
        label = printable(str(data.get("label") or request.headers.get("User-Agent", kind)), 200)
        result = await core.create_operator_session(session_kind=kind, address=address(), label=label)
        body_out = {"csrf_token": guard.csrf_for(result.session_id), "session_id": result.session_id,
                    "endpoint_id": result.endpoint_id}
        if kind == "cli":
            body_out["token"] = result.token
            return ok(body_out)
        response = ok(body_out)
        response.headers["Set-Cookie"] = guard.cookie_header(result.token, int(core.settings.session_absolute))
        return response
