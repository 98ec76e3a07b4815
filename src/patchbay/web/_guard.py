"""Request protection: who is asking, and may they change anything.

A browser proves itself with the session cookie; a state-changing browser request must also
carry the CSRF token bound to that session in ``X-Patchbay-CSRF``, an ``Origin`` equal to this
server's, no ``Sec-Fetch-Site: cross-site``, and a non-GET method. A CLI endpoint sends
``Authorization: Bearer`` instead (not an ambient credential, so no CSRF proof is needed).
Every refusal is audited and answered 403 with a JSON body naming the failed check.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import attrs

from patchbay import faults
from patchbay.core import Core
from patchbay.core.secrets import csrf_token
from patchbay.domain.events import EventKind
from patchbay.domain.model import Issuer, OperatorSessionRecord
from patchbay.errors import CoreStopped
from patchbay.web._input import InputRefused
from patchbay.wire._admit import printable

COOKIE_PLAIN = "patchbay_session"
COOKIE_SECURE = "__Host-patchbay_session"


@attrs.frozen
class Caller:
    session: OperatorSessionRecord
    transport: str  # "web" (cookie) or "cli" (bearer)

    @property
    def issuer(self) -> Issuer:
        return Issuer(operator_id=self.session.operator_id, endpoint_id=self.session.endpoint_id,
                      session_id=self.session.session_id, transport=self.transport)


class Refusal(Exception):
    def __init__(self, status: int, check: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.check = check
        self.message = message


def is_loopback(address: str) -> bool:
    """Whether a client or listen address is this host's loopback (IPv4-mapped IPv6 included)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0].strip("[]"))
    except ValueError:
        return address in ("localhost", "")
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def forwarded_client(header: str) -> str:
    """The client address a trusted proxy appended: the *last* X-Forwarded-For entry (earlier
    entries come from the client itself and could claim to be loopback)."""
    return header.rsplit(",", 1)[-1].strip()


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(origin: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]`` as (scheme, lower-case host, port), or None if it is not one."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.username is not None:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def origin_allowed(origin: str, scheme: str, server: Any, public: frozenset[Any]) -> bool:
    """Whether a browser's ``Origin`` is this server's: a configured public origin, or the
    listener's own address and port (a loopback listener also under ``localhost``)."""
    parsed = normal_origin(origin)
    if parsed is None:
        return False
    if parsed in public:
        return True
    if not server or len(server) < 2:
        return False
    host, port = str(server[0]).strip("[]").lower(), int(server[1])
    names = LOOPBACK_NAMES if is_loopback(host) else {host}
    return parsed[0] == scheme and parsed[2] == port and parsed[1].strip("[]") in names


MAX_TRACKED = 10_000  # keys the login rate limiter remembers at most


