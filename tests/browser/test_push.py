"""Web Push through the cockpit and its real service worker, in Debian Chromium.

Headless Chromium has no push service to subscribe with, so the test plays the browser vendor:
``PushManager.subscribe`` is answered with a subscription whose keys the test generated and
whose endpoint is the local fake push service. Everything else is real: the cockpit's offer and
its POST (cookie, CSRF, Origin), the core's encrypted and signed push (verified and decrypted
by the test with the subscription's private key and auth secret), and the service worker,
which receives the decrypted payload through the DevTools protocol
(``ServiceWorker.deliverPushMessage``) and shows the notification read back with
``registration.getNotifications()``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Cockpit, Rig
from tests.browser.device import wait_async
from tests.support.fake_push import BrowserKeys, FakePushService, fake_push_service
from tests.support.processes import Api, wait_for

pytestmark = pytest.mark.browser

CHAT = "scripted-1/chat"
PUSH_SETTINGS = "\n[push]\nallow_loopback_http = true\n"

# The vendor's part of PushManager, answered with the test's subscription (see the docstring).
FAKE_PUSH_MANAGER = """(() => {
  const fake = %s;
  let subscribed = false;
  const subscription = { endpoint: fake.endpoint, expirationTime: null, options: {},
    toJSON() { return fake; }, async unsubscribe() { subscribed = false; return true; } };
  PushManager.prototype.subscribe = async function (options) {
    window.__applicationServerKey = Array.from(new Uint8Array(options.applicationServerKey));
    subscribed = true;
    return subscription;
  };
  PushManager.prototype.getSubscription = async function () { return subscribed ? subscription : null; };
})();"""

NOTIFICATIONS = """() => navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((list) =>
  list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })))"""


@pytest.fixture(scope="module")
def service() -> Iterator[FakePushService]:
    with fake_push_service() as s:
        yield s


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, service: FakePushService) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("push-cockpit"))
    config = rig.deploy.home / "patchbay.toml"
    config.write_text(config.read_text() + PUSH_SETTINGS)
    try:
        rig.start()
        yield rig
    finally:
        rig.deploy.stop()


def open_with_fake_push(cockpit: Any, viewport: str, keys: BrowserKeys, url: str) -> Cockpit:
    c: Cockpit = cockpit(viewport)
    c.context.grant_permissions(["notifications"], origin=url)
    c.context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(keys.subscription()))
    return c


def registration_id(c: Cockpit, cdp: Any) -> str:
    seen: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: seen.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(200):  # events arrive while Playwright is called: poll through the page
        live = [r for r in seen if not r["isDeleted"] and r["scopeURL"].startswith(c.url)]
        if live:
            return str(live[-1]["registrationId"])
        c.page.wait_for_timeout(50)
    raise AssertionError(f"no service worker registration: {seen}")


def approval_push(api: Api, service: FakePushService, keys: BrowserKeys, public: str, name: str, title: str) -> dict[str, Any]:
    before = len(service.to(name))
    for pending in api.http.get("/api/elicitations?state=pending").json()["elicitations"]:  # one turn at a time
        assert api.http.post(f"/api/elicitations/{pending['elicitation_id']}", json={"decision": "approve"}).status_code == 200
    assert api.submit(f"ask-{name}-{before}", f"approve {title}", target=CHAT)["outcome"] == "accepted"
    wait_for(lambda: len(service.to(name)) > before, what=f"a push to {name}")
    return keys.open(service.to(name)[-1], public)


def test_the_offer_subscribes_and_a_push_becomes_a_notification_until_the_device_is_revoked(
        rig: Rig, cockpit: Any, service: FakePushService) -> None:
    public = str(httpx.get(rig.url + "/api/push/vapid-public-key", timeout=30).json()["public_key"])
    api = Api.login(rig.url)
    for viewport in ("desktop", "phone"):  # the phone stays for the rest of the test
        keys = BrowserKeys(service.endpoint(f"cockpit-{viewport}"))
        c = open_with_fake_push(cockpit, viewport, keys, rig.url)
        c.login()
        c.page.wait_for_selector('#push-offer [data-push="off"]')
        assert "never your messages, prompts, outputs or secrets" in c.page.inner_text("#push-offer")
        c.no_horizontal_scroll()
        c.screenshot("push-offer")
        assert c.axe() == []
    page = c.page
    page.click('#push-offer button:has-text("Turn on notifications")')
    page.wait_for_selector("#push-offer", state="detached")
    server_key = page.evaluate("window.__applicationServerKey")
    assert bytes(server_key) == base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    mine = [s for s in api.http.get("/api/security").json()["push_subscriptions"] if s["push_service"] == service.origin]
    assert len(mine) == 1
    page.goto("/#/attention")
    page.wait_for_selector('#push-panel[data-push="on"]')
    c.screenshot("attention-push-on")

    payload = approval_push(api, service, keys, public, "cockpit-phone", "drop-the-prod-db")
    assert payload["kind"] == "approval" and payload["state"] == "pending" and payload["target"] == CHAT
    assert "drop-the-prod-db" not in json.dumps(payload)  # the approval's title is the agent's words
    cdp = c.context.new_cdp_session(page)
    registration = registration_id(c, cdp)
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": rig.url, "registrationId": registration, "data": json.dumps(payload)})
    shown = wait_async(page, NOTIFICATIONS, what="the notification")
    assert [(n["title"], n["tag"]) for n in shown] == [("Approval waiting", f"session:{CHAT}")]
    assert "chat" in shown[0]["body"] and shown[0]["data"]["url"] == f"/#/session/{CHAT}"

    second = approval_push(api, service, keys, public, "cockpit-phone", "and-another")
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": rig.url, "registrationId": registration, "data": json.dumps(second)})
    wait_async(page, f"""id => ({NOTIFICATIONS})().then((l) => l.length === 1
        && l[0].data.payload.elicitation_id === id)""", second["elicitation_id"], what="the replaced notification")

    # Revoking the device ends its subscription: a control subscription still gets the next push.
    control = BrowserKeys(service.endpoint("control"))
    assert api.http.post("/api/push/subscriptions", json=control.subscription()).status_code == 201
    c.allowed.append("status of 401")
    endpoint = next(s["endpoint_id"] for s in api.http.get("/api/security").json()["push_subscriptions"]
                    if s["subscription_id"] == mine[0]["subscription_id"])
    assert api.http.post(f"/api/security/endpoints/{endpoint}/revoke").status_code == 200
    page.wait_for_selector("#login-form")
    count = len(service.to("cockpit-phone"))
    approval_push(api, service, control, public, "control", "after-the-revoke")
    assert len(service.to("cockpit-phone")) == count
