"""The single journal writer: group commit, acknowledgement only after commit, failed batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from patchbay.journal import (
    JournalClosed,
    JournalStore,
    JournalWriteFailed,
    JournalWriter,
    NewEvent,
    StoredEvent,
)
from tests.journal.test_store import DOMAIN, poison


def event(label: str) -> NewEvent:
    return NewEvent(kind="test.event", entity=label, payload={"label": label}, ts=1.0)


async def test_concurrent_appends_are_group_committed_and_each_waiter_gets_its_own_events(tmp_path: Path) -> None:
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    committed: list[list[StoredEvent]] = []
    writer = JournalWriter(store, on_commit=committed.append)
    answers: dict[int, list[StoredEvent]] = {}

    async def append(n: int) -> None:
        answers[n] = await writer.append([event(f"{n}-a"), event(f"{n}-b")])

    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        async with trio.open_nursery() as appenders:
            for n in range(200):
                appenders.start_soon(append, n)
        nursery.cancel_scope.cancel()
    all_lsns = [e.lsn for batch in committed for e in batch]
    assert all_lsns == list(range(1, 401))  # gap-free, in commit order
    assert writer.batches_committed == len(committed) < 200  # several appends per transaction
    for n, stored in answers.items():
        assert [e.entity for e in stored] == [f"{n}-a", f"{n}-b"]
        assert stored[1].lsn == stored[0].lsn + 1  # one append's events are contiguous
    assert [e.lsn for e in store.read()] == all_lsns
    store.close()


async def test_an_append_is_answered_only_after_its_transaction_is_durable(tmp_path: Path) -> None:
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    seen_on_disk: list[int] = []

    def on_commit(stored: list[StoredEvent]) -> None:
        reader = JournalStore.open(store.path, read_only=True)
        seen_on_disk.append(reader.last_lsn())
        reader.close()

    writer = JournalWriter(store, on_commit=on_commit)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        stored = await writer.append([event("x")])
        assert seen_on_disk == [stored[0].lsn]  # another connection already sees it
        nursery.cancel_scope.cancel()
    store.close()


async def test_a_failed_write_fails_every_waiter_of_its_batch_and_leaves_nothing_visible(tmp_path: Path) -> None:
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    committed: list[list[StoredEvent]] = []
    writer = JournalWriter(store, on_commit=committed.append)
    outcomes: dict[str, object] = {}

    async def append(label: str, payload: dict[str, object]) -> None:
        try:
            stored = await writer.append([NewEvent(kind="k", entity=label, payload=payload, ts=1.0)])
            outcomes[label] = stored[0].lsn
        except JournalWriteFailed as failure:
            outcomes[label] = failure

    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        assert (await writer.append([event("before")]))[0].lsn == 1
        poison(store.path)
        async with trio.open_nursery() as appenders:  # queued together: one batch
            for label in ("a", "b"):
                appenders.start_soon(append, label, {"fine": True})
            appenders.start_soon(append, "bad", {"poison": True})
            appenders.start_soon(append, "c", {"fine": True})
        later = await writer.append([event("after")])
        nursery.cancel_scope.cancel()
    assert all(isinstance(outcomes[label], JournalWriteFailed) for label in ("a", "b", "bad", "c"))
    assert "injected write failure" in str(outcomes["bad"])
    assert later[0].lsn == 2  # the writer goes on, and no LSN was burnt by the failed batch
    assert [e.entity for e in store.read()] == ["before", "after"]
    assert [[e.entity for e in batch] for batch in committed] == [["before"], ["after"]]  # never published
    store.close()


async def test_appends_after_the_writer_stopped_are_refused(tmp_path: Path) -> None:
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    writer = JournalWriter(store, on_commit=lambda stored: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await writer.aclose()
    with pytest.raises(JournalClosed):
        await writer.append([event("late")])
    assert store.count() == 0
    store.close()