class RateLimiter:
    """Sliding-window limit on failed logins, per account and per client address.

    Keys are ``account:NAME`` and ``address:ADDR``; each prefix has its own limit. An attempt
    is counted before its password is verified (``attempt``) and uncounted when it was right
    (``succeeded``), so only failures use up the budget and concurrency cannot exceed it. State lives in memory: a
    restart forgets it, which costs an attacker a restart they cannot cause.
    """

    def __init__(self, per_address: int = 5, per_account: int = 20, window: float = 60.0) -> None:
        self.limits = {"address": per_address, "account": per_account}
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        entries = self._failures.setdefault(key, deque())
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        return entries

    def _limit(self, key: str) -> int:
        return self.limits.get(key.partition(":")[0], self.limits["address"])

    def blocked(self, keys: list[str], now: float) -> tuple[float, str | None]:
        """Seconds until a new attempt is allowed (0 when allowed) and which key blocks it."""
        wait, blocking = 0.0, None
        for key in keys:
            if key not in self._failures:  # asking never creates state
                continue
            entries = self._recent(key, now)
            if len(entries) >= self._limit(key):
                until = entries[-self._limit(key)] + self.window - now
                if until > wait:
                    wait, blocking = until, key
        return wait, blocking

    def attempt(self, keys: list[str], now: float) -> tuple[float, str | None]:
        """Check and count one attempt at once, before its password is verified, so that
        concurrent attempts cannot all pass the check: ``(0, None)`` when it may go on (it now
        counts as a failure until ``succeeded``), else what ``blocked`` says."""
        wait, blocking = self.blocked(keys, now)
        if wait <= 0:
            self.failed(keys, now)
        return wait, blocking

    def succeeded(self, keys: list[str], now: float) -> None:
        """A counted attempt (``attempt`` at ``now``) had the right password: uncount it."""
        for key in keys:
            entries = self._failures.get(key)
            if entries is not None and now in entries:
                entries.remove(now)

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            entries = self._recent(key, now)
            entries.append(now)
            while len(entries) > self._limit(key):  # keep only what the limit needs to see
                entries.popleft()
        if len(self._failures) > MAX_TRACKED:
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Bound memory under a spray of addresses: forget expired keys, then the stalest
        addresses (down to half the bound, so pruning is rare). Account keys are kept."""
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
        excess = len(self._failures) - MAX_TRACKED // 2
        if excess > 0:
            stalest = sorted((k for k in self._failures if not k.startswith("account:")),
                             key=lambda k: self._failures[k][-1])
            for key in stalest[:excess]:
                del self._failures[key]


class Guard:
    def __init__(self, core: Core, server_key: bytes, *, secure_cookies: bool,
                 limiter: RateLimiter | None = None, public_origins: tuple[str, ...] = ()) -> None:
        self.core = core
        self.public_origins = frozenset(normal_origin(o) for o in public_origins) - {None}
        self.server_key = server_key
        self.secure_cookies = secure_cookies
        self.cookie_name = COOKIE_SECURE if secure_cookies else COOKIE_PLAIN
        self.limiter = limiter or RateLimiter()

    def csrf_for(self, session_id: str) -> str:
        return csrf_token(self.server_key, session_id)

    def cookie_header(self, token: str, max_age: int) -> str:
        parts = [f"{self.cookie_name}={token}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
        if self.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    def clear_cookie_header(self) -> str:
        return self.cookie_header("", 0)

    def identify(self, headers: Any, cookies: Any) -> Caller | None:
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            session = self.core.authenticate(authorization[7:].strip())
            return Caller(session, "cli") if session is not None and session.kind == "cli" else None
        token = cookies.get(self.cookie_name)
        if token:
            session = self.core.authenticate(token)
            if session is not None and session.kind == "browser":
                return Caller(session, "web")
        return None

    def check_origin(self, headers: Any, scheme: str, server: Any = None) -> None:
        """Same-origin proof for cookie-authenticated browser requests: the ``Origin`` is one
        of the configured public origins, or this listener's own (``server``: the address the
        request arrived at, never the client's ``Host`` header, which DNS rebinding controls)."""
        if headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            raise Refusal(403, "fetch_metadata", "cross-site request refused")
        if not origin_allowed(headers.get("Origin") or "", scheme, server, self.public_origins):
            raise Refusal(403, "origin", "the Origin header must be this server's origin")

    def require(self, method: str, headers: Any, cookies: Any, scheme: str, *, mutating: bool,
                server: Any = None) -> Caller:
        caller = self.identify(headers, cookies)
        if caller is None:
            raise Refusal(401, "session", "log in first: no valid session")
        if mutating and caller.transport == "web":
            if method == "GET":
                raise Refusal(403, "method", "state changes need a non-GET method")
            self.check_origin(headers, scheme, server)
            proof = headers.get("X-Patchbay-CSRF", "")
            if faults.active("csrf_check_off"):
                return caller
            if not proof or not hmac.compare_digest(proof, self.csrf_for(caller.session.session_id)):
                raise Refusal(403, "csrf", "missing or wrong X-Patchbay-CSRF token")
        return caller

    def transport_refusal(self, scheme: str, address: str) -> Refusal | None:
        """Plain HTTP is only for loopback clients (behind a trusted proxy, the client it names)."""
        if scheme != "https" and not is_loopback(address):
            return Refusal(403, "tls", "non-loopback access needs HTTPS (configure [tls] or a trusted TLS proxy)")
        return None

    async def audit_input(self, refused: InputRefused, method: str, path: str, address: str) -> None:
        """Audit a refused field (bounded details); a stopping core answers the refusal anyway."""
        try:
            await self.core.record(EventKind.request_refused, "security", refused.audit(method, path, address))
        except CoreStopped:
            pass

    async def audit_refusal(self, refusal: Refusal, method: str, path: str, address: str) -> None:
        """Audit a refused request; one without a session (401, or plain HTTP from afar) is a
        stranger's, aggregated under a flood (``core/_refusals.py``)."""
        details: dict[str, Any] = {"check": refusal.check, "method": method, "path": printable(path, 200),
                                   "address": printable(address, 100), "status": refusal.status}
        if refusal.status == 401 or refusal.check == "tls":
            await self.core.adapters.refusals.refused("request", EventKind.request_refused, "security", details,
                                                      address)
        else:
            await self.core.record(EventKind.request_refused, "security", details)
