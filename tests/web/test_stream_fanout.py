"""A stream subscriber that never reads slows neither the other subscribers nor acceptance.

The stuck subscriber is a raw socket with a tiny receive buffer that completes the websocket
handshake and then never reads; the commands submitted afterwards carry enough payload that
its socket buffers fill (more than the kernel's largest send buffer), so the server's send to
it blocks. Meanwhile every submission must be answered ``accepted`` and a reading subscriber
must receive every ``command.accepted`` event, in LSN order. No timing is asserted.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.processes import Deployment, serving_shell
from tests.web.browser import bearer

pytestmark = pytest.mark.slow

PAD = 48 * 1024  # per command, under the 64 KiB payload limit


def largest_send_buffer() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with serving_shell(tmp_path_factory.mktemp("fanout")) as d:
        yield d


def stuck_subscriber(url: str, token: str, cursor: int) -> socket.socket:
    """Open /api/stream, read the handshake answer, and then never read again."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/stream?cursor={cursor} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(1)
        assert chunk, "the server closed the stuck subscriber's connection during the handshake"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


async def test_a_subscriber_that_never_reads_delays_neither_others_nor_acceptance(deploy: Deployment) -> None:
    http, login = bearer(deploy.url)
    token = login["token"]
    lsn = int(http.get("/api/commands").json().get("lsn", 0) or 0)
    count = (largest_send_buffer() + 2 * 1024 * 1024) // PAD + 1
    ids = [f"fan-{index}" for index in range(count)]
    stuck = stuck_subscriber(deploy.url, token, lsn)
    seen: list[str] = []
    lsns: list[int] = []
    try:
        ws_url = deploy.url.replace("http://", "ws://") + f"/api/stream?cursor={lsn}"
        async with open_websocket_url(ws_url, extra_headers=[("Authorization", f"Bearer {token}")],
                                      max_message_size=64 * 1024 * 1024) as ws:
            with trio.fail_after(60):
                while json.loads(await ws.get_message()).get("type") != "live":
                    pass

            def submit_all() -> list[dict[str, Any]]:
                return [http.post("/api/commands", json={
                    "command_id": command_id, "idempotency_key": command_id, "kind": "instruct",
                    "target": "shell-1/demo", "payload": {"text": "true", "pad": "x" * PAD}}).json()
                    for command_id in ids]

            answers = await trio.to_thread.run_sync(submit_all)
            assert [a["outcome"] for a in answers] == ["accepted"] * count, [a for a in answers
                                                                              if a["outcome"] != "accepted"][:1]
            with trio.fail_after(60):
                while len(seen) < count:
                    message = json.loads(await ws.get_message())
                    for event in message.get("events", []):
                        lsns.append(event["lsn"])
                        if event["kind"] == "command.accepted":
                            seen.append(event["payload"]["command_id"])
        assert seen == ids
        assert lsns == sorted(lsns) and len(set(lsns)) == len(lsns)
        # The stuck subscriber really holds unread data: it is behind, not gone.
        stuck.setblocking(False)
        assert stuck.recv(1, socket.MSG_PEEK)
    finally:
        stuck.close()
        http.close()

