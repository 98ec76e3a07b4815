"""The JSON-RPC peer over in-memory streams: ids, out-of-order answers, errors, framing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from patchbay_adapters.acp import fs
from patchbay_adapters.acp.jsonrpc import Incoming, Peer, RpcFailure, classify
from patchbay_adapters.acp.mapping import expiry_answer, permission_answer, turn_outcome

OPTIONS = [{"optionId": "a1", "name": "Allow", "kind": "allow_once"},
           {"optionId": "aa", "name": "Always", "kind": "allow_always"},
           {"optionId": "r1", "name": "Reject", "kind": "reject_once"}]


async def test_answers_in_any_order_reach_their_requests_and_errors_are_refusals() -> None:
    to_agent_send, to_agent_receive = trio.testing.memory_stream_one_way_pair()
    from_agent_send, from_agent_receive = trio.testing.memory_stream_one_way_pair()
    peer = Peer(to_agent_send, from_agent_receive, max_line=200)
    failures: list[RpcFailure] = []
    messages: list[Incoming] = []

    async def on_message(message: Incoming) -> None:
        messages.append(message)

    async def on_failure(failure: RpcFailure) -> None:
        failures.append(failure)

    results: dict[str, Any] = {}
    answered = trio.Event()

    async def ask(method: str) -> None:
        try:
            results[method] = await peer.request(method, {}, timeout=5)
        except RpcFailure as failure:
            results[method] = failure
        if len(results) == 2:
            answered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.run, on_message, on_failure)
        nursery.start_soon(ask, "first")
        nursery.start_soon(ask, "second")
        sent = b""
        while sent.count(b"\n") < 2:
            sent += await to_agent_receive.receive_some()
        ids = {json.loads(line)["method"]: json.loads(line)["id"] for line in sent.splitlines()}
        lines = [{"jsonrpc": "2.0", "id": ids["second"], "error": {"code": -32000, "message": "no"}},
                 "x" * 300, {"jsonrpc": "2.0", "method": "session/update", "params": {"a": 1}},
                 {"jsonrpc": "2.0", "id": ids["first"], "result": {"ok": True}}]
        for line in lines:
            await from_agent_send.send_all((line if isinstance(line, str) else json.dumps(line)).encode() + b"\n")
        with trio.fail_after(5):
            await answered.wait()
        await from_agent_send.aclose()
    assert results["first"] == {"ok": True}
    assert isinstance(results["second"], RpcFailure) and results["second"].kind == "refused"
    assert results["second"].code == -32000 and "no" in results["second"].detail
    assert [f.kind for f in failures] == ["framing"]
    assert messages == [Incoming("session/update", {"a": 1}, None)]
    with pytest.raises(RpcFailure) as gone:
        await peer.request("late", {})
    assert gone.value.kind == "pipe"


def test_classify_refuses_what_is_not_json_rpc() -> None:
    for value in ([1], {"jsonrpc": "2.0"}, {"method": "m", "params": [1]}, {"method": "m", "id": True}):
        with pytest.raises(RpcFailure):
            classify(value)
    assert classify({"method": "m", "id": "x"}) == Incoming("m", {}, "x")


def test_permission_answers_follow_the_decision_and_the_named_option() -> None:
    assert permission_answer(OPTIONS, {"decision": "approve"}) == (
        {"outcome": {"outcome": "selected", "optionId": "a1"}}, None)
    assert permission_answer(OPTIONS, {"decision": "approve", "answer": "Always"})[0]["outcome"]["optionId"] == "aa"
    assert permission_answer(OPTIONS, {"decision": "deny"})[0]["outcome"]["optionId"] == "r1"
    wrong, problem = permission_answer(OPTIONS, {"decision": "deny", "answer": "Always"})
    assert wrong["outcome"]["optionId"] == "r1" and problem is not None
    only_allow = OPTIONS[:1]
    assert permission_answer(only_allow, {"decision": "deny"})[0] == {"outcome": {"outcome": "cancelled"}}
    assert expiry_answer(OPTIONS)["outcome"]["optionId"] == "r1"
    assert expiry_answer(only_allow) == {"outcome": {"outcome": "cancelled"}}


def test_stop_reasons_map_to_command_outcomes() -> None:
    assert turn_outcome("end_turn", "hi").state == "completed"
    assert turn_outcome("cancelled", "", cancelled_by="x").reason == "x"
    for stop in ("refusal", "max_tokens", "max_turn_requests", "weird"):
        outcome = turn_outcome(stop, "")
        assert (outcome.state, outcome.failure) == ("failed", "execution_failed") and outcome.reason


def test_file_access_stays_inside_the_workspace(tmp_path: Any) -> None:
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    assert fs.read_text(tmp_path, {"path": str(tmp_path / "in.txt"), "line": 2, "limit": 1}) == {"content": "b\n"}
    assert fs.read_text(tmp_path, {"path": str(tmp_path / "missing.txt")}) == {"content": ""}
    for bad in ("relative.txt", "/etc/passwd", str(tmp_path / ".." / "x"), None):
        with pytest.raises(fs.FsRefused):
            fs.read_text(tmp_path, {"path": bad})
