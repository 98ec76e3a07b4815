"""Slot supervision and spawn without the real pi: a child that dies at once, in-process.

A FakeLink stands in for the core: it records every frame and acknowledges them. The "pi" is
``/bin/false`` (exits at once) or a path that does not exist, so these run in milliseconds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import trio
from patchbay_adapters.pi.adapter import EXTENSION, PiRuntime
from patchbay_adapters.pi.process import stop_orphan
from patchbay_adapters.pi.records import PiConfig

from tests.pi.fake_link import FakeLink
from tests.support.processes import wait_for


def config(tmp: Path, pi_path: str) -> PiConfig:
    return PiConfig(pi_path=pi_path, pi_args=[], env={"PATH": "/usr/bin:/bin"}, state_dir=tmp / "state",
                    extension=EXTENSION, startup_timeout=10, grace=1, backoff_initial=0.01, backoff_max=0.05)


async def test_a_pi_that_keeps_dying_is_restarted_with_backoff_and_reported_failed(tmp_path: Path) -> None:
    link = FakeLink()
    runtime = PiRuntime({"main": tmp_path}, config(tmp_path, "/bin/false"))
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, link)
        await link.wait_until(lambda: runtime.slots["main"].restarts >= 3)
        nursery.cancel_scope.cancel()
    failed = [s for s in link.of("session") if s["connectivity"] == "failed"]
    assert failed and all(s["activity"] == "unknown" for s in failed)
    errors = [o["observation"]["text"] for o in link.of("observation") if o["observation"]["type"] == "error"]
    assert any("pi did not start" in text for text in errors)


async def test_a_failed_spawn_launch_releases_the_directory_lease(tmp_path: Path) -> None:
    roots = tmp_path / "spawn"
    roots.mkdir()
    for pi_path in ("/bin/false", str(tmp_path / "no-such-pi")):
        link = FakeLink()
        runtime = PiRuntime({}, config(tmp_path, pi_path), spawn_roots=[roots])
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run, link)
            await runtime.deliver({"command_id": "sp-1", "kind": "spawn", "runtime_session_id": "x",
                                   "generation": None, "payload": {"directory": "proj"}})
            report = await link.wait_until(lambda link=link: next(
                (r for r in link.of("report") if r["state"] in ("failed", "completed")), None))
            nursery.cancel_scope.cancel()
        assert report["state"] == "failed" and "lease is released" in report["reason"], report
        leases = link.of("lease")
        assert [lease["op"] for lease in leases] == ["acquire", "release"]
        assert leases[0]["resource"] == f"dir:{roots / 'proj'}" and leases[1]["lease_id"] == "lease-1"
        assert "proj" not in runtime.slots


async def test_spawn_outside_the_roots_or_without_roots_is_refused(tmp_path: Path) -> None:
    link = FakeLink()
    runtime = PiRuntime({}, config(tmp_path, "/bin/false"), spawn_roots=[tmp_path / "spawn"])
    no_spawn = PiRuntime({}, config(tmp_path, "/bin/false"))
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, link)
        await nursery.start(no_spawn.run, link)
        await runtime.deliver({"command_id": "out", "kind": "spawn", "runtime_session_id": "x",
                               "payload": {"directory": "/etc"}})
        await no_spawn.deliver({"command_id": "off", "kind": "spawn", "runtime_session_id": "x",
                                "payload": {"directory": "a"}})
        await runtime.deliver({"command_id": "badname", "kind": "spawn", "runtime_session_id": "x",
                               "payload": {"directory": "a", "name": "no spaces please"}})
        await link.wait_until(lambda: len(link.of("report")) >= 3)
        nursery.cancel_scope.cancel()
    reports = {r["command_id"]: r for r in link.of("report")}
    assert reports["out"]["state"] == "rejected" and reports["out"]["failure"] == "validation_failed"
    assert reports["off"]["failure"] == "unsupported_command"
    assert reports["badname"]["failure"] == "validation_failed" and "slot name" in reports["badname"]["reason"]
    assert not link.of("lease")
    assert "spawn" not in no_spawn.manifest()["kinds"] and "spawn" in runtime.manifest()["kinds"]
    manifest = runtime.manifest()
    assert (manifest["snapshot_tier"], manifest["idempotency"]) == ("partial", "at-patchbay-boundary")
    assert manifest["session_replacement"] and manifest["cancellation"] and manifest["steer"] and manifest["streaming"]


async def test_commands_for_unknown_slots_or_replaced_generations_are_refused(tmp_path: Path) -> None:
    link = FakeLink()
    runtime = PiRuntime({"main": tmp_path}, config(tmp_path, "/bin/false"))
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, link)
        await runtime.deliver({"command_id": "old", "kind": "instruct", "runtime_session_id": "main",
                               "generation": 0, "payload": {"text": "hi"}})
        await runtime.deliver({"command_id": "nowhere", "kind": "instruct", "runtime_session_id": "gone",
                               "generation": 1, "payload": {"text": "hi"}})
        await link.wait_until(lambda: len(link.of("report")) >= 2)
        nursery.cancel_scope.cancel()
    reports = {r["command_id"]: r for r in link.of("report")}
    assert (reports["old"]["state"], reports["old"]["failure"]) == ("superseded", "superseded")
    assert (reports["nowhere"]["state"], reports["nowhere"]["failure"]) == ("rejected", "target_not_found")


def test_a_pi_left_running_by_a_dead_adapter_is_stopped_only_if_it_is_that_slots_pi(tmp_path: Path) -> None:
    marker = str(tmp_path / "sessions" / "main")
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    orphan = subprocess.Popen([*sleeper, "--session-dir", marker], start_new_session=True)
    stranger = subprocess.Popen([*sleeper, "--session-dir", "elsewhere"], start_new_session=True)
    try:
        for proc in (orphan, stranger):  # exec'd: its command line is the sleeper's
            wait_for(lambda proc=proc: b"--session-dir" in Path(f"/proc/{proc.pid}/cmdline").read_bytes(),
                     timeout=30, what="the sleeper's command line")
        assert stop_orphan(stranger.pid, marker) is False and stranger.poll() is None
        assert stop_orphan(orphan.pid, marker) is True
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert stop_orphan(None, marker) is False
    finally:
        for proc in (orphan, stranger):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
