"""Stream subscribers process: N websocket clients on ``/api/stream`` (plus an optional slow one
that never reads), optionally submitting commands itself, measuring delivery latency.

Delivery latency of an event = wall-clock receipt time - the event's ``ts`` (stamped by the
core when it decided the event, just before its commit), on the same machine's clock.
With ``--submit K`` the process submits K commands ``--interval`` seconds apart and waits
until every fast subscriber has seen each ``command.accepted``; otherwise it listens for
``--duration`` seconds. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import body_for  # noqa: E402
from rawhttp import RawHttp  # noqa: E402


class Listener:
    def __init__(self) -> None:
        self.accepted_ms: list[float] = []
        self.other_ms: list[float] = []
        self.seen_commands: set[str] = set()
        self.events = 0
        self.messages = 0
        self.changed = trio.Event()


async def listen(url: str, headers: list[tuple[str, str]], listener: Listener, prefix: str,
                 ready: trio.Event) -> None:
    async with open_websocket_url(url, extra_headers=headers, max_message_size=64 * 1024 * 1024) as ws:
        while True:
            message = json.loads(await ws.get_message())
            now = time.time()
            if message.get("type") == "live":
                ready.set()
            if message.get("type") != "events":
                continue
            listener.messages += 1
            for event in message["events"]:
                listener.events += 1
                delay = (now - float(event["ts"])) * 1000
                command_id = str(event.get("payload", {}).get("command_id") or "")
                if event["kind"] == "command.accepted" and command_id.startswith(prefix):
                    listener.accepted_ms.append(delay)
                    listener.seen_commands.add(command_id)
                else:
                    listener.other_ms.append(delay)
            listener.changed.set()
            listener.changed = trio.Event()


async def slow(url: str, headers: list[tuple[str, str]], status: dict[str, Any], ready: trio.Event) -> None:
    """Connect, read up to the live marker, then never read again."""
    try:
        async with open_websocket_url(url, extra_headers=headers, message_queue_size=1) as ws:
            while json.loads(await ws.get_message()).get("type") != "live":
                pass
            ready.set()
            await trio.sleep_forever()
    except ConnectionClosed as closed:
        status["closed"] = str(closed.reason)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ws_url = args.url.replace("http://", "ws://") + f"/api/stream?cursor={args.cursor}"
    headers = [("Authorization", f"Bearer {args.token}")]
    listeners = [Listener() for _ in range(args.count)]
    slow_status: dict[str, Any] = {"present": args.slow}
    prefix = f"{args.prefix}-"
    submit_ms: list[float] = []
    async with trio.open_nursery() as nursery:
        readies = []
        for listener in listeners:
            ready = trio.Event()
            readies.append(ready)
            nursery.start_soon(listen, ws_url, headers, listener, prefix, ready)
        if args.slow:
            ready = trio.Event()
            readies.append(ready)
            nursery.start_soon(slow, ws_url, headers, slow_status, ready)
        with trio.fail_after(120):
            for ready in readies:
                await ready.wait()
        print("subscribers ready", file=sys.stderr, flush=True)
        if args.submit:
            host, port = args.url.split("://", 1)[1].rsplit(":", 1)
            client = RawHttp(host, int(port), args.token)
            await client.connect()
            for index in range(args.submit):
                command_id = f"{prefix}{index}"
                started = time.perf_counter()
                status, _ = await client.send(client.request_bytes(
                    "POST", "/api/commands", body_for(command_id, args.target, "true")))
                submit_ms.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    raise RuntimeError(f"submission refused with {status}")
                with trio.fail_after(60):
                    for listener in listeners:
                        while command_id not in listener.seen_commands:
                            await listener.changed.wait()
                await trio.sleep(args.interval)
            await client.aclose()
        else:
            await trio.sleep(args.duration)
        nursery.cancel_scope.cancel()
    accepted = [v for listener in listeners for v in listener.accepted_ms]
    other = [v for listener in listeners for v in listener.other_ms]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"accepted_ms": accepted, "other_ms": other[:200_000], "events": [each.events for each in listeners],
            "messages": [each.messages for each in listeners],
            "submit_ms": submit_ms, "slow": slow_status, "cpu": usage.ru_utime + usage.ru_stime}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--cursor", type=int, required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--slow", action="store_true")
    parser.add_argument("--submit", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--target", default="bench/s000")
    parser.add_argument("--prefix", default="fan")
    print(json.dumps(trio.run(main, parser.parse_args())))
