"""The single journal writer: group commit, acknowledgement only after commit, failed batches,
and a writer thread that commits without waiting for the event loop."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio
import trio.testing

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
        gate = threading.Event()
        async with trio.open_nursery() as appenders:
            # The writer thread is busy with a job until every append is queued: one batch.
            appenders.start_soon(writer.run_exclusive, lambda: gate.wait(30))
            await trio.testing.wait_all_tasks_blocked()
            for label in ("a", "b"):
                appenders.start_soon(append, label, {"fine": True})
            appenders.start_soon(append, "bad", {"poison": True})
            appenders.start_soon(append, "c", {"fine": True})
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        later = await writer.append([event("after")])
        nursery.cancel_scope.cancel()
    assert all(isinstance(outcomes[label], JournalWriteFailed) for label in ("a", "b", "bad", "c"))
    assert "injected write failure" in str(outcomes["bad"])
    assert later[0].lsn == 2  # the writer goes on, and no LSN was burnt by the failed batch
    assert [e.entity for e in store.read()] == ["before", "after"]
    assert [[e.entity for e in batch] for batch in committed] == [["before"], ["after"]]  # never published
    store.close()


async def test_requests_queued_behind_a_failed_batch_fail_with_it_and_later_ones_commit(tmp_path: Path) -> None:
    """What was queued while a batch failed may depend on it (it was decided against a state
    that included it), so it fails too; what is appended once the failure is known commits."""
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    failures: list[BaseException] = []
    writer = JournalWriter(store, on_commit=lambda stored: None, on_failure=failures.append, max_batch=1)
    poison(store.path)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        gate = threading.Event()
        nursery.start_soon(writer.run_exclusive, lambda: gate.wait(30))
        await trio.testing.wait_all_tasks_blocked()
        bad = writer.submit([NewEvent(kind="k", entity="bad", payload={"poison": True}, ts=1.0)])
        behind = [writer.submit([event(f"behind-{n}")]) for n in range(3)]  # one batch each (max_batch=1)
        gate.set()
        for request in (bad, *behind):
            await request.done.wait()
        assert "injected write failure" in str(bad.error)
        assert all(isinstance(request.error, JournalWriteFailed) for request in behind)
        assert len(failures) == 1  # told once, for the batch that failed
        after = await writer.append([event("after")])
        nursery.cancel_scope.cancel()
    assert after[0].lsn == 1
    assert [e.entity for e in store.read()] == ["after"]
    store.close()


async def test_the_writer_thread_commits_while_the_event_loop_is_busy(tmp_path: Path) -> None:
    """Commits follow each other in the writer thread: the next one starts without waiting for
    the trio thread to take the previous one's answer (here it never yields meanwhile)."""
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    real = store.append_batch
    committed_in_thread: list[int] = []
    both = threading.Event()

    def append_batch(events: list[NewEvent]) -> list[StoredEvent]:
        stored = real(events)
        committed_in_thread.append(len(stored))
        if len(committed_in_thread) == 2:
            both.set()
        return stored

    store.append_batch = append_batch  # type: ignore[method-assign]
    published: list[int] = []
    writer = JournalWriter(store, on_commit=lambda stored: published.append(stored[-1].lsn), max_batch=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        first = writer.submit([event("one")])
        second = writer.submit([event("two")])
        # No checkpoint in between: the event loop cannot run until this returns.
        assert both.wait(30), "the second commit waited for the event loop"
        assert published == [] and not first.done.is_set()  # answers go out from the trio thread
        await second.done.wait()
        assert first.done.is_set() and published == [1, 2]  # ...in commit order
        nursery.cancel_scope.cancel()
    assert [e.entity for e in store.read()] == ["one", "two"]
    store.close()


async def test_an_on_commit_error_ends_the_writer_with_that_error(tmp_path: Path) -> None:
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)

    def on_commit(stored: list[StoredEvent]) -> None:
        raise ValueError("the callback broke")

    writer = JournalWriter(store, on_commit=on_commit)
    with pytest.raises(ExceptionGroup) as raised:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await writer.append([event("x")])
            await trio.sleep_forever()
    assert raised.group_contains(ValueError, match="the callback broke")
    assert [e.entity for e in store.read()] == ["x"]  # durable all the same
    store.close()


@pytest.mark.parametrize("stop", ["aclose", "cancel"])
async def test_stopping_commits_what_was_queued_before_it_and_refuses_what_comes_after(
        tmp_path: Path, stop: str) -> None:
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    writer = JournalWriter(store, on_commit=lambda stored: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        queued = [writer.submit([event(f"q{n}")]) for n in range(5)]
        if stop == "aclose":
            await writer.aclose()  # run returns once the thread has committed them
        else:
            nursery.cancel_scope.cancel()
    assert all(request.done.is_set() and request.error is None for request in queued)
    assert [e.entity for e in store.read()] == [f"q{n}" for n in range(5)]
    with pytest.raises(JournalClosed):
        await writer.append([event("late")])
    assert store.count() == 5
    store.close()
