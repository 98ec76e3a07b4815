"""The local admin socket is optional background work: no local client can stop ``serve``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Deployment

pytestmark = pytest.mark.slow


def _ask(path: Path, data: bytes, *, wait: bool = True) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(path))  # blocking: waits while the listener's backlog is full
        client.settimeout(10)
        client.sendall(data)
        if not wait:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return b""  # closed with a reset before the answer
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = client.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def test_odd_requests_and_vanishing_clients_never_stop_serve(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    try:
        d.serve()
        sock = d.home / "admin.sock"
        assert json.loads(_ask(sock, b"[1, 2]\n"))["ok"] is False  # not an object: an answer, not a crash
        assert json.loads(_ask(sock, b'{"op": "adapter_register"}\n'))["ok"] is False
        for _ in range(20):
            _ask(sock, b'{"op": "status"}\n', wait=False)
        assert json.loads(_ask(sock, b'{"op": "status"}\n'))["ok"] is True
        assert httpx.get(d.url + "/api/status").status_code == 200
        assert d.serve_proc is not None and d.serve_proc.process.poll() is None
    finally:
        d.stop()
