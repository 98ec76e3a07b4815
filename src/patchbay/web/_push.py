"""Web Push: settings, the core's VAPID key pair, and what a browser's subscription must be.

The VAPID key pair (RFC 8292) lives in the home as ``vapid.pem`` (0600), created on first use;
its public key, as the base64url uncompressed P-256 point browsers want for
``applicationServerKey``, is served at ``GET /api/push/vapid-public-key``. Settings come from
the ``[push]`` table of ``patchbay.toml``::

    [push]
    allow_loopback_http = false  # true lets http://127.0.0.1… endpoints in (tests, local fakes)
    finished_after_s = 20        # a command that completed after running longer is pushed
    ttl_s = 3600                 # how long a push service keeps an undelivered message
    subject = "mailto:operator@patchbay.invalid"  # the VAPID `sub` claim
"""

from __future__ import annotations

import base64
import binascii
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02

from patchbay.core.config import write_private
from patchbay.errors import Refused
from patchbay.web._guard import is_loopback

KEY_FILE = "vapid.pem"
MAX_ENDPOINT = 2048


@attrs.frozen
class PushSettings:
    allow_loopback_http: bool = False
    finished_after_s: float = 20.0
    ttl_s: int = 3600
    subject: str = "mailto:operator@patchbay.invalid"
    queue: int = 256  # messages waiting to be sent at most; past it new ones are dropped (counted)

    @classmethod
    def load(cls, config_file: Path) -> PushSettings:
        try:
            raw = tomllib.loads(config_file.read_text()).get("push", {})
        except (OSError, tomllib.TOMLDecodeError):
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        return cls(allow_loopback_http=bool(raw.get("allow_loopback_http", False)),
                   finished_after_s=float(raw.get("finished_after_s", 20.0)),
                   ttl_s=int(raw.get("ttl_s", 3600)),
                   subject=str(raw.get("subject", "mailto:operator@patchbay.invalid")))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_keys(home: Path) -> Vapid02:
    """The home's VAPID key pair, created (0600) the first time it is needed."""
    path = home / KEY_FILE
    if not path.exists():
        fresh = Vapid02()
        fresh.generate_keys()
        write_private(path, fresh.private_pem().decode())
    return Vapid02.from_file(str(path))


def public_key(vapid: Vapid02) -> str:
    point = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(point)


@attrs.frozen
class NewSubscription:
    push_endpoint: str
    p256dh: str
    auth: str
    expiration_time: float | None


def parse_subscription(body: dict[str, Any], settings: PushSettings) -> NewSubscription:
    """A browser's ``PushSubscription.toJSON()``, checked; ``Refused`` says what is wrong."""
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise Refused("a push subscription needs 'endpoint' (a URL of at most 2048 characters)")
    url = urlsplit(endpoint)
    loopback_http = url.scheme == "http" and is_loopback(url.hostname or "") and url.hostname not in ("", "localhost")
    if not url.hostname or not (url.scheme == "https" or (loopback_http and settings.allow_loopback_http)):
        raise Refused("a push endpoint must be an https URL (http://127.0.0.1… only with "
                      "[push] allow_loopback_http = true)")
    keys = body.get("keys")
    if not isinstance(keys, dict) or not isinstance(keys.get("p256dh"), str) or not isinstance(keys.get("auth"), str):
        raise Refused("a push subscription needs 'keys' with 'p256dh' and 'auth'")
    try:
        point, secret = unb64url(keys["p256dh"]), unb64url(keys["auth"])
    except (binascii.Error, ValueError) as problem:
        raise Refused(f"push subscription keys are not base64url ({problem})") from None
    if len(point) != 65 or point[0] != 4:
        raise Refused("'p256dh' must be an uncompressed P-256 point (65 bytes)")
    if len(secret) != 16:
        raise Refused("'auth' must be a 16-byte secret")
    expiration = body.get("expirationTime")
    if expiration is not None and (isinstance(expiration, bool) or not isinstance(expiration, (int, float))):
        raise Refused("'expirationTime' must be a number or null")
    return NewSubscription(endpoint, b64url(point), b64url(secret),
                           float(expiration) if expiration is not None else None)


def origin_of(endpoint: str) -> str:
    url = urlsplit(endpoint)
    return f"{url.scheme}://{url.netloc}"
