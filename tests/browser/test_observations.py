"""The cockpit's gaps after the ACP and Pi adapters (issues #16, #17) in Debian Chromium against
real ``serve`` and the scripted adapter: the adapters' bookkeeping observations read as plain
sentences (no raw JSON, no ``type:`` lines), usage in the session header (live), the composer's
slash commands after "/", and the export download from the session's menu.

Tests run in file order on one deployment: the header's usage first comes from usage_update
observations, then from the session's own ``usage`` (Pi's metadata), which takes precedence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Rig, wait_text
from tests.browser.test_transcript import SMALL_TARGETS, completed, send, shots

pytestmark = pytest.mark.browser

CHAT = "scripted-1/chat"
SENTENCES = [
    "Reconnected: the agent resumed its session.",
    "Warning: this agent cannot resume a session",
    "The agent was refused a file read of /etc/shadow: outside the workspace.",
    "The agent wrote src/notes.md.",
    "The agent sent an update this cockpit does not show (config option update).",
    "The agent switched to plan mode.",
]


def test_bookkeeping_observations_read_as_sentences_and_usage_fills_the_header(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.login()
    c.open_session(CHAT)
    completed(c.page, send(c.page, "acp"))
    wait_text(c.page, "#transcript .entry.assistant", "A reply the cockpit missed.")
    lines = c.page.locator("#transcript .entry.system").all_inner_texts()
    for sentence in SENTENCES:
        assert sentence in lines, (sentence, lines)
    text = c.page.locator("#transcript").inner_text()
    for raw in ("type:", "Type:", "{", "usage_update", "available_commands", "fs_refused", "fs_write", "agent_update",
                "current_mode", "Entry", "Agent settled", "resync", "Usage update"):
        assert raw not in text, f"{raw!r} shown in the transcript"
    replies = c.page.locator("#transcript .entry.assistant").all_inner_texts()
    assert sum("Bookkeeping done." in r for r in replies) == 1, replies  # the repair entry of a shown reply adds nothing
    assert sum("A reply the cockpit missed." in r for r in replies) == 1, replies
    wait_text(c.page, "#session-usage", "1.2k in")
    usage = c.page.locator("#session-usage").inner_text()
    assert "1.2k in · 340 out (last turn) · $0.042 · 3% of context" in usage, usage
    # Opened again (history folded before the commands are loaded): still no repeated message.
    c.page.reload()
    wait_text(c.page, "#transcript .entry.assistant", "A reply the cockpit missed.")
    wait_text(c.page, "#session-usage", "1.2k in")
    wait_text(c.page, "#transcript .card.command .user-text", "acp")  # the commands are loaded too
    c.page.wait_for_selector('#conn[data-state="live"]')
    assert c.page.locator("#transcript .entry.user:not([hidden])").count() == 0
    replies = c.page.locator("#transcript .entry.assistant").all_inner_texts()
    assert [sum(t in r for r in replies) for t in ("Bookkeeping done.", "A reply the cockpit missed.")] == [1, 1], replies
    c.no_horizontal_scroll()
    assert shots(c, "observations-acp") == []


def test_usage_from_the_session_updates_the_header_live(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.login()
    c.open_session(CHAT)
    completed(c.page, send(c.page, "usage"))  # the session's own usage arrives on the stream, no reload
    wait_text(c.page, "#session-usage", "15k in")
    usage = c.page.locator("#session-usage").inner_text()
    assert "15k in · 2.2k out · 4.0k cached · $0.123 · 15% of context" in usage, usage
    assert shots(c, "observations-usage") == []


def test_slash_commands_are_offered_after_a_slash(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.login()
    c.open_session(CHAT)
    page = c.page
    page.fill("#composer-text", "/")
    # ACP's available_commands_update (earlier test) and Pi's get_commands (asked now, as a query)
    page.wait_for_function("""() => { const names = [...document.querySelectorAll('#slash-list .slash-item .mono')]
        .map((el) => el.textContent); return ['/compact', '/init', '/review', '/release'].every((n) => names.includes(n)); }""")
    assert page.locator("#slash-list").get_attribute("aria-label") == "Slash commands"
    assert page.evaluate(SMALL_TARGETS) == []
    c.screenshot("observations-slash")
    assert c.axe() == []
    page.fill("#composer-text", "/re")
    page.wait_for_function("() => document.querySelectorAll('#slash-list .slash-item').length === 2")
    assert page.locator("#slash-list .slash-item .mono").all_inner_texts() == ["/review", "/release"]
    page.focus("#composer-text")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent").startswith("/review")
    page.keyboard.press("Enter")
    assert page.input_value("#composer-text") == "/review "
    assert page.locator("#slash-list").is_hidden()
    page.fill("#composer-text", "/zz")
    wait_text(page, ".slash-note", "No slash command starts with /zz.")
    page.fill("#composer-text", "")
    assert page.locator("#slash-list").is_hidden() and page.locator(".slash-note").is_hidden()
    wait_text(page, "#transcript .card.command", "List the slash commands")  # the query is shown in words


def test_the_export_downloads_as_html(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone", accept_downloads=True)
    c.login()
    c.open_session(CHAT)
    page = c.page
    page.click("#session-info-toggle")
    button = page.get_by_role("button", name="Download transcript (HTML)")
    with page.expect_download(timeout=30_000) as caught:
        button.click()
    download = caught.value
    assert download.suggested_filename == "scripted-chat.html"
    content = Path(download.path()).read_text(encoding="utf-8")
    assert "<h1>Scripted transcript</h1>" in content
    wait_text(page, "#export-status", "Downloaded scripted-chat.html")
    c.screenshot("observations-export")
    assert c.axe() == []


def test_a_failed_export_says_why_and_downloads_nothing(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone", accept_downloads=True)
    c.login()
    c.open_session(CHAT)
    page = c.page
    completed(page, send(page, "break-export"))
    downloads: list[Any] = []
    page.on("download", lambda d: downloads.append(d))
    page.click("#session-info-toggle")
    page.get_by_role("button", name="Download transcript (HTML)").click()
    wait_text(page, "#export-status", "The export failed: scripted: no room for the export.")
    assert downloads == []
    assert page.get_by_role("button", name="Download transcript (HTML)").is_enabled()  # it can be tried again
