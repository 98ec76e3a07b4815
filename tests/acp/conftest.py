"""Helpers for the ACP protocol tests: the scripted fake agent, in-process slots, a fake link."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.acp.adapter import AcpRuntime
from patchbay_adapters.acp.records import AcpConfig

from tests.pi.fake_link import FakeLink

ROOT = Path(__file__).resolve().parents[2]


def fake_config(tmp: Path, *, approval_timeout: float = 30.0, load: bool = False, stubborn: bool = False,
                **overrides: Any) -> AcpConfig:
    (tmp / "agent-state").mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "FAKE_ACP_LOG": str(tmp / "agent.log"),
           "FAKE_ACP_STATE": str(tmp / "agent-state"), "FAKE_ACP_LOAD": "1" if load else "0",
           "FAKE_ACP_STUBBORN": "1" if stubborn else "0"}
    return AcpConfig(command=[sys.executable, "-m", "tests.acp.fake_agent"], env=env, state_dir=tmp / "state",
                     approval_timeout=approval_timeout, startup_timeout=20, grace=1, backoff_initial=0.01,
                     backoff_max=0.05, **overrides)


def agent_log(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "agent.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Harness:
    def __init__(self, runtime: AcpRuntime, link: FakeLink, tmp: Path) -> None:
        self.runtime, self.link, self.tmp = runtime, link, tmp
        self._n = 0

    @property
    def slot(self) -> Any:
        return self.runtime.slots["main"]

    async def send(self, kind: str, payload: dict[str, Any], command_id: str | None = None) -> str:
        self._n += 1
        command_id = command_id or f"{kind}-{self._n}"
        await self.runtime.deliver({"command_id": command_id, "kind": kind, "runtime_session_id": "main",
                                    "generation": None, "payload": payload})
        return command_id

    async def say(self, text: str, command_id: str | None = None) -> str:
        return await self.send("instruct", {"text": text}, command_id)

    def reports(self, command_id: str) -> list[dict[str, Any]]:
        return [r for r in self.link.of("report") if r["command_id"] == command_id]

    async def outcome(self, command_id: str) -> dict[str, Any]:
        terminal = ("completed", "failed", "cancelled", "rejected", "superseded")
        found: dict[str, Any] = await self.link.wait_until(
            lambda: next((r for r in self.reports(command_id) if r["state"] in terminal), None))
        return found

    def observations(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = [o["observation"] for o in self.link.of("observation")]
        return [o for o in found if kind is None or o["type"] == kind]

    async def elicitation(self, count: int = 1) -> dict[str, Any]:
        asked: list[dict[str, Any]] = await self.link.wait_until(
            lambda: (e := self.link.of("elicitation")) and len(e) >= count and e)
        return asked[count - 1]

    async def live(self) -> None:
        await self.link.wait_until(lambda: self.slot.live_peer is not None and self.slot.turn is None)


@asynccontextmanager
async def harness(tmp: Path, **options: Any) -> AsyncIterator[Harness]:
    link = FakeLink()
    runtime = AcpRuntime({"main": tmp}, fake_config(tmp, **options))
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, link)
        h = Harness(runtime, link, tmp)
        await h.live()
        yield h
        nursery.cancel_scope.cancel()
