"""The adapter side of the link against a scripted core: resend after reconnect, dedup, retry.

The scripted core is a real websocket server on loopback port 0; each attachment runs the
script the test gives for it and records every frame the adapter sent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from patchbay_adapters.common.link import AdapterLink
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

Script = Callable[[WebSocketConnection, list[dict[str, Any]]], Awaitable[None]]


class RecordingRuntime:
    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.attachments = 0

    def manifest(self) -> dict[str, Any]:
        return {"kinds": ["instruct"]}

    async def attached(self) -> None:
        self.attachments += 1

    async def deliver(self, command: dict[str, Any]) -> None:
        self.delivered.append(command["command_id"])

    async def withdraw(self, command_id: str, reason: str) -> None:
        raise AssertionError("not used")


class ScriptedCore:
    """Runs ``scripts[n]`` for the n-th attachment; ``frames[n]`` holds what that one received."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.frames: list[list[dict[str, Any]]] = []
        self.hellos: list[dict[str, Any]] = []
        self.done = trio.Event()
        self.started = [trio.Event() for _ in scripts]

    async def handler(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        hello = json.loads(await ws.get_message())
        self.hellos.append(hello)
        received: list[dict[str, Any]] = []
        self.frames.append(received)
        script = self.scripts[len(self.frames) - 1]
        self.started[len(self.frames) - 1].set()
        try:
            await script(ws, received)
        except ConnectionClosed:
            pass
        if len(self.frames) == len(self.scripts):
            self.done.set()


async def receive(ws: WebSocketConnection, received: list[dict[str, Any]], count: int) -> None:
    """Collect ``count`` numbered frames (heartbeats are skipped)."""
    while sum(1 for f in received if f["type"] != "heartbeat") < count:
        received.append(json.loads(await ws.get_message()))


def welcome(acked: int) -> str:
    return json.dumps({"type": "welcome", "protocol": 1, "adapter_id": "a1", "adapter_generation": 1,
                       "core_generation": 1, "authority_domain_id": "dom", "heartbeat_interval": 5.0,
                       "acked_seq": acked})


def deliver(command_id: str) -> str:
    return json.dumps({"type": "deliver", "command": {"command_id": command_id, "kind": "instruct"}})


def numbered(received: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in received if f["type"] != "heartbeat"]


async def run_link(core: ScriptedCore, body: Callable[[AdapterLink], Awaitable[None]]) -> RecordingRuntime:
    runtime = RecordingRuntime()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, core.handler, "127.0.0.1", 0, None)
        link = AdapterLink(adapter_id="a1", core_url=f"http://127.0.0.1:{server.port}", credential="c",
                           deployment_scope="test", generation=1, runtime=runtime, reconnect_max=0.2)
        await nursery.start(link.run)
        with trio.fail_after(20):
            await body(link)
            await core.done.wait()
        nursery.cancel_scope.cancel()
    return runtime


