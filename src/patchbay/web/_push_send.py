"""Sending Web Push messages without ever holding up the core.

``offer`` never waits: a message goes into a bounded queue (a full queue drops it and counts
it). ``run`` — a task in the serve nursery — takes messages from the queue and sends each in
its own task (at most ``PARALLEL`` at once): the payload encrypted per RFC 8291
(``Content-Encoding: aes128gcm``, with ``http_ece``), authorized per RFC 8292
(``Authorization: vapid t=…, k=…``, ``aud`` the push service's origin, ``exp`` 12 h ahead,
signed with ``py_vapid``), with a ``TTL`` (RFC 8030) and an ``Urgency``. Encryption and signing
run in a worker thread. A push service answering 404 or 410 has forgotten the subscription:
it is removed (journaled ``push.unsubscribed``). Other failures are logged and dropped: a push
is a hint, and the cockpit shows the truth.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import http_ece
import httpx
import trio
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from patchbay.domain.model import PushSubscriptionRecord
from patchbay.registry import ElicitationKind
from patchbay.web._push import PushSettings, origin_of, unb64url

log = logging.getLogger("patchbay.push")
PARALLEL = 4
SEND_TIMEOUT = 15.0
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours
URGENT = {k.value for k in ElicitationKind}  # an approval or a question waits for the operator


@attrs.frozen(eq=False)
class Outgoing:
    subscription: PushSubscriptionRecord
    payload: dict[str, Any]


@attrs.define
class Counters:
    offered: int = 0
    dropped: int = 0
    sent: int = 0
    failed: int = 0
    removed: int = 0


def encrypt_and_sign(vapid: Vapid02, settings: PushSettings, sub: PushSubscriptionRecord,
                     payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The request body and headers for one message (CPU work: run in a thread)."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(json.dumps(payload, separators=(",", ":")).encode(), salt=os.urandom(16),
                            private_key=ephemeral, dh=unb64url(sub.p256dh), auth_secret=unb64url(sub.auth),
                            version="aes128gcm")
    claims = {"aud": origin_of(sub.push_endpoint), "exp": int(time.time()) + JWT_LIFETIME, "sub": settings.subject}
    headers = dict(vapid.sign(claims))
    headers.update({"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                    "TTL": str(settings.ttl_s),
                    "Urgency": "high" if payload.get("kind") in URGENT else "normal"})
    return body, headers


class PushSender:
    def __init__(self, vapid: Vapid02, settings: PushSettings,
                 forget: Callable[[str, str], Awaitable[None]]) -> None:
        self.vapid = vapid
        self.settings = settings
        self.forget = forget  # (subscription id, reason): journal its removal
        self.counters = Counters()
        self._send, self._receive = trio.open_memory_channel[Outgoing](settings.queue)

    def offer(self, subscription: PushSubscriptionRecord, payload: dict[str, Any]) -> bool:
        """Queue one message; never waits. False when the queue is full (the message is dropped)."""
        self.counters.offered += 1
        try:
            self._send.send_nowait(Outgoing(subscription, payload))
        except trio.WouldBlock:
            self.counters.dropped += 1
            return False
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        limit = trio.CapacityLimiter(PARALLEL)
        async with httpx.AsyncClient(timeout=SEND_TIMEOUT, follow_redirects=False) as client, \
                trio.open_nursery() as nursery:
            task_status.started()
            async for item in self._receive:
                await limit.acquire_on_behalf_of(item)
                nursery.start_soon(self._deliver, client, item, limit)

    async def _deliver(self, client: httpx.AsyncClient, item: Outgoing, limit: trio.CapacityLimiter) -> None:
        sub = item.subscription
        try:
            body, headers = await trio.to_thread.run_sync(encrypt_and_sign, self.vapid, self.settings, sub, item.payload)
            response = await client.post(sub.push_endpoint, content=body, headers=headers)
            if response.status_code in (404, 410):
                self.counters.removed += 1
                await self.forget(sub.subscription_id, f"the push service answered {response.status_code}")
            elif response.is_success:
                self.counters.sent += 1
            else:
                self.counters.failed += 1
                log.warning("push to %s answered %s", origin_of(sub.push_endpoint), response.status_code)
        except Exception as problem:  # noqa: BLE001 (one push failing must never stop serve)
            self.counters.failed += 1
            log.warning("push to %s failed: %r", origin_of(sub.push_endpoint), problem)
        finally:
            limit.release_on_behalf_of(item)
