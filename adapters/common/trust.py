"""Trusting a core's TLS certificate: a pinned SHA-256 fingerprint (like SSH), or a CA.

A pin is the SHA-256 fingerprint of the core's certificate (its DER bytes), written as
``openssl x509 -fingerprint -sha256`` shows it (``AB:CD:…``) or as plain hex. A pinned
connection does the TLS handshake without chain or host name verification and then compares
the peer certificate's fingerprint with the pin before a single byte of the application is
sent; anything else fails the handshake with ``PinMismatch``, whose message names both
fingerprints. Without a pin, the certificate must chain to ``ca_file`` or to the system store
and name the host, as usual.

The check runs inside the handshake of the ``ssl`` objects the context creates
(``sslobject_class`` for trio's memory-BIO streams, ``sslsocket_class`` for blocking sockets such
as httpx's), so every client built on the context is pinned the same way. The websocket client
hides why a handshake failed, so the adapter link first shakes hands on a connection of its own
(``check_certificate``) to learn whether the certificate is refused.
"""

from __future__ import annotations

import hmac
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes

HEX_DIGITS = frozenset("0123456789abcdef")


class PinMismatch(ssl.SSLCertVerificationError):
    """The peer's certificate is not the pinned one (``presented`` and ``pinned``: plain hex)."""

    def __init__(self, presented: str, pinned: str) -> None:
        self.message = (f"the core's certificate has SHA-256 fingerprint {format_fingerprint(presented)}, "
                        f"but the pinned fingerprint is {format_fingerprint(pinned)}")
        super().__init__(self.message)
        self.presented = presented
        self.pinned = pinned

    def __str__(self) -> str:
        return self.message


def normalize_fingerprint(text: str) -> str:
    """Lower-case hex of a SHA-256 fingerprint given with or without colons (or a
    ``sha256 Fingerprint=`` prefix, as openssl prints it); ValueError if it is not one."""
    value = text.strip()
    if "=" in value:
        value = value.split("=", 1)[1].strip()
    value = value.replace(":", "").lower()
    if len(value) != 64 or not set(value) <= HEX_DIGITS:
        raise ValueError(f"{text.strip()!r} is not a SHA-256 fingerprint (64 hex digits, colons optional)")
    return value


def format_fingerprint(hex_value: str) -> str:
    """``AB:CD:…``, as ``openssl x509 -fingerprint -sha256`` shows it."""
    upper = hex_value.upper()
    return ":".join(upper[i:i + 2] for i in range(0, len(upper), 2))


def der_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint (hex) of a DER certificate."""
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex()


def pem_fingerprint(pem: str | bytes) -> str:
    """The SHA-256 fingerprint (hex) of the first certificate in PEM text (a chain's leaf)."""
    data = pem.encode() if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificate(data).fingerprint(hashes.SHA256()).hex()


def file_fingerprint(path: Path) -> str:
    """The fingerprint of the (leaf) certificate in a PEM file; ValueError if it holds none."""
    try:
        return pem_fingerprint(path.read_bytes())
    except OSError as problem:
        raise ValueError(f"cannot read the certificate {path}: {problem.strerror or problem}") from None
    except ValueError:
        raise ValueError(f"{path} holds no PEM certificate") from None


def _check_peer(connection: Any, pin: str) -> None:
    der = connection.getpeercert(binary_form=True)
    presented = der_fingerprint(der) if der else ""
    if not hmac.compare_digest(presented, pin):
        raise PinMismatch(presented or "0" * 64, pin)


class _PinnedObject(ssl.SSLObject):
    pin = ""

    def do_handshake(self) -> None:
        super().do_handshake()
        _check_peer(self, self.pin)


class _PinnedSocket(ssl.SSLSocket):
    pin = ""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        _check_peer(self, self.pin)


def pinned_context(fingerprint: str) -> ssl.SSLContext:
    """A client context that accepts exactly the certificate with this SHA-256 fingerprint."""
    pin = normalize_fingerprint(fingerprint)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the pin names the certificate itself; no chain, no name
    context.verify_mode = ssl.CERT_NONE
    context.sslobject_class = type("PinnedSSLObject", (_PinnedObject,), {"pin": pin})
    context.sslsocket_class = type("PinnedSSLSocket", (_PinnedSocket,), {"pin": pin})
    return context


def client_context(*, fingerprint: str | None = None, ca_file: Path | None = None) -> ssl.SSLContext:
    """The context for ``wss://``/``https://`` to a core: pinned when a fingerprint is known,
    else verified against ``ca_file`` or the system store."""
    if fingerprint:
        return pinned_context(fingerprint)
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def untrusted(problem: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate refusal behind a transport error (trio wraps it), if that is what it is."""
    seen: BaseException | None = problem
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def describe_refusal(problem: ssl.SSLCertVerificationError) -> str:
    """One line for a refused certificate: both fingerprints when pinned, else how to trust it."""
    if isinstance(problem, PinMismatch):
        return str(problem)
    reason = getattr(problem, "verify_message", "") or str(problem)
    return (f"the core's certificate is not trusted ({reason}); pin its SHA-256 fingerprint or give "
            "--ca-file")


def fetch_fingerprint(host: str, port: int, timeout: float = 10.0) -> str:
    """The fingerprint of the certificate a server presents (unverified: for trust on first use,
    where a person compares it before it is stored)."""
    return pem_fingerprint(ssl.get_server_certificate((host, port), timeout=timeout))


async def check_certificate(url: str, context: ssl.SSLContext, timeout: float) -> None:
    """Shake hands with the server of a ``wss://``/``https://`` URL and hang up; raises the
    refusal (``PinMismatch`` or ``ssl.SSLCertVerificationError``) if its certificate is not
    trusted, ``OSError`` or ``trio.TooSlowError`` if it cannot be reached."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    with trio.fail_after(timeout):
        stream = await trio.open_ssl_over_tcp_stream(host, parts.port or 443, ssl_context=context,
                                                     https_compatible=True)
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as broken:
            refused = untrusted(broken)
            if refused is not None:
                raise refused from None
            raise
        finally:
            await trio.aclose_forcefully(stream)
