"""What an ACP slot does with each delivered command (the slot's tasks own the work).

Prompts and new sessions wait in the slot's queue while a turn runs and stay ``delivered``
in the core (durable, visible, redelivered if the adapter restarts) until ``worker`` starts
them. Before any side effect a command is reported ``running`` and the core's ack awaited: a
command the core settled meanwhile is never sent to the agent. A turn ends with the
``session/prompt`` answer; its ``stopReason`` settles every command of the turn.
"""

from __future__ import annotations

import logging
import signal
import uuid
from typing import TYPE_CHECKING, Any

import trio
from patchbay_adapters.acp import incoming
from patchbay_adapters.acp.jsonrpc import RpcFailure
from patchbay_adapters.acp.mapping import Plan, bound, permission_answer, plan_command, turn_outcome
from patchbay_adapters.acp.records import Turn
from patchbay_adapters.common.queueing import cancel_queued, enqueue

from patchbay.registry import CommandKind, CommandState, Failure, SessionActivityState

if TYPE_CHECKING:
    from patchbay_adapters.acp.slot import Slot

log = logging.getLogger("patchbay.adapter.acp")

RUNNING_ACK_TIMEOUT = 24 * 3600.0


def plan_for(slot: Slot, command: dict[str, Any]) -> Plan:
    prompt = slot.capabilities.get("promptCapabilities")
    return plan_command(command["kind"], command.get("payload") or {},
                        prompt_capabilities=prompt if isinstance(prompt, dict) else {}, modes=slot.mode_ids)


async def deliver(slot: Slot, command: dict[str, Any], plan: Plan) -> None:
    """Take one command; never blocks for long."""
    command_id = command["command_id"]
    assert slot.nursery is not None
    if plan.how == "queue":
        await enqueue(slot, command)
        return
    await slot.link.report(command_id, CommandState.delivered.value)
    handler = {"stop": stop_turn, "answer": answer, "resync": resync_command}.get(plan.how, immediate)
    slot.nursery.start_soon(handler, slot, command)


async def withdraw(slot: Slot, command_id: str, reason: str) -> None:
    for queued in list(slot.queue):
        if queued["command_id"] == command_id:
            slot.queue.remove(queued)
            await slot.report_session()
    turn, peer = slot.turn, slot.live_peer
    if turn is not None and command_id in turn.commands and turn.cancelled_by is None and peer is not None:
        turn.cancelled_by = f"withdrawn by the core ({reason})"
        await incoming.cancel_turn(slot, peer)


async def running(slot: Slot, command_id: str) -> bool:
    """Report ``running`` and wait (outlasting a core restart) for the core's ack."""
    answer = await slot.link.send("report", wait=True, timeout=RUNNING_ACK_TIMEOUT, command_id=command_id,
                                  state=CommandState.running.value, failure=None, result=None, reason=None)
    return answer is not None and answer.get("type") == "ack"


async def worker(slot: Slot) -> None:
    while True:
        while not (slot.queue and slot.turn is None and slot.live_peer is not None):
            await slot.changed.wait()
        command = slot.queue.popleft()
        await execute(slot, command, plan_for(slot, command))
        await slot.report_session()


async def execute(slot: Slot, command: dict[str, Any], plan: Plan) -> None:
    command_id = command["command_id"]
    peer = slot.live_peer
    if peer is None or not await running(slot, command_id):
        if peer is None:
            slot.queue.appendleft(command)
        return
    if slot.live_peer is not peer:  # the agent went away while the core acknowledged
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason="the agent restarted before the command was sent; nothing ran")
        return
    if plan.method == "session/new":
        await new_session(slot, command_id)
        return
    turn = slot.turn = Turn([command_id])
    slot.transcript.begin_turn()
    slot.activity = SessionActivityState.working
    text = "".join(b.get("text", "") for b in plan.params["prompt"] if b.get("type") == "text")
    await slot.observe({"type": "user_message", "text": bound(text)}, activity=SessionActivityState.working)
    try:
        answer = await peer.request("session/prompt", {"sessionId": slot.session_id, **plan.params},
                                    timeout=slot.config.turn_timeout)
    except RpcFailure as failure:
        if failure.kind == "refused":
            state, why = ((CommandState.cancelled, Failure.cancelled) if turn.cancelled_by
                          else (CommandState.failed, Failure.execution_failed))
            await slot.finish_turn(turn, state, why, {"text": slot.transcript.turn_text()},
                                   turn.cancelled_by or failure.detail)
        elif failure.kind == "pipe" and not turn.done.is_set() and slot.turn is turn:
            await slot.finish_turn(turn, CommandState.failed, Failure.execution_failed, None,
                                   f"the prompt was not sent: {failure.detail}")
        elif failure.kind == "timeout" and slot.child is not None:
            slot.child.signal_group(signal.SIGKILL)  # wedged: the supervisor restarts it and settles the turn
        await turn.done.wait()
        return
    for observation in slot.transcript.flush():
        await slot.observe(observation)
    final = slot.transcript.turn_text()
    outcome = turn_outcome(answer.get("stopReason"), final, cancelled_by=turn.cancelled_by)
    usage = answer.get("usage")
    if isinstance(usage, dict):  # the turn's tokens (usage_update observations carry the session's)
        await slot.observe({"type": "usage_update", "scope": "turn",
                            "tokens": {k: v for k, v in usage.items() if isinstance(v, (int, float))}})
    await slot.observe({"type": "assistant_message", "text": bound(final, 64 * 1024),
                        "stop_reason": answer.get("stopReason")})
    if outcome.state is CommandState.completed and final:
        for joined in turn.commands:
            await slot.link.send("reply", runtime_session_id=slot.name, generation=slot.generation,
                                 reply_id=f"acp-reply-{uuid.uuid4().hex}", correlates_kind="command",
                                 correlates_id=joined, content=outcome.result)
    if outcome.state is CommandState.cancelled and slot.config.restart_after_cancel:
        # Some agents answer the next prompt with the cancelled turn's late end (claude-agent-acp
        # 0.23): a fresh process that loads the session starts in step.
        slot.recycle("it answers the prompt after a cancel out of step; its session is loaded again")
    await slot.finish_turn(turn, outcome.state, outcome.failure, outcome.result, outcome.reason)


