"""The single journal writer: group commit in a worker thread, then commit callbacks in order.

Appenders queue their events and wait. The writer takes everything queued (up to
``max_batch`` events), commits it as **one** transaction in a worker thread, and back in the
trio thread calls ``on_commit`` with the stored events in LSN order before waking each
waiter with its own events. An append is answered only after its transaction is durable.

A failed commit fails that batch's waiters with ``JournalWriteFailed`` (nothing of it is
visible: the transaction rolled back and ``on_commit`` was not called) and the writer goes on.
A batch in flight is never torn by cancellation: the hop to the worker thread is shielded.

``run_exclusive`` runs other work on the store (checkpoints) in the writer's turn, between two
batches: apsw refuses a connection used from two threads at once, and a checkpoint written
beside a commit on the writer's connection would crash the core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from patchbay.journal._errors import JournalClosed, JournalWriteFailed
from patchbay.journal._store import JournalStore, NewEvent, StoredEvent


@attrs.define
class _Request:
    events: Sequence[NewEvent]
    done: trio.Event = attrs.field(factory=trio.Event)
    stored: list[StoredEvent] = attrs.field(factory=list)
    error: BaseException | None = None
    job: Callable[[], Any] | None = None


class JournalWriter:
    def __init__(self, store: JournalStore, *, on_commit: Callable[[list[StoredEvent]], None],
                 max_batch: int = 2048, queue_size: int = 8192) -> None:
        self._store = store
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[_Request](queue_size)
        self._closed = False
        self.batches_committed = 0
        self.events_committed = 0

    @property
    def last_lsn(self) -> int:
        return self._store.last_lsn()

    async def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Queue events (waiting for room when the queue is full) and wait until durable."""
        request = await self._submit(_Request(events))
        if request.error is not None:
            if isinstance(request.error, JournalClosed):
                raise request.error
            raise JournalWriteFailed(f"the journal could not commit: {request.error}") from request.error
        return request.stored

    async def run_exclusive(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` in a worker thread in the writer's turn (never beside a commit); returns
        its result or raises its error."""
        await trio.lowlevel.checkpoint_if_cancelled()  # shutting down: Cancelled, not JournalClosed
        request = await self._submit(_Request((), job=job))
        if request.error is not None:
            raise request.error
        return request.stored

    async def _submit(self, request: _Request) -> _Request:
        """Hand a request to the writer (waiting for room in its bounded queue) and wait until
        the writer has finished it, successfully or not."""
        if self._closed:
            raise JournalClosed("the journal writer is stopped")
        try:
            await self._send.send(request)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise JournalClosed("the journal writer is stopped") from None
        await request.done.wait()
        return request

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async for first in self._receive:
                batch: list[_Request] = []
                held: _Request | None = first if first.job is not None else None
                if held is None:
                    batch.append(first)
                size = len(first.events)
                while held is None and size < self._max_batch:
                    try:
                        request = self._receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    if request.job is not None:
                        held = request
                        break
                    batch.append(request)
                    size += len(request.events)
                with trio.CancelScope(shield=True):
                    if batch:
                        await self._commit(batch)
                    if held is not None:
                        await self._run_job(held)
        finally:
            self._closed = True
            self._send.close()
            while True:
                try:
                    request = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                request.error = JournalClosed("the journal writer stopped before committing")
                request.done.set()

    async def _run_job(self, request: _Request) -> None:
        assert request.job is not None
        try:
            request.stored = await trio.to_thread.run_sync(request.job)
        except Exception as error:  # the job's caller gets its error; the writer goes on
            request.error = error
        request.done.set()

    async def _commit(self, batch: list[_Request]) -> None:
        events = [event for request in batch for event in request.events]
        try:
            stored = await trio.to_thread.run_sync(self._store.append_batch, events)
        except Exception as error:  # a failed commit fails its waiters, never the writer
            for request in batch:
                request.error = error
                request.done.set()
            return
        self.batches_committed += 1
        self.events_committed += len(stored)
        self._on_commit(stored)
        offset = 0
        for request in batch:
            request.stored = stored[offset:offset + len(request.events)]
            offset += len(request.events)
            request.done.set()

    async def aclose(self) -> None:
        """Stop accepting appends; what is already queued is still committed by ``run``."""
        self._closed = True
        self._send.close()
