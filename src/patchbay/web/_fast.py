"""The hot route, ``POST /api/commands``, served as raw ASGI in front of Quart.

Quart costs about half a millisecond of CPU per request (request/response objects, context
locals, hooks); a submission needs none of that. ``FastRoutes`` answers that one route itself
and hands every other request, websocket and lifespan event to Quart unchanged. It runs the
same checks through the same request-neutral ``Guard`` calls, in the same order, as the Quart
route did: plain HTTP from afar (``Guard.transport_refusal``), session cookie or bearer token,
method, Origin, Fetch-Metadata and CSRF (``Guard.require``), each refusal audited
(``Guard.audit_refusal``); then the body (at most ``MAX_BODY`` bytes, a JSON object), the
submission, and the answer. Other methods on the path (GET lists, the rest are 405 and
audited) stay with Quart. The answer carries the same security headers as every Quart response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import trio

from patchbay.core import Core, SubmissionResult
from patchbay.domain.acceptance import Submission
from patchbay.errors import CoreStopped, NotFound, Refused
from patchbay.registry import Failure, SubmissionOutcome
from patchbay.web._guard import Guard, Refusal, forwarded_client
from patchbay.web._input import MAX_BODY, NOT_AN_OBJECT, BodyRefused, InputRefused, body_object
from patchbay.web._known_lsn import head_value, report_known_lsn
from patchbay.wire import api
from patchbay.wire._admit import INT_MAX
from patchbay.wire.adapter import MAX_TIMESTAMP
from patchbay.wire.known_lsn import HEAD_LSN_HEADER

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]  # Quart's own asgi_app, typed with hypercorn's ASGI types

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
BODY_TIMEOUT = 60.0  # seconds for the whole body to arrive (Quart's BODY_TIMEOUT, kept)
__all__ = ["MAX_BODY", "NOT_AN_OBJECT", "SECURITY_HEADERS", "FastRoutes"]
_API_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items())]


class RequestHeaders:
    """Request headers as Quart shows them: case-insensitive names, the first value wins."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._values: dict[str, str] = {}
        self._cookies: list[str] = []
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            if key == "cookie":
                self._cookies.append(text)
            self._values.setdefault(key, text)

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name.lower(), default)

    def cookie_header(self) -> str:
        return ";".join(self._cookies)


class LazyCookies:
    """The request's cookies, parsed (as Quart parses them) only when asked for."""

    def __init__(self, headers: RequestHeaders) -> None:
        self._headers = headers
        self._parsed: dict[str, str] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        if self._parsed is None:
            from werkzeug.http import parse_cookie

            self._parsed = dict(parse_cookie(self._headers.cookie_header()))
        return self._parsed.get(name, default)


def submission_from(data: dict[str, Any]) -> Submission:
    """A submission from an admitted request body, fields as sent (acceptance validates
    them), except what only the boundary can tell: ``generation``, when present, is an integer
    of 1 or more, and ``expires_at`` a displayable time; otherwise ``InputRefused``."""
    generation = data.get("generation")
    if generation is not None and (type(generation) is not int or not 1 <= generation <= INT_MAX):
        raise InputRefused("generation", "must be an integer of 1 or more", 422)
    expires_at = data.get("expires_at")
    if expires_at is not None and not (type(expires_at) in (int, float) and 0 <= expires_at <= MAX_TIMESTAMP):
        raise InputRefused("expires_at", "must be seconds since the epoch, before the year 10000", 422)
    return Submission(
        command_id=data.get("command_id"),  # type: ignore[arg-type]
        idempotency_key=data.get("idempotency_key"),  # type: ignore[arg-type]
        kind=data.get("kind"),  # type: ignore[arg-type]
        target=data.get("target"),  # type: ignore[arg-type]
        payload=data.get("payload", {}),
        generation=generation,
        expires_at=data.get("expires_at"),
        supersedes=data.get("supersedes"),
    )


def submit_answer(core: Core, result: SubmissionResult) -> tuple[int, dict[str, Any]]:
    status = 200 if result.outcome is SubmissionOutcome.accepted else 422
    if result.failure is Failure.authorization_denied:
        status = 403
    elif result.outcome is SubmissionOutcome.failed:  # could not be made durable (e.g. a full disk)
        status = 503
    return status, {"outcome": result.outcome.value, "failure": result.failure.value if result.failure else None,
                    "reason": result.reason,
                    "command": api.command_view(result.command, core.state) if result.command else None}


