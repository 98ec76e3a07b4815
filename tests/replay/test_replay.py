"""Replay: the same reducer as the live core, idempotent, and checkpoints that agree with LSN 0."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import apsw
import attrs
import pytest

from patchbay.core import Core, CoreSettings
from patchbay.core import _state as core_state_module
from patchbay.core._state import recover_state
from patchbay.core.checkpoint import base_of, load_checkpoint, read_document
from patchbay.core.ports import ManualClock
from patchbay.domain import reducer
from patchbay.domain.model import CoreState
from patchbay.journal import JournalStore, StoredEvent
from patchbay.registry import CommandState, Failure
from patchbay.replay import replay_journal
from tests.core.harness import DOMAIN, FakeAdapter, Harness, running_core
from tests.replay.scenario import TARGET, scenario_journal


async def test_the_scenario_journal_holds_what_it_should(tmp_path: Path) -> None:
    result = replay_journal(scenario_journal(tmp_path))
    commands = result.state.commands
    assert result.violations == []
    assert (commands["done"].state, commands["done"].late_outcomes[0]["candidate_state"]) == (
        CommandState.completed, "failed")
    assert (commands["short"].state, commands["short"].failure) == (CommandState.expired, Failure.expired)
    assert commands["queued"].state is CommandState.cancelled
    assert commands["held"].state is CommandState.superseded
    assert result.state.sessions[TARGET].tombstoned == (1,)
    assert commands["after-bump"].generation == 2


async def test_replaying_the_same_journal_twice_gives_identical_state(tmp_path: Path) -> None:
    path = scenario_journal(tmp_path)
    first, second = replay_journal(path), replay_journal(path)
    assert first.state == second.state and first.events == second.events


async def test_checkpoint_plus_tail_gives_the_same_state_as_replay_from_lsn_zero(tmp_path: Path) -> None:
    path = scenario_journal(tmp_path)
    store = JournalStore.open(path, read_only=True)
    checkpoint = store.latest_checkpoint()
    recovered, tail = recover_state(store)
    assert checkpoint is not None and tail == store.last_lsn() - checkpoint.lsn  # only the tail replayed
    store.close()
    assert recovered == replay_journal(path).state


async def test_a_checkpoint_is_exactly_the_prefix_up_to_its_lsn(tmp_path: Path) -> None:
    path = scenario_journal(tmp_path)
    store = JournalStore.open(path, read_only=True)
    loaded = load_checkpoint(store)
    assert loaded is not None
    state, lsn, _ = loaded
    assert state == replay_journal(path, until_lsn=lsn).state  # SnapshotConsistentPrefix
    store.close()


async def test_the_live_state_equals_the_replay_of_its_journal(tmp_path: Path) -> None:
    async with running_core(tmp_path, settings=CoreSettings(checkpoint_every=7)) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        for n in range(20):
            await h.submit(f"c{n}", f"echo {n}")
            await adapter.report(f"c{n}", "delivered")
        await h.settle()
        live = attrs.evolve(h.core.state)
    assert replay_journal(tmp_path / "journal.db").state == live  # IdempotentLogReplay


async def test_recovery_after_restart_replays_only_the_tail_after_the_latest_checkpoint(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = CoreSettings(checkpoint_every=25, stale_after=1e6, offline_after=1e6)
    async with running_core(tmp_path, clock=clock, settings=settings) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        for n in range(60):
            await h.submit(f"c{n}", f"echo {n}")
        await h.settle()
        total = h.core.state.last_lsn
    core = Core(tmp_path / "journal.db", expected_domain=DOMAIN, clock=clock, settings=settings)
    try:
        assert 0 < core.journal.replayed_at_open < 25 < total  # the checkpoint bounded recovery
        assert core.state == replay_journal(tmp_path / "journal.db").state
        assert core.core_generation == 3  # init, first run, this open
    finally:
        core._store.close()
        core._reader.close()


async def test_a_checkpoint_in_an_unknown_format_is_ignored_and_recovery_starts_from_lsn_zero(
        tmp_path: Path) -> None:
    path = scenario_journal(tmp_path)
    store = JournalStore.open(path, expected_domain=DOMAIN)
    store.save_checkpoint(store.last_lsn(), b'{"format": 999, "state": {}}')
    recovered, tail = recover_state(store)
    assert tail == store.last_lsn()
    store.close()
    assert recovered == replay_journal(path).state


@attrs.frozen
class _RawEvent:
    lsn: int
    core_generation: int
    kind: str
    ts: float
    payload: dict[str, Any]


def _reference_fold(path: Path, monkeypatch: pytest.MonkeyPatch) -> CoreState:
    """The plainest fold there is: every row through json.loads, records updated by attrs.evolve."""
    with monkeypatch.context() as patch:
        patch.setattr(reducer, "evolve", attrs.evolve)
        connection = apsw.Connection(f"file:{path}?immutable=1", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        state = CoreState()
        for lsn, generation, kind, ts, payload in connection.execute(
                "SELECT lsn, core_generation, kind, ts, payload FROM events ORDER BY lsn"):
            reducer.apply(state, _RawEvent(lsn, generation, kind, ts, json.loads(payload)))
        connection.close()
    return state


async def test_replay_gives_exactly_the_state_of_a_plain_reference_fold(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = scenario_journal(tmp_path)
    result = replay_journal(path)
    reference = _reference_fold(path, monkeypatch)
    assert result.state.commands and result.state.sessions and result.state.leases is not None
    assert result.state == reference
    assert attrs.asdict(result.state) == attrs.asdict(reference)  # deep, field by field
    assert result.events == reference.last_lsn


def test_replay_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    path = scenario_journal(tmp_path)
    assert gc.isenabled()
    replay_journal(path)
    assert gc.isenabled()

    def fail(event: StoredEvent) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        replay_journal(path, on_event=fail)
    assert gc.isenabled()
    gc.disable()
    try:
        replay_journal(path)
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_recovery_folds_with_the_collector_paused_and_leaves_it_as_it_found_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = scenario_journal(tmp_path)
    seen: list[bool] = []
    real_apply = core_state_module.apply

    def watching(state: CoreState, event: StoredEvent) -> CoreState:
        seen.append(gc.isenabled())
        return real_apply(state, event)

    monkeypatch.setattr(core_state_module, "apply", watching)
    store = JournalStore.open(path, read_only=True)
    try:
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None and store.last_lsn() > checkpoint.lsn  # there is a tail to fold
        assert gc.isenabled()
        recover_state(store)
        assert seen and not any(seen)  # every tail event folded with the collector off
        assert gc.isenabled()
        gc.disable()
        try:
            recover_state(store)
            assert not gc.isenabled()  # it was off before: it stays off
        finally:
            gc.enable()
    finally:
        store.close()


async def submitted(h: Harness, count: int) -> FakeAdapter:
    """Log in, attach an adapter with one session, submit ``count`` commands and settle."""
    await h.login()
    adapter = await h.adapter()
    await adapter.attach()
    await adapter.session()
    for n in range(count):
        await h.submit(f"c{n}", f"echo {n}")
    await h.settle()
    return adapter


async def test_later_checkpoints_are_deltas_against_a_full_one_that_pruning_keeps(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = CoreSettings(checkpoint_every=10**9, stale_after=1e6, offline_after=1e6)
    path = tmp_path / "journal.db"
    async with running_core(tmp_path, clock=clock, settings=settings) as h:
        adapter = await submitted(h, 40)
        first = await h.core.journal.checkpoint()
        for round_ in range(3):
            await h.submit(f"d{round_}", "echo later")
            await adapter.report(f"c{round_}", "delivered")
            await h.settle()
            await h.core.journal.checkpoint()
        live = attrs.evolve(h.core.state)
    store = JournalStore.open(path, read_only=True)
    try:
        kept = [row[0] for row in store._db.execute("SELECT lsn FROM checkpoints ORDER BY lsn")]
        documents = [read_document(store.checkpoint_at(lsn).state) for lsn in kept]  # type: ignore[union-attr]
        # a chain: the full one, then each delta against the one before it; pruning keeps it whole
        assert [base_of(d) for d in documents if d is not None] == [None, *kept[:-1]]
        assert kept[0] == first and len(kept) == 4
        latest = store.latest_checkpoint()
        assert latest is not None and len(latest.state) < len(store.checkpoint_at(first).state) / 2  # type: ignore[union-attr]
        loaded = load_checkpoint(store)
        assert loaded is not None and loaded[1:] == (latest.lsn, tuple(kept))
        assert loaded[0] == replay_journal(path, until_lsn=latest.lsn).state
        recovered, tail = recover_state(store)
        assert tail == store.last_lsn() - latest.lsn
    finally:
        store.close()
    assert recovered == live == replay_journal(path).state


async def test_a_delta_checkpoint_whose_base_is_gone_is_ignored_and_recovery_starts_from_lsn_zero(
        tmp_path: Path) -> None:
    settings = CoreSettings(checkpoint_every=10**9, stale_after=1e6, offline_after=1e6)
    path = tmp_path / "journal.db"
    async with running_core(tmp_path, settings=settings) as h:
        await h.login()
        first = await h.core.journal.checkpoint()
        adapter = await h.adapter()
        await adapter.attach()
        await h.core.journal.checkpoint()
    store = JournalStore.open(path, expected_domain=DOMAIN)
    try:
        latest = store.latest_checkpoint()
        assert latest is not None and base_of(read_document(latest.state) or {}) == first
        with store._db:
            store._db.execute("DELETE FROM checkpoints WHERE lsn = ?", (first,))
        assert load_checkpoint(store) is None
        recovered, tail = recover_state(store)
        assert tail == store.last_lsn()
    finally:
        store.close()
    assert recovered == replay_journal(path).state


async def test_a_chain_is_restarted_by_a_full_checkpoint_and_a_broken_chain_is_not_loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchbay.core import checkpoint

    monkeypatch.setattr(checkpoint, "MAX_CHAIN", 2)
    settings = CoreSettings(checkpoint_every=10**9, stale_after=1e6, offline_after=1e6)
    path = tmp_path / "journal.db"
    written = []
    async with running_core(tmp_path, settings=settings) as h:
        await submitted(h, 0)
        for n in range(5):
            await h.submit(f"c{n}", f"echo {n}")
            await h.settle()
            written.append(await h.core.journal.checkpoint())
        assert await h.core.journal.checkpoint() == written[-1]  # nothing new: nothing written
    store = JournalStore.open(path, expected_domain=DOMAIN)
    try:
        bases = {lsn: base_of(read_document(store.checkpoint_at(lsn).state) or {})  # type: ignore[union-attr]
                 for lsn in written if store.checkpoint_at(lsn) is not None}
        # full, delta, delta (MAX_CHAIN deltas), then full again and a delta; pruning kept the
        # latest two and what they build on, so the first chain is gone
        assert bases == {written[3]: None, written[4]: written[3]}
        loaded = load_checkpoint(store)
        assert loaded is not None and loaded[1:] == (written[4], (written[3], written[4]))
        assert loaded[0] == replay_journal(path, until_lsn=written[4]).state
        with store._db:
            store._db.execute("DELETE FROM checkpoints WHERE lsn = ?", (written[3],))
        assert load_checkpoint(store) is None  # its chain lost its full checkpoint
    finally:
        store.close()


async def test_a_quiet_journal_gets_a_checkpoint_of_what_the_burst_before_it_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchbay.core import _core

    monkeypatch.setattr(_core, "QUIET_CHECKPOINT_MIN", 20)
    clock = ManualClock()
    settings = CoreSettings(checkpoint_every=100, stale_after=1e6, offline_after=1e6)  # quiet min: 20
    path = tmp_path / "journal.db"
    async with running_core(tmp_path, clock=clock, settings=settings) as h:
        await submitted(h, 15)
        assert 20 <= h.core.journal.since_checkpoint < 100
        store = JournalStore.open(path, read_only=True)
        try:
            assert store.latest_checkpoint() is None  # not yet: the journal was never quiet
            clock.advance(_core.QUIET_CHECKPOINT_AFTER / 2)
            await h.settle()
            assert store.latest_checkpoint() is None  # quiet, but not for long enough
            clock.advance(_core.QUIET_CHECKPOINT_AFTER)
            await h.settle()
            latest = store.latest_checkpoint()
            assert latest is not None and latest.lsn == h.core.state.last_lsn
            assert h.core.journal.since_checkpoint == 0
            clock.advance(10 * _core.QUIET_CHECKPOINT_AFTER)
            await h.settle()
            assert store.latest_checkpoint() == latest  # nothing new since: no other one
        finally:
            store.close()