async def new_session(slot: Slot, command_id: str) -> None:
    peer = slot.live_peer
    assert peer is not None
    slot.executing = command_id
    try:
        created = await peer.request("session/new", {"cwd": str(slot.directory), "mcpServers": []},
                                     timeout=slot.config.request_timeout)
        await slot.start_session(created, resumed_from=None)
    except RpcFailure as failure:
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason=f"session/new failed: {failure.detail}")
        return
    finally:
        slot.executing = None
    await slot.link.report(command_id, CommandState.completed.value,
                           result={"generation": slot.generation, "acp_session_id": slot.session_id})


async def stop_turn(slot: Slot, command: dict[str, Any]) -> None:
    command_id, kind = command["command_id"], command["kind"]
    target = (command.get("payload") or {}).get("command_id")
    if await cancel_queued(slot, command_id, target):
        return
    turn, peer = slot.turn, slot.live_peer
    if turn is None or peer is None or (target is not None and target not in turn.commands):
        await slot.link.report(command_id, CommandState.completed.value,
                               result={"target_command_id": target, "effect": "not_running"},
                               reason="nothing to stop: the target is not running here")
        return
    if turn.cancelled_by is None:
        turn.cancelled_by = (f"interrupted by {command_id}" if kind == CommandKind.interrupt
                             else f"cancelled by {command_id}")
    await incoming.cancel_turn(slot, peer)
    if kind == CommandKind.interrupt:
        with trio.move_on_after(slot.config.grace):
            await turn.done.wait()
        if not turn.done.is_set() and slot.child is not None:
            slot.child.signal_group(signal.SIGKILL)  # harder stop: the supervisor restarts the agent
    await slot.link.report(command_id, CommandState.completed.value,
                           result={"target_command_id": turn.commands[0], "effect": "cancel_requested"})


async def answer(slot: Slot, command: dict[str, Any]) -> None:
    command_id = command["command_id"]
    payload = command.get("payload") or {}
    elicitation_id = str(payload.get("elicitation_id"))
    asked, peer = slot.asked.get(elicitation_id), slot.live_peer
    if asked is None or peer is None:
        await slot.link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                               reason=f"the agent no longer waits for {elicitation_id} "
                                      "(expired, cancelled, or the agent restarted)")
        return
    if not await running(slot, command_id):
        return
    if slot.asked.pop(elicitation_id, None) is None:
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason=f"{elicitation_id} closed (expired, cancelled or restarted) before the "
                                      "answer arrived")
        return
    response, problem = permission_answer(asked.permission.options, payload)
    try:
        await peer.respond(asked.permission.request_id, response)
    except RpcFailure as failure:
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason=f"not sent: {failure.detail}")
        return
    result = {"elicitation_id": elicitation_id, "sent": response["outcome"]}
    state, failed = (CommandState.failed, Failure.execution_failed) if problem else (CommandState.completed, None)
    await slot.link.report(command_id, state.value, failure=failed.value if failed else None, result=result,
                           reason=problem)


async def resync_command(slot: Slot, command: dict[str, Any]) -> None:
    await slot.resync()
    await slot.link.report(command["command_id"], CommandState.completed.value, result=query_result(slot))


def query_result(slot: Slot) -> dict[str, Any]:
    return {"generation": slot.generation, "connectivity": slot.connectivity, "activity": slot.activity,
            "busy": slot.turn is not None, "pending_approvals": len(slot.asked), **slot.metadata()}


async def immediate(slot: Slot, command: dict[str, Any]) -> None:
    """query and reconfigure, busy or not."""
    command_id = command["command_id"]
    plan = plan_for(slot, command)
    if plan.method == "state":
        await slot.link.report(command_id, CommandState.completed.value, result=query_result(slot))
        return
    if plan.method == "list_models":
        available = slot.models.get("availableModels")
        await slot.link.report(command_id, CommandState.completed.value, result={
            "models": [{"model_id": m.get("modelId"), "name": m.get("name")} for m in available
                       if isinstance(m, dict)] if isinstance(available, list) else [],
            "current": slot.models.get("currentModelId")})
        return
    peer = slot.live_peer
    if peer is None:
        await slot.link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                               reason="the agent is not running (restarting)")
        return
    if not await running(slot, command_id):
        return
    assert plan.method is not None
    try:
        await peer.request(plan.method, {"sessionId": slot.session_id, **plan.params},
                           timeout=slot.config.request_timeout)
    except RpcFailure as failure:
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason=f"{plan.method} failed: {failure.detail}")
        return
    if plan.method == "session/set_mode":
        slot.modes["currentModeId"] = plan.params["modeId"]
    else:
        slot.models["currentModelId"] = plan.params["modelId"]
    await slot.report_session()
    await slot.link.report(command_id, CommandState.completed.value,
                           result={"mode": slot.modes.get("currentModeId"), "model": slot.models.get("currentModelId")})
