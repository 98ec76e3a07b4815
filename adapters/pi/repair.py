"""Transcript repair: the Pi session's own entries, reported once each, from a durable cursor.

Pi's session is an append-only list of entries with stable ids, and pi 1.6's ``get_entries``
with ``since`` answers exactly the entries after a given one. After every settled run, every pi
start and every (re)attach to the core, the slot asks for the entries after its cursor and
reports each as an ``entry`` observation (bounded text, its ``entry_id`` and ``parent_id``);
the cursor moves, and is fsynced with the slot's state, only once the core has acknowledged the
last of them (the core applies an adapter's frames in order). So whatever was missed — a turn
the adapter died in, a reconnect, a pi restart — is filled from pi's own record.

A cursor belongs to one Pi session: after a session replacement (new session, fork, clone,
switch) the new session's entries are reported from its start, in the new generation. The one
window left: an adapter killed between the core's acknowledgement and the cursor's fsync
reports those entries again after its restart (each carries its ``entry_id``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from patchbay_adapters.pi.mapping import bound, message_text
from patchbay_adapters.pi.rpc import RpcFailure

if TYPE_CHECKING:
    from patchbay_adapters.pi.slot import Slot

log = logging.getLogger("patchbay.adapter.pi")

TEXT_LIMIT = 4000
ACK_TIMEOUT = 3600.0  # outlasts a core restart: the link resends the frames after reconnecting


def entry_observation(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """One session entry as an ``entry`` observation (None: not an entry)."""
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        return None
    kind = entry.get("type")
    observation: dict[str, Any] = {"type": "entry", "entry_id": entry_id, "parent_id": entry.get("parentId"),
                                   "entry_type": kind, "timestamp": entry.get("timestamp")}
    message = entry.get("message")
    if kind == "message" and isinstance(message, Mapping):
        observation.update(role=message.get("role"), text=bound(message_text(message), TEXT_LIMIT))
        if message.get("stopReason") is not None:
            observation["stop_reason"] = message.get("stopReason")
        if message.get("toolName") is not None:
            observation["tool"] = message.get("toolName")
    elif kind == "compaction":
        observation["text"] = bound(str(entry.get("summary") or ""), 1000)
    elif kind == "model_change":
        observation["text"] = f"{entry.get('provider')}/{entry.get('modelId')}"
    elif kind == "thinking_level_change":
        observation["text"] = str(entry.get("thinkingLevel"))
    elif kind == "session_info":
        observation["text"] = bound(str(entry.get("name") or ""), 200)
    return observation


async def sync_entries(slot: Slot) -> int:
    """Report the entries after the cursor; returns how many (0 when pi cannot tell)."""
    if not slot.config.has("get_entries"):
        return 0
    async with slot.entry_lock:
        rpc, session = slot.rpc, slot.metadata.get("pi_session_id")
        if rpc is None or session is None:
            return 0
        state = slot.state
        cursor = state.entry_cursor if state.entry_session == session else None
        since: dict[str, Any] = {"since": cursor} if cursor else {}
        try:
            data = await rpc.request("get_entries", timeout=slot.config.request_timeout, **since)
        except RpcFailure as failure:
            log.warning("pi slot %s: get_entries failed: %s", slot.name, failure)
            return 0
        observations = [o for o in map(entry_observation, [e for e in data.get("entries") or []
                                                             if isinstance(e, Mapping)]) if o is not None]
        if not observations:
            return 0
        generation = slot.generation
        for observation in observations[:-1]:
            await slot.link.observe(slot.name, generation, observation)
        answer = await slot.link.send("observation", wait=True, timeout=ACK_TIMEOUT, runtime_session_id=slot.name,
                                      generation=generation, observation=observations[-1], command_id=None,
                                      activity=None)
        if answer is None or answer.get("type") != "ack":
            log.warning("pi slot %s: the core did not take the entries (%s); they are sent again next time",
                        slot.name, (answer or {}).get("error"))
            return 0
        state.entry_session, state.entry_cursor = session, observations[-1]["entry_id"]
        state.save()
        return len(observations)
