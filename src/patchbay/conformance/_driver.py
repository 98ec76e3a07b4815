"""The real core, in process, on a journal file: what vectors and model traces run against.

``CoreHost`` owns one ``Core`` at a time inside the caller's nursery and can restart it on the
same journal (the next core recovers from disk, exactly as after ``patchbay serve`` restarts).
Time is a ``ManualClock`` that only vectors move. Adapters are scripted: they speak real frame
text through ``AdapterPlane.attach/handle``, the same code a websocket drives. Browser requests
go through the real quart app (``create_app``) with its test client, cookies kept by hand so a
session survives a core restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
import trio.testing

from patchbay.core import AdapterConnection, Core, CoreSettings, initialize_journal
from patchbay.core.ports import ManualClock, RandomIds
from patchbay.errors import Refused
from patchbay.registry import CommandKind, IdempotencyStrength, SnapshotTier
from patchbay.web.app import create_app
from patchbay.wire import adapter as wire

DOMAIN = "dom-conformance"
PASSWORD = "conformance vector password"
SERVER_KEY = b"conformance-server-key-0123456789abcdef"
SETTINGS = CoreSettings(stale_after=15, offline_after=30, ask_timeout=30)
ORIGIN = "http://localhost"
LOOPBACK = {"client": ("127.0.0.1", 40000)}


class ScriptedAdapter:
    """One adapter principal; its frame sequence numbers keep rising across attachments."""

    def __init__(self, adapter_id: str) -> None:
        self.adapter_id = adapter_id
        self.credential = f"credential-{adapter_id}"
        self.seq = 0
        self.connection: AdapterConnection | None = None
        self.generation = 1
        self.deployment_scope = "vector-host"

    async def attach(self, core: Core, *, generation: int, deployment_scope: str,
                     kinds: list[str] | None = None) -> dict[str, Any]:
        self.generation, self.deployment_scope = generation, deployment_scope
        hello = wire.decode_frame(json.dumps({
            "type": "hello", "protocol": wire.PROTOCOL_VERSION, "adapter_id": self.adapter_id,
            "credential": self.credential, "adapter_generation": generation,
            "deployment_scope": deployment_scope,
            "manifest": {"kinds": kinds or [CommandKind.instruct, CommandKind.cancel, CommandKind.interrupt,
                                                 CommandKind.query],
                         "cancellation": True, "idempotency": IdempotencyStrength.at_patchbay_boundary,
                         "snapshot_tier": SnapshotTier.authoritative}}))[1]
        try:
            self.connection = await core.adapters.attach(hello)
        except Refused as refused:
            return {"type": "error", "code": "attach_refused", "error": str(refused)}
        return {"type": "welcome"}

    def received(self) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        if self.connection is None:
            return frames
        while True:
            try:
                frames.append(json.loads(self.connection.receive_nowait()))
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return frames

    async def send(self, core: Core, frame: dict[str, Any]) -> dict[str, Any]:
        if self.connection is None:
            raise RuntimeError(f"adapter {self.adapter_id} is not attached")
        if frame.get("type") != "heartbeat" and "seq" not in frame:
            self.seq += 1
            frame = {**frame, "seq": self.seq}
        answer: dict[str, Any] = json.loads(await core.adapters.handle(self.connection, json.dumps(frame)))
        return answer


class CoreHost:
    """Start, restart and settle the core of one vector run."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "journal.db"
        self.clock = ManualClock()
        initialize_journal(self.path, DOMAIN, PASSWORD, clock=self.clock, ids=RandomIds())
        self._core: Core | None = None
        self._scope: trio.CancelScope | None = None
        self._done: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self.app: Any = None
        self.client: Any = None
        self.adapters: dict[str, ScriptedAdapter] = {}
        self.restarts = 0

    @property
    def core(self) -> Core:
        if self._core is None:
            raise RuntimeError("the core is not running")
        return self._core

    async def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        core = Core(self.path, expected_domain=DOMAIN, clock=self.clock,
                    ids=RandomIds(), settings=SETTINGS)
        self._done = trio.Event()
        done = self._done
        scope = self._scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[Core] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await core.run(task_status=task_status)
            finally:
                done.set()

        await nursery.start(run)
        self._core = core
        self.app = create_app(core, server_key=SERVER_KEY, public_origins=(ORIGIN,))  # the test client has no listener
        self.client = self.app.test_client()
        for adapter in self.adapters.values():
            adapter.connection = None

    async def stop(self) -> None:
        if self._scope is not None and self._done is not None:
            await self.settle()
            self._scope.cancel()
            await self._done.wait()
        self._core = None

    async def restart(self) -> None:
        assert self._nursery is not None
        await self.stop()
        self.restarts += 1
        await self.start(self._nursery)

    async def settle(self) -> None:
        """Until every task is blocked and nothing decided is still committing."""
        core = self.core
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if core.journal.in_flight == 0:
                await trio.testing.wait_all_tasks_blocked()
                if core.journal.in_flight == 0:
                    return
            await core.journal.drained()

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.settle()

    async def adapter(self, adapter_id: str) -> ScriptedAdapter:
        adapter = self.adapters.get(adapter_id)
        if adapter is None:
            adapter = self.adapters[adapter_id] = ScriptedAdapter(adapter_id)
            await self.core.adapters.register(adapter_id, "shell", adapter.credential)
        return adapter
