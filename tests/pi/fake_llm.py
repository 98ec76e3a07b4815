"""A scripted, deterministic OpenAI-compatible chat-completions server for driving the real pi.

The script is chosen by the content of the request, never by timing or call order, so a
restarted pi (which repeats a request) gets the same answer:

- the last message is a tool result → ``tool said: <result text>``;
- the last user text contains ``BASH:<command>`` → one ``bash`` tool call running <command>;
- ``READ:<path>`` → one ``read`` tool call of <path>;
- ``SLOW:<text>`` → <text> streamed one character every ``slow_delay`` seconds;
- ``SAY:<text>`` → <text>;
- a compaction request (pi asks for a summary) → ``SUMMARY``;
- anything else → ``ok``.

Every answer ends with a usage chunk (``USAGE_PROMPT`` in, ``USAGE_COMPLETION`` out).

Every request is recorded (model, last user text, last role) for assertions. The server runs
in a daemon thread on 127.0.0.1 port 0 and is shut down by ``stop``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE_PROMPT = 120  # tokens every answer reports (pi sums them in get_session_stats)
USAGE_COMPLETION = 30


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _after(marker: str, text: str) -> str:
    return text.split(marker, 1)[1].strip()


class FakeLLM:
    def __init__(self, slow_delay: float = 0.1) -> None:
        self.slow_delay = slow_delay
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake._answer(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def user_texts(self) -> list[str]:
        with self._lock:
            return [r["last_user"] for r in self.requests]

    def models(self) -> list[str]:
        with self._lock:
            return [r["model"] for r in self.requests]

    # -- the script ------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        users = [m for m in messages if m.get("role") == "user"]
        last_user = _text_of(users[-1]) if users else ""
        with self._lock:
            self.requests.append({"model": body.get("model"), "last_user": last_user, "last_role": last.get("role")})
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            if not body.get("tools") and "summar" in json.dumps(messages[:1] + messages[-1:]).lower():
                self._text(handler, "SUMMARY")  # a compaction request: no tools offered
            elif last.get("role") == "tool":
                self._text(handler, "tool said: " + _text_of(last).strip()[:200])
            elif "BASH:" in last_user and last.get("role") == "user":
                self._tool_call(handler, "bash", {"command": _after("BASH:", last_user)})
            elif "READ:" in last_user and last.get("role") == "user":
                self._tool_call(handler, "read", {"path": _after("READ:", last_user)})
            elif "SLOW:" in last_user:
                self._text(handler, _after("SLOW:", last_user), delay=self.slow_delay, per_char=True)
            elif "SAY:" in last_user:
                self._text(handler, _after("SAY:", last_user))
            elif "summar" in json.dumps(messages[:1] + messages[-1:]).lower():
                self._text(handler, "SUMMARY")
            else:
                self._text(handler, "ok")
            usage = {"prompt_tokens": USAGE_PROMPT, "completion_tokens": USAGE_COMPLETION,
                     "total_tokens": USAGE_PROMPT + USAGE_COMPLETION}
            handler.wfile.write(b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 0,
                                                        "model": "fake-model", "choices": [], "usage": usage}).encode()
                                + b"\n\n")
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client aborted the stream

    @staticmethod
    def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        frame = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake-model",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(frame).encode() + b"\n\n"

    def _text(self, handler: BaseHTTPRequestHandler, text: str, *, delay: float = 0.0, per_char: bool = False) -> None:
        pieces = list(text) if per_char else [text[i:i + 8] for i in range(0, len(text), 8)] or [""]
        for piece in pieces:
            handler.wfile.write(self._chunk({"content": piece}))
            handler.wfile.flush()
            if delay:
                time.sleep(delay)
        handler.wfile.write(self._chunk({}, "stop"))

    def _tool_call(self, handler: BaseHTTPRequestHandler, tool: str, args: dict[str, Any]) -> None:
        handler.wfile.write(self._chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                         "function": {"name": tool, "arguments": ""}}]}))
        arguments = json.dumps(args)
        for i in range(0, len(arguments), 10):
            handler.wfile.write(self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + 10]}}]}))
        handler.wfile.write(self._chunk({}, "tool_calls"))
        handler.wfile.flush()


def write_pi_config(agent_dir: Any, base_url: str) -> None:
    """models.json (two fake models) and settings.json (no retry, no auto-compaction)."""
    agent_dir.mkdir(parents=True, exist_ok=True)
    models = [{"id": model_id, "name": model_id, "contextWindow": 128000, "maxTokens": 4096}
              for model_id in ("fake-model", "fake-model-2")]
    (agent_dir / "models.json").write_text(json.dumps({"providers": {"fake": {
        "baseUrl": base_url, "api": "openai-completions", "apiKey": "FAKE_API_KEY",
        "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False}, "models": models}}}))
    (agent_dir / "settings.json").write_text(json.dumps({
        "defaultProvider": "fake", "defaultModel": "fake-model", "quietStartup": True,
        "compaction": {"enabled": False, "keepRecentTokens": 1}, "retry": {"enabled": False}}))
