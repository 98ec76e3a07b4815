"""Scenarios against a real ``patchbay serve`` process (HTTP API, websockets, real adapters).

Load comes from separate client processes (``load.py``, ``subscribers.py``, ``adapter.py``)
so the daemon's CPU is its own; on 2 cores the clients still compete with it, and every
result says how much CPU the clients used.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import trio
from common import (
    BENCH_ADAPTER,
    STREAM_ADAPTER,
    Home,
    Server,
    bench_script,
    median,
    pct,
    python,
    run_json,
)
from floors import EchoServer, load, open_loop_post
from trio_websocket import open_websocket_url

READY = re.compile(r"bench adapter ready")
STREAMED = re.compile(r"bench adapter streamed (\d+)")


def targets(sessions: int) -> str:
    return ",".join(f"{BENCH_ADAPTER}/s{index:03d}" for index in range(sessions))


def start_adapter(home: Home, server: Server, sessions: int, *, deltas: float = 0.0, stream_sessions: int = 1,
                  stream_seconds: float = 0.0, complete: bool = False, adapter_id: str = BENCH_ADAPTER) -> Any:
    argv = bench_script("adapter.py") + ["--url", server.url, "--id", adapter_id,
                                         "--credential-file", str(home.credential(adapter_id)),
                                         "--sessions", str(sessions), "--deltas", str(deltas),
                                         "--stream-sessions", str(stream_sessions),
                                         "--stream-seconds", str(stream_seconds)]
    if complete:
        argv.append("--complete")
    child = home.spawn(argv, "adapter")
    child.wait_line(READY, timeout=300)
    return child


def throughput(home: Home, server: Server, token: str, clients: int, duration: float, sessions: int) -> dict[str, Any]:
    processes = 1 if clients < 16 else 2
    return load(home, server.url, token, clients, duration, processes, prefix=f"tp{clients}",
                targets=targets(sessions))


def latency(home: Home, server: Server, token: str, rate: float, duration: float, sessions: int,
            prefix: str = "lat") -> dict[str, Any]:
    return load(home, server.url, token, 16, duration, 1, prefix=prefix, targets=targets(sessions),
                mode="open", rate=rate)


def head_lsn(server: Server, token: str) -> int:
    return int(server.status(token)["lsn"])


def fan_out(home: Home, server: Server, token: str, count: int, submissions: int, *, slow: bool) -> dict[str, Any]:
    argv = bench_script("subscribers.py") + ["--url", server.url, "--token", token,
                                             "--cursor", str(head_lsn(server, token)), "--count", str(count),
                                             "--submit", str(submissions), "--interval", "0.02",
                                             "--prefix", f"fan{count}{'s' if slow else ''}"]
    if slow:
        argv.append("--slow")
    result = run_json(argv, home.env)
    delays = result["accepted_ms"]
    return {"p50_ms": median(delays), "p99_ms": pct(delays, 99), "max_ms": max(delays) if delays else float("nan"),
            "deliveries": len(delays), "submit_p99_ms": pct(result["submit_ms"], 99), "slow": result["slow"],
            "client_cpu": result.get("cpu")}


def streaming(home: Home, server: Server, token: str, *, deltas: float, subscribers: int, duration: float,
              rate: float, sessions: int) -> dict[str, Any]:
    """A second adapter streams deltas to subscribers while submissions come at ``rate`` to the
    bench adapter's sessions (which must be attached).

    Then, with the stream still running, the same open-loop client submits at the same rate to
    a bare hypercorn app (``echo_app.py``) for as long: the floor of what any server on this
    stack answers while this machine carries the same streaming load (the stream through
    ``serve``, the subscriber and adapter processes)."""
    cursor = head_lsn(server, token)
    listen = home.spawn(bench_script("subscribers.py") + [
        "--url", server.url, "--token", token, "--cursor", str(cursor), "--count", str(subscribers),
        "--duration", str(2 * duration + 6)], "stream-subscribers")
    echo = EchoServer(home)
    adapter = start_adapter(home, server, 1, deltas=deltas, stream_sessions=1, stream_seconds=2 * duration + 3,
                            adapter_id=STREAM_ADAPTER)
    time.sleep(min(1.0, duration))  # let the stream reach its rate before measuring acceptance under it
    measured = latency(home, server, token, rate, duration, sessions, prefix="stream")
    bare = open_loop_post(home, echo.url, duration, rate, "stream-floor")
    echo.stop()
    sent = int(adapter.wait_line(STREAMED, timeout=300).group(1))
    listen.process.wait(timeout=300)
    text = listen.log_path.read_text()
    document = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
    other = document["other_ms"]
    adapter.stop()
    return {"accept_p50_ms": measured["p50_ms"], "accept_p99_ms": measured["p99_ms"],
            "accept_scheduled_p99_ms": measured["scheduled_p99_ms"],
            "bare_p50_ms": bare["p50_ms"], "bare_p99_ms": bare["p99_ms"],
            "deltas_per_s": sent / (2 * duration + 3), "delta_delivery_p99_ms": pct(other, 99),
            "events_per_subscriber": median(document["events"])}


async def _reconnect(url: str, token: str, cursor: int, repeats: int) -> list[float]:
    ws_url = url.replace("http://", "ws://") + f"/api/stream?cursor={cursor}"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        async with open_websocket_url(ws_url, extra_headers=[("Authorization", f"Bearer {token}")],
                                      max_message_size=64 * 1024 * 1024) as ws:
            verdict = None
            while True:
                message = json.loads(await ws.get_message())
                if message.get("type") == "hello":
                    verdict = message.get("verdict")
                if message.get("type") == "live":
                    break
            times.append((time.perf_counter() - started) * 1000)
        if verdict != "ok":
            raise RuntimeError(f"a cursor 100 behind got verdict {verdict!r}, expected ok")
    return times


def reconnect(server: Server, token: str, behind: int, repeats: int) -> dict[str, Any]:
    cursor = head_lsn(server, token) - behind
    times = trio.run(_reconnect, server.url, token, cursor, repeats)
    return {"p50_ms": median(times), "p99_ms": pct(times, 99)}


def replay_rate(home: Home) -> dict[str, Any]:
    done = run_json([python(), "-m", "patchbay", "replay", str(home.journal), "--check", "--json"], home.env)
    if done.get("violations"):
        raise RuntimeError(f"replay --check found violations in a bench journal: {done['violations'][:3]}")
    return {"events_per_s": float(done["events_per_second"]), "events": int(done["events"]),
            "seconds": float(done["seconds"])}


def e2e(home: Home, server: Server, token: str, count: int, workspace: Path) -> dict[str, Any]:
    """Submit ``true`` to a real shell adapter, one at a time; time submit -> completed on the stream."""
    workspace.mkdir(parents=True, exist_ok=True)
    credential = home.credential("shell-1")
    shell = home.spawn([python(), "-m", "patchbay", "adapter", "run", "shell", "--id", "shell-1", "--core",
                        server.url, "--credential-file", str(credential), "--workspace", f"demo:{workspace}"],
                       "shell-adapter")
    deadline = time.monotonic() + 120
    while server.status(token)["sessions"] == [] or not any(
            s["target"] == "shell-1/demo" and s["connectivity"] == "live" for s in server.status(token)["sessions"]):
        if time.monotonic() > deadline:
            raise TimeoutError("the shell adapter's session never became live")
        time.sleep(0.05)
    times = trio.run(_e2e, server, token, count)
    shell.stop()
    return {"p50_ms": median(times), "p99_ms": pct(times, 99)}


async def _e2e(server: Server, token: str, count: int) -> list[float]:
    from load import body_for
    from rawhttp import RawHttp

    host, port = server.host_port
    client = RawHttp(host, port, token)
    await client.connect()
    ws_url = server.url.replace("http://", "ws://") + f"/api/stream?cursor={head_lsn(server, token)}"
    times = []
    async with open_websocket_url(ws_url, extra_headers=[("Authorization", f"Bearer {token}")],
                                  max_message_size=64 * 1024 * 1024) as ws:
        while json.loads(await ws.get_message()).get("type") != "live":
            pass
        for index in range(count):
            command_id = f"e2e-{index}"
            started = time.perf_counter()
            status, answer = await client.send(client.request_bytes(
                "POST", "/api/commands", body_for(command_id, "shell-1/demo", "true")))
            if status != 200:
                raise RuntimeError(f"e2e submission refused: {answer[:300]!r}")
            done = False
            with trio.fail_after(60):
                while not done:
                    message = json.loads(await ws.get_message())
                    for event in message.get("events", []):
                        payload = event.get("payload", {})
                        if payload.get("command_id") == command_id and payload.get("state") in (
                                "completed", "failed", "cancelled", "expired"):
                            if payload["state"] != "completed":
                                raise RuntimeError(f"e2e command ended {payload['state']}: {payload}")
                            done = True
            times.append((time.perf_counter() - started) * 1000)
    await client.aclose()
    return times


def wait_quiet(server: Server, token: str, still: float = 1.0, timeout: float = 300.0) -> float:
    """Poll until the journal head has not moved for ``still`` seconds (the daemon has worked
    off what the adapters sent); returns how long that took."""
    begin = time.monotonic()
    last, since = head_lsn(server, token), time.monotonic()
    while time.monotonic() - since < still:
        if time.monotonic() - begin > timeout:
            raise TimeoutError("the journal head kept moving: the daemon never went quiet")
        time.sleep(0.1)
        current = head_lsn(server, token)
        if current != last:
            last, since = current, time.monotonic()
    return time.monotonic() - begin - still


def idle(server: Server, seconds: float) -> dict[str, float]:
    before = server.child.cpu_seconds()
    time.sleep(seconds)  # measuring a window of wall time, not synchronizing
    used = server.child.cpu_seconds() - before
    return {"cpu_percent": 100 * used / seconds}
