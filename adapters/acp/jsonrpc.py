"""JSON-RPC 2.0 over an agent's stdio, one JSON object per line, both directions (ACP's transport).

The adapter is the ACP *client*: it sends requests (``initialize``, ``session/prompt``, …) and
notifications (``session/cancel``), and it answers the agent's requests
(``session/request_permission``, ``fs/*``). ``Peer.run`` reads stdout until it ends: answers go
to the request waiting for that id (they may come in any order), requests and notifications to
``on_message`` in order. A line that is not a JSON-RPC message, an oversized line, or an answer
nobody waits for goes to ``on_failure``; nothing the agent writes stops the reader.

Every failure is an ``RpcFailure`` with one ``kind``: ``framing``, ``protocol`` (a malformed
message), ``refused`` (the agent answered with an error), ``pipe`` (stdin is closed), ``exit``
(stdout ended: the agent is gone) or ``timeout``.
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

log = logging.getLogger("patchbay.adapter.acp")

FAILURE_KINDS = ("framing", "protocol", "refused", "pipe", "exit", "timeout")
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class RpcFailure(ChannelFailure):
    def __init__(self, kind: str, detail: str, *, code: int | None = None) -> None:
        assert kind in FAILURE_KINDS, kind
        super().__init__(f"acp {kind} failure: {detail}")
        self.kind = kind
        self.detail = detail
        self.code = code


@attrs.frozen
class Incoming:
    """A request (``id`` set) or notification from the agent."""

    method: str
    params: dict[str, Any]
    id: int | str | None = None


def classify(value: Any) -> Incoming | dict[str, Any]:
    """A parsed line as an incoming request/notification, or an answer (the raw dict).

    Raises RpcFailure('protocol') for anything that is neither.
    """
    if not isinstance(value, dict):
        raise RpcFailure("protocol", "message is not a JSON object")
    method = value.get("method")
    if isinstance(method, str):
        params = value.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise RpcFailure("protocol", f"{method}: params must be an object")
        request_id = value.get("id")
        if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (int, str))):
            raise RpcFailure("protocol", f"{method}: id must be a number or a string")
        return Incoming(method, params, request_id)
    if "id" in value and ("result" in value or "error" in value):
        return value
    raise RpcFailure("protocol", "message is neither a request, a notification nor an answer")


OnMessage = Callable[[Incoming], Awaitable[None]]
OnFailure = Callable[[RpcFailure], Awaitable[None]]


class Peer(LineChannel[RpcFailure]):
    peer = "the agent"

    def __init__(self, stdin: trio.abc.SendStream, stdout: trio.abc.ReceiveStream, *,
                 max_line: int = MAX_LINE_BYTES) -> None:
        super().__init__(stdin, stdout, max_line=max_line)
        self._ids = itertools.count(1)

    def _failure(self, kind: str, detail: str) -> RpcFailure:
        return RpcFailure(kind, detail)

    async def _write(self, message: dict[str, Any]) -> None:
        await self._send_line({"jsonrpc": "2.0", **message})

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._write({"method": method, "params": params})

    async def respond(self, request_id: int | str, result: dict[str, Any]) -> None:
        await self._write({"id": request_id, "result": result})

    async def respond_error(self, request_id: int | str, code: int, message: str) -> None:
        await self._write({"id": request_id, "error": {"code": code, "message": message}})

    async def request(self, method: str, params: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
        """Send a request and return its ``result`` (``{}`` when it is not an object)."""
        request_id = next(self._ids)
        answer = await self._exchange(request_id, Pending(method), {
            "jsonrpc": "2.0", "id": request_id, "method": method, "params": params}, timeout)
        if answer is None:
            raise RpcFailure("timeout", f"no answer to {method} within {timeout:g} s")
        error = answer.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            code = error.get("code") if isinstance(error, dict) else None
            data = error.get("data") if isinstance(error, dict) else None
            detail = f"{message}" + (f" ({json.dumps(data, default=str)[:300]})" if data else "")
            raise RpcFailure("refused", f"the agent refused {method}: {detail}",
                             code=code if isinstance(code, int) else None)
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    async def run(self, on_message: OnMessage, on_failure: OnFailure) -> None:
        """Read until stdout ends, then fail every pending request with ``exit``."""

        async def handle(record: bytes) -> None:
            await self._handle(record, on_message, on_failure)

        await self._read(handle, on_failure)

    async def _handle(self, record: bytes, on_message: OnMessage, on_failure: OnFailure) -> None:
        try:
            value = json.loads(record)
        except (ValueError, UnicodeDecodeError) as error:
            await on_failure(RpcFailure("protocol", f"line is not JSON: {error}"))
            return
        try:
            message = classify(value)
        except RpcFailure as failure:
            await on_failure(failure)
            return
        if isinstance(message, Incoming):
            await on_message(message)
            return
        request_id = message.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, int) else None
        if pending is None or pending.done.is_set():
            await on_failure(RpcFailure("protocol", f"an answer to request {request_id!r}, which nobody waits for"))
            return
        pending.answer = message
        pending.done.set()
