"""The transcript and the session list (issue #19) in Debian Chromium against real ``serve``,
shell-adapter and scripted-adapter processes: density at phone size, touch target sizes, the
live approval badge, tool-call ids reused across turns, diffs, highlighted code, plans, images,
and a 10,000-event session opening within its budget. Screenshots in light and dark.

Tests run in file order on one deployment; the 10,000-event test is last (it fills the chat).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.browser.conftest import VIEWPORTS, Cockpit, Rig, wait_text
from tests.support.processes import Api, wait_for

pytestmark = pytest.mark.browser

SHELL = "shell-1/demo"
CHAT = "scripted-1/chat"

# Every visible interactive element smaller than 44×44 CSS px (links inside rendered text are
# inline targets, exempt; a radio's target is its label).
SMALL_TARGETS = """() => {
  const sel = 'a[href], button, input:not([type=radio]):not([type=checkbox]), select, textarea, summary, label:has(input[type=radio])';
  return [...document.querySelectorAll(sel)].filter((el) => {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || el.closest('.md, .skip, [hidden], dialog:not([open])')) return false;
    return r.width < 43.5 || r.height < 43.5;
  }).map((el) => { const r = el.getBoundingClientRect();
    return `${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`; });
}"""

# Commands whose bubble and attached output are wholly between the top bar and the composer.
COMPLETE_IN_VIEW = """() => {
  const top = document.getElementById('topbar').getBoundingClientRect().bottom;
  const bottom = document.getElementById('composer').getBoundingClientRect().top;
  return [...document.querySelectorAll('.transcript > li .card.command.message')].filter((card) => {
    const r = card.getBoundingClientRect();
    return r.top >= top - 1 && r.bottom <= bottom + 1 && card.dataset.state === 'completed'
      && card.querySelector('.attach .stream') && card.querySelector('.attach .stream').textContent.trim();
  }).length;
}"""


IDS = """t => [...document.querySelectorAll('.transcript .card.command:not([data-local])')]
    .filter((el) => el.querySelector('.user-text') && el.querySelector('.user-text').textContent === t).map((el) => el.dataset.commandId)"""


def send(page: Any, text: str) -> str:
    """Send a message from the composer; the id of its (new) command once the core has it."""
    before = page.evaluate(IDS, text)
    page.fill("#composer-text", text)
    page.keyboard.press("Enter")
    page.wait_for_function(f"([t, n]) => ({IDS})(t).length > n", arg=[text, len(before)])
    return str(next(i for i in page.evaluate(IDS, text) if i not in before))


def completed(page: Any, command_id: str) -> None:
    page.wait_for_selector(f'.card.command[data-command-id="{command_id}"][data-state="completed"]', timeout=30_000)


def dark(c: Cockpit) -> None:
    c.page.evaluate("document.documentElement.dataset.theme = 'dark'")


def shots(c: Cockpit, name: str) -> list[Any]:
    """Light and dark screenshots of the current screen, with axe run on both."""
    c.page.evaluate("delete document.documentElement.dataset.theme")
    c.screenshot(f"{name}-light")
    problems = c.axe()
    dark(c)
    c.screenshot(f"{name}-dark")
    problems += c.axe()
    c.page.evaluate("delete document.documentElement.dataset.theme")
    return problems


def test_six_short_commands_show_four_complete_with_output_in_one_phone_viewport(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.login()
    c.open_session(SHELL)
    assert c.page.evaluate("document.activeElement.id") == "composer-text"  # focused on opening
    for i in range(1, 7):
        completed(c.page, send(c.page, f"echo line {i}"))
    wait_text(c.page, ".attach .stream", "line 6")
    c.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    count = c.page.evaluate(COMPLETE_IN_VIEW)
    assert count >= 4, f"only {count} complete commands with output in one 390×844 viewport"
    print(f"complete commands with output in one phone viewport: {count}")
    c.no_horizontal_scroll()
    assert shots(c, "transcript-shell") == []


def test_only_an_unknown_outcome_says_it_may_have_run_and_offers_the_safe_retry(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.login()
    c.open_session(SHELL)
    failed = send(c.page, "exit 3")
    card = c.page.locator(f'.card.command[data-command-id="{failed}"]')
    c.page.wait_for_selector(f'.card.command[data-command-id="{failed}"][data-state="failed"]')
    assert card.locator(".failure").inner_text() == "It ran and failed with exit code 3."
    assert "may have run" not in card.inner_text() and card.locator(".advice").count() == 0
    c.open_session(CHAT)
    lost = send(c.page, "lost")
    c.page.wait_for_selector(f'.card.command[data-command-id="{lost}"][data-state="failed"]')
    card = c.page.locator(f'.card.command[data-command-id="{lost}"]')
    assert card.locator(".failure").inner_text() == "The outcome is unknown: it may have run."
    assert "Retrying is safe" in card.locator(".advice").inner_text()  # the scripted adapter deduplicates end to end
    assert card.inner_text().count("may have run") == 1
    card.locator("button", has_text="Retry").click()
    wait_for(lambda: len(c.page.evaluate(IDS, "lost")) == 2, timeout=10, what="the retry as a new command")


def test_a_repeated_tool_call_id_lands_in_each_own_turn(rig: Rig, cockpit: Any) -> None:
    c = cockpit("desktop")
    c.login()
    c.open_session(CHAT)
    first = send(c.page, "repeat one.txt")
    completed(c.page, first)
    second = send(c.page, "repeat two.txt")
    completed(c.page, second)
    rows = c.page.locator('.entry.tool[data-call-id="call-1"]')
    wait_for(lambda: rows.count() == 2, timeout=10, what="two rows for call-1")
    assert [rows.nth(i).get_attribute("data-command-id") for i in range(2)] == [first, second]
    assert "one.txt" in rows.nth(0).inner_text() and "two.txt" in rows.nth(1).inner_text()
    order = c.page.evaluate("""([a, b]) => { const items = [...document.querySelectorAll('#transcript > li')];
        const at = (sel) => items.findIndex((li) => li.matches(sel) || li.querySelector(sel));
        return [at(`.card.command[data-command-id="${a}"]`), at(`.entry.tool[data-command-id="${a}"]`),
                at(`.card.command[data-command-id="${b}"]`), at(`.entry.tool[data-command-id="${b}"]`)]; }""", [first, second])
    assert order == sorted(order) and len(set(order)) == 4, order  # each call under its own message
    # Keyboard: Esc leaves the message box, ? lists the shortcuts, / comes back to the box.
    c.page.focus("#composer-text")
    c.page.keyboard.press("Escape")
    assert c.page.evaluate("document.activeElement.id") != "composer-text"
    c.page.keyboard.press("?")
    c.page.wait_for_selector("dialog.shortcuts[open]")
    assert "Next / previous session" in c.page.inner_text("dialog.shortcuts")
    c.page.keyboard.press("Escape")
    c.page.wait_for_selector("dialog.shortcuts[open]", state="detached")
    c.page.keyboard.press("/")
    assert c.page.evaluate("document.activeElement.id") == "composer-text"


def test_diff_highlighted_code_plan_and_image_render(rig: Rig, cockpit: Any) -> None:
    problems: dict[str, Any] = {}
    for viewport in VIEWPORTS:
        c = cockpit(viewport)
        c.login()
        c.open_session(CHAT)
        for word in ("edit", "code", "plan", "image"):
            completed(c.page, send(c.page, word))
        c.page.wait_for_selector(".entry.tool .diff .diff-del")
        assert c.page.inner_text(".diff .diff-del") == "-x = 1"
        assert c.page.inner_text(".diff .diff-add") == "+x = 2"
        assert "src/app.py" in c.page.inner_text(".diff-head")
        acp = c.page.locator('.entry.tool[data-call-id="edit-2"]').last  # ACP diff content: a new file
        acp.locator(".diff .diff-add").wait_for()
        assert acp.locator(".diff .diff-add").inner_text() == "+# Notes" and "Write notes.md" in acp.inner_text()
        c.page.wait_for_selector('.entry.assistant .code-block pre[data-lang="python"] code.hl .k')
        keyword = c.page.locator(".code-block code.hl .k").first
        assert keyword.inner_text() == "def"
        assert keyword.evaluate("el => getComputedStyle(el).color") != c.page.locator(".code-block code.hl").first.evaluate(
            "el => getComputedStyle(el).color")  # highlighted: a keyword has its own colour
        assert c.page.locator(".code-block .copy").count() >= 1
        plan = c.page.locator(".entry.plan").last
        assert plan.locator(".checklist li").count() == 3 and "1 of 3 done" in plan.inner_text()
        c.page.wait_for_selector('.entry.tool img[src^="data:image/png;base64,"]')
        assert c.page.evaluate("document.querySelector('.entry.tool img').naturalWidth") == 96
        c.no_horizontal_scroll()
        problems[viewport] = shots(c, "transcript-rich")
    assert {k: v for k, v in problems.items() if v} == {}


def test_approval_badge_appears_on_the_list_within_2_s_and_attention_names_the_session(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.login()
    page = c.page
    api = Api.login(rig.url)
    assert page.locator(f'.session-card[data-target="{CHAT}"] .waiting').count() == 0
    sent = api.submit("badge-check", target=CHAT, text="approve Ship the badge?")
    assert sent["outcome"] == "accepted"
    wait_for(lambda: [e for e in api.http.get("/api/elicitations?state=pending").json()["elicitations"]
                      if e["title"] == "Ship the badge?"], timeout=20, what="the approval opened in the core")
    opened = time.monotonic()
    page.wait_for_selector(f'.session-card[data-target="{CHAT}"] .waiting', timeout=2_000)  # no reload
    print(f"approval badge on the session list {time.monotonic() - opened:.2f} s after the core had it")
    assert page.inner_text(f'.session-card[data-target="{CHAT}"] .waiting') == "1 waiting"
    assert shots(c, "sessions-waiting") == []
    page.click('#tabs a[data-tab="attention"]')
    page.wait_for_selector('#attention-list .card.elicitation[data-state="pending"]')
    assert "Session scripted chat" in page.inner_text("#attention-list .where")
    deny = page.locator("#attention-list .decide button.danger").bounding_box()
    approve = page.locator("#attention-list .decide button.primary").bounding_box()
    assert deny and approve and approve["x"] - (deny["x"] + deny["width"]) >= 24  # room between them
    assert page.evaluate(SMALL_TARGETS) == []
    assert shots(c, "attention-waiting") == []
    desk = cockpit("desktop")  # the same two screens at desktop size
    desk.login()
    desk.page.wait_for_selector(f'.session-card[data-target="{CHAT}"] .waiting')
    assert shots(desk, "sessions-waiting") == []
    desk.page.click('#tabs a[data-tab="attention"]')
    desk.page.wait_for_selector('#attention-list .card.elicitation[data-state="pending"]')
    assert shots(desk, "attention-waiting") == []
    page.click("#attention-list .decide button.primary")
    api.wait_state("badge-check", "completed")
    page.click('#tabs a[data-tab="sessions"]')
    page.wait_for_selector(f'.session-card[data-target="{CHAT}"]')
    wait_for(lambda: page.locator(f'.session-card[data-target="{CHAT}"] .waiting').count() == 0, timeout=10,
             what="the badge gone once answered")
    # The agent's reply after the answer arrived while this device was not looking: "1 new".
    page.wait_for_selector(f'.session-card[data-target="{CHAT}"] .unread')
    assert "The operator chose approve" in page.inner_text(f'.session-card[data-target="{CHAT}"] .preview')
    c.open_session(CHAT)
    page.goto("/#/sessions")
    page.wait_for_selector(f'.session-card[data-target="{CHAT}"]')
    assert page.locator(f'.session-card[data-target="{CHAT}"] .unread').count() == 0  # seen


def test_every_interactive_element_is_at_least_44_px_at_phone_size(rig: Rig, cockpit: Any) -> None:
    c = cockpit("phone")
    c.page.goto("/")
    c.page.wait_for_selector("#login-form")
    small = {"login": c.page.evaluate(SMALL_TARGETS)}
    c.login()
    small["sessions"] = c.page.evaluate(SMALL_TARGETS)
    c.open_session(CHAT)
    completed(c.page, send(c.page, "repeat sizes.txt"))
    c.page.wait_for_selector(".entry.tool")
    c.page.click("#session-info-toggle")
    for summary in c.page.locator(".entry.tool summary").all()[:3]:
        summary.click()
    c.page.locator(".card.command button.status").last.click()
    small["session"] = c.page.evaluate(SMALL_TARGETS)
    c.page.goto("/#/security")
    c.page.wait_for_selector("#operator-sessions .card")
    small["security"] = c.page.evaluate(SMALL_TARGETS)
    assert {k: v for k, v in small.items() if v} == {}


OPEN_CHAT = """() => new Promise((resolve) => {
    const start = performance.now();
    location.hash = '#/session/scripted-1/chat';
    const check = () => {
      const last = [...document.querySelectorAll('#transcript .entry.assistant')].pop();
      if (last && last.textContent.includes('History complete.')) resolve(performance.now() - start);
      else requestAnimationFrame(check);
    };
    check();
})"""


def test_a_10000_event_session_opens_within_budget_and_scrolls_without_long_tasks(rig: Rig, cockpit: Any) -> None:
    api = Api.login(rig.url)
    assert api.submit("history-10k", target=CHAT, text="history 10000")["outcome"] == "accepted"
    api.wait_state("history-10k", "completed", timeout=240)
    c = cockpit("phone")
    c.login()
    page = c.page
    page.evaluate("""() => { window.longTasks = [];
        new PerformanceObserver((l) => { for (const e of l.getEntries()) window.longTasks.push(Math.round(e.duration)); })
          .observe({type: 'longtask'}); }""")
    opened_ms = page.evaluate(OPEN_CHAT)
    on_open = page.evaluate("window.longTasks.splice(0)")
    rows = page.locator("#transcript > li").count()
    assert rows < 400, rows  # only what is in view (and a little more) is in the DOM
    oldest = ("Math.min(...[...document.querySelectorAll('#transcript .entry.system')]"
              ".filter((e) => /^note \\d+$/.test(e.textContent)).map((e) => Number(e.textContent.slice(5))))")
    seen = [page.evaluate(oldest)]
    for _ in range(60):  # scroll up through older history, past the first page the core sent
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function(f"n => ({oldest}) < n", arg=seen[-1])
        seen.append(page.evaluate(oldest))
        if seen[-1] < 1900:
            break
    rows = page.locator("#transcript > li").count()
    assert seen[-1] < 1900, seen  # the first page held steps 2000-2499: older history came on demand
    assert rows <= 260, rows  # the window stays bounded while scrolling back
    scrolling = page.evaluate("window.longTasks")
    print(f"10,000-event session: open {opened_ms:.0f} ms (long tasks {on_open}); "
          f"scrolling back to step {seen[-1]} ({len(seen) - 1} pages, {rows} rows in the DOM): long tasks {scrolling}")
    page.wait_for_function("() => [...document.querySelectorAll('#transcript .entry.assistant .md')].every((m) => m.dataset.rendered)")
    c.screenshot("transcript-10k")
    assert opened_ms < 3_000  # the product budget is 1 s on the phone profile; generous on a loaded CI box
    slow = cockpit("phone")  # the same with the CPU slowed 4× (a mid-range phone), reported
    slow.login()
    slow.context.new_cdp_session(slow.page).send("Emulation.setCPUThrottlingRate", {"rate": 4})
    throttled_ms = slow.page.evaluate(OPEN_CHAT)
    print(f"10,000-event session with the CPU slowed 4×: open {throttled_ms:.0f} ms")
    assert throttled_ms < 8_000
    # The product target is no task over 100 ms; generous here for a loaded 2-core CI box.
    assert max(scrolling, default=0) < 400, scrolling


def test_history_pages_back_from_the_newest_end_and_render_needs_a_session(rig: Rig) -> None:
    api = Api.login(rig.url)
    newest = api.http.get(f"/api/sessions/{CHAT}/history", params={"limit": 2000}).json()
    lsns = [e["lsn"] for e in newest["events"]]
    assert len(lsns) == 2000 and lsns == sorted(lsns) and newest["more"] is True
    older = api.http.get(f"/api/sessions/{CHAT}/history", params={"before": lsns[0], "limit": 2000}).json()
    assert older["events"] and max(e["lsn"] for e in older["events"]) < lsns[0]
    assert all(e["entity"] == f"session:{CHAT}" for e in newest["events"] + older["events"])
    assert api.http.get(f"/api/sessions/{CHAT}/history", params={"before": "x"}).status_code == 400
    rendered = api.http.post("/api/render", json={"items": [{"markdown": "**b** <script>x</script>"},
                                                            {"diff": {"path": "a", "old": "1\n", "new": "2\n"}}]}).json()
    assert rendered["html"][0] == "<p><strong>b</strong> &lt;script&gt;x&lt;/script&gt;</p>\n"
    assert '<span class="diff-add">+2</span>' in rendered["html"][1]
    assert api.http.post("/api/render", json={"items": "no"}).status_code == 400
    anonymous = httpx.post(rig.url + "/api/render", json={"items": []})
    assert anonymous.status_code == 401
    assert httpx.get(rig.url + f"/api/sessions/{CHAT}/history").status_code == 401
