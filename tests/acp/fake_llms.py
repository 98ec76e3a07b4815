"""Scripted, deterministic fake LLM servers for the real ACP agents, one per wire dialect.

``Anthropic`` (Claude Code: ``POST /v1/messages``, SSE), ``Responses`` (Codex: ``POST
/v1/responses``, SSE), ``ChatCompletions`` (OpenCode: ``POST /v1/chat/completions``, SSE) and
``Gemini`` (Gemini CLI: ``…:streamGenerateContent?alt=sse``). The script is chosen by the
request's content, never by timing or call order, so a restarted agent gets the same answer:

- the conversation's last item is a tool result → ``tool said: <result text>``;
- the last user text contains ``BASH:<command>`` → one shell tool call running <command>;
- ``SLOW:<text>`` → <text> streamed one character every ``slow_delay`` seconds;
- ``SAY:<text>`` → <text>;
- anything else (titles, summaries) → ``ok``.

Every request is recorded (path, the script step taken) for assertions. The server runs in a
daemon thread on 127.0.0.1 port 0 and is shut down by ``stop``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERB = re.compile(r"\b(SAY|SLOW|BASH):([^\n<]*)")


def texts(value: Any) -> list[str]:
    """Every string under a ``text`` key (or a plain string content), in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in texts(item)]
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) else []
        for key in ("content", "parts"):
            if key in value and not isinstance(value[key], str):
                found += texts(value[key])
            elif isinstance(value.get(key), str):
                found.append(value[key])
        return found
    return []


def step(user_text: str, tool_result: str | None) -> tuple[str, str]:
    """(``text``|``slow``|``bash``, argument) for a request: the last user text's verb, else
    the answer to a tool result (agents may send a new prompt with the last turn's result)."""
    matches = VERB.findall(user_text)
    if not matches and tool_result is not None:
        return "text", "tool said: " + tool_result.strip()[:200]
    if not matches:
        return "text", "ok"
    verb, argument = matches[-1]
    return {"SAY": "text", "SLOW": "slow", "BASH": "bash"}[verb], argument.strip()


class FakeServer:
    """The HTTP plumbing; a dialect implements ``answer``."""

    def __init__(self, slow_delay: float = 0.05) -> None:
        self.slow_delay = slow_delay
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                try:
                    fake.answer(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client aborted the stream

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, path: str, kind: str, argument: str) -> None:
        with self.lock:
            self.requests.append({"path": path, "step": kind, "argument": argument})

    def steps(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(r["step"], r["argument"]) for r in self.requests]

    def pieces(self, kind: str, text: str) -> list[str]:
        return list(text) if kind == "slow" else [text[i:i + 8] for i in range(0, len(text), 8)] or [""]

    def pause(self, kind: str) -> None:
        if kind == "slow":
            time.sleep(self.slow_delay)

    @staticmethod
    def start_sse(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()

    @staticmethod
    def event(handler: BaseHTTPRequestHandler, data: dict[str, Any], name: str | None = None) -> None:
        frame = (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
        handler.wfile.write(frame.encode())
        handler.wfile.flush()

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        raise NotImplementedError


class Anthropic(FakeServer):
    """Anthropic Messages streaming, as Claude Code calls it (``ANTHROPIC_BASE_URL``)."""

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if "count_tokens" in handler.path or not body.get("stream"):
            self._json(handler, {"input_tokens": 10} if "count_tokens" in handler.path else self._message("ok"))
            return
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        content = last.get("content") if isinstance(last.get("content"), list) else []
        # Claude Code may send a tool's result with the prompt that asked for it in one user
        # message, so the text that asked for a tool is still there when its result comes back.
        previous = messages[-2].get("content") if len(messages) > 1 else None
        called = {c.get("id"): (c.get("input") or {}).get("command") for c in previous
                  if isinstance(c, dict) and c.get("type") == "tool_use"} if isinstance(previous, list) else {}
        results = [c for c in content if isinstance(c, dict) and c.get("type") == "tool_result"
                   and c.get("tool_use_id") in called]
        said = " ".join(texts([c for c in content if isinstance(c, dict) and c.get("type") == "text"]))
        kind, argument = step(said if last.get("role") == "user" else "", None)
        if results and (kind, argument) in (("text", "ok"), ("bash", called[results[-1]["tool_use_id"]])):
            kind, argument = "text", "tool said: " + " ".join(texts(results[-1].get("content"))).strip()[:200]
        self.record(handler.path, kind, argument)
        self.start_sse(handler)
        self.event(handler, {"type": "message_start", "message": {**self._message(""), "content": []}}, "message_start")
        if kind == "bash":
            self.event(handler, {"type": "content_block_start", "index": 0, "content_block": {
                "type": "tool_use", "id": f"toolu_{len(self.requests)}", "name": "Bash", "input": {}}},
                "content_block_start")
            self.event(handler, {"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps({"command": argument,
                                                                        "description": "Run the command"})}},
                "content_block_delta")
            stop = "tool_use"
        else:
            self.event(handler, {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}, "content_block_start")
            for piece in self.pieces(kind, argument):
                self.event(handler, {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
                self.pause(kind)
            stop = "end_turn"
        self.event(handler, {"type": "content_block_stop", "index": 0}, "content_block_stop")
        self.event(handler, {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                             "usage": {"output_tokens": 5}}, "message_delta")
        self.event(handler, {"type": "message_stop"}, "message_stop")

    @staticmethod
    def _message(text: str) -> dict[str, Any]:
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake",
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1}}

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)


