"""What a Pi slot does with each delivered command (the slot's task owns the work).

Queued commands (instruct follow-ups, new_session, compact) wait in the slot's queue while a
run is active and stay ``delivered`` in the core until ``worker`` starts them. Before any side
effect a command is reported ``running`` and the core's ack awaited: a command the core
settled meanwhile (cancelled, superseded, expired) is never sent to pi. Read-only commands
(query, list_models, attach) go from ``delivered`` straight to their outcome.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any

import trio
from patchbay_adapters.common.queueing import cancel_queued, enqueue
from patchbay_adapters.pi import actions, extras
from patchbay_adapters.pi.mapping import (
    Plan,
    Transcript,
    bound,
    conversation,
    message_text,
    model_summary,
    ui_response,
)
from patchbay_adapters.pi.records import Run
from patchbay_adapters.pi.rpc import RpcClient, RpcFailure

from patchbay.registry import CommandKind, CommandState, Failure, SessionActivityState

if TYPE_CHECKING:
    from patchbay_adapters.pi.slot import Slot

log = logging.getLogger("patchbay.adapter.pi")

RUNNING_ACK_TIMEOUT = 24 * 3600.0


def _ok(answer: dict[str, Any] | None) -> bool:
    return answer is not None and answer.get("type") == "ack"


async def deliver(slot: Slot, command: dict[str, Any], plan: Plan) -> None:
    """Take one command; never blocks for long (work happens in the slot's tasks)."""
    command_id = command["command_id"]
    assert slot.nursery is not None
    if plan.how == "queue":
        await enqueue(slot, command)
        return
    await slot.link.report(command_id, CommandState.delivered.value)
    if plan.how == "steer":
        slot.nursery.start_soon(steer, slot, command, plan)
    elif plan.how == "stop":
        slot.nursery.start_soon(stop_run, slot, command)
    elif plan.how == "answer":
        slot.nursery.start_soon(answer, slot, command)
    elif plan.how == "resync":
        slot.nursery.start_soon(resync_command, slot, command)
    elif plan.how == "bash":
        slot.nursery.start_soon(extras.bash, slot, command, dict(plan.fields), running)
    elif plan.how == "clear":
        slot.nursery.start_soon(clear_command, slot, command)
    else:
        slot.nursery.start_soon(immediate, slot, command, plan)


async def withdraw(slot: Slot, command_id: str, reason: str) -> None:
    for queued in list(slot.queue):
        if queued["command_id"] == command_id:
            slot.queue.remove(queued)
            await slot.report_session()
    run = slot.run
    if run is not None and command_id in run.commands and run.cancelled_by is None and slot.rpc is not None:
        run.cancelled_by = f"withdrawn by the core ({reason})"
        try:
            await slot.rpc.request("abort", timeout=slot.config.request_timeout)
        except RpcFailure as failure:
            log.warning("pi slot %s: abort after withdraw failed: %s", slot.name, failure)


async def running(slot: Slot, command_id: str) -> bool:
    """Report ``running`` and wait for the core's answer before any side effect.

    The wait outlasts a core restart (the link resends the frame after reconnecting): giving
    up early would leave a command the core then records as running that never runs. An
    error answer (the core settled it meanwhile) means: do not run it.
    """
    answer = await slot.link.send("report", wait=True, timeout=RUNNING_ACK_TIMEOUT, command_id=command_id,
                                  state=CommandState.running.value, failure=None, result=None, reason=None)
    return _ok(answer)


async def fail(slot: Slot, command_id: str, failure: RpcFailure, what: str) -> None:
    unknown = failure.kind in ("exit", "timeout", "pipe") and what != "not sent"
    await slot.link.report(command_id, CommandState.failed.value,
                           failure=(Failure.execution_outcome_unknown if unknown else Failure.execution_failed).value,
                           reason=f"{what}: {failure.detail}")


async def worker(slot: Slot) -> None:
    while True:
        while not (slot.queue and slot.run is None and slot.rpc is not None):
            await slot.changed.wait()
        command = slot.queue.popleft()
        plan = actions.plan(command["kind"], command.get("payload") or {}, busy=False, spawn_enabled=False,
                            features=slot.config.support.features)
        await execute(slot, command, plan)
        await slot.report_session()


async def execute(slot: Slot, command: dict[str, Any], plan: Plan) -> None:
    command_id = command["command_id"]
    rpc = slot.rpc
    if rpc is None or not await running(slot, command_id):
        if rpc is None:
            slot.queue.appendleft(command)
        return
    if plan.rpc == "prompt":
        run = slot.run = Run([command_id])
        try:
            answer = await rpc.request("prompt", timeout=slot.config.request_timeout, **plan.fields)
        except RpcFailure as failure:
            if failure.kind == "protocol" and slot.run is run:
                slot.run = None
                run.done.set()
                await fail(slot, command_id, failure, "pi refused the prompt")
                return
            if failure.kind == "timeout" and slot.pi is not None:
                slot.pi.signal_group(signal.SIGKILL)  # wedged: the supervisor restarts it and settles the run
        else:
            await _complete_if_no_run(slot, run, rpc, answer.get("disposition"))
        await run.done.wait()
        return
    timeout = slot.config.compact_timeout if plan.rpc == "compact" else slot.config.request_timeout
    assert plan.rpc is not None
    fields = dict(plan.fields)
    if plan.rpc == "switch_session":
        found = session_file(slot, fields.pop("session"))
        if found is None:
            await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                                   reason=f"this slot has no Pi session {plan.fields['session']!r}")
            return
        fields["sessionPath"] = found
    slot.executing = command_id
    try:
        data = await rpc.request(plan.rpc, timeout=timeout, **fields)
    except RpcFailure as failure:
        await fail(slot, command_id, failure, f"{plan.rpc} failed")
        return
    finally:
        slot.executing = None
    if plan.rpc in ("new_session", "fork", "clone", "switch_session"):
        await new_session(slot, command_id, rpc, data, plan.rpc)
    else:
        await slot.link.report(command_id, CommandState.completed.value, result={
            "summary": bound(str(data.get("summary") or ""), 4000), "tokens_before": data.get("tokensBefore")})


