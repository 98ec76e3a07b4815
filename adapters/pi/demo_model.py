"""A small scripted model for the ``scripts/run --pi`` demo when no provider key is set.

It speaks the OpenAI chat-completions streaming protocol on loopback, so a real pi can use it as
a custom provider (``models.json``). It is not a language model: it answers by rule, so a
newcomer sees the whole loop — a reply, a tool call that needs their approval, the tool's
output read back:

- a prompt that mentions a shell command in backticks (e.g. "run `ls -la`") → a ``bash`` call of it;
- any other prompt → a ``bash`` call of ``ls -la`` (pi asks the operator first);
- a tool result → a short reply quoting the result's first lines;
- a summary request (no tools offered) → a fixed summary.

``python -m patchbay_adapters.pi.demo_model --port-file FILE`` binds 127.0.0.1 on a free port,
writes the port to FILE, and exits when its parent process does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from patchbay_adapters.pi.mapping import message_text

BACKTICKS = re.compile(r"`([^`\n]{1,500})`")


def answer_for(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(text, tool call) for one request: the rules in the module's docstring."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if not body.get("tools"):
        return "The operator tried the Patchbay demo: a prompt, an approved shell command, a reply.", None
    if last.get("role") == "tool":
        lines = message_text(last).strip().splitlines()
        quoted = "\n".join(lines[:8]) + ("\n…" if len(lines) > 8 else "")
        return f"Done. The command printed:\n\n```\n{quoted}\n```\n\n(This is Patchbay's scripted demo model.)", None
    found = BACKTICKS.search(message_text(last))
    command = found.group(1) if found else "ls -la"
    return f"I'll run `{command}` to look around.", {"command": command}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    frame = {"id": "demo", "object": "chat.completion.chunk", "created": 0, "model": "demo",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(frame).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            self.send_error(400, "not JSON")
            return
        text, call = answer_for(body if isinstance(body, dict) else {})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for start in range(0, len(text), 12):
                self.wfile.write(_chunk({"content": text[start:start + 12]}))
                self.wfile.flush()
                time.sleep(0.02)
            if call is not None:
                self.wfile.write(_chunk({"tool_calls": [{"index": 0, "id": "demo_call", "type": "function",
                                                         "function": {"name": "bash", "arguments": json.dumps(call)}}]}))
            self.wfile.write(_chunk({}, "tool_calls" if call is not None else "stop"))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    args.port_file.write_text(f"{server.server_address[1]}\n")
    parent = os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        server.shutdown()

    threading.Thread(target=watch_parent, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
