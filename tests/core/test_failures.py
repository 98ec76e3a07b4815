"""The core when things go wrong: a failed journal write, malformed observations, passivation."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from patchbay.core import Core, CoreSettings
from patchbay.core.ports import ManualClock
from patchbay.domain.events import EventKind
from patchbay.journal import JournalStore
from patchbay.registry import SessionActivityState, SubmissionOutcome
from patchbay.replay import replay_journal
from tests.core.harness import DOMAIN, Harness, running_core
from tests.journal.test_store import poison


async def test_a_failed_journal_write_answers_failed_shows_nothing_and_the_core_takes_writes_again(
        tmp_path: Path) -> None:
    clock = ManualClock()
    async with running_core(tmp_path, clock=clock) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        assert (await h.submit("ok-1", "echo fine")).outcome is SubmissionOutcome.accepted
        before = h.core.state.last_lsn
    # A second run, whose journal refuses one particular submission inside its transaction.
    poison(tmp_path / "journal.db")
    core = Core(tmp_path / "journal.db", expected_domain=DOMAIN, clock=clock,
                settings=CoreSettings(stale_after=1e6, offline_after=1e6))
    harness = Harness(core, clock, tmp_path / "journal.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(core.run)
        await harness.login()
        adapter.core = core
        await adapter.attach()
        await adapter.session()
        results = {}

        async def submit(command_id: str, text: str) -> None:
            results[command_id] = await harness.submit(command_id, text)

        async with trio.open_nursery() as submitters:  # decided together: one group commit
            submitters.start_soon(submit, "ok-2", "echo fine")
            submitters.start_soon(submit, "bad", "echo poison")
            submitters.start_soon(submit, "ok-3", "echo fine")
        for command_id in ("ok-2", "bad", "ok-3"):
            result = results[command_id]
            assert (result.outcome, result.command) == (SubmissionOutcome.failed, None), command_id
            assert "nothing was accepted" in result.reason
        assert not {"ok-2", "bad", "ok-3"} & set(core.journal.speculative.commands)  # nothing half-visible
        assert core.health.view()["journal_writable"] is False and core.health.journal_write_failures == 1
        refused = await harness.submit("ok-4", "echo fine")  # refused at once while unwritable
        assert refused.outcome is SubmissionOutcome.failed and "takes no writes" in refused.reason
        with trio.fail_after(10):  # the probe commits (the poison only hits these payloads)
            await core.journal.wait_writable()
        assert core.health.view()["journal_writable"] is True
        assert (await harness.submit("ok-5", "echo fine")).outcome is SubmissionOutcome.accepted
        nursery.cancel_scope.cancel()
    replayed = replay_journal(tmp_path / "journal.db")
    assert replayed.violations == []
    assert not {"ok-2", "bad", "ok-3", "ok-4"} & set(replayed.state.commands)
    assert {"ok-1", "ok-5"} <= set(replayed.state.commands) and replayed.state.last_lsn > before
    outage = [e for e in JournalStore.open(tmp_path / "journal.db", read_only=True).read(kinds=["journal.unwritable"])]
    assert len(outage) == 1 and outage[0].payload["refused"] >= 1 and "injected write failure" in outage[0].payload["error"]


async def test_an_observation_with_an_unknown_activity_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session(activity="idle")
        answer = await adapter.send("observation", runtime_session_id="demo", generation=1,
                                    observation={"type": "output", "text": "x"}, activity="busy")
        assert (answer["type"], answer["code"]) == ("error", "refused") and "unknown activity" in answer["error"]
        assert h.core.state.sessions["shell-1/demo"].activity is SessionActivityState.idle
        good = await adapter.send("observation", runtime_session_id="demo", generation=1,
                                  observation={"type": "output", "text": "y"}, activity="working")
        assert good["type"] == "ack"  # the core is still running and the actor still answers
        assert h.core.state.sessions["shell-1/demo"].activity is SessionActivityState.working
        assert h.core.supervisor.restarts == 0


async def test_an_adapter_cannot_report_its_session_stale(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        answer = await adapter.session(connectivity="stale")
        assert answer["type"] == "error" and "cannot report connectivity 'stale'" in answer["error"]
        assert h.core.state.sessions["shell-1/demo"].connectivity.value == "live"


async def test_a_fact_the_reducer_cannot_fold_leaves_the_speculative_state_as_it_was(tmp_path: Path) -> None:
    from patchbay.domain.events import EventKind, Fact

    async with running_core(tmp_path) as h:
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        before = h.core.journal.speculative.clone()
        good = Fact(EventKind.session_activity, "session:shell-1/demo",
                    {"target": "shell-1/demo", "generation": 1, "activity": "working"})
        bad = Fact(EventKind.session_activity, "session:shell-1/demo",
                   {"target": "shell-1/demo", "generation": 1, "activity": "dancing"})
        try:
            h.core.journal.decide([good, bad])
        except ValueError:
            pass
        else:
            raise AssertionError("an unfoldable fact must be refused")
        assert h.core.journal.speculative == before  # not even the good half
        await h.core.journal.persist([good])
        assert h.core.state.sessions["shell-1/demo"].activity is SessionActivityState.working
        assert h.core.state == h.core.journal.speculative


async def test_entity_actors_passivate_when_idle_and_come_back_on_the_next_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchbay.core import _entities
    from patchbay.registry import CommandState

    monkeypatch.setattr(_entities, "IDLE", 0.05)
    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session(label="first")
        assert h.core.actors.lookup("session:shell-1/demo") is None  # session frames need no actor
        await h.submit("c1", "echo")
        assert (await adapter.report("c1", "delivered"))["type"] == "ack"
        assert h.core.actors.lookup("command:c1") is not None
        with trio.fail_after(30):  # the idle timeout is 0.05 s
            await h.core.supervisor.gone("command:c1")
        assert h.core.actors.lookup("command:c1") is None  # passivated
        assert (await adapter.report("c1", "running"))["type"] == "ack"
        assert h.core.command("c1").state is CommandState.running
        assert h.core.actors.activations >= 2


async def test_a_session_frame_whose_decision_crashes_is_answered_retry_and_recorded_once_resent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchbay.domain import lifecycle

    real = lifecycle.decide_observation
    crashes: list[int] = []

    def crash_once(*args: object, **kwargs: object) -> lifecycle.Outcome:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("injected crash")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    async with running_core(tmp_path) as h:
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session(activity="idle")
        monkeypatch.setattr(lifecycle, "decide_observation", crash_once)
        lsn = h.core.state.last_lsn
        answer = await adapter.send("observation", runtime_session_id="demo", generation=1,
                                    observation={"type": "output", "text": "x"}, activity="working")
        assert (answer["type"], answer["code"]) == ("error", "retry") and "injected crash" in answer["error"]
        assert h.core.state.last_lsn == lsn and h.core.journal.speculative.last_lsn == lsn  # nothing of it
        later = await adapter.send("observation", runtime_session_id="demo", generation=1,
                                   observation={"type": "output", "text": "y"})
        assert (later["type"], later["code"]) == ("error", "retry")  # until the failed one comes again
        resent = await adapter.send("observation", seq=answer["seq"], runtime_session_id="demo", generation=1,
                                    observation={"type": "output", "text": "x"}, activity="working")
        assert resent == {"type": "ack", "seq": answer["seq"]}
        assert h.core.state.sessions["shell-1/demo"].activity is SessionActivityState.working
        assert [e.payload["observation"]["text"] for e in h.core.events_after(lsn)
                if e.kind == EventKind.session_observation.value] == ["x"]


async def test_a_deadline_whose_actor_crashes_is_tried_again_and_the_core_keeps_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchbay.core.ports import ManualClock
    from patchbay.domain import lifecycle
    from patchbay.registry import CommandState

    real = lifecycle.decide_expiry
    crashes: list[int] = []

    def crash_once(*args: object) -> lifecycle.Outcome:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("injected crash")
        return real(*args)  # type: ignore[arg-type]

    clock = ManualClock()
    async with running_core(tmp_path, clock=clock) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        await h.submit("c1", "echo", expires_at=clock.now() + 5)
        monkeypatch.setattr(lifecycle, "decide_expiry", crash_once)
        clock.advance(6)
        await h.settle()
        assert crashes and h.core.command("c1").state is CommandState.accepted  # the crash changed nothing
        clock.advance(1)
        await h.settle()
        record = h.core.command("c1")
        assert record.state is CommandState.expired and h.core.supervisor.restarts == 1


async def test_a_report_that_times_out_is_neither_success_nor_refusal_and_still_takes_effect(
        tmp_path: Path) -> None:
    """TimeoutNeitherSuccessNorDenial at the adapter boundary: while the journal is held up the
    adapter hears ``retry`` (not ack, not refused); the report still commits once it can, and
    the resent frame is acknowledged as a duplicate rather than applied twice."""
    import apsw

    from patchbay.registry import CommandState

    async with running_core(tmp_path, settings=CoreSettings(ask_timeout=0.2)) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        await h.submit("c1", "echo")
        blocker = apsw.Connection(str(h.path))
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: commits must wait
        try:
            answer = await adapter.report("c1", "delivered")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert (answer["type"], answer.get("code")) == ("error", "retry")
        await h.settle()
        assert h.core.command("c1").state is CommandState.delivered
        resent = await adapter.send("report", seq=answer["seq"], command_id="c1", state="delivered")
        assert resent == {"type": "ack", "seq": answer["seq"], "duplicate": True}
        assert [t.state for t in h.core.command("c1").history] == [CommandState.accepted, CommandState.delivered]