async def test_unacked_frames_are_resent_in_order_after_a_reconnect_and_deliveries_deduplicated() -> None:
    async def first(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(welcome(0))
        await ws.send_message(deliver("c1"))
        await receive(ws, received, 3)
        await ws.send_message(json.dumps({"type": "ack", "seq": 1}))
        await ws.aclose()  # 2 and 3 are journaled by the core (acked_seq 2) but the acks are lost

    async def second(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(welcome(2))
        await ws.send_message(deliver("c1"))  # at-least-once: redelivered
        await ws.send_message(deliver("c2"))
        await receive(ws, received, 2)
        for frame in received:
            if frame["type"] != "heartbeat":
                await ws.send_message(json.dumps({"type": "ack", "seq": frame["seq"]}))
        with trio.move_on_after(0.3):
            await ws.get_message()

    core = ScriptedCore([first, second])
    links: list[AdapterLink] = []

    async def body(link: AdapterLink) -> None:
        links.append(link)
        for n in range(3):
            await link.report(f"c{n}", "delivered")
        await link.attached.wait()
        await core.started[1].wait()
        await link.report("c9", "running")

    runtime = await run_link(core, body)
    assert numbered(core.frames[0]) == [1, 2, 3]
    assert numbered(core.frames[1]) == [3, 4]  # 3 was not acknowledged; 1 and 2 are covered by acked_seq
    assert core.frames[1][0] == core.frames[0][2]  # the very same frame
    assert runtime.delivered == ["c1", "c2"]
    assert [h["adapter_generation"] for h in core.hellos] == [1, 1]
    assert not links[0]._unacked


async def test_a_retry_answer_makes_the_adapter_reattach_and_resend_from_that_frame() -> None:
    async def first(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(welcome(0))
        await receive(ws, received, 2)
        await ws.send_message(json.dumps({"type": "error", "seq": 1, "code": "retry", "error": "actor restarted"}))
        with trio.move_on_after(5):
            while True:
                received.append(json.loads(await ws.get_message()))

    async def second(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(welcome(0))
        await receive(ws, received, 2)
        for seq in numbered(received):
            await ws.send_message(json.dumps({"type": "ack", "seq": seq}))

    core = ScriptedCore([first, second])
    answers: list[dict[str, Any] | None] = []

    async def body(link: AdapterLink) -> None:
        async with trio.open_nursery() as nursery:
            async def waited() -> None:
                answers.append(await link.send("report", wait=True, timeout=15, command_id="c1", state="running"))
            nursery.start_soon(waited)
            await link.report("c2", "delivered")

    await run_link(core, body)
    assert numbered(core.frames[1]) == [1, 2]
    assert len(answers) == 1 and answers[0] is not None and answers[0]["type"] == "ack"  # the waiter got the ack


async def test_one_ack_for_a_run_of_frames_acknowledges_each_of_them() -> None:
    async def script(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(welcome(0))
        await receive(ws, received, 4)
        await ws.send_message(json.dumps({"type": "ack", "seq": 1}))
        await ws.send_message(json.dumps({"type": "ack", "seq": 4, "first": 2}))
        with trio.move_on_after(0.3):
            await ws.get_message()

    core = ScriptedCore([script])
    answers: list[dict[str, Any] | None] = []
    links: list[AdapterLink] = []

    async def body(link: AdapterLink) -> None:
        links.append(link)
        async with trio.open_nursery() as nursery:
            await link.report("c1", "delivered")
            await link.report("c2", "delivered")

            async def waited() -> None:
                answers.append(await link.send("report", wait=True, timeout=15, command_id="c3", state="running"))
            nursery.start_soon(waited)
            await trio.testing.wait_all_tasks_blocked()
            await link.report("c4", "delivered")

    await run_link(core, body)
    assert core.hellos[0]["ack_ranges"] is True
    assert numbered(core.frames[0]) == [1, 2, 3, 4]
    assert answers == [{"type": "ack", "seq": 3}]  # the waiter inside the run got its ack
    assert not links[0]._unacked


async def test_with_batch_max_in_the_welcome_frames_sent_in_one_step_go_out_as_one_batch() -> None:
    messages: list[dict[str, Any]] = []

    async def script(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(json.dumps({**json.loads(welcome(0)), "batch_max": 3}))
        while sum(len(m.get("frames", [m])) for m in messages if m["type"] != "heartbeat") < 5:
            messages.append(json.loads(await ws.get_message()))
        for message in messages:
            received.extend(message.get("frames", [message]))
        await ws.send_message(json.dumps({"type": "ack", "seq": 5, "first": 1}))
        with trio.move_on_after(0.3):
            await ws.get_message()

    core = ScriptedCore([script])
    links: list[AdapterLink] = []

    async def body(link: AdapterLink) -> None:
        links.append(link)
        await link.attached.wait()
        for n in range(5):  # one step: no checkpoint between them
            await link.report(f"c{n}", "delivered")

    await run_link(core, body)
    numbered_messages = [m for m in messages if m["type"] != "heartbeat"]
    assert [m["type"] for m in numbered_messages] == ["batch", "batch"]  # at most batch_max frames each
    assert [[f["seq"] for f in m["frames"]] for m in numbered_messages] == [[1, 2, 3], [4, 5]]
    assert numbered(core.frames[0]) == [1, 2, 3, 4, 5]
    assert not links[0]._unacked


async def test_without_batch_max_every_frame_is_a_message_of_its_own() -> None:
    async def script(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(welcome(0))
        await receive(ws, received, 3)
        await ws.send_message(json.dumps({"type": "ack", "seq": 3, "first": 1}))
        with trio.move_on_after(0.3):
            await ws.get_message()

    core = ScriptedCore([script])

    async def body(link: AdapterLink) -> None:
        await link.attached.wait()
        for n in range(3):
            await link.report(f"c{n}", "delivered")

    await run_link(core, body)
    assert [f["type"] for f in core.frames[0] if f["type"] != "heartbeat"] == ["report"] * 3


async def test_batched_frames_not_acked_are_resent_in_order_after_a_reconnect() -> None:
    def frames_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [f for m in messages for f in m.get("frames", [m]) if f["type"] != "heartbeat"]

    async def first(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(json.dumps({**json.loads(welcome(0)), "batch_max": 2}))
        messages: list[dict[str, Any]] = []
        while len(frames_of(messages)) < 3:
            messages.append(json.loads(await ws.get_message()))
        received.extend(frames_of(messages))
        await ws.send_message(json.dumps({"type": "ack", "seq": 1}))
        await ws.aclose()  # 2 and 3 unanswered

    async def second(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(json.dumps({**json.loads(welcome(0)), "batch_max": "many"}))  # not a number
        await receive(ws, received, 3)
        await ws.send_message(json.dumps({"type": "ack", "seq": 4, "first": 2}))
        with trio.move_on_after(0.3):
            await ws.get_message()

    core = ScriptedCore([first, second])
    links: list[AdapterLink] = []

    async def body(link: AdapterLink) -> None:
        links.append(link)
        await link.attached.wait()
        for n in range(3):
            await link.report(f"c{n}", "delivered")
        await core.started[1].wait()
        await link.attached.wait()
        await link.report("c3", "delivered")

    await run_link(core, body)
    assert numbered(core.frames[0]) == [1, 2, 3]
    assert [f["type"] for f in core.frames[1]] == ["report"] * 3  # one frame per message now
    assert numbered(core.frames[1]) == [2, 3, 4]
    assert not links[0]._unacked
