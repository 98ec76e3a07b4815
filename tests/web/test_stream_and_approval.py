"""The client stream's resume verdicts and the elicitation answer route, over real websockets.

A scripted adapter speaks protocol v1 to a real ``serve`` (so the test decides exactly when a
session appears and when an approval is raised); clients are a bearer websocket, a cookie
websocket, and the real ``patchbay approve`` CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.support.processes import Deployment, run_cli
from tests.web.browser import Browser, audit, bearer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("stream"))
    try:
        d.serve()
        d.add_adapter("fake-1")
        result = run_cli(d.env, "login", "--url", d.url, "--password-stdin", stdin="integration-password-1\n")
        assert result.returncode == 0, result.stderr
        yield d
    finally:
        d.stop()


def ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://") + path


async def receive(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(30):
        return dict(json.loads(await ws.get_message()))


async def until(ws: WebSocketConnection, predicate: Any) -> dict[str, Any]:
    while True:
        message = await receive(ws)
        if predicate(message):
            return message


async def adapter_hello(ws: WebSocketConnection, deploy: Deployment) -> None:
    credential = (deploy.home / "adapters" / "fake-1.credential").read_text().strip()
    await ws.send_message(json.dumps({
        "type": "hello", "protocol": 1, "adapter_id": "fake-1", "credential": credential,
        "adapter_generation": 1, "deployment_scope": "test",
        "manifest": {"kinds": ["instruct", "approval-response"], "idempotency": "at-patchbay-boundary"}}))
    assert (await receive(ws))["type"] == "welcome"
    await ws.send_message(json.dumps({"type": "session", "seq": 1, "runtime_session_id": "s1", "generation": 1,
                                      "label": "scripted", "activity": "idle", "connectivity": "live",
                                      "snapshot_tier": "authoritative"}))
    assert (await receive(ws)) == {"type": "ack", "seq": 1}


async def test_stream_resumes_with_ok_or_snapshot_and_approvals_resolve_once(deploy: Deployment) -> None:
    admin, login = bearer(deploy.url)
    auth = [(b"Authorization", f"Bearer {login['token']}".encode())]
    async with open_websocket_url(ws_url(deploy.url, "/adapter/v1")) as adapter:
        await adapter_hello(adapter, deploy)

        async with open_websocket_url(ws_url(deploy.url, "/api/stream?cursor=-1"), extra_headers=auth) as fresh:
            hello = await receive(fresh)
            assert hello["verdict"] == "snapshot" and hello["authority_domain_id"]
            snapshot = await receive(fresh)
            assert snapshot["type"] == "snapshot" and snapshot["lsn"] == hello["lsn"]
            assert [s["target"] for s in snapshot["sessions"]] == ["fake-1/s1"]
            assert (await receive(fresh))["type"] == "live"
            cursor = hello["lsn"]

            spoofed = {"operator_id": "mallory", "endpoint_id": "end-mallory", "session_id": "ses-mallory",
                       "transport": "web"}
            submitted = admin.post("/api/commands", json={
                "command_id": "stream-1", "idempotency_key": "stream-1", "kind": "instruct",
                "target": "fake-1/s1", "payload": {"text": "do the thing"}, "issuer": spoofed, **spoofed}).json()
            assert submitted["outcome"] == "accepted"
            accepted = [r["details"] for r in audit(admin, "command.accepted")
                        if r["details"]["command_id"] == "stream-1"]
            assert accepted[0]["issuer"] == {"operator_id": "operator", "endpoint_id": login["endpoint_id"],
                                             "session_id": login["session_id"], "transport": "cli"}
            live = await until(fresh, lambda m: m["type"] == "events" and any(
                e.get("command", {}).get("command_id") == "stream-1" for e in m["events"]))
            assert live["events"][0]["lsn"] > cursor
            deliver = await until(adapter, lambda m: m["type"] == "deliver")
            assert deliver["command"]["command_id"] == "stream-1"

        # Resuming from a known cursor replays exactly what was missed, verdict ok.
        async with open_websocket_url(ws_url(deploy.url, f"/api/stream?cursor={cursor}"),
                                      extra_headers=auth) as resumed:
            hello = await receive(resumed)
            assert hello["verdict"] == "ok" and hello["cursor"] == cursor
            events = await receive(resumed)
            assert events["type"] == "events" and events["events"][0]["lsn"] == cursor + 1
            assert "command.accepted" in [e["kind"] for e in events["events"]]
            assert all("do the thing" not in json.dumps(e["payload"]) for e in events["events"]
                       if e["kind"] != "command.accepted")
        for query in (f"cursor={cursor}&domain=dom-someone-else", "cursor=99999999", "cursor=not-a-number"):
            async with open_websocket_url(ws_url(deploy.url, f"/api/stream?{query}"), extra_headers=auth) as other:
                assert (await receive(other))["verdict"] == "snapshot", query
                assert (await receive(other))["type"] == "snapshot"

        # The adapter raises an approval; the CLI answers it exactly once.
        await adapter.send_message(json.dumps({
            "type": "elicitation", "seq": 2, "runtime_session_id": "s1", "generation": 1,
            "elicitation_id": "eli-1", "kind": "approval", "command_id": "stream-1", "title": "Run it?",
            "body": "rm -rf build"}))
        assert (await receive(adapter)) == {"type": "ack", "seq": 2}
        first = await trio.to_thread.run_sync(lambda: run_cli(deploy.env, "approve", "eli-1", "--allow", "--json"))
        assert first.returncode == 0, first.stderr
        answer = json.loads(first.stdout)
        assert answer["outcome"] == "accepted" and answer["command"]["kind"] == "approval-response"
        delivered = await until(adapter, lambda m: m["type"] == "deliver")
        assert delivered["command"]["payload"] == {"elicitation_id": "eli-1", "decision": "approve"}
        second = await trio.to_thread.run_sync(lambda: run_cli(deploy.env, "approve", "eli-1", "--deny"))
        assert second.returncode == 2 and "answered" in second.stdout + second.stderr
        neither = await trio.to_thread.run_sync(lambda: run_cli(deploy.env, "approve", "eli-1"))
        assert neither.returncode == 2 and "--allow or --deny" in neither.stderr
        unknown = await trio.to_thread.run_sync(lambda: run_cli(deploy.env, "approve", "eli-nope", "--allow"))
        assert unknown.returncode == 2
    admin.close()


async def test_stream_needs_a_session_and_the_same_origin_for_cookies(deploy: Deployment) -> None:
    async def close_code(url: str, headers: list[tuple[bytes, bytes]]) -> int | None:
        async with open_websocket_url(url, extra_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed, trio.fail_after(30):
                await ws.get_message()
            return closed.value.reason.code

    stream = ws_url(deploy.url, "/api/stream?cursor=-1")
    assert await close_code(stream, []) == 4401
    browser = await trio.to_thread.run_sync(lambda: Browser(deploy.url))
    cookie = (b"Cookie", f"{browser.cookie.name}={browser.cookie.value}".encode())
    assert await close_code(stream, [cookie, (b"Origin", b"http://evil.example")]) == 4403
    async with open_websocket_url(stream, extra_headers=[cookie, (b"Origin", deploy.url.encode())]) as ws:
        assert (await receive(ws))["verdict"] == "snapshot"
    refused = await trio.to_thread.run_sync(lambda: httpx.get(
        deploy.url + "/api/audit", params={"kind": "security.request_refused"},
        headers={"Authorization": "Bearer nothing"}))
    assert refused.status_code == 401


async def test_a_revoked_session_loses_its_open_stream(deploy: Deployment) -> None:
    browser = await trio.to_thread.run_sync(lambda: Browser(deploy.url))
    cookie = (b"Cookie", f"{browser.cookie.name}={browser.cookie.value}".encode())
    stream = ws_url(deploy.url, "/api/stream?cursor=-1")
    async with open_websocket_url(stream, extra_headers=[cookie, (b"Origin", deploy.url.encode())]) as ws:
        await until(ws, lambda message: message["type"] == "live")
        me = (await trio.to_thread.run_sync(lambda: browser.get("/api/me"))).json()
        revoked = await trio.to_thread.run_sync(
            lambda: browser.post(f"/api/security/sessions/{me['session_id']}/revoke"))
        assert revoked.status_code == 200, revoked.text
        with pytest.raises(ConnectionClosed) as closed, trio.fail_after(30):
            while True:
                await ws.get_message()
        assert closed.value.reason.code == 4401
    browser.close()
