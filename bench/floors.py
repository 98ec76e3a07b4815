"""Floors: what the raw stack does on this machine, measured in the same run as the figures.

- apsw append: the journal's table, WAL, ``synchronous=FULL``, rows of the journal's size,
  committed in transactions of the same batch size the journal writer used.
- websocket echo round trip and HTTP POST rate: a bare ASGI app on hypercorn's trio worker,
  driven by the same clients as the real API (trio-websocket, the raw keep-alive client).
- SQLite scan: every row of a journal's events table, in LSN order, no decoding.
- process spawn: ``/bin/sh -c true`` through trio, as the shell adapter starts a command.
- interpreter + imports: ``python -c 'import patchbay.daemon, patchbay.web.app'``.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import apsw
import trio
from common import Home, bench_script, median, pct, python, run_json
from trio_websocket import open_websocket_url

from patchbay.journal import JournalStore

ROW_PAYLOAD = json.dumps({"command_id": "c" * 28, "idempotency_key": "k" * 28, "target": "bench/s000",
                          "issuer": {"operator_id": "operator", "endpoint_id": "e" * 28, "session_id": "s" * 28},
                          "payload": {"text": "true"}, "grant_id": "g" * 28, "generation": 1, "adapter_id": "bench",
                          "deployment_scope": "bench", "kind": "instruct", "expires_at": None})


def apsw_append(batch: int, seconds: float) -> dict[str, float]:
    """Rows/s and commit p50/p99 (ms) appending ``batch`` rows per FULL-durability transaction."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floor.db"
        JournalStore.create(path, "floor").close()
        db = apsw.Connection(str(path))
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        lsn = int(db.execute("SELECT coalesce(max(lsn), 0) FROM events").fetchone()[0])  # type: ignore[index]
        commits: list[float] = []
        end = time.perf_counter() + seconds
        rows = 0
        begin = time.perf_counter()
        while time.perf_counter() < end:
            values = [("floor", lsn + i + 1, 1, "command.accepted", "command:c", time.time(), ROW_PAYLOAD)
                      for i in range(batch)]
            started = time.perf_counter()
            with db:
                db.executemany("INSERT INTO events(domain, lsn, core_generation, kind, entity, ts, payload) "
                               "VALUES (?,?,?,?,?,?,?)", values)
            commits.append((time.perf_counter() - started) * 1000)
            lsn += batch
            rows += batch
        wall = time.perf_counter() - begin
        db.close()
    return {"rows_per_s": rows / wall, "commit_p50_ms": median(commits), "commit_p99_ms": pct(commits, 99)}


def sqlite_scan(path: Path, limit: int | None = None) -> dict[str, float]:
    """Rows/s reading the events table in LSN order (read-only connection, no decoding)."""
    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    sql = "SELECT domain, lsn, core_generation, kind, entity, ts, payload FROM events ORDER BY lsn"
    if limit:
        sql += f" LIMIT {int(limit)}"
    started = time.perf_counter()
    rows = sum(1 for _ in db.execute(sql))
    wall = time.perf_counter() - started
    db.close()
    return {"rows": rows, "rows_per_s": rows / wall if wall else float("nan"), "seconds": wall}


def sqlite_tail(path: Path, behind: int, repeats: int = 50) -> float:
    """Median ms to read the last ``behind`` rows after a cursor (what a reconnect must read)."""
    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    domain, head = db.execute("SELECT domain, max(lsn) FROM events").fetchone()  # type: ignore[misc]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        list(db.execute("SELECT domain, lsn, core_generation, kind, entity, ts, payload FROM events "
                        "WHERE domain = ? AND lsn > ? ORDER BY lsn", (domain, int(head) - behind)))
        times.append((time.perf_counter() - started) * 1000)
    db.close()
    return median(times)


class EchoServer:
    """The bare hypercorn-trio app in its own process."""

    def __init__(self, home: Home) -> None:
        self.child = home.spawn(bench_script("echo_app.py"), "echo")
        self.url = self.child.wait_line(re.compile(r"echo listening on (http://[\d.]+:\d+)")).group(1)

    def stop(self) -> None:
        self.child.stop()