async def _complete_if_no_run(slot: Slot, run: Run, rpc: RpcClient, disposition: Any) -> None:
    """A prompt pi handled without a run (an extension command such as ``/name``) completes now.

    pi 1.6 says so (``disposition: "handled"``). With 0.73: pi marks itself streaming before it
    reads its next command when a prompt starts a run, and writes a run's events before later
    responses, so "not started and not streaming" after ``get_state`` means no run is coming.
    """
    if run.started or disposition in ("started", "queued"):
        return
    if disposition != "handled":
        try:
            state = await rpc.request("get_state", timeout=slot.config.request_timeout)
        except RpcFailure:
            return  # pi is going away: the supervisor settles the run
        if run.started or state.get("isStreaming"):
            return
    if slot.run is not run:
        return
    slot.run = None
    run.done.set()
    slot.notify()
    for command_id in run.commands:
        await slot.link.report(command_id, CommandState.completed.value,
                               result={"text": "", "stop_reason": "handled_without_run"})


async def new_session(slot: Slot, command_id: str, rpc: RpcClient, data: dict[str, Any],
                      action: str = "new_session") -> None:
    """A new Pi session in the slot (new_session, fork, clone, switch_session): a new generation."""
    if data.get("cancelled"):
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason=f"a pi extension cancelled the {action}")
        return
    try:
        state = await rpc.request("get_state", timeout=slot.config.request_timeout)
    except RpcFailure:
        state = {}
    if not slot.state.observe_session(state.get("sessionId")):
        slot.state.generation += 1  # pi did not tell us the new id: still a replacement
        slot.state.pi_session_id = state.get("sessionId")
        slot.state.save()
    slot.remember(state)
    slot.transcript = Transcript()
    slot.activity = SessionActivityState.idle
    await slot.report_session(wait=True)
    result = {"generation": slot.generation, "pi_session_id": state.get("sessionId")}
    if action == "fork":
        result["text"] = bound(str(data.get("text") or ""), 4000)  # the prompt forked from, to edit and resend
    await slot.link.report(command_id, CommandState.completed.value, result=result)
    await extras.refresh_usage(slot)


