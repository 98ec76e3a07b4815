"""What a slot does with each message its agent sends: updates, permissions, file access.

``handle`` runs in the reader, in order, and never waits for an operator: a permission
request becomes an elicitation and is answered later (by the operator's answer, its expiry,
a cancel, or the agent's exit), file requests are answered at once, and anything else the
agent asks is refused with ``Method not found``.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import trio
from patchbay_adapters.acp import fs
from patchbay_adapters.acp.jsonrpc import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    Incoming,
    Peer,
    RpcFailure,
)
from patchbay_adapters.acp.mapping import (
    CANCELLED_ANSWER,
    Permission,
    bound,
    expiry_answer,
    permission_elicitation,
)
from patchbay_adapters.acp.records import Asked

from patchbay.registry import ElicitationState, SessionActivityState

if TYPE_CHECKING:
    from patchbay_adapters.acp.slot import Slot

log = logging.getLogger("patchbay.adapter.acp")


async def handle(slot: Slot, peer: Peer, message: Incoming) -> None:
    try:
        if message.method == "session/update":
            await _update(slot, message.params)
        elif message.id is None:
            log.debug("acp slot %s: notification %s ignored", slot.name, message.method)
        elif message.method == "session/request_permission":
            await _permission(slot, peer, message)
        elif message.method in ("fs/read_text_file", "fs/write_text_file") and slot.config.fs:
            await _file(slot, peer, message)
        else:
            await slot.observe({"type": "error", "source": "rpc", "kind": "protocol",
                                "text": f"the agent asked for {bound(message.method, 100)}, which this client "
                                        "does not offer"})
            await peer.respond_error(message.id, METHOD_NOT_FOUND, f"Method not found: {message.method}")
    except RpcFailure as failure:  # the agent went away while we answered: the supervisor settles it
        log.info("acp slot %s: could not answer %s: %s", slot.name, message.method, failure)


async def _update(slot: Slot, params: dict[str, Any]) -> None:
    update = params.get("update")
    if not isinstance(update, dict) or params.get("sessionId") != slot.session_id:
        return
    if slot.replaying:  # session/load replays the history the core already has
        return
    kind = update.get("sessionUpdate")
    if kind == "current_mode_update":
        slot.modes["currentModeId"] = update.get("currentModeId")
    elif kind == "available_commands_update":
        found = update.get("availableCommands")
        slot.available_commands = [str(c.get("name")) for c in found if isinstance(c, dict)][:200] \
            if isinstance(found, list) else []
    for observation in slot.transcript.feed(update, trio.current_time()):
        await slot.observe(observation)
    if slot.transcript.pending:
        slot.held()
    if kind in ("current_mode_update", "available_commands_update"):
        await slot.report_session()


async def _permission(slot: Slot, peer: Peer, message: Incoming) -> None:
    assert message.id is not None
    params = message.params
    turn = slot.turn
    if turn is None or turn.cancelled_by is not None or params.get("sessionId") != slot.session_id:
        # After a cancel (or outside a turn) nothing may run: the agent is told at once.
        await slot.observe({"type": "notice", "level": "info",
                            "text": "a permission request after the turn was cancelled was answered 'cancelled'"})
        await peer.respond(message.id, CANCELLED_ANSWER)
        return
    asked = permission_elicitation(params, now=time.time(), timeout=slot.config.approval_timeout)
    if isinstance(asked, str):
        await slot.observe({"type": "error", "source": "rpc", "kind": "protocol", "text": asked})
        await peer.respond(message.id, CANCELLED_ANSWER)
        return
    fields, options = asked
    tool_call = params.get("toolCall")
    tool_call_id = tool_call.get("toolCallId") if isinstance(tool_call, dict) else None
    elicitation_id = f"acp-{uuid.uuid4().hex}"
    slot.asked[elicitation_id] = Asked(Permission(message.id, options, tool_call_id), slot.current_command)
    for observation in slot.transcript.flush():
        await slot.observe(observation)
    await slot.link.send("elicitation", runtime_session_id=slot.name, generation=slot.generation,
                         elicitation_id=elicitation_id, command_id=slot.current_command, **fields)
    await slot.observe({"type": "approval_requested", "elicitation_id": elicitation_id,
                        "tool_call_id": tool_call_id, "options": [o["optionId"] for o in options]},
                       activity=SessionActivityState.working)
    if slot.process_nursery is not None:
        slot.process_nursery.start_soon(_expire, slot, peer, elicitation_id)


async def _expire(slot: Slot, peer: Peer, elicitation_id: str) -> None:
    await trio.sleep(slot.config.approval_timeout)
    asked = slot.asked.pop(elicitation_id, None)
    if asked is None:
        return
    answer = expiry_answer(asked.permission.options)
    try:
        await peer.respond(asked.permission.request_id, answer)
    except RpcFailure:
        pass
    await slot.link.send("elicitation_closed", elicitation_id=elicitation_id, state=ElicitationState.expired.value,
                         reason=f"no answer within {slot.config.approval_timeout:g} s: the agent was told "
                                f"{answer['outcome'].get('optionId') or answer['outcome']['outcome']}; the tool "
                                "did not run")


async def cancel_turn(slot: Slot, peer: Peer) -> None:
    """``session/cancel``, after answering every pending permission ``cancelled`` (ACP asks
    the client to do so) and closing their elicitations."""
    for elicitation_id, asked in list(slot.asked.items()):
        slot.asked.pop(elicitation_id, None)
        try:
            await peer.respond(asked.permission.request_id, CANCELLED_ANSWER)
        except RpcFailure:
            pass
        await slot.link.send("elicitation_closed", elicitation_id=elicitation_id,
                             state=ElicitationState.cancelled.value, reason="the turn was cancelled")
    if slot.session_id is not None:
        try:
            await peer.notify("session/cancel", {"sessionId": slot.session_id})
        except RpcFailure as failure:
            log.info("acp slot %s: session/cancel not sent: %s", slot.name, failure)


async def _file(slot: Slot, peer: Peer, message: Incoming) -> None:
    assert message.id is not None
    serve = fs.read_text if message.method == "fs/read_text_file" else fs.write_text
    try:
        result = await trio.to_thread.run_sync(serve, slot.directory, message.params)
    except fs.FsRefused as refused:
        await slot.observe({"type": "fs_refused", "method": message.method,
                            "path": bound(str(message.params.get("path")), 1000), "reason": str(refused)})
        await peer.respond_error(message.id, INVALID_PARAMS, str(refused))
        return
    if message.method == "fs/write_text_file":
        await slot.observe({"type": "fs_write", "path": bound(str(message.params.get("path")), 1000)})
    await peer.respond(message.id, result)
