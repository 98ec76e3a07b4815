"""The offline shell and the durable outbox, in Debian Chromium against real ``serve`` and shell
adapter processes: the service worker controls the page; with ``serve`` stopped a reload opens
the app on the device's copy, marked stale; a message sent during the outage survives reloads
and, once ``serve`` is back, runs exactly once; a message past its validity window waits for
the operator.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ARGS, CHROMIUM, DESKTOP, PHONE, Cockpit, Rig, wait_text
from tests.browser.device import READ_STORE, wait_async
from tests.support.processes import PASSWORD, Proc, wait_for

pytestmark = pytest.mark.browser

SHELL = "shell-1/demo"

# Moves one outbox record's creation 20 minutes into the past: a message composed before the
# phone was locked for a while, past its 15-minute window.
AGE_RECORD = """(commandId) => new Promise((resolve, reject) => {
  const open = indexedDB.open("patchbay");
  open.onsuccess = () => {
    const store = open.result.transaction("outbox", "readwrite").objectStore("outbox");
    const req = store.get(commandId);
    req.onsuccess = () => {
      const record = req.result;
      record.created_ms -= 20 * 60 * 1000;
      const put = store.put(record);
      put.onsuccess = () => { resolve(true); open.result.close(); };
      put.onerror = () => reject(put.error);
    };
  };
})"""


def at_both_sizes(c: Cockpit, name: str, selector: str) -> None:
    """Screenshots at the phone size and, resized, the desktop size, with ``selector`` in view."""
    for viewport, size in (("phone", PHONE), ("desktop", DESKTOP)):
        c.page.set_viewport_size(size["viewport"])
        c.viewport = viewport
        # In one step in the page: the cards are redrawn as their state changes.
        c.page.evaluate("s => { const all = document.querySelectorAll(s); all[all.length - 1].scrollIntoView(); }", selector)
        c.no_horizontal_scroll()
        c.screenshot(name)
    c.page.set_viewport_size(PHONE["viewport"])
    c.viewport = "phone"


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def local_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all(".local-list .card.local", "els => els.map((e) => e.dataset.commandId)"))


def test_offline_reload_shows_the_last_known_state_and_the_outbox_sends_once(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.allowed += ["ERR_CONNECTION_REFUSED", "Failed to load resource", "WebSocket connection"]
    page = c.page
    c.login()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL").endswith("/sw.js")
    c.open_session(SHELL)
    page.fill("#composer-text", "echo seen-before-the-outage")
    page.keyboard.press("Enter")
    page.wait_for_selector('.transcript .card.command[data-state="completed"]')
    wait_text(page, ".transcript", "seen-before-the-outage")
    command_id = str(page.get_attribute('.transcript .card.command[data-state="completed"]', "data-command-id"))
    # The mirror writes in batches: wait until the device holds the finished command.
    wait_async(page, f"""() => ({READ_STORE})(["views", "command:{command_id}"])
        .then((v) => !!v && v.state === "completed")""", what="the command kept on the device")

    rig.stop_serve()
    try:
        outage(rig, c, command_id)
    finally:
        if rig.deploy.serve_proc not in rig.deploy.procs:  # a failure above leaves serve running for the next test
            rig.start_serve()


def outage(rig: Rig, c: Cockpit, command_id: str) -> None:
    workspace = rig.tmp / "ws" / "demo"
    page = c.page
    page.reload()
    page.wait_for_selector("#offline-banner", timeout=30_000)
    banner = page.inner_text("#offline-banner")
    assert "as of" in banner and "nothing here is live" in banner
    page.wait_for_selector("#session-state")
    assert page.get_attribute("#session-state", "data-presentation").startswith("Stale")
    wait_text(page, ".transcript", "seen-before-the-outage")  # the transcript, from the device
    assert page.get_attribute(f'.card.command[data-command-id="{command_id}"]', "data-state") == "completed"
    at_both_sizes(c, "offline-session", "#offline-banner")

    page.fill("#composer-text", "echo once >> outage.txt")
    page.keyboard.press("Enter")
    page.wait_for_selector('.local-list .card.local[data-local="unknown"] [data-outbox="waiting"]')
    page.fill("#composer-text", "echo late >> late.txt")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('.local-list [data-outbox=\"waiting\"]').length === 2")
    first, late = local_ids(page)
    at_both_sizes(c, "outbox-waiting", ".local-list .card.local")
    page.evaluate(AGE_RECORD, late)

    page.reload()  # still offline: both survive, the aged one no longer goes by itself
    page.wait_for_selector("#offline-banner")
    page.wait_for_selector(f'.card.local[data-command-id="{first}"] [data-outbox="waiting"]')
    page.wait_for_selector(f'.card.local[data-command-id="{late}"] [data-outbox="expired"]')
    assert "window closed at" in page.inner_text(f'.card.local[data-command-id="{late}"]')
    at_both_sizes(c, "outbox-expired", f'.card.local[data-command-id="{late}"]')

    rig.start_serve()
    page.wait_for_selector("#offline-banner", state="detached", timeout=60_000)
    page.wait_for_selector(f'.card.command[data-command-id="{first}"][data-state="completed"]', timeout=60_000)
    assert lines(workspace / "outage.txt") == 1
    page.reload()  # a reload after the send resends nothing
    page.wait_for_selector('#conn[data-state="live"]')
    page.wait_for_selector(f'.card.local[data-command-id="{late}"] [data-outbox="expired"]')
    api = rig.deploy.api()
    assert api.command(first)["state"] == "completed"
    assert lines(workspace / "outage.txt") == 1 and not (workspace / "late.txt").exists()
    stored = page.evaluate(READ_STORE, ["outbox", None])
    assert [r["command_id"] for r in stored] == [late]

    # The operator sends the late one by hand: same command id, and it runs once.
    page.click(f'.card.local[data-command-id="{late}"] button:has-text("Retry with the same command id")')
    page.wait_for_selector(f'.card.command[data-command-id="{late}"][data-state="completed"]', timeout=30_000)
    wait_for(lambda: lines(workspace / "late.txt") == 1, what="the late message ran")
    assert page.evaluate(READ_STORE, ["outbox", None]) == []


def test_the_worker_caches_by_version_and_chrome_can_install_the_app(rig: Rig, cockpit: Any) -> None:
    c = cockpit("desktop")
    c.login()
    page = c.page
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    script = page.request.get("/sw.js")
    assert script.ok and script.headers["service-worker-allowed"] == "/"
    version = script.text().split('"version": "', 1)[1].split('"', 1)[0]
    wait_async(page, "v => caches.keys().then((k) => k.includes('patchbay-' + v))", version, what="the versioned cache")
    cached = page.evaluate("v => caches.open('patchbay-' + v).then((c) => c.keys()).then((r) => r.map((q) => new URL(q.url).pathname))", version)
    assert "/" in cached and "/static/js/main.js" in cached and "/static/js/idb.js" in cached
    # Chrome's own install check: manifest, icons, service worker. Playwright's contexts are
    # incognito profiles, which Chrome never installs from; that is the only objection allowed.
    installability = c.context.new_cdp_session(page).send("Page.getInstallabilityErrors")
    assert [e["errorId"] for e in installability["installabilityErrors"]] == ["in-incognito"]


DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")


@contextmanager
def own_chromium(browser: Browser, profile: Path, log: Path) -> Iterator[tuple[Proc, Page]]:
    """A Chromium of the test's own (a real profile on disk, a PID to kill), driven over CDP."""
    proc = Proc([CHROMIUM, "--headless=new", f"--user-data-dir={profile}", "--remote-debugging-port=0", *ARGS,
                 "about:blank"], dict(os.environ), log)
    try:
        url = proc.wait_line(DEVTOOLS, timeout=60).group(1)
        connected = browser.browser_type.connect_over_cdp(url)
        context = connected.contexts[0]
        yield proc, context.pages[0] if context.pages else context.new_page()
    finally:
        proc.kill(signal.SIGKILL)
        proc.process.wait(timeout=30)


