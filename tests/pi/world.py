"""The shared world of the Pi end-to-end modules: a real core, a real pi adapter and the real
pi of one line of the support matrix, against the scripted fake model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.pi.conftest import PiBuild, PiSetup
from tests.pi.fake_llm import FakeLLM
from tests.support.processes import Api, Deployment, Proc, wait_for

TARGET = "pi-1/main"
ASK_EXTENSION = Path(__file__).with_name("ask_extension.ts")


def adapter_extra(world_tmp: Path) -> list[str]:
    return ["--spawn-root", str(world_tmp / "spawn"), "--pi-arg=-e", f"--pi-arg={ASK_EXTENSION}"]


@attrs.define
class World:
    d: Deployment
    setup: PiSetup
    adapter: Proc
    api: Api
    tmp: Path

    def transcript(self, target: str = TARGET) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            page = self.api.http.get(f"/api/sessions/{target}/transcript",
                                     params={"after": events[-1]["lsn"] if events else 0, "limit": 2000}).json()
            events += page["events"]
            if len(page["events"]) < 2000:
                return [e for e in events if e["kind"] == "session.observation"]

    def resyncs(self) -> list[dict[str, Any]]:
        return [o for o in (e["payload"]["observation"] for e in self.transcript()) if o["type"] == "resync"]

    def observations(self, command_id: str, kind: str) -> list[dict[str, Any]]:
        return [e["payload"]["observation"] for e in self.transcript()
                if e["payload"].get("command_id") == command_id and e["payload"]["observation"]["type"] == kind]

    def pending_elicitation(self, command_id: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            found = self.api.http.get("/api/elicitations", params={"state": "pending"}).json()["elicitations"]
            return next((e for e in found if e["command_id"] == command_id), None)
        return dict(wait_for(find, timeout=60, what=f"an elicitation for {command_id}"))

    def session(self, target: str = TARGET) -> dict[str, Any]:
        return self.api.sessions()[target]


def make_world(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM, pi_build: PiBuild) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"pi{pi_build.line}")
    setup = PiSetup(tmp, fake_llm, pi_build)
    (tmp / "spawn").mkdir()
    d = Deployment(tmp)
    try:
        d.serve()
        adapter = setup.adapter(d, extra=adapter_extra(tmp))
        api = d.api()
        api.wait_session(TARGET, "live", timeout=90)
        yield World(d, setup, adapter, api, tmp)
    finally:
        d.stop()


def submit(world: World, command_id: str, text: str = "", *, kind: str = "instruct",
           payload: dict[str, Any] | None = None, target: str = TARGET) -> dict[str, Any]:
    answer = world.api.submit(command_id, text, kind=kind, payload=payload, target=target)
    assert answer["outcome"] == "accepted", answer
    return answer
