"""A one-request TCP relay that lets a test act between a request and its answer.

It accepts one connection, forwards one HTTP request upstream, reads the whole answer, calls
``between`` (e.g. to SIGKILL the server), and then closes the client connection without
relaying the answer: from the client's side the request was sent and no answer ever came.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


def read_http_message(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class SwallowingProxy:
    def __init__(self, upstream_port: int, between: Callable[[], None]) -> None:
        self.upstream_port = upstream_port
        self.between = between
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(60)
        self.port = self.listener.getsockname()[1]
        self.request = b""
        self.swallowed = b""
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        try:
            client, _ = self.listener.accept()
            with client, socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60) as upstream:
                self.request = read_http_message(client)
                upstream.sendall(self.request)
                self.swallowed = read_http_message(upstream)
                self.between()
        except BaseException as problem:  # reported to the test through join()
            self.error = problem
        finally:
            self.listener.close()

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the relay did not finish"
        if self.error is not None:
            raise self.error
