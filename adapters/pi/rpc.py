"""A client for pi's RPC mode: strict JSONL framing, request correlation, classified failures.

Pi reads one JSON object per line on stdin and writes responses and events, one per line, on
stdout. Records are split on the newline byte only (a JSON string may contain U+2028, which
``str.splitlines`` would split on); a trailing ``\\r`` is dropped. A line longer than the bound
is discarded up to its newline and reported as a framing failure, so one bad record never
desynchronizes the stream.

Requests carry an ``id`` and are answered by a ``response`` with the same id; answers may
come out of order. Pi answers parse errors and unknown commands *without* an id: such an
answer is matched to the oldest pending request of the same command name, if any.

Every failure is an ``RpcFailure`` with one ``kind``: ``framing`` (an oversized line),
``protocol`` (a record that is not a JSON object, or a refused request), ``pipe`` (stdin is
closed), ``exit`` (stdout ended: the process is gone) or ``timeout`` (no answer in time).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from patchbay_adapters.common.jsonl import MAX_LINE_BYTES
from patchbay_adapters.common.linerpc import ChannelFailure, LineChannel, Pending

log = logging.getLogger("patchbay.adapter.pi")

FAILURE_KINDS = ("framing", "protocol", "pipe", "exit", "timeout")


class RpcFailure(ChannelFailure):
    """A classified failure of the RPC channel or of one request."""

    def __init__(self, kind: str, detail: str) -> None:
        assert kind in FAILURE_KINDS, kind
        super().__init__(f"pi rpc {kind} failure: {detail}")
        self.kind = kind
        self.detail = detail


def parse_record(line: bytes) -> dict[str, Any]:
    """One record as a JSON object; raises RpcFailure('protocol') otherwise."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        raise RpcFailure("protocol", f"record is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise RpcFailure("protocol", "record is not a JSON object")
    return value


@attrs.define
class _Pending(Pending[RpcFailure]):
    on_answer: Callable[[dict[str, Any]], None] | None = None


OnEvent = Callable[[dict[str, Any]], Awaitable[None]]
OnFailure = Callable[[RpcFailure], Awaitable[None]]


class RpcClient(LineChannel[RpcFailure]):
    """Talk to one pi process over its stdin/stdout streams.

    ``run`` reads stdout until it ends and hands every event (any record that is not a
    response) to ``on_event``, in order; it returns when stdout ends, after failing every
    pending request with ``exit``. ``request`` may be called from any task.
    """

    peer = "pi"

    def __init__(self, stdin: trio.abc.SendStream, stdout: trio.abc.ReceiveStream, *,
                 max_line: int = MAX_LINE_BYTES, prefix: str = "pb") -> None:
        super().__init__(stdin, stdout, max_line=max_line)
        self._ids = (f"{prefix}-{n}" for n in itertools.count(1))

    def _failure(self, kind: str, detail: str) -> RpcFailure:
        return RpcFailure(kind, detail)

    async def send(self, record: dict[str, Any]) -> None:
        """Write one record (no answer expected, e.g. ``extension_ui_response``)."""
        await self._send_line(record)

    async def request(self, command: str, /, *, timeout: float = 30.0,
                      on_answer: Callable[[dict[str, Any]], None] | None = None, request_id: str | None = None,
                      **fields: Any) -> dict[str, Any]:
        """Send a command and return its response's ``data`` (``{}`` when it has none).

        ``on_answer`` runs in the reader, as the response is read and before any later
        record is handled (the caller resumes later, after events that followed it may
        already have been handled). ``request_id`` names the request (pi repeats it on the
        events of that request, e.g. ``bash_execution_update``); unique ids otherwise. Raises RpcFailure: ``protocol`` when pi refuses it
        (``success: false``), ``timeout``, ``pipe`` or ``exit``.
        """
        request_id = request_id or next(self._ids)
        answer = await self._exchange(request_id, _Pending(command, on_answer=on_answer),
                                      {"id": request_id, "type": command, **fields}, timeout)
        if answer is None:
            raise RpcFailure("timeout", f"no answer to {command} within {timeout:.0f} s")
        if not answer.get("success", False):
            raise RpcFailure("protocol", f"pi refused {command}: {answer.get('error', 'no reason given')}")
        data = answer.get("data")
        return data if isinstance(data, dict) else {"value": data}

    async def run(self, on_event: OnEvent, on_failure: OnFailure) -> None:
        """Read records until stdout ends; framing and protocol failures go to ``on_failure``."""

        async def handle(record: bytes) -> None:
            await self._handle(record, on_event, on_failure)

        await self._read(handle, on_failure)

    async def _handle(self, record: bytes, on_event: OnEvent, on_failure: OnFailure) -> None:
        try:
            value = parse_record(record)
        except RpcFailure as failure:
            await on_failure(failure)
            return
        if value.get("type") == "response":
            self._answer(value)
        else:
            await on_event(value)

    def _answer(self, response: dict[str, Any]) -> None:
        request_id = response.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, str) else None
        if pending is None and request_id is None:
            command = response.get("command")
            pending = next((p for p in self._pending.values() if p.name == command and not p.done.is_set()), None)
            if pending is None and command == "parse":
                log.warning("pi could not parse a record: %s", response.get("error"))
        if pending is None:
            log.debug("pi answered a request nobody waits for: %s", response.get("command"))
            return
        pending.answer = response
        pending.done.set()
        if isinstance(pending, _Pending) and pending.on_answer is not None:
            pending.on_answer(response)
