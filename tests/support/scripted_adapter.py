"""A scripted test adapter: one chat-like session that streams text deltas and raises approvals.

It speaks ``/adapter/v1`` through the real ``AdapterLink`` (so reconnects, acks and resends are
the production ones) and is driven by the text of ``instruct`` commands:

- ``stream N`` — N ``text_delta`` observations (markdown text), then ``completed``;
- ``approve TITLE`` — raises an approval elicitation and waits for the operator's answer
  (an ``approval-response`` delivery), then completes saying what was decided; ``ask TITLE``
  does the same with a question (an ``elicitation-response``);
- ``slow`` — a delta every 0.25 s until cancelled (``cancel``/``interrupt``) or 120 s;
- ``tool`` — the Pi adapter's observation shapes (user echo, tool start/update/end, assistant
  deltas then the final message);
- ``code``, ``edit``, ``plan``, ``image``, ``think``, ``repeat PATH``, ``history N`` — rich content (a
  highlighted code block, an edit's diff, a plan, an image, reasoning deltas, a tool-call id reused in every turn,
  N events at once); ``lost`` — fails with an unknown outcome; ``acp`` — the ACP and Pi adapters'
  bookkeeping observations (resync, notice, fs_refused, fs_write, agent_update, usage, slash
  commands, mode, repair entries); ``usage`` — Pi's ``metadata.usage``; ``break-export`` — later exports fail; anything else — a short
  markdown echo. The manifest declares ``export_html`` and ``get_commands`` (``query {"what":
  "export"}`` answers a gzip+base64 HTML page, ``{"what": "commands"}`` a command list).

``mode: "steer"`` while a turn runs is applied to that turn at once. ``reconfigure`` and
``session-management`` (``new_session`` bumps the session generation, ``compact`` notes it)
complete immediately. Run: ``python tests/support/scripted_adapter.py --id ID --core URL
--credential-file FILE``.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.common.link import AdapterLink
from patchbay_adapters.common.run import run_adapter

SESSION = "chat"
KINDS = ["instruct", "cancel", "interrupt", "query", "approval-response", "elicitation-response",
         "reconfigure", "session-management"]


class ScriptedRuntime:
    def __init__(self) -> None:
        self.link: AdapterLink | None = None
        self.generation = 1
        self.model = "scripted/echo-1"
        self.thinking = "off"
        self.queue: deque[dict[str, Any]] = deque()
        self.wake = trio.Event()
        self.current: dict[str, Any] | None = None
        self.current_scope: trio.CancelScope | None = None
        self.stopped_by: str | None = None
        self.answers: dict[str, trio.Event] = {}
        self.decisions: dict[str, str] = {}
        self.usage: dict[str, Any] | None = None
        self.export_broken = False

    def manifest(self) -> dict[str, Any]:
        return {"kinds": KINDS, "streaming": True, "snapshot_tier": "partial", "cancellation": True,
                "session_replacement": True, "idempotency": "end-to-end", "attachment": "websocket",
                "failure_modes": ["scripted"], "steer": True, "spawn": False,
                "features": ["export_html", "get_commands"]}

    async def run(self, link: AdapterLink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.link = link
        task_status.started()
        while True:
            while not self.queue:
                self.wake = trio.Event()
                await self.wake.wait()
            await self._turn(self.queue.popleft())

    async def attached(self) -> None:
        await self._report_session()

    async def _report_session(self) -> None:
        assert self.link is not None
        await self.link.session(SESSION, self.generation, label="scripted chat",
                                metadata={"cwd": "/srv/scripted", "model": self.model, "thinking": self.thinking,
                                          **({"usage": self.usage} if self.usage else {})},
                                activity="working" if self.current else "idle", snapshot_tier="partial")

    async def deliver(self, command: dict[str, Any]) -> None:
        link = self.link
        assert link is not None
        command_id, kind, payload = command["command_id"], command["kind"], command.get("payload") or {}
        if kind == "instruct":
            await link.report(command_id, "delivered")
            if payload.get("mode") == "steer" and self.current is not None:
                await link.report(command_id, "running")
                await self._say(f"\n\n*(steered: {payload.get('text', '')})*\n\n", self.current["command_id"])
                await link.report(command_id, "completed", result={"applied_to": self.current["command_id"]})
                return
            self.queue.append(command)
            self.wake.set()
        elif kind in ("approval-response", "elicitation-response"):
            await link.report(command_id, "delivered")
            eli = payload.get("elicitation_id", "")
            self.decisions[eli] = str(payload.get("decision") or payload.get("answer") or "declined")
            if eli in self.answers:
                self.answers[eli].set()
            await link.report(command_id, "completed", result={"elicitation_id": eli})
        elif kind in ("cancel", "interrupt"):
            await link.report(command_id, "delivered")
            target = payload.get("command_id")
            if self.current is not None and target in (None, self.current["command_id"]) and self.current_scope:
                self.stopped_by = command_id
                self.current_scope.cancel()
                effect = "cancelled"
            else:
                effect = "not_running"
            await link.report(command_id, "completed", result={"target_command_id": target, "effect": effect})
        elif kind == "reconfigure":
            await link.report(command_id, "delivered")
            if "model" in payload:
                self.model = f"{payload['model'].get('provider')}/{payload['model'].get('model_id')}"
            if "thinking_level" in payload:
                self.thinking = str(payload["thinking_level"])
            await self._report_session()
            await link.report(command_id, "completed", result={"model": self.model, "thinking": self.thinking})
        elif kind == "session-management":
            await link.report(command_id, "delivered")
            if payload.get("action") == "new_session":
                self.generation += 1
                await self._report_session()
            else:
                await link.observe(SESSION, self.generation, {"type": "compaction", "text": "context compacted"},
                                   command_id=command_id)
            await link.report(command_id, "completed", result={"action": payload.get("action")})
        elif kind == "query":
            await link.report(command_id, "delivered")
            what = payload.get("what")
            if what == "export" and self.export_broken:
                await link.report(command_id, "failed", failure="execution_failed", reason="scripted: no room for the export")
                return
            if what == "export":
                page = b"<!doctype html><title>Scripted export</title><h1>Scripted transcript</h1>"
                result: dict[str, Any] = {"filename": "scripted-chat.html", "media_type": "text/html",
                                          "encoding": "gzip+base64", "bytes": len(page),
                                          "data": base64.b64encode(gzip.compress(page, mtime=0)).decode()}
            elif what == "commands":
                result = {"commands": [{"name": "review", "description": "Review the working tree", "source": "prompt"},
                                       {"name": "release", "description": "Cut a release", "source": "extension"}]}
            else:
                result = {"model": self.model, "queued": len(self.queue)}
            await link.report(command_id, "completed", result=result)
        else:
            await link.report(command_id, "rejected", failure="unsupported_command", reason=f"scripted: no {kind}")

    async def withdraw(self, command_id: str, reason: str) -> None:
        for queued in list(self.queue):
            if queued["command_id"] == command_id:
                self.queue.remove(queued)

    async def _say(self, text: str, command_id: str) -> None:
        assert self.link is not None
        await self.link.observe(SESSION, self.generation, {"type": "text_delta", "text": text},
                                command_id=command_id, activity="working")

    async def _turn(self, command: dict[str, Any]) -> None:
        link = self.link
        assert link is not None
        command_id = command["command_id"]
        answer = await link.report(command_id, "running", wait=True)
        if answer is None or answer.get("type") != "ack":
            return
        self.current, self.stopped_by = command, None
        await self._report_session()
        text = str(command["payload"].get("text", "")).strip()
        with trio.CancelScope() as scope:
            self.current_scope = scope
            result = await self._script(command_id, text)
        self.current, self.current_scope = None, None
        if scope.cancelled_caught:
            await link.report(command_id, "cancelled", failure="cancelled", reason=f"cancelled by {self.stopped_by}")
        elif result.get("lost"):
            await link.report(command_id, "failed", failure="execution_outcome_unknown",
                              reason="scripted: the runtime lost track of it")
        else:
            await link.report(command_id, "completed", result=result)
        await self._report_session()

    async def _script(self, command_id: str, text: str) -> dict[str, Any]:
        assert self.link is not None
        word, _, rest = text.partition(" ")
        if word == "stream":
            count = int(rest or "100")
            await self._say("## Streaming\n\n", command_id)
            for i in range(1, count + 1):
                await self._say(f"w{i}" + ("\n" if i % 25 == 0 else " "), command_id)
            await self._say("\n\n```\ndone\n```\n", command_id)
            return {"deltas": count}
        if word in ("approve", "ask"):
            eli = f"eli-{command_id}"
            self.answers[eli] = trio.Event()
            await self.link.send("elicitation", runtime_session_id=SESSION, generation=self.generation,
                                 elicitation_id=eli, kind="approval" if word == "approve" else "question",
                                 command_id=command_id, title=rest or "Run the scripted step?",
                                 body="`rm -rf build/` in **/srv/scripted**", options=[], expires_at=None)
            await self.answers[eli].wait()
            decision = self.decisions.get(eli, "?")
            await self._say(f"The operator chose **{decision}**.", command_id)
            return {"decision": decision}
        if word == "slow":
            for i in range(480):
                await self._say(f"tick {i} ", command_id)
                await trio.sleep(0.25)
            return {"ticks": 480}
        if word == "tool":  # the observation shapes of the Pi adapter
            def observe(observation: dict[str, Any]) -> Any:
                assert self.link is not None
                return self.link.observe(SESSION, self.generation, observation, command_id=command_id,
                                         activity="working")
            call = f"t-{command_id}"
            await observe({"type": "user_message", "text": text})
            await observe({"type": "tool_start", "tool_call_id": call, "tool": "bash", "args": {"command": "ls"}})
            await observe({"type": "tool_update", "tool_call_id": call, "tool": "bash", "output": "README.md\n"})
            await observe({"type": "tool_end", "tool_call_id": call, "tool": "bash", "output": "README.md\nsrc\n",
                           "is_error": False})
            await observe({"type": "assistant_delta", "text": "Listed "})
            await observe({"type": "assistant_delta", "text": "the directory"})
            await observe({"type": "assistant_message", "text": "Listed the directory.", "stop_reason": "stop"})
            await observe({"type": "queue", "steering": 0, "follow_up": 0})
            return {"tools": 1}
        rich = await self._rich(command_id, word, rest)
        if rich is not None:
            return rich
        pieces = [f"You said: **{text[:200]}**", "\n\n", "- first point\n", "- second point\n", "\n`inline` code."]
        for piece in pieces:
            await self._say(piece, command_id)
        return {"echo": text[:200], "pieces": len(pieces)}


    async def _rich(self, command_id: str, word: str, rest: str) -> dict[str, Any] | None:
        """Rich transcript content: code, an edit's diff, a plan, an image, reused tool-call ids, history."""
        def observe(observation: dict[str, Any]) -> Any:
            assert self.link is not None
            return self.link.observe(SESSION, self.generation, observation, command_id=command_id, activity="working")
        if word == "code":
            await self._say("Here is the function:\n\n```python\ndef add(a, b):\n    return a + b  # sum\n```\n", command_id)
            return {"code": 1}
        if word == "edit":  # Pi's edit tool: its arguments arrive as a JSON string
            args = json.dumps({"path": "src/app.py", "oldText": "x = 1\nprint(x)\n", "newText": "x = 2\nprint(x)\n"})
            await observe({"type": "tool_start", "tool_call_id": "edit-1", "tool": "edit", "args": args})
            await observe({"type": "tool_end", "tool_call_id": "edit-1", "tool": "edit", "output": "Edited src/app.py", "is_error": False})
            await observe({"type": "tool_call_update", "tool_call_id": "edit-2", "title": "Write notes.md", "status": "completed",
                           "content": [{"type": "diff", "path": "notes.md", "oldText": None, "newText": "# Notes\n"}]})  # ACP
            return {"edit": 1}
        if word == "plan":
            await observe({"type": "plan", "entries": [{"content": "Read the code", "status": "completed"},
                                                        {"content": "Write the fix", "status": "in_progress"},
                                                        {"content": "Run the tests", "status": "pending"}]})
            return {"plan": 3}
        if word == "think":  # reasoning deltas before the reply (collapsed in the cockpit)
            await observe({"type": "thinking_delta", "text": "Weighing the two options; "})
            await observe({"type": "thinking_delta", "text": "the second is safer."})
            await self._say("I chose the second option.", command_id)
            return {"think": 1}
        if word == "image":
            await observe({"type": "tool_end", "tool_call_id": "shot-1", "tool": "screenshot", "is_error": False,
                           "content": [{"type": "image", "mimeType": "image/png", "data": PIXEL}]})
            return {"image": 1}
        if word == "repeat":  # the same tool-call id in every turn (runtimes restart their counters)
            await observe({"type": "tool_start", "tool_call_id": "call-1", "tool": "read", "args": {"path": rest or "a.txt"}})
            await observe({"type": "tool_end", "tool_call_id": "call-1", "tool": "read", "output": f"contents of {rest}"})
            return {"repeat": 1}
        if word == "acp":  # the ACP and Pi adapters' bookkeeping observations
            await observe({"type": "user_message", "text": "acp"})  # Pi's echo of the prompt
            await observe({"type": "resync", "session_id": "s-2", "resumed": True, "replaced": False})
            await observe({"type": "notice", "level": "warning", "text": "this agent cannot resume a session"})
            await observe({"type": "fs_refused", "method": "fs/read_text_file", "path": "/etc/shadow",
                           "reason": "outside the workspace"})
            await observe({"type": "fs_write", "path": "src/notes.md"})
            await observe({"type": "agent_update", "update": "config_option_update"})
            await observe({"type": "current_mode_update", "mode_id": "plan"})
            await observe({"type": "available_commands_update", "commands": [
                {"name": "compact", "description": "Summarise the conversation"}, {"name": "init", "description": ""}]})
            await observe({"type": "usage_update", "scope": "session", "used": 5200, "size": 200000,
                           "cost": {"amount": 0.042, "currency": "USD"}})
            await observe({"type": "usage_update", "scope": "turn", "tokens": {"inputTokens": 1200, "outputTokens": 340}})
            await self._say("Bookkeeping done.", command_id)
            await observe({"type": "assistant_message", "text": "Bookkeeping done.", "stop_reason": "stop"})
            await observe({"type": "agent_settled", "aborted": False})
            await observe({"type": "entry", "entry_id": "e0", "entry_type": "message", "role": "user", "text": "acp"})
            await observe({"type": "entry", "entry_id": "e1", "entry_type": "message", "role": "assistant",
                           "text": "Bookkeeping done."})
            await observe({"type": "entry", "entry_id": "e2", "entry_type": "message", "role": "assistant",
                           "text": "A reply the cockpit missed."})
            await observe({"type": "entry", "entry_id": "e3", "entry_type": "model_change", "text": "acme/x"})
            return {"acp": 1}
        if word == "usage":  # Pi's get_session_stats as metadata.usage
            self.usage = {"tokens": {"input": 15320, "output": 2210, "cache_read": 4000, "cache_write": 0, "total": 21530},
                          "cost": 0.1234, "context": {"tokens": 30000, "window": 200000, "percent": 15.0}}
            await self._report_session()
            return {"usage": 1}
        if word == "break-export":  # later exports fail (the cockpit says why)
            self.export_broken = True
            return {"export_broken": True}
        if word == "lost":  # the outcome is unknown: it may have run
            return {"lost": True}
        if word == "history":  # many events at once: tool calls, complete messages and output
            for i in range(int(rest or "1000") // 4):
                await observe({"type": "tool_start", "tool_call_id": f"h{i}", "tool": "bash", "args": {"command": f"step {i}"}})
                await observe({"type": "tool_end", "tool_call_id": f"h{i}", "tool": "bash", "output": f"ok {i}"})
                await observe({"type": "assistant_message", "text": f"Step **{i}** done: `ok {i}`."})
                await observe({"type": "notice", "text": f"note {i}"})
            await observe({"type": "assistant_message", "text": "History complete."})
            return {"history": rest}
        return None


def _png(width: int = 96, height: int = 48) -> str:
    """A small gradient PNG, base64 (what a screenshot tool would return)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
                    for y in range(height))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


PIXEL = _png()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--core", required=True)
    parser.add_argument("--credential-file", required=True, type=Path)
    parser.add_argument("--reconnect-max", type=float, default=10.0, help="the longest wait between reconnects")
    args = parser.parse_args()
    trio.run(lambda: run_adapter(ScriptedRuntime(), adapter_id=args.id, core_url=args.core,
                                 credential_file=args.credential_file, deployment_scope="test-rig",
                                 reconnect_max=args.reconnect_max))


if __name__ == "__main__":
    main()
