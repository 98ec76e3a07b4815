"""Push subscriptions in the reducer: owned by a session and an endpoint, gone with either,
replaced when the same browser subscribes again, and kept by checkpoints."""

from __future__ import annotations

from patchbay.core.checkpoint import decode_state, encode_state
from patchbay.domain.events import EventKind, Fact
from tests.domain.builders import World, ready_world


def subscribe(world: World, subscription_id: str, endpoint: str = "https://push.example/a",
              session_id: str = "ses-1", endpoint_id: str = "end-1") -> None:
    world.fold([Fact(EventKind.push_subscribed, f"push:{subscription_id}", {
        "subscription_id": subscription_id, "endpoint_id": endpoint_id, "session_id": session_id,
        "push_endpoint": endpoint, "push_origin": "https://push.example",
        "keys": {"p256dh": "P", "auth": "A"}, "expiration_time": None})])


def test_a_subscription_is_recorded_replaced_by_the_same_browser_and_removed() -> None:
    world = ready_world()
    subscribe(world, "push-1")
    record = world.state.push_subscriptions["push-1"]
    assert (record.endpoint_id, record.session_id, record.p256dh, record.auth) == ("end-1", "ses-1", "P", "A")
    subscribe(world, "push-2")  # same push endpoint: the browser subscribed again
    assert list(world.state.push_subscriptions) == ["push-2"]
    subscribe(world, "push-3", endpoint="https://push.example/b")
    world.fold([Fact(EventKind.push_unsubscribed, "push:push-2", {"subscription_id": "push-2", "reason": "410"})])
    assert list(world.state.push_subscriptions) == ["push-3"]


def test_subscriptions_go_with_their_session_or_their_endpoint() -> None:
    for kind, payload in ((EventKind.logout, {"session_id": "ses-1"}),
                          (EventKind.operator_session_revoked, {"session_id": "ses-1", "reason": "r"}),
                          (EventKind.operator_session_expired, {"session_id": "ses-1", "reason": "idle"}),
                          (EventKind.endpoint_revoked, {"endpoint_id": "end-1", "reason": "r"})):
        world = ready_world()
        subscribe(world, "mine")
        subscribe(world, "other", endpoint="https://push.example/other", session_id="ses-9", endpoint_id="end-9")
        world.fold([Fact(kind, "x", payload)])
        assert list(world.state.push_subscriptions) == ["other"], kind


def test_a_checkpoint_keeps_the_subscriptions() -> None:
    world = ready_world()
    subscribe(world, "push-1")
    restored = decode_state(encode_state(world.state))
    assert restored is not None and restored.push_subscriptions == world.state.push_subscriptions
