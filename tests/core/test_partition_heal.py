"""A silent adapter and its healing, in one process with a manual clock: the core's half of a
partition (the adapter's half is tests/adapters/test_trust.py, both together over a veth pair
tests/integration/test_partition.py)."""

from __future__ import annotations

from pathlib import Path

from patchbay.core import CoreSettings
from patchbay.core.ports import ManualClock
from patchbay.registry import CommandState, Failure, SessionConnectivityState, SubmissionOutcome
from tests.core.harness import running_core

HEARTBEAT, STALE_AFTER = 1.0, 4.0


async def test_a_silent_attachment_goes_stale_and_heals_without_losing_or_repeating_a_command(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = CoreSettings(heartbeat_interval=HEARTBEAT, stale_after=STALE_AFTER, offline_after=600)
    async with running_core(tmp_path, clock=clock, settings=settings) as h:
        await h.login()
        adapter = await h.adapter()
        welcome = await adapter.attach()
        assert (welcome["heartbeat_interval"], welcome["stale_after"]) == (HEARTBEAT, STALE_AFTER)
        await adapter.session()
        await h.submit("long", "sleep 60")
        for state in ("delivered", "running"):
            await adapter.report("long", state)
        last_frame = clock.now()

        clock.advance(STALE_AFTER - 0.5)  # not yet: silence shorter than the bound changes nothing
        await h.settle()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.live
        clock.advance(HEARTBEAT)  # past heartbeat + stale_after since the last frame, at the latest
        await h.settle()
        session = h.core.state.sessions["shell-1/demo"]
        assert session.connectivity is SessionConnectivityState.stale
        assert session.updated_ts - last_frame <= HEARTBEAT + STALE_AFTER

        # During the partition: commands for the stale session are accepted, nothing is settled.
        assert (await h.submit("during", "echo during")).outcome is SubmissionOutcome.accepted
        assert (await h.submit("brief", "echo brief", expires_at=clock.now() + 2)).outcome is SubmissionOutcome.accepted
        clock.advance(3)
        await h.settle()
        assert h.core.command("long").state is CommandState.running
        assert (h.core.command("brief").state, h.core.command("brief").failure) == (CommandState.expired,
                                                                                      Failure.expired)

        # The heal: the same process attaches again and resends what the core never answered.
        await adapter.attach()
        redelivered = [f["command"]["command_id"] for f in adapter.received() if f["type"] == "deliver"]
        assert redelivered == ["during"]  # once; the running one is not redelivered, the expired one never
        await adapter.session()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.live
        completed = await adapter.report("long", "completed", result={"exit_code": 0, "output": ""})
        assert completed["type"] == "ack"
        again = await adapter.send("report", seq=adapter.seq, command_id="long", state="completed",
                                   result={"exit_code": 0, "output": ""})
        assert again.get("duplicate") is True  # a resent frame is acknowledged, not applied again
        for state in ("delivered", "running", "completed"):
            await adapter.report("during", state)
        for command_id in ("long", "during"):
            history = [step.state for step in h.core.command(command_id).history]
            assert history.count(CommandState.running) == 1 and history.count(CommandState.completed) == 1
        assert h.core.command("brief").state is CommandState.expired