async def steer(slot: Slot, command: dict[str, Any], plan: Plan) -> None:
    command_id = command["command_id"]
    rpc = slot.rpc
    if rpc is None or not await running(slot, command_id):
        if rpc is None:
            await slot.link.report(command_id, CommandState.rejected.value,
                                   failure=Failure.delivery_rejected.value, reason="pi is restarting")
        return
    fields = dict(plan.fields)
    run = slot.run
    if run is None:  # the run ended meanwhile: this starts the next one
        fields.pop("streamingBehavior", None)
        run = slot.run = Run([command_id])
    else:
        run.commands.append(command_id)
        run.steers[command_id] = str(fields.get("message"))
        slot.unconfirmed.add(command_id)
    try:
        await rpc.request("prompt", timeout=slot.config.request_timeout,
                          on_answer=lambda _: slot.unconfirmed.discard(command_id), **fields)
    except RpcFailure as failure:
        slot.unconfirmed.discard(command_id)
        current = slot.run
        if failure.kind == "protocol" and current is not None and command_id in current.commands:
            current.commands.remove(command_id)
            if not current.commands:
                slot.run = None
                current.done.set()
                slot.notify()
            await fail(slot, command_id, failure, "pi refused the steer")


async def stop_run(slot: Slot, command: dict[str, Any]) -> None:
    command_id, kind = command["command_id"], command["kind"]
    target = (command.get("payload") or {}).get("command_id")
    if await cancel_queued(slot, command_id, target):
        return
    bash = [stream.command_id for stream in slot.bash.values()]
    if slot.rpc is not None and bash and (target in bash or (target is None and slot.run is None)):
        slot.bash_cancelled[target or bash[0]] = (f"interrupted by {command_id}" if kind == CommandKind.interrupt
                                                  else f"cancelled by {command_id}")
        try:
            await slot.rpc.request("abort_bash", timeout=slot.config.request_timeout)
        except RpcFailure as failure:
            log.warning("pi slot %s: abort_bash failed: %s", slot.name, failure)
        await slot.link.report(command_id, CommandState.completed.value,
                               result={"target_command_id": target or bash[0], "effect": "aborted"})
        return
    run, rpc = slot.run, slot.rpc
    if run is None or rpc is None or (target is not None and target not in run.commands):
        await slot.link.report(command_id, CommandState.completed.value,
                               result={"target_command_id": target, "effect": "not_running"},
                               reason="nothing to stop: the target is not running here")
        return
    run.cancelled_by = (f"interrupted by {command_id}" if kind == CommandKind.interrupt
                        else f"cancelled by {command_id}")
    try:
        await rpc.request("abort", timeout=slot.config.request_timeout)
    except RpcFailure as failure:
        log.warning("pi slot %s: abort failed: %s", slot.name, failure)
    if kind == CommandKind.interrupt:
        with trio.move_on_after(slot.config.grace):
            await run.done.wait()
        if not run.done.is_set() and slot.pi is not None:
            slot.pi.signal_group(signal.SIGKILL)  # harder stop: the supervisor restarts pi with --continue
    await slot.link.report(command_id, CommandState.completed.value,
                           result={"target_command_id": run.commands[0] if run.commands else target,
                                   "effect": "aborted"})


async def answer(slot: Slot, command: dict[str, Any]) -> None:
    command_id = command["command_id"]
    payload = command.get("payload") or {}
    elicitation_id = str(payload.get("elicitation_id"))
    dialog, rpc = slot.dialogs.get(elicitation_id), slot.rpc
    if dialog is None or rpc is None:
        await slot.link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                               reason=f"pi no longer waits for {elicitation_id} (timed out, withdrawn or restarted)")
        return
    response, problem = ui_response(dialog.ui_id, dialog.method, dialog.options, payload)
    if not await running(slot, command_id):
        return
    if slot.dialogs.pop(elicitation_id, None) is None:  # closed while we waited for the ack
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason=f"pi closed {elicitation_id} (timed out or restarted) before the answer arrived")
        return
    try:
        await rpc.send(response)
    except RpcFailure as failure:
        await fail(slot, command_id, failure, "not sent")
        return
    result = {"elicitation_id": elicitation_id,
              "sent": {k: v for k, v in response.items() if k not in ("type", "id")}}
    if problem is not None:
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               result=result, reason=problem)
    else:
        await slot.link.report(command_id, CommandState.completed.value, result=result)


