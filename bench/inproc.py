"""In-process scenarios: the core API with no HTTP in between (``Core.submit``).

An adapter is attached through ``AdapterPlane.attach``/``handle`` with real frame text (as
``tests/core/harness.py`` does), its outbox is drained by a task standing in for the
websocket, and concurrent submitters call ``Core.submit`` with a real clock and a
``synchronous=FULL`` journal.
"""

from __future__ import annotations

import json
import resource
import time
from typing import Any

import trio
from common import BENCH_ADAPTER, Home, attach_bench_adapter, median, pct

from patchbay.core import Core
from patchbay.domain.acceptance import Submission
from patchbay.domain.model import Issuer


async def _acceptance(home: Home, seconds: float, concurrency: int, sessions: int) -> dict[str, Any]:
    core = Core(home.journal, expected_domain=home.domain)
    credential = home.credential_file.read_text().strip()
    async with trio.open_nursery() as nursery:
        await nursery.start(core.run)
        connection = await attach_bench_adapter(core, credential, generation=int(time.time()), kinds=["instruct"])

        async def drain() -> None:
            while True:
                try:
                    await connection.receive()
                except trio.EndOfChannel:
                    return

        nursery.start_soon(drain)
        for index in range(sessions):
            await core.adapters.handle(connection, json.dumps({
                "type": "session", "seq": index + 1, "runtime_session_id": f"s{index:03d}", "generation": 1,
                "activity": "idle", "snapshot_tier": "authoritative", "label": "", "metadata": {},
                "connectivity": "live"}))
        login = await core.create_operator_session(session_kind="cli", address="127.0.0.1", label="bench")
        issuer = Issuer(login.operator_id, login.endpoint_id, login.session_id, "cli")
        latencies: list[float] = []
        refused: list[str] = []
        commits_before = core.journal.commits
        lsn_before = core.state.last_lsn
        end = time.perf_counter() + seconds

        async def submitter(worker: int) -> None:
            count = 0
            while time.perf_counter() < end:
                count += 1
                command_id = f"in-{worker}-{count}"
                started = time.perf_counter()
                result = await core.submit(Submission(
                    command_id=command_id, idempotency_key=command_id, kind="instruct",
                    target=f"{BENCH_ADAPTER}/s{(worker + count) % sessions:03d}", payload={"text": "true"}), issuer)
                latencies.append((time.perf_counter() - started) * 1000)
                if result.command is None and len(refused) < 3:
                    refused.append(result.reason)

        begin = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        async with trio.open_nursery() as workers:
            for worker in range(concurrency):
                workers.start_soon(submitter, worker)
        wall = time.perf_counter() - begin
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        commits = core.journal.commits - commits_before
        events = core.state.last_lsn - lsn_before
        nursery.cancel_scope.cancel()
    return {"rate": len(latencies) / wall, "accepted": len(latencies), "p50_ms": median(latencies),
            "p99_ms": pct(latencies, 99), "mean_batch": events / commits if commits else 0.0,
            "refused": refused, "cpu_ms": 1000 * cpu / max(1, len(latencies))}


def acceptance(home: Home, seconds: float, concurrency: int, sessions: int = 100) -> dict[str, Any]:
    return trio.run(_acceptance, home, seconds, concurrency, sessions)