async def _ws_echo(url: str, count: int, connects: int) -> dict[str, float]:
    ws_url = url.replace("http://", "ws://") + "/echo"
    message = json.dumps({"type": "events", "events": [{"lsn": 1, "kind": "command.accepted", "payload": {}}]})
    rtts: list[float] = []
    async with open_websocket_url(ws_url) as ws:
        for _ in range(count):
            started = time.perf_counter()
            await ws.send_message(message)
            await ws.get_message()
            rtts.append((time.perf_counter() - started) * 1000)
    connect_times: list[float] = []
    for _ in range(connects):
        started = time.perf_counter()
        async with open_websocket_url(ws_url) as ws:
            await ws.send_message(message)
            await ws.get_message()
            connect_times.append((time.perf_counter() - started) * 1000)
    return {"rtt_p50_ms": median(rtts), "rtt_p99_ms": pct(rtts, 99), "connect_rtt_p50_ms": median(connect_times),
            "connect_rtt_p99_ms": pct(connect_times, 99)}


def ws_echo(url: str, count: int, connects: int) -> dict[str, float]:
    return trio.run(_ws_echo, url, count, connects)


def http_post_rate(home: Home, url: str, connections: int, duration: float, processes: int) -> dict[str, Any]:
    """Requests/s of the raw client against the bare app, with the same connection layout."""
    return load(home, url, "", connections, duration, processes, path="/post", prefix="floor")


def open_loop_post(home: Home, url: str, duration: float, rate: float, prefix: str) -> dict[str, Any]:
    """The latency client (open loop, 16 connections, one process) against the bare app."""
    return load(home, url, "", 16, duration, 1, path="/post", prefix=prefix, mode="open", rate=rate)


def load(home: Home, url: str, token: str, connections: int, duration: float, processes: int, *,
         path: str = "/api/commands", prefix: str = "load", targets: str = "bench/s000",
         mode: str = "closed", rate: float = 0.0) -> dict[str, Any]:
    """Run ``processes`` load generator processes at once; aggregate their counts and latencies."""
    per = max(1, connections // processes)
    argv_base = bench_script("load.py") + ["--url", url, "--path", path, "--targets", targets,
                                           "--mode", mode, "--duration", str(duration)]
    if token:
        argv_base += ["--token", token]
    if mode == "open":
        argv_base += ["--rate", str(rate / processes)]
    procs = []
    for index in range(processes):
        argv = argv_base + ["--connections", str(per), "--prefix", f"{prefix}-{index}"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=home.env))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=duration + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed: {err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    latencies = [v for r in results for v in r["latencies_ms"]]
    ok = sum(r["ok"] for r in results)
    wall = max(r["wall"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    scheduled = [v for r in results for v in r.get("scheduled_latencies_ms", [])]
    late = [v for r in results for v in r.get("lateness_ms", [])]
    if mode == "open":
        opened = {"scheduled_p50_ms": median(scheduled), "scheduled_p99_ms": pct(scheduled, 99),
                  "lateness_p50_ms": median(late), "lateness_p99_ms": pct(late, 99)}
    else:
        opened = {}
    return {**opened, "ok": ok, "rate": ok / wall, "p50_ms": median(latencies), "p99_ms": pct(latencies, 99),
            "statuses": statuses, "errors": [e for r in results for e in r["errors"]][:3],
            "client_cpu_share": sum(r["cpu"] for r in results) / wall, "processes": processes,
            "connections": per * processes}


async def _spawn(count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        process = await trio.lowlevel.open_process(["/bin/sh", "-c", "true"], stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT, start_new_session=True)
        assert process.stdout is not None
        async for _chunk in process.stdout:
            pass
        await process.wait()
        times.append((time.perf_counter() - started) * 1000)
    return times


def fanout_broadcast(home: Home, count: int, submissions: int) -> dict[str, Any]:
    """The stack's floor for fan-out: a bare hypercorn-trio broadcaster (``fanout_floor.py``: no
    Quart, no core, no journal, one bounded channel and task per subscriber, as ``serve``) driven
    by the same subscriber client, with the same number of subscribers and submissions."""
    return run_json(bench_script("fanout_floor.py") + ["--count", str(count), "--submit", str(submissions),
                                                         "--rounds", "1"], home.env)


def spawn_times(count: int) -> dict[str, float]:
    times = trio.run(_spawn, count)
    return {"p50_ms": median(times), "p99_ms": pct(times, 99)}


def import_time(repeats: int) -> float:
    """Median seconds for a fresh interpreter to import the daemon and the web app."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([python(), "-c", "import patchbay.daemon, patchbay.web.app"], check=True)
        times.append(time.perf_counter() - started)
    return median(times)


__all__ = ["EchoServer", "apsw_append", "http_post_rate", "import_time", "load", "run_json", "spawn_times",
           "sqlite_scan", "sqlite_tail", "ws_echo"]
