"""The single journal writer: group commit in a thread of its own, then commit callbacks in order.

Appenders hand their events to the writer thread through a queue and wait. The thread takes
everything queued (up to ``max_batch`` events), commits it as **one** transaction, and goes
straight on to what was queued meanwhile: commits follow each other at the disk's pace, not at
the pace at which a busy event loop gets round to starting the next one. Back in the trio
thread, in commit order, ``on_commit`` is called with the stored events in LSN order before
each waiter is woken with its own events. An append is answered only after its transaction is
durable.

A failed commit fails that batch's waiters with ``JournalWriteFailed`` (nothing of it is
visible: the transaction rolled back and ``on_commit`` was not called), and so does every
request already queued behind it when it failed (each was decided before anyone could know,
and may depend on the failed one); ``on_failure`` is told first. Requests made after that go
on as before. Cancellation never tears a batch: the thread finishes what it started.

``run_exclusive`` runs other work on the store (checkpoints) in the writer thread between two
batches, in queue order: apsw refuses a connection used from two threads at once.

Stopping (``aclose``, or cancelling ``run``) commits everything queued before it; a request
made afterwards is refused with ``JournalClosed``.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import trio

from patchbay.journal._errors import JournalClosed, JournalWriteFailed
from patchbay.journal._store import JournalStore, NewEvent, StoredEvent


class AppendRequest:
    """One append (or job) handed to the writer: ``done`` is set once it is durable or failed."""

    __slots__ = ("events", "done", "stored", "error", "job")

    def __init__(self, events: Sequence[NewEvent], job: Callable[[], Any] | None = None) -> None:
        self.events = events
        self.done = trio.Event()
        self.stored: Any = []  # the stored events; a job's result
        self.error: BaseException | None = None
        self.job = job


_STOP = object()  # the thread's last item
_RESUME = object()  # queued when the trio side has seen a failure: what follows is judged anew

# How a batch came back from the thread.
_COMMITTED, _FAILED, _BEHIND_FAILED, _JOB = range(4)


class JournalWriter:
    def __init__(self, store: JournalStore, *, on_commit: Callable[[list[StoredEvent]], None],
                 on_failure: Callable[[BaseException], None] | None = None, max_batch: int = 2048) -> None:
        self._store = store
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        # Finished batches travel back in order through this deque; one trio callback per
        # batch drains it, so the order never depends on how callbacks are scheduled.
        self._finished: deque[tuple[int, list[AppendRequest], Any]] = deque()
        self._finished_lock = threading.Lock()
        self._crashed: BaseException | None = None
        self._ended = trio.Event()  # the thread is gone, or on_commit raised
        self.batches_committed = 0
        self.events_committed = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_lsn(self) -> int:
        return self._store.last_lsn()

    def submit(self, events: Sequence[NewEvent]) -> AppendRequest:
        """Queue events for the next commit and return at once; await ``done`` on the result
        (or use ``append``). Raises ``JournalClosed`` once the writer is stopped."""
        return self._put(AppendRequest(events))

    async def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Queue events and wait until they are durable."""
        request = self.submit(events)
        await request.done.wait()
        if request.error is not None:
            if isinstance(request.error, JournalClosed):
                raise request.error
            raise JournalWriteFailed(f"the journal could not commit: {request.error}") from request.error
        stored: list[StoredEvent] = request.stored
        return stored

    async def run_exclusive(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` in the writer thread in its turn (never beside a commit); returns its
        result or raises its error."""
        await trio.lowlevel.checkpoint_if_cancelled()  # shutting down: Cancelled, not JournalClosed
        request = self._put(AppendRequest((), job=job))
        await request.done.wait()
        if request.error is not None:
            raise request.error
        return request.stored

    def _put(self, request: AppendRequest) -> AppendRequest:
        if self._closed:
            raise JournalClosed("the journal writer is stopped")
        self._queue.put(request)  # before ``run`` starts the thread, it waits there
        return request

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the writer thread; returns (after the thread has committed everything queued
        before) when cancelled or closed. Raises what ``on_commit`` raised, if it did."""
        token = trio.lowlevel.current_trio_token()
        thread = threading.Thread(target=self._work, args=(token,), name="patchbay journal writer", daemon=True)
        thread.start()
        task_status.started()
        try:
            await self._ended.wait()
            if self._crashed is not None:
                raise self._crashed
        finally:
            self._closed = True
            self._queue.put(_STOP)
            with trio.CancelScope(shield=True):
                # The thread's last batches are posted back before it ends, and trio runs
                # posted callbacks in order: once the join is back, every waiter is answered.
                await trio.to_thread.run_sync(thread.join)
                await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Stop accepting appends; what is already queued is still committed."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        await trio.lowlevel.checkpoint()

    # -- the writer thread ----------------------------------------------------------------

    def _work(self, token: trio.lowlevel.TrioToken) -> None:
        failing = False  # a batch failed and the trio side has not seen it yet
        held: Any = None
        while True:
            item = held if held is not None else self._queue.get()
            held = None
            if item is _STOP:
                try:
                    token.run_sync_soon(self._ended.set)
                except trio.RunFinishedError:
                    pass
                return
            if item is _RESUME:
                failing = False
                continue
            if item.job is not None:
                self._run_job(item, token)
                continue
            batch = [item]
            size = len(item.events)
            while size < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP or more is _RESUME or more.job is not None:
                    held = more
                    break
                batch.append(more)
                size += len(more.events)
            if failing:
                self._post(token, _BEHIND_FAILED, batch, None)
                continue
            try:
                stored = self._store.append_batch([event for request in batch for event in request.events])
            except Exception as error:  # a failed commit fails its waiters, never the writer
                failing = True
                self._post(token, _FAILED, batch, error)
                continue
            self._post(token, _COMMITTED, batch, stored)

    def _run_job(self, request: AppendRequest, token: trio.lowlevel.TrioToken) -> None:
        assert request.job is not None
        try:
            request.stored = request.job()
        except Exception as error:  # the job's caller gets its error; the writer goes on
            request.error = error
        self._post(token, _JOB, [request], None)

    def _post(self, token: trio.lowlevel.TrioToken, how: int, batch: list[AppendRequest], result: Any) -> None:
        with self._finished_lock:
            self._finished.append((how, batch, result))
        try:
            token.run_sync_soon(self._deliver)
        except trio.RunFinishedError:  # trio is gone: no one is left to answer
            pass

    # -- back in the trio thread -----------------------------------------------------------

    def _deliver(self) -> None:
        """Publish finished batches in order and wake their waiters (a trio callback: it
        never raises; an ``on_commit`` failure ends ``run`` with that error)."""
        while True:
            with self._finished_lock:
                if not self._finished:
                    return
                how, batch, result = self._finished.popleft()
            if how == _COMMITTED:
                self._committed(batch, result)
            elif how == _FAILED:
                self._failed(batch, result)
            elif how == _BEHIND_FAILED:
                for request in batch:
                    request.error = JournalWriteFailed("an earlier commit, which this may depend on, failed")
            for request in batch:
                request.done.set()

    def _committed(self, batch: list[AppendRequest], stored: list[StoredEvent]) -> None:
        self.batches_committed += 1
        self.events_committed += len(stored)
        try:
            self._on_commit(stored)
        except BaseException as error:  # noqa: BLE001 - handed to run(), which raises it
            self._crash_with(error)
        offset = 0
        for request in batch:
            request.stored = stored[offset:offset + len(request.events)]
            offset += len(request.events)

    def _failed(self, batch: list[AppendRequest], error: BaseException) -> None:
        if self._on_failure is not None:
            try:
                self._on_failure(error)
            except BaseException as hook_error:  # noqa: BLE001 - handed to run(), which raises it
                self._crash_with(hook_error)
        self._queue.put(_RESUME)  # what was queued until now is failed; what comes after, judged anew
        for request in batch:
            request.error = error

    def _crash_with(self, error: BaseException) -> None:
        if self._crashed is None:
            self._crashed = error
            self._ended.set()
