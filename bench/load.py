"""Load generator process: submits commands over ``POST /api/commands`` (or posts to a floor app).

closed loop: each of ``--connections`` keep-alive connections submits, waits for the answer,
and submits again, for ``--duration`` seconds (throughput).
open loop: submissions are scheduled at ``--rate`` per second regardless of answers, spread
round-robin over the targets, on a pool of connections (latency at a given load). Latency is
measured from the moment the client is ready to send (its timer for that submission fired),
so waiting for a free connection, i.e. a stalled server's queueing, is counted. The timer's own
lateness is not the server's: trio sleeps through epoll, whose timeout has millisecond
granularity, so a wake-up comes up to ~1 ms after the scheduled time. It is reported apart
(``lateness_ms``), with the latency from the scheduled time (``scheduled_latencies_ms``).

Prints one JSON line: counts, statuses, latencies (ms), wall and client CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rawhttp import RawHttp  # noqa: E402


def body_for(command_id: str, target: str, text: str) -> bytes:
    return json.dumps({"command_id": command_id, "idempotency_key": command_id, "kind": "instruct",
                       "target": target, "payload": {"text": text}}, separators=(",", ":")).encode()


async def main(args: argparse.Namespace) -> dict[str, object]:
    host, port = args.url.split("://", 1)[1].rsplit(":", 1)
    targets = [t for t in args.targets.split(",") if t]
    clients = [RawHttp(host, int(port), args.token) for _ in range(args.connections)]
    for client in clients:
        await client.connect()
    latencies: list[float] = []
    scheduled_latencies: list[float] = []
    lateness: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    counter = 0

    def next_request(client: RawHttp) -> bytes:
        nonlocal counter
        counter += 1
        command_id = f"{args.prefix}-{counter}"
        return client.request_bytes("POST", args.path, body_for(command_id, targets[counter % len(targets)], args.text))

    def record(status: int, answer: bytes, started: float) -> None:
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200 and len(errors) < 5:
            errors.append(answer[:300].decode(errors="replace"))

    started_wall = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    if args.mode == "closed":
        end = time.perf_counter() + args.duration

        async def loop(client: RawHttp) -> None:
            while time.perf_counter() < end:
                request = next_request(client)
                started = time.perf_counter()
                status, answer = await client.send(request)
                record(status, answer, started)

        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(loop, client)
    else:
        free_send, free_receive = trio.open_memory_channel[RawHttp](len(clients))
        for client in clients:
            free_send.send_nowait(client)
        interval = 1.0 / args.rate
        total = int(args.rate * args.duration)
        begin = time.perf_counter()

        async def one(client: RawHttp, request: bytes, ready: float, scheduled: float) -> None:
            status, answer = await client.send(request)
            record(status, answer, ready)
            scheduled_latencies.append((time.perf_counter() - scheduled) * 1000)
            free_send.send_nowait(client)

        async with trio.open_nursery() as nursery:
            for index in range(total):
                scheduled = begin + index * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await trio.sleep(delay)
                ready = time.perf_counter()
                lateness.append((ready - scheduled) * 1000)
                client = await free_receive.receive()  # none free: the server is behind, and it counts
                nursery.start_soon(one, client, next_request(client), ready, scheduled)
    wall = time.perf_counter() - started_wall
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for client in clients:
        await client.aclose()
    return {"ok": statuses.get(200, 0), "requests": len(latencies), "statuses": statuses, "errors": errors,
            "latencies_ms": [round(v, 4) for v in latencies], "wall": wall,
            "scheduled_latencies_ms": [round(v, 4) for v in scheduled_latencies],
            "lateness_ms": [round(v, 4) for v in lateness],
            "cpu": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--path", default="/api/commands")
    parser.add_argument("--targets", default="bench/s000")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--prefix", default="load")
    parser.add_argument("--text", default="true")
    print(json.dumps(trio.run(main, parser.parse_args())))
