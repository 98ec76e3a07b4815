"""More of the transcript (issue #19) in Debian Chromium against real ``serve``, shell-adapter and
scripted-adapter processes: the Web Push offer shown once (not on session pages), images attached
to a message, collapsed thinking, the two-pane layout at desktop widths and one pane on a phone,
the documented keyboard shortcuts, and the newest entry in view after a reconnect.

Tests run in file order on one deployment of their own; the reconnect test (which restarts
``serve``) is last.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Cockpit, Rig, wait_text
from tests.support.processes import Api
from tests.support.scripted_adapter import PIXEL

pytestmark = pytest.mark.browser

SHELL = "shell-1/demo"
CHAT = "scripted-1/chat"

# Notification offers and panels the operator can see on the current screen.
VISIBLE_PUSH = """() => [...document.querySelectorAll('.push-panel')].filter((el) => el.getClientRects().length > 0)
    .map((el) => el.id)"""

# Whether the end of the newest transcript row is in view, between the top bar and the composer
# (the row itself may be taller than the screen).
NEWEST_IN_VIEW = """() => {
  const rows = [...document.querySelectorAll('#transcript > li.entry')].filter((li) => li.getClientRects().length);
  if (!rows.length) return false;
  const r = rows[rows.length - 1].getBoundingClientRect();
  const top = document.getElementById('topbar').getBoundingClientRect().bottom;
  const bottom = Math.min(window.innerHeight, document.getElementById('composer').getBoundingClientRect().top);
  return r.height > 0 && r.bottom > top + 20 && r.bottom <= bottom + 1;
}"""


def shots(c: Cockpit, name: str) -> list[Any]:
    c.screenshot(name)
    return c.axe()


def sent(api: Api, command_id: str, text: str, **payload: Any) -> None:
    assert api.submit(command_id, target=CHAT, payload={"text": text, **payload})["outcome"] == "accepted"
    api.wait_state(command_id, "completed")


def test_the_push_offer_is_on_the_list_once_and_attention_has_one_panel_and_a_session_none(
        rig: Rig, cockpit: Any) -> None:
    for viewport in ("phone", "desktop"):
        c = cockpit(viewport)
        c.login()
        page = c.page
        page.wait_for_selector('#push-offer [data-push="off"]')  # after the login, on the list
        assert page.evaluate(VISIBLE_PUSH) == ["push-offer-panel"]
        page.click('#tabs a[data-tab="attention"]')
        page.wait_for_selector('#push-panel[data-push="off"]')
        assert page.evaluate(VISIBLE_PUSH) == ["push-panel"]  # one offer, not the offer and the panel
        assert shots(c, "attention-push-once") == []
        c.open_session(CHAT)
        assert page.evaluate(VISIBLE_PUSH) == []  # the transcript keeps its room
        assert shots(c, "session-no-push-offer") == []
        page.goto("/#/sessions")
        page.wait_for_selector("#session-list .session-card")
        assert page.evaluate(VISIBLE_PUSH) == ["push-offer-panel"]  # back on the list until decided
        page.click("#push-offer-dismiss")
        assert page.evaluate(VISIBLE_PUSH) == []


def test_images_attached_to_a_message_render_inline(rig: Rig, cockpit: Any) -> None:
    api = Api.login(rig.url)
    sent(api, "with-image", "what is in this picture", images=[{"data": PIXEL, "mime_type": "image/png"}])
    for viewport in ("phone", "desktop"):
        c = cockpit(viewport)
        c.login()
        c.open_session(CHAT)
        img = c.page.locator('.card.command[data-command-id="with-image"] .user-text img')
        img.wait_for()
        assert img.get_attribute("src") == f"data:image/png;base64,{PIXEL}"
        c.page.wait_for_function("el => el.complete && el.naturalWidth === 96", arg=img.element_handle())
        box = img.bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0
        assert img.get_attribute("alt") == "Image 1"
        c.no_horizontal_scroll()
        assert shots(c, "transcript-message-image") == []


def test_thinking_is_collapsed_and_opens_on_a_tap(rig: Rig, cockpit: Any) -> None:
    api = Api.login(rig.url)
    sent(api, "think-1", "think")
    c = cockpit("phone")
    c.login()
    c.open_session(CHAT)
    wait_text(c.page, ".entry.assistant", "I chose the second option.")
    thinking = c.page.locator(".entry.thinking").last
    details = thinking.locator("details")
    assert details.get_attribute("open") is None
    words = thinking.get_by_text("Weighing the two options; the second is safer.")
    assert not words.is_visible()  # collapsed: only "Thinking" shows
    assert thinking.locator("summary").inner_text() == "Thinking"
    c.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    thinking.locator("summary").tap()
    words.wait_for(state="visible")
    assert details.get_attribute("open") == ""
    assert shots(c, "transcript-thinking-open") == []
    thinking.locator("summary").click()
    words.wait_for(state="hidden")


PANES = """() => ['.split > .pane-list', '.split > .pane-main'].map((s) => {
  const el = document.querySelector(s); const r = el.getBoundingClientRect();
  return { x: r.x, y: r.y, width: r.width, height: r.height, shown: el.getClientRects().length > 0 }; })"""


def test_two_panes_side_by_side_from_1024_px_and_one_pane_on_a_phone(rig: Rig, cockpit: Any) -> None:
    c = cockpit("desktop")
    c.login()
    c.open_session(CHAT)
    c.page.wait_for_selector(f'#side-list .session-link[aria-current="page"][href="#/session/{CHAT}"]')
    for width in (1440, 1024):
        c.page.set_viewport_size({"width": width, "height": 900})
        listed, main = c.page.evaluate(PANES)
        assert listed["shown"] and main["shown"], width
        assert listed["x"] + listed["width"] <= main["x"], (width, listed, main)  # side by side
        assert listed["y"] < main["y"] + main["height"] and main["y"] < listed["y"] + listed["height"]
        assert listed["width"] >= 280 and main["width"] >= 500, (width, listed, main)
        assert c.page.locator("#side-list .session-link").count() >= 2
        c.no_horizontal_scroll()
        if width == 1440:
            c.page.wait_for_function("() => [...document.querySelectorAll('#transcript .md')].every((m) => m.dataset.rendered)")
            assert shots(c, "session-two-panes") == []
    phone = cockpit("phone")
    phone.login()
    phone.open_session(CHAT)
    listed, main = phone.page.evaluate(PANES)
    assert not listed["shown"] and main["shown"]
    assert main["width"] >= 390 - 40, main  # the transcript has the width
    phone.no_horizontal_scroll()
    assert shots(phone, "session-one-pane") == []


def test_the_documented_keyboard_shortcuts(rig: Rig, cockpit: Any) -> None:
    c = cockpit("desktop")
    c.login()
    page = c.page
    hashes = page.evaluate("[...document.querySelectorAll('#session-list .session-link')].map((a) => a.getAttribute('href'))")
    assert len(hashes) >= 2
    # On the list, j / k move between sessions.
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.getAttribute('href')") == hashes[0]
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.getAttribute('href')") == hashes[1]
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.getAttribute('href')") == hashes[0]
    # / searches in the list.
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "session-search"
    page.keyboard.press("j")  # typed into the field: no shortcut fires while typing
    assert page.input_value("#session-search") == "j"
    page.fill("#session-search", "")
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    # g a / g s go to Attention / Sessions.
    page.keyboard.press("g")
    page.keyboard.press("a")
    page.wait_for_selector("#attention-title")
    assert page.evaluate("location.hash") == "#/attention"
    page.keyboard.press("g")
    page.keyboard.press("s")
    page.wait_for_selector("#session-list .session-card")
    assert page.evaluate("location.hash") == "#/sessions"
    # In a session (two panes), j / k open the next / previous session, one after the other
    # (Esc leaves the message box first; the focus then stays on the list).
    c.open_session(CHAT)
    order = page.evaluate("[...document.querySelectorAll('#side-list .session-link')].map((a) => a.getAttribute('href'))")
    at = order.index(f"#/session/{CHAT}")
    step = 1 if at + 1 < len(order) else -1
    page.focus("#composer-text")
    page.keyboard.press("Escape")
    page.keyboard.press("j" if step == 1 else "k")
    page.wait_for_function("h => location.hash === h", arg=order[at + step])
    current = f'#side-list .session-link[aria-current="page"][href="{order[at + step]}"]'
    page.wait_for_function("s => document.activeElement === document.querySelector(s)", arg=current)
    page.keyboard.press("k" if step == 1 else "j")
    page.wait_for_function("h => location.hash === h", arg=order[at])
    page.wait_for_selector(f'#side-list .session-link[aria-current="page"][href="{order[at]}"]')
    assert page.input_value("#composer-text") == ""  # nothing was typed into a message box
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "composer-text"
    # End jumps to the newest entry.
    sent(Api.login(rig.url), "keys-history", "history 200")
    wait_text(page, ".entry.assistant", "History complete.")
    page.keyboard.press("Escape")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_function("() => window.scrollY === 0")
    assert page.evaluate("document.documentElement.scrollHeight > window.innerHeight * 1.5")
    page.keyboard.press("End")
    page.wait_for_function("() => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2")
    # ? lists exactly what the docs list.
    page.keyboard.press("?")
    page.wait_for_selector("dialog.shortcuts[open]")
    listed = page.locator("dialog.shortcuts dt").all_inner_texts()
    assert listed == ["/", "Esc", "Enter / Shift+Enter", "j / k", "g s / g a", "End", "?"]
    page.keyboard.press("Escape")


def test_the_newest_entry_is_in_view_after_a_reconnect(rig: Rig, cockpit: Any) -> None:
    api = Api.login(rig.url)
    sent(api, "before-outage", "stream 300")  # a transcript several screens long
    c = cockpit("phone")
    c.login()
    c.open_session(CHAT)
    page = c.page
    wait_text(page, ".entry.assistant", "w300")
    page.wait_for_function(NEWEST_IN_VIEW)
    c.allowed.append("ERR_CONNECTION_REFUSED")  # each refused reconnect attempt is logged
    rig.stop_serve()
    try:
        page.wait_for_selector("#reconnect-banner", timeout=15_000)
    finally:
        rig.start_serve()
    api = Api.login(rig.url)
    api.wait_session(CHAT, "live", timeout=60)
    assert api.submit("after-outage", target=CHAT, text="after the outage")["outcome"] == "accepted"
    page.wait_for_selector("#reconnect-banner", state="detached", timeout=60_000)
    page.wait_for_selector('.card.command[data-command-id="after-outage"][data-state="completed"]', timeout=60_000)
    wait_text(page, ".entry.assistant", "after the outage")
    page.wait_for_function(NEWEST_IN_VIEW, timeout=10_000)
    assert "after the outage" in page.locator("#transcript > li.entry").last.inner_text()
    assert shots(c, "transcript-after-reconnect") == []
