"""The reducer's part for Web Push subscriptions (registered in ``reducer``): a subscription
belongs to the operator session and endpoint that made it and goes with either."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patchbay.domain.model import CoreState, PushSubscriptionRecord


def drop(state: CoreState, gone: Callable[[PushSubscriptionRecord], bool]) -> None:
    for key in [k for k, s in state.push_subscriptions.items() if gone(s)]:
        del state.push_subscriptions[key]


def subscribed(state: CoreState, event: Any) -> None:
    p = event.payload
    drop(state, lambda s: s.push_endpoint == p["push_endpoint"])  # a browser subscribing again
    state.push_subscriptions[p["subscription_id"]] = PushSubscriptionRecord(
        subscription_id=p["subscription_id"], endpoint_id=p["endpoint_id"], session_id=p["session_id"],
        push_endpoint=p["push_endpoint"], p256dh=p["keys"]["p256dh"], auth=p["keys"]["auth"],
        created_ts=event.ts, expiration_time=p.get("expiration_time"))


def unsubscribed(state: CoreState, event: Any) -> None:
    state.push_subscriptions.pop(event.payload["subscription_id"], None)
