"""Fan-out floor: the stack's own price of broadcasting to websocket subscribers.

A bare ASGI app on hypercorn's trio worker (the stack ``serve`` uses), no Quart, no core, no
journal: ``POST /api/commands`` makes a ``command.accepted`` event (stamped with the time) and
offers it to every ``/api/stream`` websocket, each served by its own task from its own bounded
channel (as in ``serve``), then answers. ``bench/subscribers.py`` runs against it unchanged,
so its delivery latency is what the same client measures when the server does nothing else.

    python bench/fanout_floor.py [--count 200] [--submit 30] [--rounds 2]

prints one JSON line per round: delivery p50/p99 (ms), server and client CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parent


class Broadcast:
    def __init__(self) -> None:
        self.channels: set[trio.MemorySendChannel[str]] = set()
        self.lsn = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await self.subscriber(receive, send)
        else:
            await self.submit(receive, send)

    async def subscriber(self, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps({"type": "live", "lsn": self.lsn})})
        sender, receiver = trio.open_memory_channel[str](8192)
        self.channels.add(sender)
        try:
            async with trio.open_nursery() as nursery:
                async def until_disconnect() -> None:
                    while (await receive())["type"] != "websocket.disconnect":
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_disconnect)
                async for text in receiver:
                    await send({"type": "websocket.send", "text": text})
        finally:
            self.channels.discard(sender)

    async def submit(self, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        command_id = json.loads(body)["command_id"]
        self.lsn += 1
        text = json.dumps({"type": "events", "events": [{
            "lsn": self.lsn, "kind": "command.accepted", "ts": time.time(), "entity": f"command:{command_id}",
            "payload": {"command_id": command_id}}]})
        for channel in list(self.channels):
            try:
                channel.send_nowait(text)
            except trio.WouldBlock:
                self.channels.discard(channel)
                channel.close()
        answer = json.dumps({"outcome": "accepted", "lsn": self.lsn}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})


async def serve_floor() -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = "-"
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, Broadcast(), config)  # type: ignore[arg-type]
        print(f"floor listening on {binds[0]}", flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(args: argparse.Namespace) -> None:
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        match = re.search(r"(http://\S+)", server.stdout.readline())
        assert match is not None, "the floor server did not start"
        for round_ in range(args.rounds):
            before = cpu_seconds(server.pid)
            done = subprocess.run([sys.executable, str(HERE / "subscribers.py"), "--url", match.group(1),
                                   "--token", "-", "--cursor", "0", "--count", str(args.count),
                                   "--submit", str(args.submit), "--interval", "0.02", "--prefix", f"floor{round_}"],
                                  capture_output=True, text=True, timeout=600, check=True)
            used = cpu_seconds(server.pid) - before
            result = json.loads(done.stdout.strip().splitlines()[-1])
            delays = sorted(result["accepted_ms"])
            print(json.dumps({"subscribers": args.count, "deliveries": len(delays),
                              "p50_ms": delays[len(delays) // 2], "p99_ms": delays[int(len(delays) * 0.99)],
                              "server_cpu_s": used, "client_cpu_s": result.get("cpu")}), flush=True)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--submit", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parsed = parser.parse_args()
    if parsed.serve:
        trio.run(serve_floor)
    else:
        main(parsed)
