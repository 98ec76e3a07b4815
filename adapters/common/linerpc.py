"""The shared half of a JSON-lines request channel over a child's stdio.

One JSON object per line in both directions, written under a lock; requests wait, bounded, for
the answer the reader hands them (answers may come in any order); an oversized line is dropped
and reported as a ``framing`` failure, blank lines are skipped, and when stdout ends every
pending request fails with ``exit``. What a record means (answer or event, how an answer is
matched to its request, what a refusal looks like) is the adapter's: pi's RPC mode and ACP's
JSON-RPC differ there. Each adapter raises its own failure class, a ``ChannelFailure``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs
import trio
from patchbay_adapters.common.jsonl import MAX_LINE_BYTES, LineSplitter, Oversized


class ChannelFailure(Exception):
    """A classified failure of the channel or of one request (``kind``, ``detail``)."""

    kind: str
    detail: str


F = TypeVar("F", bound=ChannelFailure)


@attrs.define
class Pending(Generic[F]):
    """A request waiting for its answer; ``name`` is its method or command."""

    name: str
    done: trio.Event = attrs.field(factory=trio.Event)
    answer: dict[str, Any] | None = None
    failure: F | None = None


class LineChannel(Generic[F]):
    """Framing, writing, waiting and closing; subclasses say what a record means."""

    peer = "the peer"  # named in pipe failures

    def __init__(self, stdin: trio.abc.SendStream, stdout: trio.abc.ReceiveStream, *,
                 max_line: int = MAX_LINE_BYTES) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._splitter = LineSplitter(max_line)
        self._pending: dict[Any, Pending[F]] = {}
        self._write_lock = trio.Lock()
        self.closed: F | None = None

    def _failure(self, kind: str, detail: str) -> F:
        raise NotImplementedError

    async def _send_line(self, record: dict[str, Any]) -> None:
        if self.closed is not None:
            raise self._failure("pipe", f"{self.peer} is gone ({self.closed.detail})")
        data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        async with self._write_lock:
            try:
                await self._stdin.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                raise self._failure("pipe", f"cannot write to {self.peer}: {error!r}") from None

    async def _exchange(self, request_id: Any, pending: Pending[F], record: dict[str, Any],
                        timeout: float) -> dict[str, Any] | None:
        """Send ``record`` and wait up to ``timeout`` for the answer to ``request_id``; the
        answer, or None if none came in time. Raises the failure that closed the channel."""
        self._pending[request_id] = pending
        try:
            await self._send_line(record)
            with trio.move_on_after(timeout):
                await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if pending.failure is not None:
            raise pending.failure
        return pending.answer

    async def _read(self, handle: Callable[[bytes], Awaitable[None]],
                    on_failure: Callable[[F], Awaitable[None]]) -> None:
        """Read lines until stdout ends, each non-blank one to ``handle``; then close."""
        try:
            async for chunk in self._stdout:
                for record in self._splitter.feed(chunk):
                    if isinstance(record, Oversized):
                        await on_failure(self._failure("framing", f"dropped a {record.size}-byte line "
                                                                  f"(limit {self._splitter.max_line})"))
                    elif record.strip():
                        await handle(record)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            self._close(self._failure("exit", f"stdout failed: {error!r}"))
        else:
            self._close(self._failure("exit", "stdout ended"))

    def _close(self, failure: F) -> None:
        self.closed = failure
        for pending in self._pending.values():
            if not pending.done.is_set():
                pending.failure = failure
                pending.done.set()
