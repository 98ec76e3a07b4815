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

import attrs

from patchbay import faults
from patchbay.core import Core
from patchbay.core.secrets import csrf_token
from patchbay.domain.events import EventKind
from patchbay.domain.model import Issuer, OperatorSessionRecord

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


MAX_TRACKED = 10_000  # keys the login rate limiter remembers at most


class RateLimiter:
    """Sliding-window limit on failed logins, per account and per client address.

    Keys are ``account:NAME`` and ``address:ADDR``; each prefix has its own limit. Only
    failures count, so a correct password never uses up the budget. State lives in memory: a
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
                 limiter: RateLimiter | None = None) -> None:
        self.core = core
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

    def check_origin(self, headers: Any, scheme: str) -> None:
        """Same-origin proof for cookie-authenticated browser requests."""
        if headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            raise Refusal(403, "fetch_metadata", "cross-site request refused")
        origin = headers.get("Origin")
        host = headers.get("Host", "")
        if not origin or origin != f"{scheme}://{host}":
            raise Refusal(403, "origin", "the Origin header must be this server's origin")

    def require(self, method: str, headers: Any, cookies: Any, scheme: str, *, mutating: bool) -> Caller:
        caller = self.identify(headers, cookies)
        if caller is None:
            raise Refusal(401, "session", "log in first: no valid session")
        if mutating and caller.transport == "web":
            if method == "GET":
                raise Refusal(403, "method", "state changes need a non-GET method")
            self.check_origin(headers, scheme)
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

    async def audit_refusal(self, refusal: Refusal, method: str, path: str, address: str) -> None:
        await self.core.record(EventKind.request_refused, "security", {
            "check": refusal.check, "method": method, "path": path[:200], "address": address,
            "status": refusal.status,
        })
