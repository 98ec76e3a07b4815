"""The journal-backed state of the core: recovery, the decision section, and group commit.

Two copies of the same reduction are kept:

- ``committed`` — ``apply`` over every durable event. Every read (API, stream snapshots,
  checkpoints) comes from it, so nothing not yet durable is ever visible.
- ``speculative`` — ``committed`` plus the events decided but not yet durable. Deciders read
  it, so a decision sees the effect of every earlier decision even while their commit is in
  flight.

``decide`` runs a pure decision against ``speculative`` and queues its facts *without any
checkpoint in between* (trio is cooperative), so the journal's LSN order is exactly the order
of decisions, and every decision was taken against the prefix that precedes it. The facts are
then handed to the journal writer's thread in that order (group commit: what is queued while a
commit is in flight shares the next one), and ``wait`` returns once they are durable.

If a commit fails (a full disk, an I/O error), the waiters of that batch and of every batch
queued behind it get ``CoreStopped``: none of it is in the journal. The speculative state goes
back to the committed one, and every new decision is refused (``JournalUnavailable``) while
reads go on, until a probe commit succeeds (tried with backoff, ``_until_writable``): it
journals a ``journal.unwritable`` record of the outage, and writes are taken again by
themselves. Nothing acknowledged is lost: only durable events were ever answered.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import trio

from patchbay import faults
from patchbay._collector import collector_paused
from patchbay.core._health import Health, describe
from patchbay.core.checkpoint import (
    Base,
    EncodedRecords,
    changes_steps,
    encode_state_steps,
    load_checkpoint,
    pack_pieces,
    pause_after,
)
from patchbay.core.ports import Clock
from patchbay.domain.events import EventKind, Fact
from patchbay.domain.model import CoreState
from patchbay.domain.reducer import apply
from patchbay.errors import CoreStopped, JournalUnavailable
from patchbay.journal import (
    AppendRequest,
    JournalStore,
    JournalWriter,
    NewEvent,
    StoredEvent,
    write_head,
)

_Pending = AppendRequest  # what ``decide`` returns: wait on it with ``wait``
_T = TypeVar("_T")
_KEEP = 2  # checkpoints kept (besides the bases they apply to)
PROBE_FIRST, PROBE_MAX = 0.2, 5.0  # seconds between tries of an unwritable journal (doubling)


@attrs.frozen
class _Provisional:
    """An event as the speculative state sees it before the journal assigns its LSN."""

    lsn: int
    core_generation: int
    kind: str
    ts: float
    payload: Mapping[str, Any]


def recover_state(store: JournalStore) -> tuple[CoreState, int]:
    """Latest checkpoint (with its chain, if it is a delta) + tail through ``apply``: the state
    at the last committed LSN.

    Returns the state and the number of tail events replayed.
    """
    state, replayed, _ = _recover(store)
    return state, replayed


def _recover(store: JournalStore) -> tuple[CoreState, int, tuple[int, ...]]:
    """``recover_state``, and the chain of the checkpoint it started from (LSNs, full first)."""
    with collector_paused():  # the decode and the fold only build live objects
        state = CoreState()
        loaded = load_checkpoint(store)
        after = 0
        used: tuple[int, ...] = ()
        if loaded is not None:
            state, after, used = loaded
            if faults.active("checkpoint_off_by_one"):
                after += 1
        replayed = 0
        for event in store.read(after_lsn=after):
            if after and faults.active("recovery_tail_off"):
                break
            apply(state, event)
            replayed += 1
    return state, replayed, used


class _Pace:
    """Runs a checkpoint's steps in the event loop, taking at most ``SHARE`` of its time once
    the checkpoint has worked ``FREE`` seconds: after each step it sleeps for as long as the
    step took, times (1 - SHARE) / SHARE. A small checkpoint finishes at once; a large one
    (thousands of records changed since the last: ~0.6 s of CPU) is spread over a few seconds
    instead of taking every other millisecond of the loop for half a second, during which
    each request waited behind a step at every turn and the writer thread for the GIL."""

    SHARE = 0.1
    FREE = 0.005

    def __init__(self, share: float = SHARE) -> None:
        self.share = share
        self.spent = 0.0

    async def run(self, steps: Generator[None, None, _T]) -> _T:
        while True:
            started = trio.current_time()
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            took = trio.current_time() - started
            self.spent += took
            if self.share < 1 and self.spent > self.FREE:
                await trio.sleep(pause_after(took, self.share))
            else:
                await trio.lowlevel.checkpoint()


class JournaledState:
    def __init__(self, store: JournalStore, clock: Clock, *, checkpoint_every: int,
                 on_commit: Callable[[list[StoredEvent]], None], health: Health | None = None) -> None:
        self.store = store
        self.clock = clock
        self.committed, self.replayed_at_open, used = _recover(store)
        self.speculative = self.committed.clone()
        self._checkpoint_every = checkpoint_every
        self._since_checkpoint = self.replayed_at_open
        self._on_commit_hook = on_commit
        self._writer = JournalWriter(store, on_commit=self._on_commit, on_failure=self._on_failure)
        self._uncommitted: deque[_Pending] = deque()  # handed to the writer, in decision order
        self.health = health or Health()
        self._unwritable: BaseException | None = None  # the failed commit, while writes are refused
        self._unwritable_since = 0.0
        self._refused = 0  # decisions refused meanwhile
        self._broken = trio.Event()
        self._writable = trio.Event()  # set while the journal takes writes
        self._writable.set()
        self._encoded = EncodedRecords()  # what the last checkpoint encoded, reused by the next
        self._base: Base | None = None  # the last checkpoint this process wrote
        # the chains of the latest checkpoints (LSNs, full one first), newest last: pruning
        # keeps every checkpoint in them
        self._chains: deque[tuple[int, ...]] = deque([used] if used else [], maxlen=_KEEP)
        self.commits = 0
        self.in_flight = 0
        self._drained = trio.Event()
        self._drained.set()

    @property
    def core_generation(self) -> int:
        return self.store.core_generation

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the journal writer, and after a failed commit try the journal until it takes
        writes again; returns only by cancellation."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._writer.run)
            task_status.started()
            while True:
                await self._broken.wait()
                await self._until_writable()
                self._broken = trio.Event()

    @property
    def writable(self) -> bool:
        return self._unwritable is None

    async def wait_writable(self) -> None:
        """Until the journal takes writes (at once when it does)."""
        await self._writable.wait()

    async def _until_writable(self) -> None:
        """Commit a ``journal.unwritable`` record of the outage, with backoff, until one
        commits: then the journal takes decisions again."""
        delay = PROBE_FIRST
        while self._unwritable is not None:
            await trio.sleep(delay)
            delay = min(delay * 2, PROBE_MAX)
            fact = Fact(EventKind.journal_unwritable, "journal", {
                "error": describe(self._unwritable), "since": self._unwritable_since, "refused": self._refused})
            try:
                await self.wait(self._queue([fact], now=None, frame=None))
            except CoreStopped:
                continue  # still failing (``_on_failure`` ran again)
            self._unwritable, self._refused = None, 0
            self.health.journal_writable_again()
            self._writable.set()

    def decide(self, facts: Sequence[Fact], *, now: float | None = None,
               frame: tuple[str, int, int] | None = None) -> _Pending | None:
        """Queue already-decided facts in decision order and fold them into ``speculative``.

        Must be called in the same synchronous step as the decision that produced ``facts``.
        """
        if not facts:
            return None
        if self._unwritable is not None:
            self._refused += 1
            raise JournalUnavailable(f"the journal takes no writes ({describe(self._unwritable)}); nothing was "
                                     "recorded; it is tried again by itself") from self._unwritable
        if self._writer.closed:
            raise CoreStopped("the core is stopping: the journal takes no more decisions")
        return self._queue(facts, now=now, frame=frame)

    def _queue(self, facts: Sequence[Fact], *, now: float | None,
               frame: tuple[str, int, int] | None) -> _Pending:
        ts = self.clock.now() if now is None else now
        events = []
        lsn = self.speculative.last_lsn
        try:
            for fact in facts:
                payload = fact.payload if frame is None else {**fact.payload, "adapter_frame": list(frame)}
                events.append(NewEvent(kind=fact.kind.value, entity=fact.entity, payload=payload, ts=ts))
                lsn += 1
                apply(self.speculative, _Provisional(lsn, self.core_generation, fact.kind.value, ts, payload))
        except Exception:
            # A decider produced a fact the reducer cannot fold: none of these facts is queued,
            # so take back the part already folded into ``speculative`` before re-raising.
            self._rebuild_speculative()
            raise
        pending = self._writer.submit(events)
        self._work_started()
        self._uncommitted.append(pending)
        return pending

    def barrier(self) -> _Pending | None:
        """What to wait for so that everything decided so far is durable: the last queued
        decision (the writer commits in decision order), or None when nothing is in flight."""
        return self._uncommitted[-1] if self._uncommitted else None

    def _rebuild_speculative(self) -> None:
        """``committed`` plus every queued-but-uncommitted fact, folded again (a rare path)."""
        speculative = self.committed.clone()
        lsn = speculative.last_lsn
        for pending in self._queued_in_order():
            for event in pending.events:
                lsn += 1
                apply(speculative, _Provisional(lsn, self.core_generation, event.kind, event.ts, event.payload))
        self.speculative = speculative

    def _queued_in_order(self) -> list[_Pending]:
        return list(self._uncommitted)

    async def wait(self, pending: _Pending | None) -> list[StoredEvent]:
        """Wait until ``pending`` is durable; raises CoreStopped if it never will be."""
        if pending is None:
            return []
        await pending.done.wait()
        if pending.error is not None:
            raise JournalUnavailable(f"the journal could not commit ({describe(pending.error)}); nothing of it "
                                     "was recorded") from pending.error
        stored: list[StoredEvent] = pending.stored
        return stored

    async def persist(self, facts: Sequence[Fact], *, now: float | None = None,
                      frame: tuple[str, int, int] | None = None) -> list[StoredEvent]:
        return await self.wait(self.decide(facts, now=now, frame=frame))

    def _work_started(self) -> None:
        self.in_flight += 1
        if self._drained.is_set():  # never replace an event someone may be waiting on
            self._drained = trio.Event()

    def _work_finished(self, count: int) -> None:
        self.in_flight -= count
        if self.in_flight == 0:
            self._drained.set()

    async def drained(self) -> None:
        """Wait until nothing decided is still waiting for its commit and no checkpoint is
        being written (tests, shutdown)."""
        await self._drained.wait()

    def _on_commit(self, stored: list[StoredEvent]) -> None:
        """A batch is durable (called by the writer before its waiters wake): fold it into
        ``committed`` and take its decisions off the uncommitted queue (the writer commits
        them in the order they were handed over)."""
        covered, finished = 0, 0
        while covered < len(stored):
            covered += len(self._uncommitted.popleft().events)
            finished += 1
        self._work_finished(finished)
        for event in stored:
            apply(self.committed, event)
        self.commits += 1
        self._since_checkpoint += len(stored)
        self._on_commit_hook(stored)

    def _on_failure(self, error: BaseException) -> None:
        """A commit failed: it and every decision queued behind it fail (the writer sees to
        that; nothing more is queued from now on), so none of them will ever commit. The
        speculative state goes back to the committed one, and ``run`` tries the journal until
        it takes writes again."""
        if self._unwritable is None:
            self._unwritable = error
            self._unwritable_since = self.clock.now()
            self.health.journal_failed(error)
            self._writable = trio.Event()
        failed = len(self._uncommitted)
        self._uncommitted.clear()
        self._work_finished(failed)
        self.speculative = self.committed.clone()
        self._broken.set()

    def checkpoint_due(self) -> bool:
        return self._since_checkpoint >= self._checkpoint_every

    @property
    def since_checkpoint(self) -> int:
        """Events committed since the last checkpoint (or replayed at open)."""
        return self._since_checkpoint

    async def checkpoint(self, *, paced: bool = True) -> int:
        """Write the committed state as a checkpoint at its LSN; returns the LSN.

        Encoding costs time in proportion to what it writes, so it works on a copy taken in
        this step (records are frozen: copying the containers is cheap and consistent at this
        LSN) in steps of about a millisecond, yielding to the event loop after each. Most
        checkpoints are deltas against the previous one this process wrote (only the entries
        that changed since; see ``changes_steps``), and a record the previous checkpoint
        encoded that did not change is not encoded again (``encode_state_steps``). The
        document is compressed in a worker thread (``pack_pieces``); the write happens in the
        writer thread's turn, never beside a commit on the same connection. ``paced`` (the
        default, for a checkpoint taken while work goes on) holds its steps and its compression
        to a tenth of the loop and of a CPU (``_Pace``); the core takes unpaced ones when the
        journal has been quiet for a moment.
        """
        self._work_started()  # counted as work in flight: `drained` waits for it too
        try:
            lsn = self.committed.last_lsn
            if self._base is not None and self._base.lsn == lsn:  # nothing happened since
                self._since_checkpoint = 0
                return lsn
            copy = self.committed.clone()
            self._since_checkpoint = 0
            pace = _Pace() if paced else _Pace(share=1.0)
            changes = await pace.run(changes_steps(copy, self._base)) if self._base is not None else None
            pieces: list[bytes] = []
            await pace.run(encode_state_steps(copy, pieces, self._encoded, changes))
            data = await trio.to_thread.run_sync(pack_pieces, pieces, pace.share)
            if changes is None or self._base is None:
                base = Base(lsn, copy, (lsn,))
            else:
                base = Base(lsn, copy, (*self._base.chain, lsn), self._base.entries + changes.count())
            # the latest checkpoints once this one is written, and what they build on
            pinned = {chained for chain in [*list(self._chains)[1 - _KEEP:], base.chain] for chained in chain}
            await self._writer.run_exclusive(lambda: self._write_checkpoint(lsn, data, pinned))
            self._chains.append(base.chain)
            self._base = base
            return lsn
        finally:
            self._work_finished(1)

    def _write_checkpoint(self, lsn: int, data: bytes, pinned: set[int]) -> None:
        self.store.save_checkpoint(lsn, data)
        self.store.prune_checkpoints(keep=_KEEP, pinned=pinned)
        with contextlib.suppress(OSError):  # evidence of the head, not the truth: see ``write_head``
            write_head(self.store.path, self.store.domain_id, lsn)

    async def aclose(self) -> None:
        await self._writer.aclose()
