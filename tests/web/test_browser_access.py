"""Browser access over real HTTP against one real ``patchbay serve`` (plain HTTP on loopback).

One server for the module; each test logs in its own sessions. The rate-limit test blocks the
account for the rest of the window, so it runs last.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from patchbay.core.checkpoint import unpack
from tests.support.processes import PASSWORD, Deployment, run_cli
from tests.web.browser import Browser, SetCookie, audit, bearer, client, refusals

pytestmark = pytest.mark.slow

PER_ADDRESS = 3
PER_ACCOUNT = 5


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("browser"))
    d.configure(failures_per_address=str(PER_ADDRESS), failures_per_account=str(PER_ACCOUNT))
    try:
        d.serve()
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def admin(deploy: Deployment) -> Iterator[httpx.Client]:
    http, _ = bearer(deploy.url)
    yield http
    http.close()


def test_init_created_the_operator_so_setup_is_closed(deploy: Deployment) -> None:
    status = httpx.get(deploy.url + "/api/status").json()
    assert status["setup_required"] is False and status["lockdown"] is False
    answer = httpx.post(deploy.url + "/api/setup", json={"secret": "x" * 24, "password": "another-password"})
    assert answer.status_code == 409 and "operator exists" in answer.json()["error"]


def test_login_sets_an_opaque_strict_http_only_cookie(deploy: Deployment, admin: httpx.Client) -> None:
    browser = Browser(deploy.url)
    cookie = browser.cookie
    assert cookie.name == "patchbay_session"  # plain loopback development: no __Host- prefix
    assert len(cookie.value) >= 43 and browser.session_id not in cookie.value
    assert "httponly" in cookie.attributes and cookie.attributes["samesite"] == "Strict"
    assert cookie.attributes["path"] == "/"
    assert "domain" not in cookie.attributes and "secure" not in cookie.attributes
    assert len(browser.csrf) >= 32 and browser.csrf != cookie.value
    me = browser.get("/api/me").json()
    assert (me["session_id"], me["transport"], me["csrf_token"]) == (browser.session_id, "web", browser.csrf)
    listed = {s["session_id"]: s for s in admin.get("/api/security").json()["operator_sessions"]}
    assert listed[browser.session_id]["kind"] == "browser" and not listed[browser.session_id]["revoked"]
    logins = [r for r in audit(admin, "login.succeeded") if r["details"]["session_id"] == browser.session_id]
    assert logins and logins[0]["details"]["address"] == "127.0.0.1"


def test_wrong_password_and_foreign_origin_logins_are_refused_and_audited(deploy: Deployment,
                                                                          admin: httpx.Client) -> None:
    foreign = httpx.post(deploy.url + "/api/login", json={"password": PASSWORD},
                         headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["check"] == "origin"
    assert "set-cookie" not in foreign.headers
    assert any(d["path"] == "/api/login" and d["check"] == "origin" for d in refusals(admin))
    wrong = httpx.post(deploy.url + "/api/login", json={"password": "not-the-password"},
                       headers={"Origin": deploy.url})
    assert wrong.status_code == 401 and wrong.json()["check"] == "password"
    assert any(r["details"]["reason"] == "wrong password" for r in audit(admin, "login.failed"))


def test_every_state_change_needs_cookie_csrf_origin_fetch_metadata_and_post(deploy: Deployment,
                                                                             admin: httpx.Client) -> None:
    one, other = Browser(deploy.url), Browser(deploy.url)
    bad_command: dict[str, Any] = {"command_id": "web-check-1", "kind": "no-such-kind"}
    before = len(refusals(admin))

    no_cookie = one.post("/api/commands", bad_command, cookie=False)
    assert no_cookie.status_code == 401 and no_cookie.json()["check"] == "session"
    cases = {
        "csrf": one.post("/api/commands", bad_command, use_csrf=False),
        "csrf-of-another-session": one.post("/api/commands", bad_command, csrf=other.csrf),
        "origin": one.post("/api/commands", bad_command, origin="http://evil.example"),
        "no-origin": one.post("/api/commands", bad_command, use_origin=False),
        "fetch_metadata": one.post("/api/commands", bad_command, fetch_site="cross-site"),
    }
    expected = {"csrf": "csrf", "csrf-of-another-session": "csrf", "origin": "origin", "no-origin": "origin",
                "fetch_metadata": "fetch_metadata"}
    for case, response in cases.items():
        assert response.status_code == 403, (case, response.text)
        assert response.json()["check"] == expected[case], case
    wrong_method = one.get("/api/lockdown")
    assert wrong_method.status_code == 405 and wrong_method.json()["check"] == "method"

    # With every proof present the request reaches the acceptance pipeline (and is refused there).
    same_site = one.post("/api/commands", bad_command, fetch_site="same-origin")
    assert same_site.status_code == 422 and same_site.json()["failure"] == "validation_failed"
    assert other.post("/api/commands", bad_command).json()["failure"] == "validation_failed"

    recorded = refusals(admin)[: len(refusals(admin)) - before]
    checks = sorted(d["check"] for d in recorded)
    assert checks == sorted(["session", "csrf", "csrf", "origin", "origin", "fetch_metadata", "method"])
    assert all(d["address"] == "127.0.0.1" for d in recorded)
    assert httpx.get(deploy.url + "/api/status").json()["lockdown"] is False


def test_logout_revocation_and_endpoint_revocation_end_sessions(deploy: Deployment, admin: httpx.Client) -> None:
    leaving, revoked, watcher = Browser(deploy.url), Browser(deploy.url), Browser(deploy.url)
    submission = {"command_id": "web-after-end", "idempotency_key": "web-after-end", "kind": "instruct",
                  "target": "nobody/none", "payload": {"text": "hello"}}

    out = leaving.post("/api/logout")
    assert out.status_code == 200
    cleared = SetCookie.parse(out.headers["set-cookie"])
    assert cleared.name == leaving.cookie.name and cleared.value == "" and cleared.attributes["max-age"] == "0"
    assert leaving.post("/api/commands", submission).status_code == 401

    assert watcher.post(f"/api/security/sessions/{revoked.session_id}/revoke").status_code == 200
    refused = revoked.post("/api/commands", submission)
    assert refused.status_code == 401 and refused.json()["check"] == "session"

    # The browser revokes a CLI endpoint; a CLI endpoint revokes a browser endpoint.
    cli, cli_login = bearer(deploy.url)
    assert cli.get("/api/me").status_code == 200
    assert watcher.post(f"/api/security/endpoints/{cli_login['endpoint_id']}/revoke").status_code == 200
    assert cli.get("/api/me").status_code == 401
    assert admin.post(f"/api/security/endpoints/{watcher.endpoint_id}/revoke").status_code == 200
    assert watcher.get("/api/me").status_code == 401

    security = admin.get("/api/security").json()
    sessions = {s["session_id"]: s for s in security["operator_sessions"]}
    assert sessions[leaving.session_id]["revoked"] and sessions[revoked.session_id]["revoked"]
    assert sessions[watcher.session_id]["ended_reason"] == "endpoint revoked"
    endpoints = {e["endpoint_id"]: e for e in security["endpoints"]}
    assert endpoints[cli_login["endpoint_id"]]["revoked"] and endpoints[watcher.endpoint_id]["revoked"]
    kinds = [r["kind"] for r in audit(admin, "logout", "operator_session.revoked", "endpoint.revoked")]
    assert kinds.count("endpoint.revoked") >= 2 and "logout" in kinds and "operator_session.revoked" in kinds


def test_security_headers_on_every_response(deploy: Deployment) -> None:
    for method, path in [("GET", "/"), ("GET", "/api/status"), ("GET", "/api/sessions"),
                         ("GET", "/static/no-such-file.js"), ("POST", "/api/commands"), ("GET", "/api/logout")]:
        response = httpx.request(method, deploy.url + path, json={} if method == "POST" else None)
        headers = response.headers
        csp = headers["content-security-policy"]
        directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";")}
        assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in csp, path
        assert directives["frame-ancestors"] == "frame-ancestors 'none'", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        if path.startswith("/api/"):
            assert headers["cache-control"] == "no-store", path


def test_a_non_loopback_listener_without_tls_is_refused(deploy: Deployment) -> None:
    result = run_cli(deploy.env, "serve", "--listen", "0.0.0.0:0")
    assert result.returncode == 1
    assert "needs TLS" in result.stderr and "patchbay listening" not in result.stdout


def test_the_journal_never_holds_passwords_tokens_cookies_or_csrf_tokens(deploy: Deployment) -> None:
    browser = Browser(deploy.url)
    _, cli_login = bearer(deploy.url)
    secrets = {"password": PASSWORD, "wrong password tried": "not-the-password",
               "cookie": browser.cookie.value, "csrf": browser.csrf,
               "bearer": cli_login["token"], "bearer csrf": cli_login["csrf_token"],
               "server key": (deploy.home / "server.key").read_text().strip()}
    assert_absent_from_journal(deploy.home, secrets)


def test_failed_logins_are_rate_limited_per_address_then_per_account(deploy: Deployment,
                                                                     admin: httpx.Client) -> None:
    def login(address: str, password: str) -> httpx.Response:
        with client(deploy.url, local_address=address) as http:
            return http.post("/api/login", json={"password": password, "endpoint_kind": "cli"})

    failures_before = [r["details"] for r in audit(admin, "login.failed")]
    for _ in range(PER_ADDRESS):
        assert login("127.0.0.2", "wrong-guess").status_code == 401
    blocked = login("127.0.0.2", PASSWORD)  # even the right password waits out the window
    assert blocked.status_code == 429 and blocked.json()["check"] == "rate_limit"
    assert int(blocked.headers["retry-after"]) > 0
    assert login("127.0.0.1", PASSWORD).status_code == 200  # another address is not blocked

    already = sum(d["reason"] == "wrong password" for d in failures_before)  # earlier tests' failures
    for _ in range(PER_ACCOUNT - PER_ADDRESS - already):
        assert login("127.0.0.3", "wrong-guess").status_code == 401
    spread = login("127.0.0.4", PASSWORD)
    assert spread.status_code == 429  # the account limit holds across addresses

    failures = [r["details"] for r in audit(admin, "login.failed")]
    limited = [d for d in failures if d["reason"] == "rate_limited"]
    assert {(d["address"], d["limit"]) for d in limited} == {("127.0.0.2", "address"), ("127.0.0.4", "account")}
    assert sum(d["reason"] == "wrong password" for d in failures) == PER_ACCOUNT


def assert_absent_from_journal(home: Path, secrets: dict[str, str]) -> None:
    """No secret in the journal's files, nor in its checkpoints (stored compressed)."""
    files = [p for p in home.iterdir() if p.name.startswith("journal.db")]
    assert any(p.name == "journal.db" for p in files)
    blobs = {path.name: path.read_bytes() for path in files}
    reader = apsw.Connection(str(home / "journal.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        for lsn, state in reader.execute("SELECT lsn, state FROM checkpoints"):
            blobs[f"the checkpoint at {lsn}"] = unpack(bytes(state))
    finally:
        reader.close()
    for where, data in blobs.items():
        for name, secret in secrets.items():
            assert secret.encode() not in data, f"{name} found in {where}"
