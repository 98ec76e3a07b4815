"""``POST /api/commands`` is answered in front of Quart (``web/_fast.py``): over real HTTP it
refuses exactly what the Quart routes refuse, with the same codes, JSON bodies, headers and
audit records, and it reads at most ``MAX_BODY`` bytes of body."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from patchbay.web._fast import MAX_BODY, SECURITY_HEADERS
from tests.support.processes import Deployment, serving_shell
from tests.web.browser import Browser, bearer, refusals

pytestmark = pytest.mark.slow

COMMAND: dict[str, Any] = {"command_id": "fast-1", "idempotency_key": "fast-1", "kind": "instruct",
                           "target": "nobody/here", "payload": {"text": "hi"}}


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with serving_shell(tmp_path_factory.mktemp("fast")) as d:
        yield d


@pytest.fixture(scope="module")
def admin(deploy: Deployment) -> Iterator[httpx.Client]:
    http, _ = bearer(deploy.url)
    yield http
    http.close()


def assert_api_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert int(response.headers["content-length"]) == len(response.content)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name


def test_missing_or_invalid_credentials_are_refused_401_and_audited(deploy: Deployment,
                                                                    admin: httpx.Client) -> None:
    before = len(refusals(admin))
    answers = [
        httpx.post(deploy.url + "/api/commands", json=COMMAND),
        httpx.post(deploy.url + "/api/commands", json=COMMAND, headers={"Authorization": "Bearer not-a-token"}),
        httpx.post(deploy.url + "/api/commands", json=COMMAND, headers={"Authorization": "Basic abc"}),
        httpx.post(deploy.url + "/api/commands", json=COMMAND, headers={"Cookie": "patchbay_session=forged"}),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == {"error": "log in first: no valid session", "check": "session"}
        assert_api_headers(answer)
    recorded = refusals(admin)[: len(refusals(admin)) - before]
    assert [(d["check"], d["method"], d["path"], d["status"]) for d in recorded] == \
        [("session", "POST", "/api/commands", 401)] * 4


def test_a_browser_needs_csrf_origin_and_no_cross_site_fetch(deploy: Deployment, admin: httpx.Client) -> None:
    browser = Browser(deploy.url)
    before = len(refusals(admin))
    cases = [
        (browser.post("/api/commands", COMMAND, use_csrf=False), "csrf"),
        (browser.post("/api/commands", COMMAND, csrf="x" * 43), "csrf"),
        (browser.post("/api/commands", COMMAND, origin="http://evil.example"), "origin"),
        (browser.post("/api/commands", COMMAND, use_origin=False), "origin"),
        (browser.post("/api/commands", COMMAND, fetch_site="cross-site"), "fetch_metadata"),
    ]
    for answer, check in cases:
        assert answer.status_code == 403, answer.text
        assert answer.json()["check"] == check
        assert_api_headers(answer)
    recorded = refusals(admin)[: len(refusals(admin)) - before]
    assert sorted(d["check"] for d in recorded) == sorted(check for _, check in cases)
    assert all(d["path"] == "/api/commands" and d["status"] == 403 for d in recorded)
    # With every proof the request reaches acceptance (which refuses the unknown target).
    through = browser.post("/api/commands", COMMAND)
    assert through.status_code == 422 and through.json()["failure"] == "target_not_found"
    assert through.json()["command"] is None
    assert_api_headers(through)


def test_other_methods_stay_with_quart_405_audited(deploy: Deployment, admin: httpx.Client) -> None:
    before = len(refusals(admin))
    put = admin.put("/api/commands", json=COMMAND)
    assert put.status_code == 405 and put.json()["check"] == "method"
    assert admin.get("/api/commands").status_code == 200
    recorded = refusals(admin)[: len(refusals(admin)) - before]
    assert [(d["check"], d["method"]) for d in recorded] == [("method", "PUT")]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b'"text"', b'{"payload": "\xff\xfe"}'])
def test_a_body_that_is_not_a_json_object_is_refused_409(admin: httpx.Client, body: bytes) -> None:
    answer = admin.post("/api/commands", content=body)
    assert answer.status_code == 409
    assert answer.json() == {"error": "the request body must be a JSON object"}
    assert_api_headers(answer)


def test_json_the_standard_library_reads_is_still_read(admin: httpx.Client) -> None:
    """NaN and integers beyond 64 bits: orjson refuses them, the previous reader took them."""
    for value in (b"NaN", b"123456789012345678901234567890"):
        answer = admin.post("/api/commands", content=b'{"kind": "instruct", "payload": {"v": ' + value + b"}}")
        assert answer.status_code == 422 and answer.json()["failure"] == "validation_failed"


def test_an_oversized_body_is_refused_413_and_the_connection_still_serves(deploy: Deployment,
                                                                         admin: httpx.Client) -> None:
    big = b'{"payload": "' + b"x" * MAX_BODY + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 10_000):
            yield big[start:start + 10_000]

    for answer in (admin.post("/api/commands", content=big), admin.post("/api/commands", content=chunks())):
        assert answer.status_code == 413
        assert answer.json() == {"error": f"the request body is larger than {MAX_BODY} bytes"}
        assert_api_headers(answer)
    assert admin.post("/api/commands", json=COMMAND).status_code == 422
    # Without credentials the session check comes first, as on every guarded route.
    assert httpx.post(deploy.url + "/api/commands", content=big).status_code == 401


def test_a_refused_request_with_a_body_does_not_stall_the_next_on_the_connection(deploy: Deployment) -> None:
    host, port = deploy.url.split("://", 1)[1].rsplit(":", 1)
    body = b'{"kind": "instruct"}'
    one = (f"POST /api/commands HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(one + one)  # two requests, pipelined on one kept-alive connection
        received = b""
        while received.count(b"HTTP/1.1 401") < 2:
            chunk = raw.recv(65536)
            assert chunk, f"connection closed after {received!r}"
            received += chunk


def test_a_body_cut_short_by_a_disconnect_is_never_submitted(deploy: Deployment, admin: httpx.Client) -> None:
    """The part that arrived is itself a complete JSON command: it must still not be submitted."""
    host, port = deploy.url.split("://", 1)[1].rsplit(":", 1)
    token = admin.headers["Authorization"]
    part = (b'{"command_id": "cut-1", "idempotency_key": "cut-1", "kind": "instruct", '
            b'"target": "shell-1/demo", "payload": {"text": "true"}}')
    head = (f"POST /api/commands HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(part) + 100}\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(head + part)
        raw.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := raw.recv(65536):  # the server ends the exchange: the handler has finished
            answer += chunk
    assert b" 200 " not in answer.split(b"\r\n", 1)[0]
    # A submission sent after it is decided after it (the core decides in arrival order).
    assert admin.post("/api/commands", json={**COMMAND, "command_id": "cut-2", "idempotency_key": "cut-2",
                                             "target": "shell-1/demo", "payload": {"text": "true"}}).status_code == 200
    assert admin.get("/api/commands/cut-1").status_code == 404
    assert admin.get("/api/commands", params={"idempotency_key": "cut-1"}).json()["commands"] == []


def test_lockdown_refuses_submissions_through_the_fast_path(deploy: Deployment, admin: httpx.Client) -> None:
    """Last in the module: lockdown has no exit route."""
    live = {**COMMAND, "command_id": "fast-2", "idempotency_key": "fast-2", "target": "shell-1/demo",
            "payload": {"text": "true"}}
    assert admin.post("/api/lockdown", json={"reason": "fast path test"}).status_code == 200
    # Lockdown ends every operator session: the old token is refused and audited...
    stale = admin.post("/api/commands", json=live)
    assert stale.status_code == 401 and stale.json()["check"] == "session"
    # ...and a new session's submissions are refused by acceptance, nothing accepted.
    fresh, _ = bearer(deploy.url)
    try:
        assert refusals(fresh)[0]["status"] == 401 and refusals(fresh)[0]["path"] == "/api/commands"
        answer = fresh.post("/api/commands", json=live)
        assert answer.status_code == 403, answer.text
        assert answer.json()["failure"] == "authorization_denied" and "lockdown" in answer.json()["reason"]
        assert answer.json()["command"] is None
        assert fresh.get("/api/commands/fast-2").status_code == 404
    finally:
        fresh.close()

