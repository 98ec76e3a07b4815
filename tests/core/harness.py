"""An in-process core on a temp journal, with a manual clock, and a fake adapter speaking frames.

The fake adapter goes through ``AdapterPlane.attach/handle`` with real frame text, so the code
above the transport is the same as with a websocket.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from patchbay.core import AdapterConnection, Core, CoreSettings, initialize_journal
from patchbay.core.ports import ManualClock, RandomIds
from patchbay.domain.acceptance import Submission
from patchbay.domain.model import Issuer
from patchbay.wire import adapter as wire

PASSWORD = "correct horse battery"
DOMAIN = "dom-test"


class FakeAdapter:
    def __init__(self, core: Core, adapter_id: str, credential: str) -> None:
        self.core = core
        self.adapter_id = adapter_id
        self.credential = credential
        self.connection: AdapterConnection | None = None
        self.seq = 0
        self._pending: list[dict[str, Any]] = []

    async def attach(self, generation: int = 1, kinds: list[str] | None = None) -> dict[str, Any]:
        hello = wire.decode_frame(json.dumps({
            "type": "hello", "protocol": 1, "adapter_id": self.adapter_id, "credential": self.credential,
            "adapter_generation": generation, "deployment_scope": "test-host",
            "manifest": {"kinds": kinds or ["instruct", "cancel", "interrupt", "query"], "cancellation": True,
                         "idempotency": "at-patchbay-boundary", "snapshot_tier": "authoritative"}}))[1]
        self.connection = await self.core.adapters.attach(hello)
        self._pending = []
        frames = self.received()
        self._pending = frames[1:]
        return frames[0]

    def received(self) -> list[dict[str, Any]]:
        """Frames the core sent since the last call (the welcome is returned by attach)."""
        frames, self._pending = self._pending, []
        assert self.connection is not None
        while True:
            try:
                frames.append(json.loads(self.connection.receive_nowait()))
            except (trio.WouldBlock, trio.EndOfChannel):
                return frames

    async def send(self, frame_type: str, **fields: Any) -> dict[str, Any]:
        assert self.connection is not None
        if frame_type != "heartbeat":
            self.seq += 1
            fields.setdefault("seq", self.seq)
        answer = await self.core.adapters.handle(self.connection, json.dumps({"type": frame_type, **fields}))
        return json.loads(answer)

    async def session(self, name: str = "demo", generation: int = 1, **fields: Any) -> dict[str, Any]:
        return await self.send("session", runtime_session_id=name, generation=generation,
                               snapshot_tier="authoritative", **fields)

    async def report(self, command_id: str, state: str, **fields: Any) -> dict[str, Any]:
        return await self.send("report", command_id=command_id, state=state, **fields)

    async def detach(self, reason: str = "closed") -> None:
        assert self.connection is not None
        await self.core.adapters.detached(self.connection, reason)


class Harness:
    def __init__(self, core: Core, clock: ManualClock, path: Path) -> None:
        self.core = core
        self.clock = clock
        self.path = path
        self.issuer: Issuer | None = None

    async def login(self) -> Issuer:
        result = await self.core.create_operator_session(session_kind="browser", address="127.0.0.1", label="t")
        self.issuer = Issuer(result.operator_id, result.endpoint_id, result.session_id, "web")
        return self.issuer

    async def adapter(self, adapter_id: str = "shell-1") -> FakeAdapter:
        credential = f"secret-{adapter_id}"
        await self.core.adapters.register(adapter_id, "shell", credential)
        return FakeAdapter(self.core, adapter_id, credential)

    async def live_session(self, adapter_id: str = "shell-1") -> FakeAdapter:
        """Logged in, with ``adapter_id`` attached and its session ``demo`` reported."""
        await self.login()
        adapter = await self.adapter(adapter_id)
        await adapter.attach()
        await adapter.session()
        return adapter

    async def submit(self, command_id: str, text: str = "true", *, key: str | None = None, kind: str = "instruct",
                     target: str = "shell-1/demo", payload: dict[str, Any] | None = None, **extra: Any) -> Any:
        assert self.issuer is not None
        submission = Submission(command_id=command_id, idempotency_key=key or f"key-{command_id}", kind=kind,
                                target=target, payload=payload if payload is not None else {"text": text}, **extra)
        return await self.core.submit(submission, self.issuer)

    async def settle(self) -> None:
        """Until every task is blocked, nothing decided is still committing and no actor is
        waiting out a restart backoff (real time, a few milliseconds)."""
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if self.core.supervisor.backing_off:
                await self.core.supervisor.backoffs_over()
                continue
            if self.core.journal.in_flight == 0:
                await trio.testing.wait_all_tasks_blocked()
                if self.core.journal.in_flight == 0 and not self.core.supervisor.backing_off:
                    return
            await self.core.journal.drained()


@functools.cache
def _template_journal() -> bytes:
    """One initialized journal per test process: the operator's argon2 hash is deliberately
    slow, so every test copies these bytes instead of hashing again."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "journal.db"
        initialize_journal(path, DOMAIN, PASSWORD, clock=ManualClock(), ids=RandomIds())
        return path.read_bytes()


def new_journal(path: Path) -> Path:
    """A fresh journal of domain ``DOMAIN`` with the operator (password ``PASSWORD``) and its grant."""
    path.write_bytes(_template_journal())
    return path


@asynccontextmanager
async def running_core(tmp_path: Path, *, settings: CoreSettings | None = None,
                       clock: ManualClock | None = None, fresh: bool = True,
                       synchronous: str = "FULL") -> AsyncIterator[Harness]:
    path = tmp_path / "journal.db"
    clock = clock or ManualClock()
    if fresh and not path.exists():
        new_journal(path)
    core = Core(path, expected_domain=DOMAIN, clock=clock, ids=RandomIds(), synchronous=synchronous,
                settings=settings or CoreSettings(stale_after=15, offline_after=30))
    async with trio.open_nursery() as nursery:
        await nursery.start(core.run)
        try:
            yield Harness(core, clock, path)
        finally:
            nursery.cancel_scope.cancel()
