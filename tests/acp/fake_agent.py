"""A scripted ACP agent for the protocol-level tests: `python -m tests.acp.fake_agent`.

It speaks JSON-RPC 2.0 over stdio like a real agent; what a turn does is chosen by the prompt:
``SAY:text`` streams the text; ``SLOW:text`` streams it slowly (cancellable); ``ASK:path``
asks permission to write ``path`` and writes it only when allowed; ``LATEASK`` streams slowly
and, once cancelled, asks a permission anyway; ``DIE`` exits mid-turn; ``GARBAGE`` writes
malformed lines, an answer nobody asked for and an unknown request before its reply;
``RICH`` sends plan, usage, commands, mode and a diff tool call; ``FS:path`` writes then reads
``path`` through the client; ``HANG`` never ends (ignores a cancel); ``REFUSE`` ends with ``refusal``; ``FAIL`` answers with an error.
Every message it receives is appended to ``$FAKE_ACP_LOG``; ``FAKE_ACP_LOAD=1`` declares
``loadSession`` (sessions kept under ``$FAKE_ACP_STATE``).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

LOG = Path(os.environ.get("FAKE_ACP_LOG", os.devnull))
STATE = Path(os.environ.get("FAKE_ACP_STATE", "."))
LOAD = os.environ.get("FAKE_ACP_LOAD") == "1"
OPTIONS = [{"optionId": "allow", "name": "Allow once", "kind": "allow_once"},
           {"optionId": "always", "name": "Always allow", "kind": "allow_always"},
           {"optionId": "reject", "name": "Reject", "kind": "reject_once"}]


def record(message: dict[str, Any]) -> None:
    with LOG.open("a") as log:
        log.write(json.dumps(message) + "\n")


def mark(target: Path) -> None:
    target.write_text("ran\n")


class Agent:
    def __init__(self) -> None:
        self.stdout = trio.lowlevel.FdStream(os.dup(1))
        self.ids = itertools.count(100)
        self.waiting: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self.cancelled: dict[str, trio.Event] = {}
        self.lock = trio.Lock()

    async def write(self, message: dict[str, Any] | str) -> None:
        data = message if isinstance(message, str) else json.dumps({"jsonrpc": "2.0", **message})
        async with self.lock:
            await self.stdout.send_all(data.encode() + b"\n")

    async def update(self, session: str, update: dict[str, Any]) -> None:
        await self.write({"method": "session/update", "params": {"sessionId": session, "update": update}})

    async def chunk(self, session: str, text: str, kind: str = "agent_message_chunk") -> None:
        await self.update(session, {"sessionUpdate": kind, "content": {"type": "text", "text": text}})

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self.ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self.waiting[request_id] = send
        await self.write({"id": request_id, "method": method, "params": params})
        return await receive.receive()

    def history(self, session: str) -> Path:
        return STATE / f"{session}.json"

    def remember(self, session: str, prompt: str, reply: str) -> None:
        path = self.history(session)
        turns = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*turns, [prompt, reply]]))

    async def serve(self) -> None:
        stdin = trio.lowlevel.FdStream(os.dup(0))
        buffer = b""
        async with trio.open_nursery() as nursery:
            async for data in stdin:
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    message = json.loads(line)
                    record(message)
                    if "method" not in message:
                        channel = self.waiting.pop(message["id"])
                        channel.send_nowait(message)
                    elif message["method"] == "session/cancel":
                        self.cancelled.setdefault(message["params"]["sessionId"], trio.Event()).set()
                    else:
                        nursery.start_soon(self.answer, message)
            if os.environ.get("FAKE_ACP_STUBBORN") == "1":  # like claude-agent-acp: ignores a closed stdin
                await trio.sleep_forever()
            nursery.cancel_scope.cancel()

    async def answer(self, message: dict[str, Any]) -> None:
        method, params, request_id = message["method"], message.get("params") or {}, message["id"]
        if method == "initialize":
            result: Any = {"protocolVersion": 1, "agentCapabilities": {"loadSession": LOAD, "promptCapabilities": {
                "image": True}}, "agentInfo": {"name": "fake-acp", "version": "1.0"}}
        elif method == "session/new":
            session = f"sess-{os.getpid()}-{next(self.ids)}"
            self.history(session).write_text("[]")
            result = {"sessionId": session, "modes": {"currentModeId": "ask", "availableModes": [
                {"id": "ask", "name": "Ask"}, {"id": "auto", "name": "Auto"}]}, "models": {
                "currentModelId": "m1", "availableModels": [{"modelId": "m1", "name": "One"},
                                                            {"modelId": "m2", "name": "Two"}]}}
        elif method == "session/load":
            path = self.history(params["sessionId"])
            if not path.exists():
                await self.write({"id": request_id, "error": {"code": -32002, "message": "no such session"}})
                return
            for prompt, reply in json.loads(path.read_text()):
                await self.chunk(params["sessionId"], prompt, "user_message_chunk")
                await self.chunk(params["sessionId"], reply)
            result = {"modes": {"currentModeId": "ask", "availableModes": [{"id": "ask", "name": "Ask"}]}}
        elif method == "session/set_mode":
            result = {}
        elif method == "session/set_model":
            if params.get("modelId") not in ("m1", "m2"):
                await self.write({"id": request_id, "error": {"code": -32602, "message": "unknown model"}})
                return
            result = {}
        elif method == "session/prompt":
            await self.prompt(request_id, params)
            return
        else:
            await self.write({"id": request_id, "error": {"code": -32601, "message": f"Method not found: {method}"}})
            return
        await self.write({"id": request_id, "result": result})

    async def prompt(self, request_id: int, params: dict[str, Any]) -> None:
        session = params["sessionId"]
        text = "".join(b.get("text", "") for b in params["prompt"] if b.get("type") == "text")
        self.cancelled[session] = cancel = trio.Event()
        verb, _, arg = text.partition(":")
        stop, reply = "end_turn", ""
        if verb == "SAY":
            for start in range(0, len(arg), 5):
                await self.chunk(session, arg[start:start + 5])
            reply = arg
        elif verb in ("SLOW", "LATEASK"):
            for part in arg or "x" * 100:
                await self.chunk(session, part)
                reply += part
                with trio.move_on_after(0.03):
                    await cancel.wait()
                if cancel.is_set():
                    break
            if cancel.is_set():
                stop = "cancelled"
                if verb == "LATEASK":
                    late = await self.ask("session/request_permission", {
                        "sessionId": session, "toolCall": {"toolCallId": "late-1", "title": "late"},
                        "options": OPTIONS})
                    await self.chunk(session, json.dumps(late["result"]["outcome"]))
        elif verb == "ASK":
            reply, stop = await self.tool(session, Path(arg), cancel)
        elif verb == "DIE":
            await self.chunk(session, "about to die")
            os._exit(3)
        elif verb == "GARBAGE":
            for line in ("this is not json", "[1, 2, 3]", '{"jsonrpc": "2.0"}', '{"jsonrpc":"2.0","id":999,"result":{}}'):
                await self.write(line)
            refused = await self.ask("terminal/create", {"sessionId": session, "command": "ls"})
            reply = f"survived {refused['error']['code']}"
            await self.chunk(session, reply)
        elif verb == "RICH":
            reply = await self.rich(session)
        elif verb == "FS":
            wrote = await self.ask("fs/write_text_file", {"sessionId": session, "path": arg, "content": "via fs"})
            read = await self.ask("fs/read_text_file", {"sessionId": session, "path": arg})
            reply = json.dumps({"write": wrote.get("error", {}).get("message", "ok"),
                                "read": read.get("result", {}).get("content", read.get("error", {}).get("message"))})
            await self.chunk(session, reply)
        elif verb == "HANG":  # ignores session/cancel
            await self.chunk(session, "hanging")
            await trio.sleep_forever()
        elif verb == "REFUSE":
            stop = "refusal"
        elif verb == "FAIL":
            await self.write({"id": request_id, "error": {"code": -32603, "message": "the model is down"}})
            return
        self.remember(session, text, reply)
        await self.write({"id": request_id, "result": {"stopReason": stop}})

    async def tool(self, session: str, target: Path, cancel: trio.Event) -> tuple[str, str]:
        call = {"toolCallId": "call-1", "title": f"Write {target.name}", "kind": "edit", "status": "pending",
                "rawInput": {"command": f"echo ran > {target}"}}
        await self.update(session, {"sessionUpdate": "tool_call", **call})
        answer = await self.ask("session/request_permission", {"sessionId": session, "toolCall": call,
                                                                "options": OPTIONS})
        outcome = answer["result"]["outcome"]
        if outcome["outcome"] == "cancelled" or cancel.is_set():
            return "", "cancelled"
        if outcome["optionId"] in ("allow", "always"):
            mark(target)
            await self.update(session, {"sessionUpdate": "tool_call_update", "toolCallId": "call-1",
                                        "status": "completed",
                                        "content": [{"type": "content", "content": {"type": "text", "text": "ran"}}]})
            reply = f"tool ran ({outcome['optionId']})"
        else:
            await self.update(session, {"sessionUpdate": "tool_call_update", "toolCallId": "call-1",
                                        "status": "failed"})
            reply = "tool denied"
        await self.chunk(session, reply)
        return reply, "end_turn"

    async def rich(self, session: str) -> str:
        await self.chunk(session, "thinking it over", "agent_thought_chunk")
        await self.update(session, {"sessionUpdate": "plan", "entries": [
            {"content": "read", "priority": "high", "status": "completed"},
            {"content": "edit", "priority": "medium", "status": "in_progress"}]})
        await self.update(session, {"sessionUpdate": "tool_call", "toolCallId": "edit-1", "title": "Edit a.txt",
                                    "kind": "edit", "status": "in_progress"})
        await self.update(session, {"sessionUpdate": "tool_call_update", "toolCallId": "edit-1", "status": "completed",
                                    "content": [{"type": "diff", "path": "/w/a.txt", "oldText": "old", "newText": "new"}]})
        await self.update(session, {"sessionUpdate": "usage_update", "used": 1200, "size": 200000,
                                    "cost": {"amount": 0.01, "currency": "USD"}})
        await self.update(session, {"sessionUpdate": "available_commands_update", "availableCommands": [
            {"name": "review", "description": "Review the diff"}]})
        await self.update(session, {"sessionUpdate": "current_mode_update", "currentModeId": "auto"})
        await self.update(session, {"sessionUpdate": "something_new", "x": 1})
        await self.chunk(session, "rich done")
        return "rich done"


if __name__ == "__main__":
    sys.stderr.write("fake acp agent starting\n")
    trio.run(Agent().serve)
