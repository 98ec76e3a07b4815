"""Browser fixtures: a real ``serve`` with the shell adapter and the scripted adapter, and Debian
Chromium driven by Playwright's sync API (no browser download: ``/usr/bin/chromium``).

One deployment and one browser per module keep the suite inside its time budget. Every page
records console errors and uncaught exceptions; ``Cockpit.assert_clean`` fails a test on any.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.processes import PASSWORD, Deployment, Proc, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "tools" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


class Rig:
    """serve + shell adapter (workspace ``demo``) + scripted adapter (session ``chat``)."""

    def __init__(self, tmp: Path) -> None:
        self.deploy = Deployment(tmp)
        self.tmp = tmp
        self.port = 0
        self.scripted: Proc | None = None

    def start(self) -> None:
        d = self.deploy
        d.serve(f"127.0.0.1:{self.port}")
        self.port = int(d.url.rsplit(":", 1)[1])
        d.shell_adapter()
        credential = self.deploy.home / "adapters" / "scripted-1.credential"
        if not credential.exists():
            d.add_adapter("scripted-1", kind="pi")
        self.scripted = Proc([sys.executable, str(ROOT / "tests" / "support" / "scripted_adapter.py"), "--id",
                              "scripted-1", "--core", d.url, "--credential-file", str(credential)],
                             dict(d.env, PYTHONPATH=str(ROOT)), self.tmp / f"scripted-{len(d.procs)}.log")
        d.procs.append(self.scripted)
        api = d.api()
        api.wait_session("shell-1/demo", "live", timeout=60)
        api.wait_session("scripted-1/chat", "live", timeout=60)

    def stop_serve(self) -> None:
        old = self.deploy.serve_proc
        assert old is not None
        old.stop()
        self.deploy.procs.remove(old)

    def start_serve(self) -> None:
        """Start serve again on the same port (same origin for the browser; adapters reconnect)."""
        self.deploy.serve(f"127.0.0.1:{self.port}")

    @property
    def url(self) -> str:
        return self.deploy.url


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("cockpit"))
    try:
        rig.start()
        yield rig
    finally:
        rig.deploy.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian chromium is required: scripts/test installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Cockpit:
    """A browser context at one viewport, its page, and the problems it logged."""

    def __init__(self, browser: Browser, url: str, viewport: str, **options: Any) -> None:
        self.url = url
        self.viewport = viewport
        self.context: BrowserContext = browser.new_context(base_url=url, **VIEWPORTS[viewport], **options)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type == "error" and not self.expected(m.text) else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.allowed: list[str] = []

    def expected(self, text: str) -> bool:
        return any(fragment in text for fragment in self.allowed)

    def login(self, password: str = PASSWORD) -> None:
        self.page.goto("/")
        self.page.fill("#password", password)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_selector("#session-list .session-card")
        self.page.wait_for_selector('#conn[data-state="live"]')

    def open_session(self, target: str) -> None:
        self.page.goto(f"/#/session/{target}")
        self.page.wait_for_selector("#composer-text")
        self.page.wait_for_selector('#conn[data-state="live"]')

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.viewport}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def no_horizontal_scroll(self) -> None:
        width = self.page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        if width[0] > width[1]:
            culprits = self.page.evaluate("""w => [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right > w + 1).slice(0, 8)
                .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))""", width[1])
            raise AssertionError(f"horizontal scroll at {self.viewport}: {width}: {culprits}")

    def axe(self) -> list[dict[str, Any]]:
        """Serious or critical accessibility violations on the current page (axe-core)."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            # Evaluated through the devtools protocol: the page's CSP (script-src 'self') stays on.
            self.page.evaluate(AXE.read_text() + "\n;0")
        result = self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                 "nodes": [n["target"] for n in v["nodes"]][:5]}
                for v in result["violations"] if v["impact"] in ("serious", "critical")]

    def assert_clean(self) -> None:
        assert not self.errors, "\n".join(self.errors)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def cockpit(browser: Browser, rig: Rig) -> Iterator[Any]:
    """Factory: ``cockpit("phone")`` opens a logged-out page; all are closed (and checked) after."""
    opened: list[Cockpit] = []

    def open_(viewport: str = "phone", **options: Any) -> Cockpit:
        c = Cockpit(browser, rig.url, viewport, **options)
        opened.append(c)
        return c

    yield open_
    try:
        for c in opened:
            c.assert_clean()
    finally:
        for c in opened:
            c.close()


def wait_text(page: Page, selector: str, text: str, timeout: float = 30_000) -> None:
    """Wait until some element matching ``selector`` contains ``text``."""
    page.wait_for_function("([s, t]) => [...document.querySelectorAll(s)].some((el) => el.textContent.includes(t))",
                           arg=[selector, text], timeout=timeout)


__all__ = ["Cockpit", "Rig", "wait_for", "wait_text"]
