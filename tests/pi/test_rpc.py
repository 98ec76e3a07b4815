"""The pi RPC client without pi: framing, correlation and failure classes over memory streams."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from patchbay_adapters.common.jsonl import LineSplitter, Oversized
from patchbay_adapters.pi.rpc import RpcClient, RpcFailure, parse_record


def test_records_split_on_newline_bytes_only_and_keep_unicode_separators() -> None:
    splitter = LineSplitter()
    text = json.dumps({"type": "x", "text": "a\u2028b\u2029c"}, ensure_ascii=False).encode()
    assert splitter.feed(text[:5]) == []
    assert splitter.feed(text[5:] + b"\r\n{\"type\":") == [text]
    assert splitter.feed(b"\"y\"}\n") == [b'{"type":"y"}']
    assert parse_record(text)["text"] == "a\u2028b\u2029c"


def test_an_oversized_line_is_dropped_and_the_stream_resynchronizes() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"x" * 8) == []
    assert splitter.feed(b"y" * 8) == []
    assert splitter.feed(b"zz\n{}\n") == [Oversized(18), b"{}"]


@pytest.mark.parametrize("line", [b"{nope", b"[1, 2]", b"\xff\xfe"])
def test_a_record_that_is_not_a_json_object_is_a_protocol_failure(line: bytes) -> None:
    with pytest.raises(RpcFailure) as failure:
        parse_record(line)
    assert failure.value.kind == "protocol"


class FakePi:
    """The far side of an RpcClient: reads its requests, writes what a test scripts."""

    def __init__(self) -> None:
        self.to_client, self.client_stdout = trio.testing.memory_stream_one_way_pair()
        self.client_stdin, self.from_client = trio.testing.memory_stream_one_way_pair()
        self.client = RpcClient(self.client_stdin, self.client_stdout)
        self.splitter = LineSplitter()
        self.received: list[dict[str, Any]] = []

    async def next_request(self) -> dict[str, Any]:
        while not self.received:
            for line in self.splitter.feed(await self.from_client.receive_some()):
                assert isinstance(line, bytes)
                self.received.append(json.loads(line))
        return self.received.pop(0)

    async def write(self, *records: dict[str, Any] | bytes) -> None:
        data = b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n" for r in records)
        await self.to_client.send_all(data)


async def test_responses_out_of_order_and_id_less_errors_reach_the_right_request() -> None:
    pi = FakePi()
    events: list[dict[str, Any]] = []
    failures: list[RpcFailure] = []
    answers: dict[str, Any] = {}
    all_answered = trio.Event()

    async def on_event(event: dict[str, Any]) -> None:
        events.append(event)

    async def on_failure(failure: RpcFailure) -> None:
        failures.append(failure)

    async def ask(name: str, command: str) -> None:
        try:
            answers[name] = await pi.client.request(command, timeout=5)
        except RpcFailure as failure:
            answers[name] = failure
        if len(answers) == 3:
            all_answered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pi.client.run, on_event, on_failure)
        nursery.start_soon(ask, "state", "get_state")
        first = await pi.next_request()
        nursery.start_soon(ask, "bogus", "bogus")
        second = await pi.next_request()
        nursery.start_soon(ask, "messages", "get_messages")
        third = await pi.next_request()
        await pi.write(
            {"type": "agent_start"},
            {"type": "response", "command": "bogus", "success": False, "error": "Unknown command: bogus"},
            {"id": third["id"], "type": "response", "command": "get_messages", "success": True, "data": {"messages": []}},
            b"{broken\n",
            {"id": first["id"], "type": "response", "command": "get_state", "success": True, "data": {"sessionId": "s1"}},
        )
        with trio.fail_after(5):
            await all_answered.wait()
        nursery.cancel_scope.cancel()
    assert (first["type"], second["type"], third["type"]) == ("get_state", "bogus", "get_messages")
    assert answers["state"] == {"sessionId": "s1"} and answers["messages"] == {"messages": []}
    assert isinstance(answers["bogus"], RpcFailure) and answers["bogus"].kind == "protocol"
    assert "Unknown command" in answers["bogus"].detail
    assert events == [{"type": "agent_start"}]
    assert [f.kind for f in failures] == ["protocol"]


async def test_no_answer_is_a_timeout_and_a_closed_stdout_fails_pending_requests_with_exit() -> None:
    pi = FakePi()

    async def ignore(_: Any) -> None:
        return

    outcome: dict[str, RpcFailure] = {}

    async def ask(name: str, timeout: float) -> None:
        try:
            await pi.client.request("get_state", timeout=timeout)
        except RpcFailure as failure:
            outcome[name] = failure

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pi.client.run, ignore, ignore)
        await ask("timeout", 0.05)
        nursery.start_soon(ask, "exit", 30)
        await pi.next_request()
        await pi.next_request()
        await pi.to_client.aclose()
    assert outcome["timeout"].kind == "timeout"
    assert outcome["exit"].kind == "exit"
    with pytest.raises(RpcFailure) as after:
        await pi.client.request("get_state")
    assert after.value.kind == "pipe"


async def test_writing_to_a_closed_stdin_is_a_pipe_failure() -> None:
    pi = FakePi()
    await pi.from_client.aclose()
    await pi.client_stdin.aclose()
    with pytest.raises(RpcFailure) as failure:
        await pi.client.send({"type": "abort"})
    assert failure.value.kind == "pipe"


async def test_on_answer_runs_before_the_next_record_is_handled() -> None:
    pi = FakePi()
    order: list[str] = []
    ended = trio.Event()

    async def on_event(event: dict[str, Any]) -> None:
        order.append(event["type"])
        ended.set()

    async def ignore(_: Any) -> None:
        return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pi.client.run, on_event, ignore)
        nursery.start_soon(lambda: pi.client.request("prompt", on_answer=lambda _: order.append("answered")))
        request = await pi.next_request()
        await pi.write({"id": request["id"], "type": "response", "command": "prompt", "success": True},
                       {"type": "agent_end"})
        with trio.fail_after(5):
            await ended.wait()
        nursery.cancel_scope.cancel()
    assert order == ["answered", "agent_end"]
