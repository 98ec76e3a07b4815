"""First run in the browser: a home without an operator shows the one-time setup page; the
secret printed by ``serve`` creates the operator and signs this browser in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Cockpit
from tests.support.processes import LISTENING, Proc, environment, patchbay_argv, run_cli

pytestmark = pytest.mark.browser

SECRET = re.compile(r"setup secret (\S+)")


def test_setup_page_creates_the_operator_and_signs_in(tmp_path: Path, browser: Browser) -> None:
    env = environment(tmp_path)
    assert run_cli(env, "init", "--web-setup").returncode == 0
    serve = Proc(patchbay_argv("serve", "--listen", "127.0.0.1:0"), env, tmp_path / "serve.log")
    cockpits: list[Cockpit] = []
    try:
        url = serve.wait_line(LISTENING).group(1)
        secret = serve.wait_line(SECRET).group(1)
        for viewport in ("phone", "desktop"):
            c = Cockpit(browser, url, viewport)
            cockpits.append(c)
            c.page.goto("/#setup")
            c.page.wait_for_selector("#setup-form")
            c.screenshot("setup")
            assert c.axe() == []
        page: Any = cockpits[0].page
        page.fill("#setup-secret", "wrong-secret")
        page.fill("#setup-password", "a-long-operator-password")
        cockpits[0].allowed.append("status of 403")  # the refused wrong secret
        page.click("#setup-form button[type=submit]")
        page.wait_for_selector("#setup-form .form-error:not(:empty)")
        page.fill("#setup-secret", secret)
        page.click("#setup-form button[type=submit]")
        page.wait_for_selector("#session-list .empty")
        page.wait_for_selector('#conn[data-state="live"]')
        assert "No sessions yet" in page.inner_text("#session-list")
        for c in cockpits:
            c.assert_clean()
    finally:
        for c in cockpits:
            c.close()
        serve.stop()
