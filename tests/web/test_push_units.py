"""Web Push pieces without a server: the send queue never waits, and subscriptions are checked."""

from __future__ import annotations

import pytest
from py_vapid import Vapid02

from patchbay.domain.model import PushSubscriptionRecord
from patchbay.errors import Refused
from patchbay.web._push import PushSettings, parse_subscription
from patchbay.web._push_send import PushSender
from tests.support.fake_push import BrowserKeys


async def never_called(subscription_id: str, reason: str) -> None:
    raise AssertionError("nothing is sent in this test")


def record(n: int) -> PushSubscriptionRecord:
    return PushSubscriptionRecord(f"push-{n}", "ep-1", "s-1", f"https://push.example/{n}", "k", "a", 0.0)


async def test_a_full_queue_drops_new_messages_instead_of_waiting() -> None:
    vapid = Vapid02()
    vapid.generate_keys()
    sender = PushSender(vapid, PushSettings(queue=2), never_called)
    assert [sender.offer(record(n), {"n": n}) for n in range(3)] == [True, True, False]
    assert (sender.counters.offered, sender.counters.dropped) == (3, 1)


def test_endpoints_must_be_https_unless_loopback_http_is_allowed() -> None:
    keys = BrowserKeys("http://127.0.0.1:9/push/x").subscription()
    with pytest.raises(Refused, match="https"):
        parse_subscription(keys, PushSettings())
    assert parse_subscription(keys, PushSettings(allow_loopback_http=True)).push_endpoint == keys["endpoint"]
    for endpoint in ("http://localhost:9/x", "http://10.0.0.1/x", "https:///x"):
        with pytest.raises(Refused):
            parse_subscription({**keys, "endpoint": endpoint}, PushSettings(allow_loopback_http=True))
    https = {**keys, "endpoint": "https://push.example/abc"}
    assert parse_subscription(https, PushSettings()).expiration_time is None
    with pytest.raises(Refused, match="expirationTime"):
        parse_subscription({**https, "expirationTime": "soon"}, PushSettings())
