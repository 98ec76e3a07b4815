"""A minimal keep-alive HTTP/1.1 client on trio streams, for load generation.

httpx costs about half a millisecond of client CPU per request, which on a 2-core machine
would make the client, not the server, the bottleneck. This client sends pre-built request
bytes and reads exactly ``Content-Length`` bytes back; it understands only what our server
and the bare floor app send (no chunked bodies, no redirects).
"""

from __future__ import annotations

import trio


class RawHttp:
    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.host = host
        self.port = port
        self.token = token
        self._stream: trio.SocketStream | None = None
        self._buffer = b""

    async def connect(self) -> None:
        self._stream = await trio.open_tcp_stream(self.host, self.port)

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    def request_bytes(self, method: str, path: str, body: bytes = b"") -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}"]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one request and return (status, body)."""
        assert self._stream is not None
        await self._stream.send_all(request)
        while b"\r\n\r\n" not in self._buffer:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
                break
        while len(rest) < length:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-body")
            rest += chunk
        self._buffer = rest[length:]
        return status, rest[:length]
