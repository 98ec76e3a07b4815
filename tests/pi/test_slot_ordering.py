"""Slot behaviour that depends on pi's output ordering, against a scripted fake pi (fast)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.pi.adapter import EXTENSION, PiRuntime
from patchbay_adapters.pi.records import PiConfig

from tests.pi.fake_link import FakeLink

FAKE_PI = Path(__file__).with_name("fake_pi.py")


def fake_pi(tmp: Path) -> str:
    script = tmp / "pi"
    script.write_text(f"#!{sys.executable}\n" + FAKE_PI.read_text())
    script.chmod(0o755)
    return str(script)


def instruct(command_id: str, text: str, mode: str = "followUp") -> dict[str, Any]:
    return {"command_id": command_id, "kind": "instruct", "runtime_session_id": "main", "generation": 1,
            "payload": {"text": text, "mode": mode}}


def outcome(link: FakeLink, command_id: str) -> dict[str, Any] | None:
    return next((r for r in link.of("report") if r["command_id"] == command_id
                 and r["state"] in ("completed", "failed", "cancelled")), None)


async def test_a_steer_pi_takes_after_its_run_ended_becomes_the_next_run(tmp_path: Path) -> None:
    link = FakeLink()
    config = PiConfig(pi_path=fake_pi(tmp_path), pi_args=[], env={}, state_dir=tmp_path / "state",
                      extension=EXTENSION, grace=1)
    runtime = PiRuntime({"main": tmp_path}, config)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, link)
        slot = runtime.slots["main"]
        await link.wait_until(lambda: slot.connectivity == "live")
        await runtime.deliver(instruct("first", "RACE"))
        await link.wait_until(lambda: slot.run is not None and slot.run.started)
        await runtime.deliver(instruct("steer", "SECOND", mode="steer"))
        await runtime.deliver(instruct("handled", "/handled"))
        first = await link.wait_until(lambda: outcome(link, "first"))
        steer = await link.wait_until(lambda: outcome(link, "steer"))
        handled = await link.wait_until(lambda: outcome(link, "handled"))
        nursery.cancel_scope.cancel()
    assert (first["state"], first["result"]["text"]) == ("completed", "echo:RACE")
    assert (steer["state"], steer["result"]["text"]) == ("completed", "echo:SECOND")
    assert handled["result"] == {"text": "", "stop_reason": "handled_without_run"}
    states = [r["state"] for r in link.of("report") if r["command_id"] == "steer"]
    assert states == ["delivered", "running", "completed"]
