"""A scripted stand-in for ``pi --mode rpc`` (a few records, exact ordering on demand).

It speaks just enough of the protocol for slot tests that need an ordering the real pi
only produces by chance:

- ``prompt`` with text ``RACE``: a run starts and stays open until the next ``prompt``
  arrives; then the run's ``agent_end`` is written *before* that prompt's response (as when
  a steer reaches pi just after its run ended), and the second prompt starts its own run;
- ``prompt`` with text ``/handled``: a response and nothing else (pi handled it without a run);
- any other ``prompt``: a run whose assistant text is ``echo:<text>``;
- ``get_state``, ``get_messages``, ``abort``: answered.
Run as ``python fake_pi.py --mode rpc …`` (arguments are ignored).
"""

from __future__ import annotations

import json
import sys
from typing import Any

streaming = False
held: str | None = None


def write(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}], "stopReason": "stop"}


def run(text: str, *, close: bool = True) -> None:
    global streaming
    streaming = True
    write({"type": "agent_start"})
    write({"type": "message_start", "message": {"role": "user", "content": text}})
    if close:
        end_run(f"echo:{text}")


def end_run(text: str) -> None:
    global streaming
    write({"type": "message_end", "message": assistant(text)})
    write({"type": "agent_end", "messages": [assistant(text)]})
    write({"type": "agent_settled", "aborted": False})  # as pi 1.6 does
    streaming = False


def answer(request: dict[str, Any], data: dict[str, Any] | None = None) -> None:
    write({"id": request.get("id"), "type": "response", "command": request["type"], "success": True, "data": data})


def handle(request: dict[str, Any]) -> None:
    global held
    kind = request.get("type")
    if kind == "get_state":
        answer(request, {"sessionId": "fake-session", "isStreaming": streaming, "model": None})
    elif kind == "get_messages":
        answer(request, {"messages": []})
    elif kind == "abort":
        answer(request)
    elif kind == "prompt":
        text = str(request.get("message", ""))
        if held is not None:
            end_run(f"echo:{held}")
            held = None
            answer(request)
            run(text)
        elif text == "RACE":
            answer(request)
            held = text
            run(text, close=False)
        elif text == "/handled":
            answer(request)
        else:
            answer(request)
            run(text)
    else:
        write({"type": "response", "command": kind, "success": False, "error": f"Unknown command: {kind}"})


for line in sys.stdin:
    if line.strip():
        handle(json.loads(line))
