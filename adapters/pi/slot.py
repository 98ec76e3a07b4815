"""One Pi slot: a workspace (runtime session) driven by one supervised ``pi --mode rpc`` child.

The slot's ``run`` is a ``permanent`` supervisor of the child: a pi that exits is started
again with ``--continue`` after a growing backoff (reset once it stayed up a while). Whatever
was in flight gets an honest outcome first: a run that may have had effects is
``failed``/``execution_outcome_unknown``; open dialogs are withdrawn.

Commands: queued ones (instruct follow-ups, new_session, compact) wait in the slot's queue
while a run is active; they stay ``delivered`` in the core (durable, visible, redelivered if
the adapter restarts) until the slot reports them ``running`` — and it waits for the core's
ack of ``running`` before sending anything to pi. A steer joins the current run at once. A run
ends on ``agent_end``; every command that joined it completes with the final assistant text.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

import attrs
import trio
from patchbay_adapters.common.link import AdapterLink
from patchbay_adapters.pi.mapping import (
    Plan,
    Transcript,
    activity_after,
    bound,
    elicitation_for,
    message_text,
    model_summary,
    pi_argv,
    plan_command,
    run_outcome,
    ui_response,
)
from patchbay_adapters.pi.process import LaunchFailed, PiProcess
from patchbay_adapters.pi.rpc import RpcClient, RpcFailure
from patchbay_adapters.pi.state import SlotState

from patchbay.registry import CommandState, Failure

log = logging.getLogger("patchbay.adapter.pi")

QUEUE_LIMIT = 1000
STABLE_AFTER = 30.0


@attrs.frozen
class PiConfig:
    pi_path: str
    pi_args: list[str]
    env: dict[str, str]
    state_dir: Path
    extension: Path
    approve: str = "bash,edit,write"
    approval_timeout: float = 300.0
    startup_timeout: float = 60.0
    request_timeout: float = 60.0
    compact_timeout: float = 600.0
    grace: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0


@attrs.define
class Run:
    """One pi agent run (``agent_start`` … ``agent_end``) and the commands that joined it."""

    commands: list[str]
    cancelled_by: str | None = None
    done: trio.Event = attrs.field(factory=trio.Event)


@attrs.define
class Dialog:
    ui_id: str
    method: str
    options: list[str]


def _ok(answer: dict[str, Any] | None) -> bool:
    return answer is not None and answer.get("type") == "ack"


class Slot:
    def __init__(self, name: str, directory: Path, config: PiConfig, link: AdapterLink, *,
                 spawned: bool = False) -> None:
        self.name = name
        self.directory = directory
        self.config = config
        self.link = link
        self.spawned = spawned
        self.state = SlotState.load(config.state_dir, name)
        self.session_dir = config.state_dir / "sessions" / name.replace(":", "_")
        self.queue: deque[dict[str, Any]] = deque()
        self.run: Run | None = None
        self.pi: PiProcess | None = None
        self.dialogs: dict[str, Dialog] = {}
        self.transcript = Transcript()
        self.metadata: dict[str, Any] = {}
        self.activity = "unknown"
        self.connectivity = "stale"
        self.restarts = 0
        self.lease_id: str | None = None
        self._unconfirmed: set[str] = set()
        self._changed = trio.Event()
        self._held = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._host = socket.gethostname()

    @property
    def generation(self) -> int:
        return self.state.generation

    @property
    def rpc(self) -> RpcClient | None:
        return self.pi.rpc if self.pi is not None and self.connectivity == "live" else None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- supervision -----------------------------------------------------------------------

    async def run_slot(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Supervise pi until cancelled. A spawned slot reports started only once its first pi
        answered (a failed first launch raises LaunchFailed to the spawner); a configured slot
        reports started at once and keeps retrying."""
        self.session_dir.mkdir(parents=True, exist_ok=True)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._worker)
            if not self.spawned:
                task_status.started()
            backoff = self.config.backoff_initial
            first = True
            while True:
                began = trio.current_time()
                try:
                    await self._lifetime(task_status if first and self.spawned else None)
                except LaunchFailed as failure:
                    if first and self.spawned:
                        raise
                    log.warning("pi slot %s: %s", self.name, failure)
                    await self._observe({"type": "error", "source": "pi", "text": str(failure)})
                first = False
                if trio.current_time() - began > STABLE_AFTER:
                    backoff = self.config.backoff_initial
                self.restarts += 1
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)

    async def _lifetime(self, task_status: trio.TaskStatus[None] | None) -> None:
        argv = pi_argv(self.config.pi_path, self.config.pi_args, session_dir=str(self.session_dir),
                       extension=str(self.config.extension), approve=self.config.approve,
                       approval_timeout=self.config.approval_timeout)
        pi = await PiProcess.launch(argv, cwd=self.directory, env=self.config.env, slot=self.name)
        self.pi = pi
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, pi, nursery.cancel_scope)
                nursery.start_soon(pi.drain_stderr)
                nursery.start_soon(self._flush_text)
                try:
                    state = await pi.rpc.request("get_state", timeout=self.config.startup_timeout)
                except RpcFailure as failure:
                    raise LaunchFailed(f"pi did not start ({failure.detail}): {pi.stderr_text()}") from None
                self.connectivity = "live"
                await self.resync(state)
                self._notify()
                if task_status is not None:
                    task_status.started()
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                code = pi.process.returncode
                if code is None:
                    code = await self._stop(pi)
                await self._exited(pi, code)

    async def _read(self, pi: PiProcess, scope: trio.CancelScope) -> None:
        await pi.rpc.run(self._on_event, self._on_failure)
        with trio.move_on_after(self.config.grace):
            await pi.process.wait()
        scope.cancel()

    async def _stop(self, pi: PiProcess) -> int | None:
        """Clean stop: abort a busy pi and let its run end, then close stdin."""
        if self.run is not None and pi.rpc.closed is None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pi.rpc.run, self._on_event, self._on_failure)
                with trio.move_on_after(self.config.grace):
                    try:
                        await pi.rpc.request("abort", timeout=self.config.grace)
                    except RpcFailure:
                        pass
                nursery.cancel_scope.cancel()
        return await pi.close(self.config.grace)

    async def _exited(self, pi: PiProcess, code: int | None) -> None:
        """pi is gone: settle what was in flight, withdraw its dialogs, report the slot down."""
        self.connectivity = "failed"
        self.activity = "unknown"
        self.pi = None
        reason = f"pi exited (code {code})" + (f": {pi.stderr_text(300)}" if pi.stderr_text(300) else "")
        run, self.run = self.run, None
        self._unconfirmed.clear()
        if run is not None:
            for command_id in run.commands:
                if run.cancelled_by is not None:
                    await self.link.report(command_id, CommandState.cancelled.value, failure=Failure.cancelled.value,
                                           reason=f"{run.cancelled_by}; {reason}")
                else:
                    await self.link.report(command_id, CommandState.failed.value,
                                           failure=Failure.execution_outcome_unknown.value,
                                           reason=f"{reason} during the turn; the prompt may have partly run")
            run.done.set()
        for elicitation_id in list(self.dialogs):
            await self.link.send("elicitation_closed", elicitation_id=elicitation_id, state="withdrawn", reason=reason)
        self.dialogs.clear()
        for observation in self.transcript.flush():
            await self._observe(observation)
        await self._observe({"type": "error", "source": "pi", "text": f"{reason}; restarting with --continue"},
                            activity="unknown")
        await self.report_session()
        self._notify()

    # -- reporting -------------------------------------------------------------------------

    async def report_session(self, *, wait: bool = False) -> None:
        metadata = {"cwd": str(self.directory), "project": self.directory.name, "host": self._host,
                    "queued": len(self.queue), "restarts": self.restarts,
                    "pi_pid": self.pi.pid if self.pi is not None else None, **self.metadata}
        await self.link.session(self.name, self.generation, label=self.name, metadata=metadata,
                                activity=self.activity, snapshot_tier="partial", connectivity=self.connectivity,
                                wait=wait)

    async def _observe(self, observation: dict[str, Any], *, activity: str | None = None) -> None:
        command_id = self.run.commands[0] if self.run is not None and self.run.commands else None
        await self.link.observe(self.name, self.generation, observation, command_id=command_id, activity=activity)

    async def resync(self, state: dict[str, Any] | None = None) -> None:
        """Rebuild what the core knows of this slot from pi itself (a partial snapshot)."""
        rpc = self.rpc
        if rpc is None:
            await self.report_session()
            return
        try:
            if state is None:
                state = await rpc.request("get_state", timeout=self.config.request_timeout)
            messages = (await rpc.request("get_messages", timeout=self.config.request_timeout)).get("messages")
        except RpcFailure as failure:
            log.warning("pi slot %s: resync failed: %s", self.name, failure)
            return
        replaced = self.state.observe_session(state.get("sessionId"))
        self._remember(state)
        self.activity = "working" if state.get("isStreaming") or self.run is not None else "idle"
        await self.report_session()
        messages = messages if isinstance(messages, list) else []
        last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "assistant"), None)
        await self._observe({"type": "resync", "pi_session_id": state.get("sessionId"), "replaced": replaced,
                             "message_count": len(messages),
                             "last_assistant_text": bound(message_text(last), 1000) if last else None},
                            activity=self.activity)

    def _remember(self, state: dict[str, Any]) -> None:
        self.metadata = {"pi_session_id": state.get("sessionId"), "model": model_summary(state.get("model")),
                         "thinking_level": state.get("thinkingLevel"), "session_name": state.get("sessionName")}

    # -- pi events -------------------------------------------------------------------------

    async def _on_failure(self, failure: RpcFailure) -> None:
        log.warning("pi slot %s: %s", self.name, failure)
        await self._observe({"type": "error", "source": "rpc", "kind": failure.kind, "text": failure.detail})

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        activity = activity_after(kind)
        if kind == "compaction_start":
            activity = "working"
        elif kind == "compaction_end" and self.run is None:
            activity = "idle"
        if activity is not None:
            self.activity = activity
        for observation in self.transcript.feed(event, trio.current_time()):
            await self._observe(observation, activity=activity if observation["type"] != "assistant_delta" else None)
        if self.transcript.pending:
            self._held.set()
        if kind == "agent_end":
            await self._finish_run(event)
        elif kind == "extension_ui_request":
            await self._dialog(event)

    async def _flush_text(self) -> None:
        while True:
            due = self.transcript.due(trio.current_time())
            if due is None:
                await self._held.wait()
                self._held = trio.Event()
                continue
            await trio.sleep_until(due)
            for observation in self.transcript.flush():
                await self._observe(observation)

    async def _finish_run(self, event: dict[str, Any]) -> None:
        run = self.run
        if run is None:
            return  # a run nobody here started (an extension's): its transcript is recorded
        outcome = run_outcome(event.get("messages"), cancelled_by=run.cancelled_by)
        waiting = [c for c in run.commands if c in self._unconfirmed]
        for command_id in run.commands:
            if command_id not in self._unconfirmed:
                await self.link.report(command_id, outcome.state.value,
                                       failure=outcome.failure.value if outcome.failure else None,
                                       result=outcome.result, reason=outcome.reason)
        # A steer pi had not accepted yet when this run ended starts the next run instead.
        self.run = Run(waiting) if waiting else None
        run.done.set()
        self._notify()

    async def _dialog(self, request: dict[str, Any]) -> None:
        if request.get("method") == "notify":
            await self._observe({"type": "notice", "text": bound(str(request.get("message", "")), 1000),
                                 "level": request.get("notifyType", "info")})
            return
        fields = elicitation_for(request, time.time())
        ui_id = request.get("id")
        if fields is None or not isinstance(ui_id, str):
            return
        elicitation_id = f"pi-{ui_id}"[:128]
        self.dialogs[elicitation_id] = Dialog(ui_id, str(request.get("method")), fields["options"])
        command_id = self.run.commands[0] if self.run is not None and self.run.commands else None
        await self.link.send("elicitation", runtime_session_id=self.name, generation=self.generation,
                             elicitation_id=elicitation_id, command_id=command_id, **fields)
        timeout = request.get("timeout")
        if isinstance(timeout, (int, float)) and timeout > 0 and self._nursery is not None:
            self._nursery.start_soon(self._expire, elicitation_id, float(timeout) / 1000)

    async def _expire(self, elicitation_id: str, seconds: float) -> None:
        await trio.sleep(seconds)
        if self.dialogs.pop(elicitation_id, None) is not None:
            await self.link.send("elicitation_closed", elicitation_id=elicitation_id, state="expired",
                                 reason=f"no answer within {seconds:g} s: pi blocked the action")

    # -- commands ----------------------------------------------------------------------------

    async def deliver(self, command: dict[str, Any], plan: Plan) -> None:
        """Take one command; never blocks for long (work happens in the slot's tasks)."""
        command_id = command["command_id"]
        assert self._nursery is not None
        if plan.how == "queue":
            if len(self.queue) >= QUEUE_LIMIT:
                await self.link.report(command_id, CommandState.rejected.value,
                                       failure=Failure.delivery_rejected.value, reason="the slot's queue is full")
                return
            self.queue.append(command)
            await self.link.report(command_id, CommandState.delivered.value)
            await self.report_session()
            self._notify()
            return
        await self.link.report(command_id, CommandState.delivered.value)
        if plan.how == "steer":
            self._nursery.start_soon(self._steer, command, plan)
        elif plan.how == "stop":
            self._nursery.start_soon(self._stop_run, command)
        elif plan.how == "answer":
            self._nursery.start_soon(self._answer, command)
        elif plan.how == "resync":
            self._nursery.start_soon(self._resync_command, command)
        else:
            self._nursery.start_soon(self._immediate, command, plan)

    async def withdraw(self, command_id: str, reason: str) -> None:
        for queued in list(self.queue):
            if queued["command_id"] == command_id:
                self.queue.remove(queued)
                await self.report_session()
        run = self.run
        if run is not None and command_id in run.commands and run.cancelled_by is None and self.rpc is not None:
            run.cancelled_by = f"withdrawn by the core ({reason})"
            try:
                await self.rpc.request("abort", timeout=self.config.request_timeout)
            except RpcFailure as failure:
                log.warning("pi slot %s: abort after withdraw failed: %s", self.name, failure)

    async def _running(self, command_id: str) -> bool:
        """Report ``running`` and wait for the core's ack before any side effect."""
        return _ok(await self.link.report(command_id, CommandState.running.value, wait=True))

    async def _fail(self, command_id: str, failure: RpcFailure, what: str) -> None:
        unknown = failure.kind in ("exit", "timeout", "pipe") and what != "not sent"
        await self.link.report(command_id, CommandState.failed.value,
                               failure=(Failure.execution_outcome_unknown if unknown else Failure.execution_failed).value,
                               reason=f"{what}: {failure.detail}")

    async def _worker(self) -> None:
        while True:
            while not (self.queue and self.run is None and self.rpc is not None):
                await self._changed.wait()
            command = self.queue.popleft()
            plan = plan_command(command["kind"], command.get("payload") or {}, busy=False, spawn_enabled=False)
            await self._execute(command, plan)
            await self.report_session()

    async def _execute(self, command: dict[str, Any], plan: Plan) -> None:
        command_id = command["command_id"]
        rpc = self.rpc
        if rpc is None or not await self._running(command_id):
            if rpc is None:
                self.queue.appendleft(command)
            return
        if plan.rpc == "prompt":
            run = self.run = Run([command_id])
            try:
                await rpc.request("prompt", timeout=self.config.request_timeout, **plan.fields)
            except RpcFailure as failure:
                if failure.kind == "protocol" and self.run is run:
                    self.run = None
                    run.done.set()
                    await self._fail(command_id, failure, "pi refused the prompt")
                    return
                if failure.kind == "timeout" and self.pi is not None:
                    self.pi.signal_group(9)  # wedged: the supervisor restarts it and settles the run
            await run.done.wait()
            return
        timeout = self.config.compact_timeout if plan.rpc == "compact" else self.config.request_timeout
        assert plan.rpc is not None
        try:
            data = await rpc.request(plan.rpc, timeout=timeout, **plan.fields)
        except RpcFailure as failure:
            await self._fail(command_id, failure, f"{plan.rpc} failed")
            return
        if plan.rpc == "new_session":
            await self._new_session(command_id, rpc, data)
        else:
            await self.link.report(command_id, CommandState.completed.value, result={
                "summary": bound(str(data.get("summary") or ""), 4000), "tokens_before": data.get("tokensBefore")})

    async def _new_session(self, command_id: str, rpc: RpcClient, data: dict[str, Any]) -> None:
        if data.get("cancelled"):
            await self.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                                   reason="a pi extension cancelled the new session")
            return
        try:
            state = await rpc.request("get_state", timeout=self.config.request_timeout)
        except RpcFailure:
            state = {}
        if not self.state.observe_session(state.get("sessionId")):
            self.state.generation += 1  # pi did not tell us the new id: still a replacement
            self.state.pi_session_id = state.get("sessionId")
            self.state.save()
        self._remember(state)
        self.transcript = Transcript()
        self.activity = "idle"
        await self.report_session(wait=True)
        await self.link.report(command_id, CommandState.completed.value,
                               result={"generation": self.generation, "pi_session_id": state.get("sessionId")})

    async def _steer(self, command: dict[str, Any], plan: Plan) -> None:
        command_id = command["command_id"]
        rpc = self.rpc
        if rpc is None or not await self._running(command_id):
            if rpc is None:
                await self.link.report(command_id, CommandState.rejected.value,
                                       failure=Failure.delivery_rejected.value, reason="pi is restarting")
            return
        fields = dict(plan.fields)
        run = self.run
        if run is None:  # the run ended meanwhile: this starts the next one
            fields.pop("streamingBehavior", None)
            run = self.run = Run([command_id])
        else:
            run.commands.append(command_id)
            self._unconfirmed.add(command_id)
        try:
            await rpc.request("prompt", timeout=self.config.request_timeout,
                              on_answer=lambda _: self._unconfirmed.discard(command_id), **fields)
        except RpcFailure as failure:
            self._unconfirmed.discard(command_id)
            current = self.run
            if failure.kind == "protocol" and current is not None and command_id in current.commands:
                current.commands.remove(command_id)
                if not current.commands:
                    self.run = None
                    current.done.set()
                    self._notify()
                await self._fail(command_id, failure, "pi refused the steer")

    async def _stop_run(self, command: dict[str, Any]) -> None:
        command_id, kind = command["command_id"], command["kind"]
        target = (command.get("payload") or {}).get("command_id")
        for queued in list(self.queue):
            if target is not None and queued["command_id"] == target:
                self.queue.remove(queued)
                await self.link.report(target, CommandState.cancelled.value, failure=Failure.cancelled.value,
                                       reason=f"cancelled by {command_id} before it started")
                await self.link.report(command_id, CommandState.completed.value,
                                       result={"target_command_id": target, "effect": "cancelled"})
                await self.report_session()
                return
        run, rpc = self.run, self.rpc
        if run is None or rpc is None or (target is not None and target not in run.commands):
            await self.link.report(command_id, CommandState.completed.value,
                                   result={"target_command_id": target, "effect": "not_running"},
                                   reason="nothing to stop: the target is not running here")
            return
        run.cancelled_by = f"{'interrupted' if kind == 'interrupt' else 'cancelled'} by {command_id}"
        try:
            await rpc.request("abort", timeout=self.config.request_timeout)
        except RpcFailure as failure:
            log.warning("pi slot %s: abort failed: %s", self.name, failure)
        if kind == "interrupt":
            with trio.move_on_after(self.config.grace):
                await run.done.wait()
            if not run.done.is_set() and self.pi is not None:
                self.pi.signal_group(9)  # harder stop: the supervisor restarts pi with --continue
        await self.link.report(command_id, CommandState.completed.value,
                               result={"target_command_id": run.commands[0] if run.commands else target,
                                       "effect": "aborted"})

    async def _answer(self, command: dict[str, Any]) -> None:
        command_id = command["command_id"]
        payload = command.get("payload") or {}
        elicitation_id = str(payload.get("elicitation_id"))
        dialog, rpc = self.dialogs.get(elicitation_id), self.rpc
        if dialog is None or rpc is None:
            await self.link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                                   reason=f"pi no longer waits for {elicitation_id} (timed out, withdrawn or restarted)")
            return
        response = ui_response(dialog.ui_id, dialog.method, dialog.options, command["kind"], payload)
        if isinstance(response, str):
            await self.link.report(command_id, CommandState.rejected.value, failure=Failure.validation_failed.value,
                                   reason=response)
            return
        if not await self._running(command_id):
            return
        if self.dialogs.pop(elicitation_id, None) is None:  # expired while we waited for the ack
            await self.link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                                   reason=f"{elicitation_id} timed out in pi before the answer arrived")
            return
        try:
            await rpc.send(response)
        except RpcFailure as failure:
            await self._fail(command_id, failure, "not sent")
            return
        await self.link.report(command_id, CommandState.completed.value,
                               result={"elicitation_id": elicitation_id,
                                       "sent": {k: v for k, v in response.items() if k not in ("type", "id")}})

    async def _resync_command(self, command: dict[str, Any]) -> None:
        await self.resync()
        await self.link.report(command["command_id"], CommandState.completed.value,
                               result={"generation": self.generation, "connectivity": self.connectivity,
                                       "activity": self.activity, **self.metadata})

    async def _immediate(self, command: dict[str, Any], plan: Plan) -> None:
        """query and reconfigure: one RPC call now, busy or not."""
        command_id = command["command_id"]
        rpc = self.rpc
        assert plan.rpc is not None
        if rpc is None:
            await self.link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                                   reason="pi is not running (restarting)")
            return
        if plan.side_effect and not await self._running(command_id):
            return
        try:
            data = await rpc.request(plan.rpc, timeout=self.config.request_timeout, **plan.fields)
            if plan.rpc == "get_state":
                messages = (await rpc.request("get_messages", timeout=self.config.request_timeout)).get("messages")
                result = self._query_result(data, messages if isinstance(messages, list) else [])
            elif plan.rpc == "get_available_models":
                models = data.get("models")
                result = {"models": [model_summary(m) for m in models] if isinstance(models, list) else []}
            else:
                state = await rpc.request("get_state", timeout=self.config.request_timeout)
                self._remember(state)
                await self.report_session()
                result = {"model": self.metadata["model"], "thinking_level": self.metadata["thinking_level"]}
        except RpcFailure as failure:
            await self._fail(command_id, failure, f"{plan.rpc} failed")
            return
        await self.link.report(command_id, CommandState.completed.value, result=result)

    def _query_result(self, state: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
        recent = [{"role": m.get("role"), "text": bound(message_text(m), 500)}
                  for m in messages[-10:] if isinstance(m, dict)]
        return {"pi_session_id": state.get("sessionId"), "generation": self.generation,
                "model": model_summary(state.get("model")), "thinking_level": state.get("thinkingLevel"),
                "is_streaming": bool(state.get("isStreaming")), "message_count": len(messages),
                "pending_message_count": state.get("pendingMessageCount"),
                "running_commands": list(self.run.commands) if self.run else [],
                "queued_commands": [c["command_id"] for c in self.queue], "recent_messages": recent}
