"""Handlers for the rest of pi's RPC surface (see ``actions``): usage, reads, export, the queue,
and ``bash`` with its streamed output.

Results are shaped here (bounded, snake_case) from pi's answers; nothing pi sends is passed on
unbounded. ``usage`` is refreshed after every settled run and every resync, and reported as the
session's ``metadata.usage`` (what ``sessions --json`` shows as ``usage``).
"""

from __future__ import annotations

import base64
import gzip
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio
from patchbay_adapters.pi.mapping import OUTPUT_LIMIT, bound
from patchbay_adapters.pi.rpc import RpcFailure

from patchbay.registry import CommandKind, CommandState, Failure

if TYPE_CHECKING:
    from patchbay_adapters.pi.slot import Slot

log = logging.getLogger("patchbay.adapter.pi")

EXPORT_LIMIT = 600 * 1024  # compressed bytes a command result may carry (frames are at most 1 MiB)
BASH_TIMEOUT = 24 * 3600.0
BASH_FLUSH_SECONDS = 0.2
BASH_FLUSH_BYTES = 2048
TREE_LIMIT = 500


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def usage_summary(stats: Mapping[str, Any]) -> dict[str, Any]:
    """``get_session_stats`` as the session's ``usage``: tokens, cost, context use, counts."""
    tokens = stats.get("tokens") if isinstance(stats.get("tokens"), Mapping) else {}
    context = stats.get("contextUsage") if isinstance(stats.get("contextUsage"), Mapping) else None
    assert isinstance(tokens, Mapping)
    return {
        "tokens": {"input": _number(tokens.get("input")), "output": _number(tokens.get("output")),
                   "cache_read": _number(tokens.get("cacheRead")), "cache_write": _number(tokens.get("cacheWrite")),
                   "total": _number(tokens.get("total"))},
        "cost": _number(stats.get("cost")),
        "context": None if context is None else {"tokens": _number(context.get("tokens")),
                                                 "window": _number(context.get("contextWindow")),
                                                 "percent": _number(context.get("percent"))},
        "messages": {"user": _number(stats.get("userMessages")), "assistant": _number(stats.get("assistantMessages")),
                     "tool_calls": _number(stats.get("toolCalls")), "total": _number(stats.get("totalMessages"))},
    }


def _entry_text(entry: Mapping[str, Any]) -> str:
    message = entry.get("message")
    if isinstance(message, Mapping):
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return str(entry.get("summary") or entry.get("name") or "")


def tree_summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """``get_tree`` flattened (depth first): id, parent, type, role, a line of text, label."""
    nodes: list[dict[str, Any]] = []
    stack = list(reversed(data.get("tree") or []))
    while stack and len(nodes) < TREE_LIMIT:
        node = stack.pop()
        if not isinstance(node, Mapping) or not isinstance(node.get("entry"), Mapping):
            continue
        entry = node["entry"]
        message = entry.get("message") if isinstance(entry.get("message"), Mapping) else {}
        nodes.append({"id": entry.get("id"), "parent_id": entry.get("parentId"), "type": entry.get("type"),
                      "role": message.get("role"), "text": bound(_entry_text(entry), 200), "label": node.get("label")})
        stack.extend(reversed([c for c in node.get("children") or [] if isinstance(c, Mapping)]))
    return {"nodes": nodes, "leaf_id": data.get("leafId"), "truncated": bool(stack)}


