"""Settled commands beyond the window leave memory but not the product's promises.

The window is shrunk to a few commands so a test settles more than it holds. An archived
command still answers a retry of its key with its outcome (also after a restart from a
checkpoint), still reads back as its full record, still takes a late outcome without changing
the winner, and a checkpoint plus its tail is still the state replayed from zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from patchbay.core import CoreSettings
from patchbay.core._state import recover_state
from patchbay.core.checkpoint import load_checkpoint
from patchbay.core.ports import ManualClock
from patchbay.domain import model
from patchbay.journal import JournalStore
from patchbay.registry import CommandState, SubmissionOutcome
from patchbay.replay import replay_journal
from tests.core.harness import FakeAdapter, Harness, running_core

WINDOW = 3
TARGET = "shell-1/demo"


@pytest.fixture(autouse=True)
def small_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(model, "SETTLED_WINDOW", WINDOW)
    yield


async def attached(h: Harness) -> FakeAdapter:
    await h.login()
    adapter = await h.adapter()
    await adapter.attach()
    await adapter.session()
    return adapter


async def complete(h: Harness, adapter: FakeAdapter, command_id: str, text: str = "true") -> None:
    assert (await h.submit(command_id, text)).outcome is SubmissionOutcome.accepted
    for state in ("delivered", "running"):
        assert (await adapter.report(command_id, state))["type"] == "ack"
    answer = await adapter.report(command_id, "completed", result={"exit_code": 0, "output": f"{command_id}\n"})
    assert answer["type"] == "ack"


async def test_settled_commands_beyond_the_window_leave_the_in_memory_records(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await h.submit("live", "sleep 100")
        for index in range(20):
            await complete(h, adapter, f"c{index}")
        await h.settle()
        for state in (h.core.state, h.core.journal.speculative):
            assert set(state.commands) == {"live", "c17", "c18", "c19"}  # the live one and the window
            assert set(state.archived) == {f"c{index}" for index in range(17)}
            assert list(state.settled) == ["c17", "c18", "c19"]
            assert state.command_count() == 21 and len(state.idempotency) == 21


async def test_an_archived_command_reads_back_as_its_full_record(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await h.submit("c0", "echo first")
        opened = await adapter.send("elicitation", runtime_session_id="demo", generation=1, elicitation_id="eli-1",
                                    kind="approval", command_id="c0", title="Run?", body="echo first")
        assert opened["type"] == "ack"
        for state in ("delivered", "running"):
            await adapter.report("c0", state)
        await adapter.report("c0", "completed", result={"exit_code": 0, "output": "first\n"})
        before = h.core.command("c0")
        assert "c0" in h.core.state.commands and before.elicitations == ("eli-1",)
        for index in range(1, WINDOW + 2):
            await complete(h, adapter, f"c{index}")
        assert "c0" in h.core.state.archived and "c0" not in h.core.state.commands
        assert h.core.command("c0") == before
        assert h.core.command_by_key("key-c0") == before
        listed = h.core.commands(target=TARGET, limit=100)
        assert [c.command_id for c in listed] == [f"c{index}" for index in range(WINDOW + 1, -1, -1)]
        assert listed[-1] == before and all(c == h.core.command(c.command_id) for c in listed)
        assert [c.command_id for c in h.core.commands(target=TARGET, limit=2)] == [f"c{WINDOW + 1}", f"c{WINDOW}"]
        # an elicitation opened about an archived command still belongs to its record
        late = await adapter.send("elicitation", runtime_session_id="demo", generation=1, elicitation_id="eli-2",
                                  kind="approval", command_id="c0", title="Again?", body="")
        assert late["type"] == "ack"
        assert h.core.command("c0").elicitations == ("eli-1", "eli-2")


async def test_a_retry_of_an_archived_key_answers_the_original_with_its_outcome_also_after_restart(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    settings = CoreSettings(stale_after=15, offline_after=30, checkpoint_every=10**9)
    async with running_core(tmp_path, clock=clock, settings=settings) as h:
        adapter = await attached(h)
        await complete(h, adapter, "c0", "echo once")
        original = h.core.command("c0")
        for index in range(1, WINDOW + 2):
            await complete(h, adapter, f"c{index}")
        assert "c0" in h.core.state.archived
        adapter.received()  # drained: what follows must deliver nothing
        retry = await h.submit("c0", "echo once")
        assert retry.outcome is SubmissionOutcome.accepted and "duplicate" in retry.reason
        assert retry.command == original and retry.command.state is CommandState.completed
        assert retry.command.result == {"exit_code": 0, "output": "c0\n"}
        other_payload = await h.submit("c0", "echo twice")
        assert other_payload.outcome is SubmissionOutcome.rejected
        assert "different request" in other_payload.reason
        other_id = await h.submit("c0-new", "echo once", key="key-c0")
        assert other_id.outcome is SubmissionOutcome.rejected and "already used by command c0" in other_id.reason
        other_key = await h.submit("c0", "echo once", key="another-key")
        assert other_key.outcome is SubmissionOutcome.rejected and "another idempotency key" in other_key.reason
        assert [f for f in adapter.received() if f["type"] == "deliver"] == []  # nothing delivered again
        await h.core.journal.checkpoint()
    store = JournalStore.open(tmp_path / "journal.db", read_only=True)
    try:
        loaded = load_checkpoint(store)
        assert loaded is not None
        decoded = loaded[0]
        assert "c0" in decoded.archived
    finally:
        store.close()
    async with running_core(tmp_path, clock=clock, settings=settings, fresh=False) as h2:
        assert h2.core.journal.replayed_at_open < 5  # started from the checkpoint
        assert "c0" in h2.core.state.archived
        await h2.login()
        retry = await h2.submit("c0", "echo once")
        assert retry.outcome is SubmissionOutcome.accepted and "duplicate" in retry.reason
        assert retry.command == original
        assert (await h2.submit("c0", "echo twice")).outcome is SubmissionOutcome.rejected


async def test_a_late_outcome_for_an_archived_command_is_recorded_and_the_winner_stays(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await complete(h, adapter, "c0")
        for index in range(1, WINDOW + 2):
            await complete(h, adapter, f"c{index}")
        assert "c0" in h.core.state.archived
        late = await adapter.report("c0", "failed", failure="execution_failed")
        assert late["type"] == "error"  # too late, but recorded
        record = h.core.command("c0")
        assert record.state is CommandState.completed and record.failure is None
        assert [(o["candidate_state"], o["candidate_failure"]) for o in record.late_outcomes] == [
            ("failed", "execution_failed")]
        assert h.core.state.archived["c0"].state is CommandState.completed
        cancel = await h.submit("x0", kind="cancel", payload={"command_id": "c0"})
        assert cancel.outcome is SubmissionOutcome.accepted
        await h.settle()
        assert h.core.command("x0").result == {"target_command_id": "c0", "effect": "too_late",
                                               "target_state": "completed"}
        superseding = await h.submit("s0", "echo", supersedes="c0")
        assert superseding.outcome is SubmissionOutcome.accepted
        assert h.core.command("c0").state is CommandState.completed
    result = replay_journal(tmp_path / "journal.db", check=True)
    assert result.violations == []


async def test_checkpoint_plus_tail_is_the_state_replayed_from_zero_with_archiving(tmp_path: Path) -> None:
    settings = CoreSettings(stale_after=15, offline_after=30, checkpoint_every=10**9)
    async with running_core(tmp_path, settings=settings) as h:
        adapter = await attached(h)
        for index in range(6):
            await complete(h, adapter, f"a{index}")
        await h.submit("live", "sleep 100")
        await h.core.journal.checkpoint()
        for index in range(6):
            await complete(h, adapter, f"b{index}")
        await adapter.report("a0", "failed", failure="execution_failed")  # a late outcome in the tail
        await h.settle()
        live = h.core.state.clone()
    path = tmp_path / "journal.db"
    store = JournalStore.open(path, read_only=True)
    try:
        loaded = load_checkpoint(store)
        assert loaded is not None
        prefix, lsn, _ = loaded
        assert prefix.archived
        assert prefix == replay_journal(path, until_lsn=lsn).state
        recovered, tail = recover_state(store)
    finally:
        store.close()
    assert tail > 0 and recovered.archived.keys() > prefix.archived.keys()
    assert recovered == replay_journal(path).state
    assert recovered.commands == live.commands and recovered.archived == live.archived


async def test_listing_merges_live_window_and_archive_newest_first_as_archiving_goes_on(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await h.submit("slow", "sleep 100")  # accepted first, settles last: stays in the window
        expected = ["slow"]
        for index in range(8):
            await complete(h, adapter, f"c{index}")
            expected.insert(0, f"c{index}")
            listed = [c.command_id for c in h.core.commands(target=TARGET, limit=100)]
            assert listed == expected and [c.command_id for c in h.core.commands(limit=3)] == expected[:3]
        assert len(h.core.state.archived) == 8 - WINDOW
        for state in ("delivered", "running", "completed"):
            await adapter.report("slow", state)
        await complete(h, adapter, "last")
        assert [c.command_id for c in h.core.commands(target=TARGET, limit=100)] == ["last", *expected]
        assert [c.command_id for c in h.core.commands(target="shell-1/other", limit=100)] == []
        assert h.core.commands(limit=0) == []


async def test_commands_archived_in_the_batch_that_cancels_them_are_still_withdrawn(tmp_path: Path) -> None:
    """A grant revoked with policy cancel settles every delivered command it authorized in one
    commit; more of them than the window holds are archived before the adapter plane looks at
    the batch, and each must still be withdrawn from the adapter."""
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        for grant in list(h.core.state.grants.values()):
            await h.core.revoke_grant(grant.grant_id, "replaced")
        grant_id = await h.core.add_grant(scope={"type": "all"}, kinds=["instruct"], expires_at=None,
                                          revocation_policy="cancel", provenance="test")
        held = [f"held-{index}" for index in range(WINDOW + 3)]
        for command_id in held:
            assert (await h.submit(command_id, "sleep 100")).outcome is SubmissionOutcome.accepted
            assert (await adapter.report(command_id, "delivered"))["type"] == "ack"
        await h.settle()
        adapter.received()
        await h.core.revoke_grant(grant_id, "device lost")
        await h.settle()
        assert set(held) <= set(h.core.state.archived) | set(h.core.state.commands)
        assert any(command_id in h.core.state.archived for command_id in held)  # the case under test
        withdrawn = [f["command_id"] for f in adapter.received() if f["type"] == "withdraw"]
        assert sorted(withdrawn) == sorted(held)
        assert all(h.core.command(command_id).state is CommandState.cancelled for command_id in held)