def encode(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # e.g. an integer beyond 64 bits in a payload
        return json.dumps(body).encode()


class FastRoutes:
    """ASGI middleware: ``POST /api/commands`` here, everything else to ``inner`` (Quart)."""

    def __init__(self, inner: ASGIApp, core: Core, guard: Guard, *, trusted_proxy: bool) -> None:
        self.inner = inner
        self.core = core
        self.guard = guard
        self.trusted_proxy = trusted_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/api/commands" \
                and not scope.get("root_path"):
            await self.submit(scope, receive, send)
        elif scope["type"] == "http" and _declared_too_large(RequestHeaders(scope["headers"])):
            await self.too_large(receive, send)  # for every route: read and dropped, answered 413
        else:
            await self.inner(scope, receive, send)

    async def too_large(self, receive: Receive, send: Send) -> None:
        with trio.move_on_after(BODY_TIMEOUT):
            await _drain(receive)
        await _answer(send, 413, {"error": f"the request body is larger than {MAX_BODY} bytes"})

    async def submit(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = RequestHeaders(scope["headers"])
        peer = (scope.get("client") or ["<local>"])[0]
        if self.trusted_proxy:
            scheme = headers.get("X-Forwarded-Proto", scope["scheme"])
            address = forwarded_client(headers.get("X-Forwarded-For", "")) or peer
        else:
            scheme, address = scope["scheme"], peer
        path = scope["path"]
        try:
            status, answer = await self._submit(scope, receive, headers, scheme, address)
        except ClientGone:
            return  # the body never arrived whole: nothing was submitted, and no one to answer
        except Exception:
            log.exception("POST %s failed", path)
            status, answer = 500, {"error": "internal server error"}
        head = [(HEAD_LSN_HEADER.lower().encode(), head_value(self.core).encode())] if status < 300 else []
        await _answer(send, status, answer, head)

    async def _submit(self, scope: Scope, receive: Receive, headers: RequestHeaders, scheme: str,
                      address: str) -> tuple[int, dict[str, Any]]:
        guard, path = self.guard, scope["path"]
        try:
            refusal = guard.transport_refusal(scheme, address)
            if refusal is not None:
                raise refusal
            caller = guard.require("POST", headers, LazyCookies(headers), scheme, mutating=True,
                                   server=scope.get("server"))
        except Refusal as refusal:
            await guard.audit_refusal(refusal, "POST", path, address)
            with trio.move_on_after(BODY_TIMEOUT):  # read and drop the body, as Quart did
                await _drain(receive)
            return refusal.status, {"error": refusal.message, "check": refusal.check}
        raw: bytes | None = None
        with trio.move_on_after(BODY_TIMEOUT) as waiting:
            raw = await _read_body(receive, headers)
        if waiting.cancelled_caught:
            return 408, {"error": f"the request body did not arrive within {BODY_TIMEOUT:g} s"}
        if raw is None:
            return 413, {"error": f"the request body is larger than {MAX_BODY} bytes"}
        report_known_lsn(self.core, headers, caller.session.endpoint_id)
        try:
            submission = submission_from(body_object(raw))
        except BodyRefused as refused:
            return refused.status, {"error": str(refused)}
        except InputRefused as refused:
            await self.guard.audit_input(refused, "POST", path, address)
            return refused.status, {"outcome": SubmissionOutcome.rejected.value, "reason": str(refused),
                                    "command": None, **refused.answer()}
        try:
            result = await self.core.submit(submission, caller.issuer)
        except NotFound as missing:
            return 404, {"error": str(missing)}
        except Refused as refused:
            return 409, {"error": str(refused)}
        except CoreStopped as stopped:
            return 503, {"error": str(stopped), "outcome": SubmissionOutcome.unknown.value}
        return submit_answer(self.core, result)


async def _answer(send: Send, status: int, answer: dict[str, Any],
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = encode(answer)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_API_HEADERS, *(extra or []), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _declared_too_large(headers: RequestHeaders) -> bool:
    declared = headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) > MAX_BODY


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


async def _read_body(receive: Receive, headers: RequestHeaders) -> bytes | None:
    """The whole body, or None (after draining it) when it is larger than ``MAX_BODY``;
    ``ClientGone`` when the client disconnects first (a partial body is never submitted)."""
    if _declared_too_large(headers):
        await _drain(receive)
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            if message.get("more_body", False):
                await _drain(receive)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