def shape(rpc: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The command result of a read (None: not a read shaped here)."""
    if rpc == "get_session_stats":
        return usage_summary(data)
    if rpc == "get_commands":
        return {"commands": [{"name": str(c.get("name")), "description": bound(str(c.get("description") or ""), 300),
                              "source": c.get("source")}
                             for c in (data.get("commands") or [])[:500] if isinstance(c, Mapping)]}
    if rpc == "get_fork_messages":
        return {"messages": [{"entry_id": m.get("entryId"), "text": bound(str(m.get("text") or ""), 500)}
                             for m in (data.get("messages") or [])[-200:] if isinstance(m, Mapping)]}
    if rpc == "get_tree":
        return tree_summary(data)
    if rpc == "get_available_thinking_levels":
        return {"levels": [str(level) for level in data.get("levels") or []]}
    return None


async def refresh_usage(slot: Slot) -> None:
    """Ask pi for the session's stats and report them (a failure leaves the last usage)."""
    rpc = slot.rpc
    if rpc is None or not slot.config.has("usage"):
        return
    try:
        stats = await rpc.request("get_session_stats", timeout=slot.config.request_timeout)
    except RpcFailure as failure:
        log.info("pi slot %s: no usage: %s", slot.name, failure)
        return
    slot.metadata["usage"] = usage_summary(stats)
    await slot.report_session()


async def export(slot: Slot, command_id: str) -> dict[str, Any] | str:
    """``export_html`` into the slot's state directory, returned gzip+base64 (or a refusal)."""
    rpc = slot.rpc
    assert rpc is not None
    target = slot.config.state_dir / "exports" / f"{slot.name.replace(':', '_')}-{command_id[:64]}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = await rpc.request("export_html", timeout=slot.config.request_timeout, outputPath=str(target))
        written = trio.Path(str(data.get("path") or target))
        html = await written.read_bytes()
        await written.unlink(missing_ok=True)
    except OSError as error:
        return f"pi wrote no export: {error}"
    packed = gzip.compress(html, mtime=0)
    if len(packed) > EXPORT_LIMIT:
        return f"the export is {len(packed)} bytes compressed, over the {EXPORT_LIMIT} a command result may carry"
    session = str(slot.metadata.get("pi_session_id") or "session")
    return {"filename": f"pi-{slot.name}-{session}.html", "media_type": "text/html", "encoding": "gzip+base64",
            "bytes": len(html), "data": base64.b64encode(packed).decode()}


async def clear_queue(slot: Slot, command_id: str) -> dict[str, Any]:
    """Drop the queued follow-ups (adapter side) and pi's own queue (steers not yet taken)."""
    cleared: list[str] = []
    for queued in [c for c in slot.queue if c["kind"] == CommandKind.instruct]:
        slot.queue.remove(queued)
        cleared.append(queued["command_id"])
        await slot.link.report(queued["command_id"], CommandState.cancelled.value, failure=Failure.cancelled.value,
                               reason=f"the queue was cleared by {command_id}")
    data: dict[str, Any] = {}
    if slot.rpc is not None:
        data = await slot.rpc.request("clear_queue", timeout=slot.config.request_timeout)
    steering = [str(text) for text in data.get("steering") or []]
    run = slot.run
    if run is not None:
        for steer_id, text in list(run.steers.items()):
            if text in steering and steer_id in run.commands[1:]:
                run.commands.remove(steer_id)
                run.steers.pop(steer_id)
                cleared.append(steer_id)
                await slot.link.report(steer_id, CommandState.cancelled.value, failure=Failure.cancelled.value,
                                       reason=f"taken out of pi's queue by {command_id} before the model saw it")
    await slot.report_session()
    return {"cleared": cleared, "steering": [bound(t, 500) for t in steering],
            "follow_up": [bound(str(t), 500) for t in data.get("followUp") or []]}


# -- bash ---------------------------------------------------------------------------------


class BashStream:
    """One running ``bash``: its command and the output not yet observed."""

    def __init__(self, command_id: str) -> None:
        self.command_id = command_id
        self.pending: list[str] = []
        self.flushed_at = 0.0
        self.streamed = False


def feed_bash(slot: Slot, event: Mapping[str, Any], now: float) -> list[tuple[str, str]]:
    """A ``bash_execution_update``: (command id, text) observations due now."""
    stream = slot.bash.get(str(event.get("id")))
    if stream is None:
        return []
    stream.pending.append(str(event.get("delta", "")))
    stream.streamed = True
    if now - stream.flushed_at < BASH_FLUSH_SECONDS and sum(map(len, stream.pending)) < BASH_FLUSH_BYTES:
        return []
    stream.flushed_at = now
    text, stream.pending = "".join(stream.pending), []
    return [(stream.command_id, bound(text))]


async def bash(slot: Slot, command: dict[str, Any], fields: dict[str, Any], running: Any) -> None:
    command_id = command["command_id"]
    rpc = slot.rpc
    if rpc is None:
        await slot.link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                               reason="pi is not running (restarting)")
        return
    if not await running(slot, command_id):
        return
    request_id = f"pb-bash-{command_id}"
    stream = slot.bash[request_id] = BashStream(command_id)
    try:
        data = await rpc.request("bash", timeout=BASH_TIMEOUT, request_id=request_id, **fields)
    except RpcFailure as failure:
        unknown = failure.kind in ("exit", "timeout", "pipe")
        await slot.link.report(command_id, CommandState.failed.value, reason=f"bash failed: {failure.detail}",
                               failure=(Failure.execution_outcome_unknown if unknown else Failure.execution_failed).value)
        return
    finally:
        slot.bash.pop(request_id, None)
    rest = "".join(stream.pending) if stream.streamed else str(data.get("output") or "")
    if rest:
        await slot.link.observe(slot.name, slot.generation, {"type": "bash_output", "text": bound(rest)},
                                command_id=command_id)
    code, aborted = data.get("exitCode"), bool(data.get("cancelled"))
    result = {"exit_code": code, "aborted": aborted, "truncated": bool(data.get("truncated")),
              "output": bound(str(data.get("output") or ""), OUTPUT_LIMIT)}
    if aborted:
        await slot.link.report(command_id, CommandState.cancelled.value, failure=Failure.cancelled.value,
                               result=result, reason=stream_reason(slot, command_id))
    elif code == 0:
        await slot.link.report(command_id, CommandState.completed.value, result=result)
    else:
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               result=result, reason=f"bash exited with code {code}")


def stream_reason(slot: Slot, command_id: str) -> str:
    return slot.bash_cancelled.pop(command_id, "aborted in pi")