def test_the_outbox_survives_the_browser_being_killed(rig: Rig, browser: Browser, tmp_path: Path) -> None:
    workspace = rig.tmp / "ws" / "demo"
    profile = tmp_path / "profile"
    with own_chromium(browser, profile, tmp_path / "chromium-1.log") as (proc, page):
        page.set_default_timeout(30_000)
        page.goto(rig.url + "/")
        page.fill("#password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector('#conn[data-state="live"]')
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        page.goto(rig.url + "/#/session/" + SHELL)
        page.wait_for_selector("#composer-text")
        rig.stop_serve()
        try:
            page.wait_for_selector("#reconnect-banner")
            page.fill("#composer-text", "echo killed >> killed.txt")
            page.keyboard.press("Enter")
            page.wait_for_selector('.card.local [data-outbox="waiting"]')
            wait_async(page, f"() => ({READ_STORE})(['outbox', null]).then((r) => r.length === 1)", what="the outbox record")
            proc.kill(signal.SIGKILL)  # no unload, no goodbye: the process group is gone
            proc.process.wait(timeout=30)
        except BaseException:
            rig.start_serve()
            raise
    with own_chromium(browser, profile, tmp_path / "chromium-2.log") as (proc, page):
        page.set_default_timeout(30_000)
        try:
            page.goto(rig.url + "/#/session/" + SHELL)  # the core is still down: the offline shell
            page.wait_for_selector("#offline-banner")
            page.wait_for_selector('.card.local [data-outbox="waiting"]')
            assert "echo killed >> killed.txt" in page.inner_text(".local-list")
        finally:
            rig.start_serve()
        # A killed browser may not have written its session cookie to disk yet: then the core
        # asks for a login, and the outbox, which was written before the request left, goes after it.
        page.wait_for_selector('#conn[data-state="live"], #login-form', timeout=60_000)
        if page.locator("#login-form").count():
            page.fill("#password", PASSWORD)
            page.click("#login-form button[type=submit]")
            page.goto(rig.url + "/#/session/" + SHELL)
        page.wait_for_selector('.transcript .card.command[data-state="completed"] .user-text:has-text("echo killed")',
                               timeout=60_000)
        wait_for(lambda: (workspace / "killed.txt").exists(), what="the resent message ran")
        assert lines(workspace / "killed.txt") == 1
