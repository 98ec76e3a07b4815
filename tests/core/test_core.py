"""The core end to end in one process: acceptance, delivery, reports, failure bounds, restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from patchbay.core import CoreSettings
from patchbay.core.ports import ManualClock
from patchbay.registry import CommandState, Failure, SessionConnectivityState, SubmissionOutcome
from patchbay.replay import replay_journal
from tests.core.harness import running_core


async def test_submission_is_delivered_and_completes_through_adapter_reports(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        welcome = await adapter.attach()
        assert welcome["type"] == "welcome"
        assert (await adapter.session())["type"] == "ack"
        result = await h.submit("c1", "echo hi")
        assert result.outcome is SubmissionOutcome.accepted
        deliveries = adapter.received()
        assert [f["command"]["command_id"] for f in deliveries if f["type"] == "deliver"] == ["c1"]
        for state in ("delivered", "running"):
            assert (await adapter.report("c1", state))["type"] == "ack"
        await adapter.report("c1", "completed", result={"exit_code": 0, "output": "hi\n"})
        record = h.core.command("c1")
        assert record.state is CommandState.completed and record.result == {"exit_code": 0, "output": "hi\n"}
        assert [t.state.value for t in record.history] == ["accepted", "delivered", "running", "completed"]


async def test_duplicate_submission_returns_existing_record_and_delivers_once(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        results = []
        async with trio.open_nursery() as nursery:
            async def go() -> None:
                results.append(await h.submit("c1", "touch x"))
            for _ in range(5):
                nursery.start_soon(go)
        assert {r.command.command_id for r in results} == {"c1"}
        assert sum(1 for r in results if "duplicate" in r.reason) == 4
        assert len([f for f in adapter.received() if f["type"] == "deliver"]) == 1


async def test_adapter_silence_makes_sessions_stale_then_offline_and_settles_running_commands(tmp_path: Path) -> None:
    clock = ManualClock()
    async with running_core(tmp_path, clock=clock, settings=CoreSettings(stale_after=10, offline_after=20)) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        await h.submit("run", "sleep 100")
        await h.submit("queued", "echo later")
        await adapter.report("run", "delivered")
        await adapter.report("run", "running")
        await adapter.report("queued", "delivered")
        clock.advance(11)
        await h.settle()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.stale
        assert h.core.command("run").state is CommandState.running
        clock.advance(21)
        await h.settle()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.offline
        run, queued = h.core.command("run"), h.core.command("queued")
        assert (run.state, run.failure) == (CommandState.failed, Failure.execution_outcome_unknown)
        assert (queued.state, queued.failure) == (CommandState.failed, Failure.adapter_unavailable)
        rejected = await h.submit("late", "echo")
        assert rejected.failure is Failure.target_offline


async def test_new_adapter_generation_fails_running_and_redelivers_queued(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach(generation=1)
        await adapter.session()
        await h.submit("run", "sleep 100")
        await h.submit("queued", "echo later")
        await adapter.report("run", "delivered")
        await adapter.report("run", "running")
        await adapter.report("queued", "delivered")
        await adapter.detach("process died")
        await adapter.attach(generation=2)
        redelivered = [f["command"]["command_id"] for f in adapter.received() if f["type"] == "deliver"]
        assert redelivered == ["queued"]
        assert h.core.command("run").failure is Failure.execution_outcome_unknown


async def test_old_adapter_generation_is_refused(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await h.adapter()
        await adapter.attach(generation=5)
        from patchbay.errors import Refused

        with pytest.raises(Refused, match="older"):
            await adapter.attach(generation=4)


async def test_expired_validity_window_expires_the_command(tmp_path: Path) -> None:
    clock = ManualClock()
    async with running_core(tmp_path, clock=clock) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        await h.submit("c1", "echo", expires_at=clock.now() + 5)
        clock.advance(6)
        await h.settle()
        record = h.core.command("c1")
        assert (record.state, record.failure) == (CommandState.expired, Failure.expired)
        late = await adapter.report("c1", "delivered")
        assert late["type"] == "error"
        assert h.core.command("c1").late_outcomes


async def test_malformed_and_foreign_frames_get_errors_and_change_nothing(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        await h.login()
        one = await h.adapter("shell-1")
        two = await h.adapter("shell-2")
        await one.attach()
        await two.attach()
        await one.session()
        await h.submit("c1", "echo")
        before = h.core.state.last_lsn
        assert (await two.report("c1", "completed"))["type"] == "error"
        assert (await two.send("observation", runtime_session_id="demo", generation=1,
                               observation={"type": "output", "text": "x"}))["type"] == "error"
        answer = await h.core.adapters.handle(one.connection, "{not json")  # type: ignore[arg-type]
        assert '"code":"malformed"' in answer
        assert h.core.command("c1").state is CommandState.accepted
        assert "shell-2/demo" not in h.core.state.sessions
        assert h.core.state.last_lsn > before  # only audit records were added


async def test_restart_recovers_state_and_replay_matches(tmp_path: Path) -> None:
    clock = ManualClock()
    async with running_core(tmp_path, clock=clock) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        await h.submit("c1", "echo")
        await h.submit("c2", "echo")
        await adapter.report("c1", "delivered")
        live = h.core.state
        live_commands = {k: v.state for k, v in live.commands.items()}
    async with running_core(tmp_path, clock=clock, fresh=False) as h2:
        assert {k: v.state for k, v in h2.core.state.commands.items()} == live_commands
        assert h2.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.stale
        assert h2.core.core_generation == 3
    first = replay_journal(tmp_path / "journal.db")
    second = replay_journal(tmp_path / "journal.db")
    assert first.violations == [] and first.state == second.state


async def test_crashed_command_actor_is_restarted_by_its_supervisor_with_state_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchbay.domain import lifecycle

    real = lifecycle.decide_adapter_report
    crashes = []

    def crash_once(*args: object, **kwargs: object) -> lifecycle.Outcome:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("injected crash")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        await h.submit("c1", "echo")
        await adapter.report("c1", "delivered")
        monkeypatch.setattr(lifecycle, "decide_adapter_report", crash_once)
        answer = await adapter.report("c1", "running")
        assert (answer["type"], answer["code"]) == ("error", "retry")
        assert h.core.command("c1").state is CommandState.delivered
        resent = await adapter.send("report", seq=answer["seq"], command_id="c1", state="running")
        assert resent == {"type": "ack", "seq": answer["seq"]}
        assert h.core.command("c1").state is CommandState.running
        assert h.core.supervisor.restarts == 1
        await adapter.report("c1", "completed")
        assert h.core.command("c1").state is CommandState.completed
