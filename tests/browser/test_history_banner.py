"""Lost durable history is a banner in the cockpit, not only a line in the serve log."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Cockpit
from tests.support.processes import PASSWORD, Deployment

pytestmark = pytest.mark.browser


def test_the_cockpit_shows_a_banner_when_history_was_lost(tmp_path: Path, browser: Browser) -> None:
    d = Deployment(tmp_path)
    journal = d.home / "journal.db"
    cockpits: list[Cockpit] = []
    try:
        d.serve()
        d.api()
        assert d.serve_proc is not None
        d.serve_proc.kill(signal.SIGTERM)
        shutil.copyfile(journal, tmp_path / "older.db")
        d.serve()
        d.api()
        d.serve_proc.kill(signal.SIGTERM)
        shutil.copyfile(tmp_path / "older.db", journal)  # an older copy put back: history lost
        d.serve()
        for viewport in ("phone", "desktop"):
            c = Cockpit(browser, d.url, viewport)
            cockpits.append(c)
            c.page.goto("/")
            c.page.fill("#password", PASSWORD)
            c.page.click("#login-form button[type=submit]")
            c.page.wait_for_selector("#session-list .empty")  # no adapter in this home
            banner = c.page.wait_for_selector("#history-lost-banner")
            assert banner is not None and "history was lost" in banner.inner_text()
            c.screenshot("history-lost-banner")
            assert c.axe() == []
            c.assert_clean()
    finally:
        for c in cockpits:
            c.close()
        d.stop()
