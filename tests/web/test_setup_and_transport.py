"""Bootstrap through the one-time setup secret, HTTPS cookies, and the plain-HTTP rules.

Two real servers: one on a home made with ``init --web-setup`` serving HTTPS with a
certificate made here by the ``openssl`` CLI; one behind a (simulated) trusted TLS proxy whose
setup secret has already expired.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import LISTENING_ANY, SETUP_SECRET, Deployment
from tests.web.browser import Browser, audit, bearer
from tests.web.test_browser_access import assert_absent_from_journal

pytestmark = pytest.mark.slow

SETUP_PASSWORD = "setup-password-42"


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def tls_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str, ssl.SSLContext]]:
    tmp = tmp_path_factory.mktemp("tls")
    d = Deployment(tmp, web_setup=True)
    cert, key = self_signed(tmp)
    d.configure(cert=f'"{cert}"', key=f'"{key}"')
    try:
        d.serve(pattern=LISTENING_ANY)
        assert d.serve_proc is not None
        secret = d.serve_proc.wait_line(SETUP_SECRET).group(1)
        yield d, secret, ssl.create_default_context(cafile=str(cert))
    finally:
        d.stop()


def test_the_setup_secret_creates_the_operator_exactly_once(tls_setup: tuple[Deployment, str, ssl.SSLContext]) -> None:
    d, secret, tls = tls_setup
    assert d.url.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=d.url, verify=tls, timeout=30) as http:
        assert http.get("/api/status").json()["setup_required"] is True
        no_operator = http.post("/api/login", json={"password": SETUP_PASSWORD, "endpoint_kind": "cli"})
        assert no_operator.status_code == 401
        assert http.post("/api/setup", json={"password": SETUP_PASSWORD}).status_code == 400
        wrong = http.post("/api/setup", json={"secret": "not-the-secret", "password": SETUP_PASSWORD})
        assert wrong.status_code == 403 and wrong.json()["check"] == "setup_secret"
        weak = http.post("/api/setup", json={"secret": secret, "password": "short"})
        assert weak.status_code == 403 and "8 characters" in weak.json()["error"]
        done = http.post("/api/setup", json={"secret": secret, "password": SETUP_PASSWORD})
        assert done.status_code == 200 and done.json() == {"ok": True}
        again = http.post("/api/setup", json={"secret": secret, "password": "a-different-one"})
        assert again.status_code == 409
        assert http.get("/api/status").json()["setup_required"] is False

    admin, _ = bearer(d.url, password=SETUP_PASSWORD, verify=tls)
    grants = admin.get("/api/grants").json()["grants"]
    assert len(grants) == 1 and grants[0]["scope"] == {"type": "all"} and "setup" in grants[0]["provenance"]
    kinds = [r["kind"] for r in audit(admin, "operator.created", "login.failed", "grant.created")]
    assert kinds.count("operator.created") == 1 and kinds.count("login.failed") >= 2
    assert_absent_from_journal(d.home, {"setup secret": secret, "password": SETUP_PASSWORD})


def test_over_https_the_cookie_is_secure_with_the_host_prefix(tls_setup: tuple[Deployment, str, ssl.SSLContext]) -> None:
    d, _, tls = tls_setup
    browser = Browser(d.url, verify=tls, password=SETUP_PASSWORD)
    cookie = browser.cookie
    assert cookie.name == "__Host-patchbay_session"
    assert "secure" in cookie.attributes and "httponly" in cookie.attributes
    assert cookie.attributes["samesite"] == "Strict" and cookie.attributes["path"] == "/"
    assert "domain" not in cookie.attributes
    bad_command = {"command_id": "tls-check", "kind": "no-such-kind"}
    assert browser.post("/api/commands", bad_command).json()["failure"] == "validation_failed"
    plain_origin = browser.post("/api/commands", bad_command, origin=d.url.replace("https://", "http://"))
    assert plain_origin.status_code == 403 and plain_origin.json()["check"] == "origin"
    # A cookie without the prefix (as a plain-HTTP server would set it) is not this server's cookie.
    unprefixed = browser.http.get("/api/me", headers={"Cookie": f"patchbay_session={cookie.value}"})
    assert unprefixed.status_code == 401


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    d = Deployment(tmp_path_factory.mktemp("proxied"), web_setup=True)
    d.configure(trusted_proxy="true", setup_secret="0.0")
    try:
        d.serve()
        assert d.serve_proc is not None
        yield d, d.serve_proc.wait_line(SETUP_SECRET).group(1)
    finally:
        d.stop()


def test_an_expired_setup_secret_accepts_nothing(proxied: tuple[Deployment, str]) -> None:
    d, secret = proxied
    local = {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https"}
    answer = httpx.post(d.url + "/api/setup", json={"secret": secret, "password": SETUP_PASSWORD}, headers=local)
    assert answer.status_code == 403 and "expired" in answer.json()["error"]
    assert httpx.get(d.url + "/api/status", headers=local).json()["setup_required"] is True


def test_behind_a_trusted_proxy_plain_http_from_afar_is_refused(proxied: tuple[Deployment, str]) -> None:
    d, _ = proxied
    afar_plain = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http"}
    afar_tls = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    refused = httpx.get(d.url + "/api/status", headers=afar_plain)
    assert refused.status_code == 403 and refused.json()["check"] == "tls"
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert httpx.post(d.url + "/api/login", json={"password": "x"}, headers=afar_plain).json()["check"] == "tls"
    assert httpx.get(d.url + "/api/status", headers=afar_tls).status_code == 200
    spoofed = {"X-Forwarded-For": "127.0.0.1, 203.0.113.7", "X-Forwarded-Proto": "http"}
    assert httpx.get(d.url + "/api/status", headers=spoofed).json()["check"] == "tls"  # the proxy's entry counts
    assert httpx.get(d.url + "/api/status").status_code == 200  # the proxy's own loopback address
