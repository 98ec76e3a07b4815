"""A local fake Web Push service, and a fake browser subscription, for tests.

``FakePushService`` is a threaded HTTP server on 127.0.0.1 (port 0) that records every POST and
answers 201, or the status set for a path (410 to say a subscription is gone). ``BrowserKeys``
is what a browser holds for one subscription: a P-256 key pair and a 16-byte auth secret; it
verifies a received request as a push service and a browser would — the VAPID JWT (RFC 8292:
ES256 signature, ``aud``, ``exp``, ``sub``) and the aes128gcm body (RFC 8291) — and answers the
decrypted payload.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@attrs.frozen
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class FakePushService:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, int] = {}
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with service.lock:
                    service.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = service.answers.get(self.path, 201)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def to(self, name: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == f"/push/{name}"]


@contextmanager
def fake_push_service() -> Iterator[FakePushService]:
    service = FakePushService()
    service.thread.start()
    try:
        yield service
    finally:
        service.server.shutdown()
        service.server.server_close()
        service.thread.join(timeout=10)


class BrowserKeys:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives."""
        point = self.private.public_key().public_bytes(serialization.Encoding.X962,
                                                       serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}

    def open(self, request: Received, vapid_public_key: str) -> dict[str, Any]:
        """Verify a push request's VAPID authorization and decrypt its body; the payload."""
        scheme, _, params = request.headers["authorization"].partition(" ")
        assert scheme == "vapid", request.headers["authorization"]
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        assert fields["k"] == vapid_public_key
        header, claims, signature = fields["t"].split(".")
        assert json.loads(unb64url(header))["alg"] == "ES256"
        raw = unb64url(signature)
        assert len(raw) == 64
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
        decoded = json.loads(unb64url(claims))
        origin = self.endpoint.split("/push/", 1)[0]
        assert decoded["aud"] == origin, decoded
        assert time.time() < decoded["exp"] <= time.time() + 24 * 3600, decoded
        assert decoded["sub"].startswith(("mailto:", "https:")), decoded
        assert request.headers["content-encoding"] == "aes128gcm"
        assert int(request.headers["ttl"]) > 0
        plain = http_ece.decrypt(request.body, private_key=self.private, auth_secret=self.auth, version="aes128gcm")
        return dict(json.loads(plain))