class Responses(FakeServer):
    """OpenAI Responses streaming, as Codex calls it (``wire_api = "responses"``)."""

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        items = [i for i in body.get("input") or [] if isinstance(i, dict)]
        last = items[-1] if items else {}
        if last.get("type") == "function_call_output":
            output = last.get("output")
            output = output if isinstance(output, str) else " ".join(texts(output))
            kind, argument = "text", "tool said: " + output.strip()[:200]
        else:
            users = [i for i in items if i.get("role") == "user"]
            kind, argument = step(" ".join(texts(users[-1])) if users else "", None)
        self.record(handler.path, kind, argument)
        self.start_sse(handler)
        response = {"id": f"resp_{len(self.requests)}", "object": "response", "status": "in_progress", "output": []}
        self.event(handler, {"type": "response.created", "response": response})
        if kind == "bash":
            item = {"type": "function_call", "id": f"fc_{len(self.requests)}", "call_id": f"call_{len(self.requests)}",
                    "name": "exec_command", "arguments": json.dumps({"cmd": argument}), "status": "completed"}
            self.event(handler, {"type": "response.output_item.added", "output_index": 0,
                                 "item": {**item, "arguments": "", "status": "in_progress"}})
            self.event(handler, {"type": "response.output_item.done", "output_index": 0, "item": item})
        else:
            item_id = f"msg_{len(self.requests)}"
            self.event(handler, {"type": "response.output_item.added", "output_index": 0, "item": {
                "type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}})
            for piece in self.pieces(kind, argument):
                self.event(handler, {"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
                                     "content_index": 0, "delta": piece})
                self.pause(kind)
            item = {"type": "message", "id": item_id, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": argument, "annotations": []}]}
            self.event(handler, {"type": "response.output_item.done", "output_index": 0, "item": item})
        self.event(handler, {"type": "response.completed", "response": {
            **response, "status": "completed", "output": [item],
            "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}})


class ChatCompletions(FakeServer):
    """OpenAI chat completions streaming, as OpenCode's openai-compatible provider calls it.
    A request without tools (OpenCode asks for a session title first) is answered ``ok``."""

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        last = messages[-1] if messages else {}
        if not body.get("tools"):
            kind, argument = "text", "ok"
        elif last.get("role") == "tool":
            kind, argument = "text", "tool said: " + " ".join(texts(last)).strip()[:200]
        else:
            users = [m for m in messages if m.get("role") == "user"]
            kind, argument = step(" ".join(texts(users[-1])) if users else "", None)
        self.record(handler.path, kind, argument)
        self.start_sse(handler)
        if kind == "bash":
            call = {"index": 0, "id": f"call_{len(self.requests)}", "type": "function",
                    "function": {"name": "bash", "arguments": json.dumps({"command": argument,
                                                                          "description": "Run the command"})}}
            self.event(handler, self._chunk({"role": "assistant", "tool_calls": [call]}))
            self.event(handler, self._chunk({}, "tool_calls"))
        else:
            for piece in self.pieces(kind, argument):
                self.event(handler, self._chunk({"content": piece}))
                self.pause(kind)
            self.event(handler, self._chunk({}, "stop"))
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()

    @staticmethod
    def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class Gemini(FakeServer):
    """Gemini ``streamGenerateContent?alt=sse`` (and plain ``generateContent``, which Gemini CLI
    uses for its JSON side questions: answered with a "the user speaks next" object)."""

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if ":streamGenerateContent" not in handler.path:
            reply = json.dumps({"next_speaker": "user", "reasoning": "the turn is done"}) \
                if ":generateContent" in handler.path else ""
            raw = json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": reply}]},
                                              "finishReason": "STOP", "index": 0}], "totalTokens": 10}).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
            return
        contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
        last = contents[-1] if contents else {}
        parts = [p for p in last.get("parts") or [] if isinstance(p, dict)]
        responses = [p["functionResponse"] for p in parts if isinstance(p.get("functionResponse"), dict)]
        if responses:
            kind, argument = "text", "tool said: " + json.dumps(responses[-1].get("response"))[:200]
        else:
            users = [c for c in contents if c.get("role") == "user"]
            kind, argument = step(" ".join(texts(users[-1])) if users else "", None)
        self.record(handler.path, kind, argument)
        self.start_sse(handler)
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
        if kind == "bash":
            self.event(handler, {"candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "run_shell_command", "args": {"command": argument}}}]},
                "finishReason": "STOP", "index": 0}], "usageMetadata": usage})
            return
        pieces = self.pieces(kind, argument)
        for number, piece in enumerate(pieces):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}
            if number == len(pieces) - 1:
                candidate["finishReason"] = "STOP"
            self.event(handler, {"candidates": [candidate], "usageMetadata": usage})
            self.pause(kind)
