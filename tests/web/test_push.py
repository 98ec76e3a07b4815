"""Web Push end to end against a real ``serve`` and shell adapter: subscriptions are browser
mutations like any other (cookie, CSRF, Origin), journaled and listed per endpoint; pushes reach
a local fake push service encrypted (RFC 8291) and signed (RFC 8292), name no command text, and
stop when the device is revoked, the session logs out, or the push service answers 410.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.fake_push import BrowserKeys, FakePushService, fake_push_service
from tests.support.processes import Api, Deployment, deployment, wait_for
from tests.web.browser import Browser, audit

pytestmark = pytest.mark.slow

PUSH_SETTINGS = "\n[push]\nallow_loopback_http = true\nfinished_after_s = 1\n"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, FakePushService]]:
    with deployment(tmp_path_factory.mktemp("push")) as deploy, fake_push_service() as service:
        config = deploy.home / "patchbay.toml"
        config.write_text(config.read_text() + PUSH_SETTINGS)
        deploy.serve()
        deploy.shell_adapter()
        deploy.api().wait_session("shell-1/demo", "live")
        yield deploy, service


def vapid_key(url: str) -> str:
    return str(httpx.get(url + "/api/push/vapid-public-key", timeout=30).json()["public_key"])


def subscribe(browser: Browser, keys: BrowserKeys) -> dict[str, Any]:
    answer = browser.request("POST", "/api/push/subscriptions", json=keys.subscription())
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def listed(api: Api) -> dict[str, dict[str, Any]]:
    return {s["subscription_id"]: s for s in api.http.get("/api/security").json()["push_subscriptions"]}


def fail_a_command(api: Api, command_id: str) -> None:
    assert api.submit(command_id, "echo do-not-push-this-text; exit 3")["outcome"] == "accepted"
    api.wait_state(command_id, "failed")


def test_a_subscription_is_a_guarded_validated_journaled_browser_mutation(rig: tuple[Deployment, FakePushService]) -> None:
    deploy, service = rig
    browser = Browser(deploy.url)
    keys = BrowserKeys(service.endpoint("guarded"))
    body = keys.subscription()
    assert browser.request("POST", "/api/push/subscriptions", json=body, use_csrf=False).json()["check"] == "csrf"
    assert browser.request("POST", "/api/push/subscriptions", json=body, origin="http://evil.test").json()["check"] == "origin"
    assert httpx.post(deploy.url + "/api/push/subscriptions", json=body, timeout=30).status_code == 401
    for bad in ({**body, "endpoint": "http://push.example/x"}, {**body, "endpoint": "ftp://127.0.0.1/x"},
                {**body, "keys": {"p256dh": "AAAA", "auth": body["keys"]["auth"]}},
                {**body, "keys": {"p256dh": body["keys"]["p256dh"], "auth": "c2hvcnQ"}}, {"endpoint": 3}):
        answer = browser.request("POST", "/api/push/subscriptions", json=bad)
        assert answer.status_code == 422 and answer.json()["error"], (bad, answer.text)
    made = subscribe(browser, keys)
    assert made["endpoint_id"] == browser.endpoint_id and made["push_service"] == service.origin
    api = Api.login(deploy.url)
    assert listed(api)[made["subscription_id"]]["endpoint_id"] == browser.endpoint_id
    records = [r for r in audit(api.http, "push.subscribed") if r["details"].get("subscription_id") == made["subscription_id"]]
    assert records and "keys" not in json.dumps(records) and keys.subscription()["keys"]["auth"] not in json.dumps(records)
    again = subscribe(browser, keys)  # the same browser subscribing again replaces its record
    assert made["subscription_id"] not in listed(api) and again["subscription_id"] in listed(api)
    assert browser.request("DELETE", f"/api/push/subscriptions/{again['subscription_id']}").status_code == 200
    assert again["subscription_id"] not in listed(api)
    assert browser.request("DELETE", f"/api/push/subscriptions/{again['subscription_id']}").status_code == 404
    # Logging out ends the session's subscriptions.
    gone = subscribe(browser, keys)
    assert browser.request("POST", "/api/logout").status_code == 200
    assert gone["subscription_id"] not in listed(api)


def test_pushes_are_encrypted_signed_name_no_text_and_stop_with_the_device(rig: tuple[Deployment, FakePushService]) -> None:
    deploy, service = rig
    public = vapid_key(deploy.url)
    api = Api.login(deploy.url)
    phone, laptop = Browser(deploy.url), Browser(deploy.url)
    phone_keys, laptop_keys = BrowserKeys(service.endpoint("phone")), BrowserKeys(service.endpoint("laptop"))
    subscribe(phone, phone_keys)
    laptop_sub = subscribe(laptop, laptop_keys)

    fail_a_command(api, "push-fail-1")
    wait_for(lambda: service.to("phone") and service.to("laptop"), what="both devices pushed")
    payload = phone_keys.open(service.to("phone")[0], public)
    assert payload["kind"] == "command" and payload["state"] == "failed" and payload["command_id"] == "push-fail-1"
    assert payload["target"] == "shell-1/demo" and payload["tag"] == "session:shell-1/demo"
    assert payload["url"] == "/#/session/shell-1/demo" and "demo" in payload["body"]
    assert "do-not-push-this-text" not in json.dumps(payload)
    assert laptop_keys.open(service.to("laptop")[0], public)["command_id"] == "push-fail-1"

    # Revoking the phone (the device) ends its subscription: the next push reaches the laptop only.
    assert api.http.post(f"/api/security/endpoints/{phone.endpoint_id}/revoke").status_code == 200
    assert all(s["endpoint_id"] != phone.endpoint_id for s in listed(api).values())
    fail_a_command(api, "push-fail-2")
    wait_for(lambda: len(service.to("laptop")) == 2, what="the laptop's second push")
    assert len(service.to("phone")) == 1

    # The push service forgets the laptop (410): the core removes the subscription.
    service.answers["/push/laptop"] = 410
    fail_a_command(api, "push-fail-3")
    wait_for(lambda: laptop_sub["subscription_id"] not in listed(api), what="the 410 removed the subscription")
    assert len(service.to("laptop")) == 3
    removed = [r for r in audit(api.http, "push.unsubscribed") if r["details"]["subscription_id"] == laptop_sub["subscription_id"]]
    assert removed and "410" in removed[0]["details"]["reason"]


def test_a_long_command_that_completes_is_pushed_and_a_quick_one_is_not(rig: tuple[Deployment, FakePushService]) -> None:
    deploy, service = rig
    public = vapid_key(deploy.url)
    api = Api.login(deploy.url)
    keys = BrowserKeys(service.endpoint("long"))
    subscribe(Browser(deploy.url), keys)
    for command_id, text in (("quick-1", "echo quick"), ("long-1", "sleep 1.5; echo long")):  # finished_after_s = 1
        assert api.submit(command_id, text)["outcome"] == "accepted"
        api.wait_state(command_id, "completed")
    wait_for(lambda: service.to("long"), what="the long command's push")
    assert [keys.open(r, public)["command_id"] for r in service.to("long")] == ["long-1"]
    payload = keys.open(service.to("long")[0], public)
    assert payload["state"] == "completed" and payload["title"] == "Message finished"
