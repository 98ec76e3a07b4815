"""A journal with a bit of everything, written by the real in-process core."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import trio

from patchbay.core import CoreSettings
from patchbay.core.ports import ManualClock
from tests.core.harness import running_core

TARGET = "shell-1/demo"


async def write_scenario(tmp_path: Path, *, checkpoint_every: int = 1_000_000) -> Path:
    """Commands that complete, expire, get cancelled and superseded; a generation bump, a stale
    event, a lease; a checkpoint in the middle. Returns the journal's path."""
    clock = ManualClock()
    settings = CoreSettings(stale_after=1e6, offline_after=1e6, checkpoint_every=checkpoint_every)
    async with running_core(tmp_path, clock=clock, settings=settings) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        await h.submit("done", "echo done")
        for state in ("delivered", "running"):
            await adapter.report("done", state)
        await adapter.report("done", "completed", result={"exit_code": 0})
        await adapter.report("done", "failed", failure="execution_failed")  # late: audit only
        await h.submit("short", "sleep 1", expires_at=clock.now() + 5)
        await h.submit("queued", "echo queued")
        await h.submit("stop-queued", kind="cancel", payload={"command_id": "queued"})
        await h.core.journal.checkpoint()
        await h.submit("held", "echo held")
        await adapter.report("held", "delivered")
        clock.advance(6)
        await h.settle()
        await adapter.session(generation=2)  # supersedes `held`, tombstones generation 1
        await adapter.send("observation", runtime_session_id="demo", generation=1,
                           observation={"type": "output", "text": "late"})
        await adapter.send("lease", op="acquire", resource="repo", scope="write", ttl=30)
        await h.submit("after-bump", "echo new", generation=2)
        await adapter.report("after-bump", "delivered")
        await h.settle()
    return tmp_path / "journal.db"


@functools.cache
def _scenario_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        return trio.run(write_scenario, Path(directory)).read_bytes()


def scenario_journal(directory: Path) -> Path:
    """A closed copy of the scenario's journal in ``directory`` (written once per process)."""
    path = directory / "journal.db"
    path.write_bytes(_scenario_bytes())
    return path
