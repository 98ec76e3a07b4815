"""The Web Push routes: the VAPID public key, and a browser's subscriptions.

``POST /api/push/subscriptions`` takes ``PushSubscription.toJSON()`` from a signed-in browser
(cookie, CSRF and Origin, like every browser mutation: the app's ``guarded``), journals
``push.subscribed`` for the caller's endpoint and session, and answers the subscription's view.
``DELETE /api/push/subscriptions/{id}`` journals ``push.unsubscribed``. Subscriptions are
listed per endpoint in ``GET /api/security`` (``push_view``); they also go when their endpoint
or session is revoked, expires or logs out (the reducer), or when the push service says 404/410.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio

from patchbay.core import Core
from patchbay.domain.events import EventKind
from patchbay.domain.model import CoreState, PushSubscriptionRecord
from patchbay.errors import NotFound, Refused
from patchbay.web._guard import Caller
from patchbay.web._push import origin_of, parse_subscription
from patchbay.web._push_service import PushService

__all__ = ["PushService", "install_push_routes", "push_view", "push_views"]

Guarded = Callable[[bool], Callable[[Callable[..., Awaitable[Response]]], Callable[..., Awaitable[Response]]]]


def push_view(record: PushSubscriptionRecord) -> dict[str, Any]:
    """What the cockpit sees of a subscription: never its keys, and only the push service's origin."""
    return {"subscription_id": record.subscription_id, "endpoint_id": record.endpoint_id,
            "session_id": record.session_id, "push_service": origin_of(record.push_endpoint),
            "created_ts": record.created_ts, "expiration_time": record.expiration_time}


def push_views(state: CoreState) -> list[dict[str, Any]]:
    return [push_view(s) for s in state.push_subscriptions.values()]


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def install_push_routes(app: QuartTrio, core: Core, push: PushService | None, guarded: Guarded) -> None:
    """The routes, on an app that has a push service (``serve``'s; test apps may have none)."""
    if push is None:
        return

    @app.get("/api/push/vapid-public-key")
    async def vapid_public_key() -> Response:
        return _json({"public_key": push.public_key})

    @app.get("/api/push/subscriptions")
    @guarded(False)
    async def subscriptions(caller: Caller) -> Response:
        return _json({"subscriptions": [{**push_view(s), "this_session": s.session_id == caller.session.session_id}
                                         for s in core.state.push_subscriptions.values()]})

    @app.post("/api/push/subscriptions")
    @guarded(True)
    async def subscribe(caller: Caller) -> Response:
        data = await request.get_json(force=True, silent=True)
        if not isinstance(data, dict):
            return _json({"error": "the body must be a PushSubscription JSON object"}, 422)
        try:
            new = parse_subscription(data, push.settings)
        except Refused as refused:
            return _json({"error": str(refused)}, 422)
        subscription_id = core.ids.new_id("push")
        await core.record(EventKind.push_subscribed, f"push:{subscription_id}", {
            "subscription_id": subscription_id, "endpoint_id": caller.session.endpoint_id,
            "session_id": caller.session.session_id, "push_endpoint": new.push_endpoint,
            "push_origin": origin_of(new.push_endpoint), "keys": {"p256dh": new.p256dh, "auth": new.auth},
            "expiration_time": new.expiration_time})
        record = core.state.push_subscriptions.get(subscription_id)
        if record is None:
            raise NotFound("the subscription ended before it was recorded")
        return _json(push_view(record), 201)

    @app.delete("/api/push/subscriptions/<subscription_id>")
    @guarded(True)
    async def unsubscribe(caller: Caller, subscription_id: str) -> Response:
        if subscription_id not in core.state.push_subscriptions:
            raise NotFound(f"no push subscription {subscription_id}")
        await core.record(EventKind.push_unsubscribed, f"push:{subscription_id}",
                          {"subscription_id": subscription_id, "reason": "removed by the operator"})
        return _json({"ok": True})