async def resync_command(slot: Slot, command: dict[str, Any]) -> None:
    await slot.resync()
    await slot.link.report(command["command_id"], CommandState.completed.value,
                           result={"generation": slot.generation, "connectivity": slot.connectivity,
                                   "activity": slot.activity, **slot.metadata})


async def immediate(slot: Slot, command: dict[str, Any], plan: Plan) -> None:
    """query and reconfigure: one RPC call now, busy or not."""
    command_id = command["command_id"]
    rpc = slot.rpc
    assert plan.rpc is not None
    if rpc is None:
        await slot.link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                               reason="pi is not running (restarting)")
        return
    if plan.side_effect and not await running(slot, command_id):
        return
    if plan.rpc == "export_html":
        await export_command(slot, command_id)
        return
    try:
        data = await rpc.request(plan.rpc, timeout=slot.config.request_timeout, **plan.fields)
        if plan.rpc == "get_state":
            messages = (await rpc.request("get_messages", timeout=slot.config.request_timeout)).get("messages")
            result = query_result(slot, data, conversation(messages))
        elif plan.rpc == "get_available_models":
            models = data.get("models")
            result = {"models": [model_summary(m) for m in models] if isinstance(models, list) else []}
        elif (shaped := extras.shape(plan.rpc, data)) is not None:
            result = shaped
        else:
            state = await rpc.request("get_state", timeout=slot.config.request_timeout)
            slot.remember(state)
            await slot.report_session()
            result = {"model": slot.metadata["model"], "thinking_level": slot.metadata["thinking_level"],
                      "session_name": slot.metadata["session_name"]}
    except RpcFailure as failure:
        await fail(slot, command_id, failure, f"{plan.rpc} failed")
        return
    await slot.link.report(command_id, CommandState.completed.value, result=result)


def query_result(slot: Slot, state: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
    recent = [{"role": m.get("role"), "text": bound(message_text(m), 500)}
              for m in messages[-10:] if isinstance(m, dict)]
    return {"pi_session_id": state.get("sessionId"), "generation": slot.generation,
            "model": model_summary(state.get("model")), "thinking_level": state.get("thinkingLevel"),
            "is_streaming": bool(state.get("isStreaming")), "message_count": len(messages),
            "pending_message_count": state.get("pendingMessageCount"),
            "running_commands": list(slot.run.commands) if slot.run else [],
            "queued_commands": [c["command_id"] for c in slot.queue], "recent_messages": recent}


async def export_command(slot: Slot, command_id: str) -> None:
    try:
        exported = await extras.export(slot, command_id)
    except RpcFailure as failure:
        await fail(slot, command_id, failure, "export_html failed")
        return
    if isinstance(exported, str):
        await slot.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                               reason=exported)
    else:
        await slot.link.report(command_id, CommandState.completed.value, result=exported)


async def clear_command(slot: Slot, command: dict[str, Any]) -> None:
    command_id = command["command_id"]
    if not await running(slot, command_id):
        return
    try:
        result = await extras.clear_queue(slot, command_id)
    except RpcFailure as failure:
        await fail(slot, command_id, failure, "clear_queue failed")
        return
    await slot.link.report(command_id, CommandState.completed.value, result=result)


def session_file(slot: Slot, session: str) -> str | None:
    """The slot's own session file for a Pi session id (or a file name of its session directory)."""
    if not session:
        return None
    for path in sorted(slot.session_dir.glob("*.jsonl")):
        if path.name == session or path.stem.endswith(f"_{session}"):
            return str(path)
    return None
