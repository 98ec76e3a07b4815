"""ACP ``session/update`` notifications → Patchbay transcript observations (pure, clock passed in).

Message and thought chunks are held and sent as one ``assistant_delta`` / ``thinking_delta``
when they reach ``TEXT_FLUSH_BYTES``, when ``TEXT_FLUSH_SECONDS`` passed since the first held
chunk (``due``), or before any other observation, so the transcript order is kept. Tool calls
are keyed by their tool-call id within the turn (``begin_turn`` forgets the last turn's):
the first sighting is a ``tool_start``, later ones ``tool_update``, a ``completed`` or
``failed`` status a ``tool_end``. ``diff`` content is kept as ``{path, old, new}`` for the
cockpit's diff view; text and terminal content as ``output``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from patchbay_adapters.acp.mapping import TOOL_DONE, bound

TEXT_FLUSH_BYTES = 2048
TEXT_FLUSH_SECONDS = 0.1
DIFF_LIMIT = 64 * 1024
CHUNKS = {"agent_message_chunk": "assistant_delta", "agent_thought_chunk": "thinking_delta"}


def content_text(content: Any) -> str:
    """The text of one ACP content block (or a list of them); other blocks say what they are."""
    if isinstance(content, list):
        return "".join(content_text(c) for c in content)
    if not isinstance(content, Mapping):
        return ""
    kind = content.get("type")
    if kind == "text":
        return str(content.get("text") or "")
    if kind == "resource_link":
        return f"[{content.get('name') or content.get('uri')}]"
    if kind == "resource":
        resource = content.get("resource")
        return str(resource.get("text") or "") if isinstance(resource, Mapping) else ""
    return f"[{kind}]" if isinstance(kind, str) else ""


def tool_content(items: Any) -> tuple[str, list[dict[str, Any]], list[str]]:
    """A tool call's content: (text output, diffs, terminal ids)."""
    output: list[str] = []
    diffs: list[dict[str, Any]] = []
    terminals: list[str] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "content":
            output.append(content_text(item.get("content")))
        elif kind == "diff":
            diffs.append({"path": str(item.get("path") or ""),
                          "old": None if item.get("oldText") is None else bound(str(item["oldText"]), DIFF_LIMIT),
                          "new": bound(str(item.get("newText") or ""), DIFF_LIMIT)})
        elif kind == "terminal":
            terminals.append(str(item.get("terminalId") or ""))
    return "".join(output), diffs, terminals


def _raw(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        for key in ("command", "cmd"):
            command = value.get(key)
            if isinstance(command, str):
                return bound(command, 1000)
            if isinstance(command, list) and all(isinstance(c, str) for c in command):
                return bound(" ".join(command), 1000)
    return bound(json.dumps(value, ensure_ascii=False, default=str), 1000)


@attrs.define
class Transcript:
    """One slot's update → observation state."""

    pending: list[str] = attrs.field(factory=list)
    pending_type: str | None = None
    pending_since: float | None = None
    tools: set[str] = attrs.field(factory=set)
    text: list[str] = attrs.field(factory=list)  # the turn's assistant text, for its result

    def begin_turn(self) -> None:
        self.tools.clear()
        self.text.clear()

    def turn_text(self) -> str:
        return "".join(self.text)

    def due(self) -> float | None:
        return None if self.pending_since is None else self.pending_since + TEXT_FLUSH_SECONDS

    def flush(self) -> list[dict[str, Any]]:
        if not self.pending or self.pending_type is None:
            return []
        observation = {"type": self.pending_type, "text": "".join(self.pending)}
        self.pending.clear()
        self.pending_type = self.pending_since = None
        return [observation]

    def feed(self, update: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
        kind = update.get("sessionUpdate")
        if kind in CHUNKS:
            text = content_text(update.get("content"))
            if not text:
                return []
            out = self.flush() if self.pending_type not in (None, CHUNKS[kind]) else []
            if kind == "agent_message_chunk":
                self.text.append(text)
            self.pending.append(text)
            self.pending_type = CHUNKS[kind]
            if self.pending_since is None:
                self.pending_since = now
            if sum(len(p) for p in self.pending) >= TEXT_FLUSH_BYTES:
                out += self.flush()
            return out
        observation = self._observe(kind, update)
        return [] if observation is None else [*self.flush(), observation]

    def _observe(self, kind: Any, update: Mapping[str, Any]) -> dict[str, Any] | None:
        if kind in ("tool_call", "tool_call_update"):
            return self._tool(update)
        if kind == "user_message_chunk":
            return {"type": "user_message", "text": bound(content_text(update.get("content")))}
        if kind == "plan":
            entries = update.get("entries")
            return {"type": "plan", "entries": [
                {"content": bound(str(e.get("content") or ""), 500), "status": e.get("status"),
                 "priority": e.get("priority")}
                for e in (entries if isinstance(entries, list) else []) if isinstance(e, Mapping)][:100]}
        if kind == "usage_update":
            cost = update.get("cost")
            return {"type": "usage", "scope": "session", "used": update.get("used"), "size": update.get("size"),
                    "cost": dict(cost) if isinstance(cost, Mapping) else None}
        if kind == "available_commands_update":
            commands = update.get("availableCommands")
            return {"type": "commands", "commands": [
                {"name": str(c.get("name")), "description": str(c.get("description") or "")[:300]}
                for c in (commands if isinstance(commands, list) else []) if isinstance(c, Mapping)][:200]}
        if kind == "current_mode_update":
            return {"type": "mode", "mode_id": update.get("currentModeId")}
        if isinstance(kind, str):
            return {"type": "agent_update", "update": bound(kind, 100)}
        return None

    def _tool(self, update: Mapping[str, Any]) -> dict[str, Any]:
        call = str(update.get("toolCallId") or "")
        status = update.get("status")
        output, diffs, terminals = tool_content(update.get("content"))
        observation: dict[str, Any] = {"tool_call_id": call, "status": status}
        if call not in self.tools:
            self.tools.add(call)
            observation.update(type="tool_start", tool=bound(str(update.get("title") or update.get("kind") or ""), 300),
                               kind=update.get("kind"), args=_raw(update.get("rawInput")))
        else:
            observation["type"] = "tool_update"
            if update.get("title"):
                observation["tool"] = bound(str(update["title"]), 300)
        if status in TOOL_DONE:
            observation.update(type="tool_end", is_error=status == TOOL_DONE[1])
            if not output and update.get("rawOutput") is not None:
                output = _raw(update.get("rawOutput")) or ""
        if output:
            observation["output"] = bound(output)
        if diffs:
            observation["diffs"] = diffs
        if terminals:
            observation["terminals"] = terminals
        return observation
