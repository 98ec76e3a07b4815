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
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.common.link import AdapterLink
from patchbay_adapters.common.slotevents import SlotEvents
from patchbay_adapters.pi import commands, extras, repair
from patchbay_adapters.pi.mapping import (
    Transcript,
    activity_after,
    bound,
    conversation,
    elicitation_for,
    message_text,
    model_summary,
    pi_argv,
    run_outcome,
)
from patchbay_adapters.pi.process import LaunchFailed, PiProcess, stop_orphan
from patchbay_adapters.pi.records import Dialog, PiConfig, Run
from patchbay_adapters.pi.rpc import RpcClient, RpcFailure
from patchbay_adapters.pi.state import SlotState

from patchbay.registry import (
    CommandState,
    ElicitationState,
    Failure,
    SessionActivityState,
    SessionConnectivityState,
    SnapshotTier,
)

log = logging.getLogger("patchbay.adapter.pi")

STABLE_AFTER = 30.0


class Slot(SlotEvents[Transcript]):
    def __init__(self, name: str, directory: Path, config: PiConfig, link: AdapterLink, *,
                 spawned: bool = False) -> None:
        super().__init__()
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
        self.activity = SessionActivityState.unknown
        self.connectivity = SessionConnectivityState.unknown
        self.restarts = 0
        self.lease_id: str | None = None
        self.executing: str | None = None
        self.unconfirmed: set[str] = set()
        self.bash: dict[str, extras.BashStream] = {}  # by RPC request id
        self.bash_cancelled: dict[str, str] = {}  # bash command id -> why it was aborted
        self.entry_lock = trio.Lock()  # one transcript repair at a time
        self.nursery: trio.Nursery | None = None
        self._host = socket.gethostname()

    @property
    def generation(self) -> int:
        return self.state.generation

    @property
    def current_command(self) -> str | None:
        """The command pi is working for now (observations and dialogs are attributed to it)."""
        if self.run is not None and self.run.commands:
            return self.run.commands[0]
        return self.executing

    @property
    def rpc(self) -> RpcClient | None:
        return self.pi.rpc if self.pi is not None and self.connectivity == SessionConnectivityState.live else None

    # -- supervision -----------------------------------------------------------------------

    async def run_slot(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Supervise pi until cancelled. A spawned slot reports started only once its first pi
        answered (a failed first launch raises LaunchFailed to the spawner); a configured slot
        reports started at once and keeps retrying."""
        self.session_dir.mkdir(parents=True, exist_ok=True)
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(commands.worker, self)
            if not self.spawned:
                task_status.started()
            failure = await self._supervise(task_status if self.spawned else None)
            nursery.cancel_scope.cancel()
        raise failure

    async def _supervise(self, task_status: trio.TaskStatus[None] | None) -> LaunchFailed:
        """Restart pi forever with backoff; returns only a spawned slot's failed first launch."""
        backoff = self.config.backoff_initial
        first = True
        while True:
            began = trio.current_time()
            try:
                await self._lifetime(task_status if first else None)
            except LaunchFailed as failure:
                if first and task_status is not None:
                    return failure
                log.warning("pi slot %s: %s", self.name, failure)
                await self._observe({"type": "error", "source": "pi", "text": str(failure)})
            first = False
            if trio.current_time() - began > STABLE_AFTER:
                backoff = self.config.backoff_initial
            self.restarts += 1
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self.config.backoff_max)

    async def _lifetime(self, task_status: trio.TaskStatus[None] | None) -> None:
        """One pi process from launch to exit; raises LaunchFailed if it never answered."""
        argv = pi_argv(self.config.pi_path, self.config.pi_args, session_dir=str(self.session_dir),
                       extension=str(self.config.extension), approve=self.config.approve,
                       approval_timeout=self.config.approval_timeout,
                       session_file=commands.session_file(self, self.state.pi_session_id or ""))
        await trio.to_thread.run_sync(stop_orphan, self.state.pi_pid, str(self.session_dir))
        pi = await PiProcess.start(argv, cwd=self.directory, env=self.config.env, slot=self.name)
        self.pi = pi
        self.state.pi_pid = pi.pid
        self.state.save()
        failed: LaunchFailed | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, pi, nursery.cancel_scope)
                nursery.start_soon(pi.drain_stderr)
                nursery.start_soon(self.flush_held, self._observe)
                try:
                    state = await pi.rpc.request("get_state", timeout=self.config.startup_timeout)
                except RpcFailure as failure:
                    failed = LaunchFailed(f"pi did not start ({failure.detail}): {pi.stderr_text()}")
                    nursery.cancel_scope.cancel()
                else:
                    self.connectivity = SessionConnectivityState.live
                    await self.resync(state)
                    self.notify()
                    if task_status is not None:
                        task_status.started()
                    await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                code = pi.process.returncode
                if code is None:
                    code = await self._stop(pi)
                with trio.move_on_after(self.config.grace * 2):  # bounded even if the link is stuck
                    await self._exited(pi, code)
        if failed is not None:
            raise failed

    async def _read(self, pi: PiProcess, scope: trio.CancelScope) -> None:
        await pi.rpc.run(self._on_event, self._on_failure)
        with trio.move_on_after(self.config.grace):
            await pi.process.wait()
        scope.cancel()

    async def _stop(self, pi: PiProcess) -> int | None:
        """Clean stop: abort a busy pi and let its run end, then close stdin."""
        if self.run is not None and pi.rpc.closed is None:
            if self.run.cancelled_by is None:
                self.run.cancelled_by = "the adapter is shutting down"
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
        self.connectivity = SessionConnectivityState.failed
        self.activity = SessionActivityState.unknown
        self.pi = None
        reason = f"pi exited (code {code})" + (f": {pi.stderr_text(300)}" if pi.stderr_text(300) else "")
        run, self.run = self.run, None
        self.unconfirmed.clear()
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
            await self.link.send("elicitation_closed", elicitation_id=elicitation_id, state=ElicitationState.withdrawn.value, reason=reason)
        self.dialogs.clear()
        for observation in self.transcript.flush():
            await self._observe(observation)
        await self._observe({"type": "error", "source": "pi", "text": f"{reason}; restarting with --continue"},
                            activity=SessionActivityState.unknown)
        await self.report_session()
        self.notify()

    # -- reporting -------------------------------------------------------------------------

    async def report_session(self, *, wait: bool = False) -> None:
        metadata = {"cwd": str(self.directory), "project": self.directory.name, "host": self._host,
                    "queued": len(self.queue), "restarts": self.restarts,
                    "pi_pid": self.pi.pid if self.pi is not None else None, **self.metadata}
        await self.link.session(self.name, self.generation, label=self.name, metadata=metadata,
                                activity=self.activity, snapshot_tier=SnapshotTier.partial.value, connectivity=self.connectivity,
                                wait=wait)

    async def report_offline(self, reason: str) -> None:
        """The slot is going away with the adapter: say so, and wait for the core's answer
        (frames are applied in order, so everything reported before it has been applied)."""
        self.connectivity, self.activity = SessionConnectivityState.offline, SessionActivityState.unknown
        self.metadata["offline_reason"] = reason
        await self.report_session(wait=True)

    async def _observe(self, observation: dict[str, Any], *, activity: str | None = None) -> None:
        await self.link.observe(self.name, self.generation, observation, command_id=self.current_command,
                                activity=activity)

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
        self.remember(state)
        busy = state.get("isStreaming") or self.run is not None
        self.activity = SessionActivityState.working if busy else SessionActivityState.idle
        await self.report_session()
        messages = conversation(messages)
        last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
        await extras.refresh_usage(self)
        if self.nursery is not None:
            self.nursery.start_soon(repair.sync_entries, self)  # what the core missed, from pi's own record
        await self._observe({"type": "resync", "pi_session_id": state.get("sessionId"), "replaced": replaced,
                             "message_count": len(messages),
                             "last_assistant_text": bound(message_text(last), 1000) if last else None},
                            activity=self.activity)

    def remember(self, state: dict[str, Any]) -> None:
        usage = self.metadata.get("usage") if self.metadata.get("pi_session_id") == state.get("sessionId") else None
        self.metadata = {"pi_session_id": state.get("sessionId"), "model": model_summary(state.get("model")),
                         "thinking_level": state.get("thinkingLevel"), "session_name": state.get("sessionName"),
                         "auto_compaction": state.get("autoCompactionEnabled"), "usage": usage}

    # -- pi events -------------------------------------------------------------------------

    async def _on_failure(self, failure: RpcFailure) -> None:
        log.warning("pi slot %s: %s", self.name, failure)
        await self._observe({"type": "error", "source": "rpc", "kind": failure.kind, "text": failure.detail})

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        activity = activity_after(kind)
        if kind == "compaction_start":
            activity = SessionActivityState.working
        elif kind == "compaction_end" and self.run is None:
            activity = SessionActivityState.idle
        if activity is not None:
            self.activity = activity
        if kind == "agent_start":
            if self.run is None:  # a run nobody here asked for (an extension's): wait it out
                self.run = Run([])
            self.run.started = True
        for observation in self.transcript.feed(event, trio.current_time()):
            await self._observe(observation, activity=activity if observation["type"] != "assistant_delta" else None)
        if self.transcript.pending:
            self.held()
        if kind == "agent_end" and self.run is not None and self.config.has("agent_settled"):
            self.run.ended = event  # retries, compaction or queued steers may follow: wait for agent_settled
        elif kind == "agent_end" or (kind == "agent_settled" and self.run is not None):
            await self._finish_run(event if kind == "agent_end" else (self.run and self.run.ended) or {})
        elif kind == "bash_execution_update":
            for command_id, text in extras.feed_bash(self, event, trio.current_time()):
                await self.link.observe(self.name, self.generation, {"type": "bash_output", "text": text},
                                        command_id=command_id)
        elif kind in ("session_info_changed", "thinking_level_changed"):  # pi 1.6: the header follows at once
            self.metadata["session_name" if kind == "session_info_changed" else "thinking_level"] = (
                event.get("name") if kind == "session_info_changed" else event.get("level"))
            await self.report_session()
        elif kind == "extension_ui_request":
            await self._dialog(event)

    async def _finish_run(self, event: dict[str, Any]) -> None:
        run = self.run
        if run is None:
            return
        outcome = run_outcome(event.get("messages"), cancelled_by=run.cancelled_by)
        waiting = [c for c in run.commands if c in self.unconfirmed]
        text = outcome.result["text"] if outcome.result else ""
        for command_id in run.commands:
            if command_id not in self.unconfirmed:
                if text:
                    await self.link.send("reply", runtime_session_id=self.name, generation=self.generation,
                                         reply_id=f"pi-reply-{uuid.uuid4().hex}", correlates_kind="command",
                                         correlates_id=command_id, content=outcome.result)
                await self.link.report(command_id, outcome.state.value,
                                       failure=outcome.failure.value if outcome.failure else None,
                                       result=outcome.result, reason=outcome.reason)
        # A steer pi had not accepted yet when this run ended starts the next run instead.
        self.run = Run(waiting) if waiting else None
        run.done.set()
        self.notify()
        if self.nursery is not None:
            self.nursery.start_soon(extras.refresh_usage, self)
            self.nursery.start_soon(repair.sync_entries, self)

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
        await self.link.send("elicitation", runtime_session_id=self.name, generation=self.generation,
                             elicitation_id=elicitation_id, command_id=self.current_command, **fields)
        timeout = request.get("timeout")
        if isinstance(timeout, (int, float)) and timeout > 0 and self.nursery is not None:
            self.nursery.start_soon(self._expire, elicitation_id, float(timeout) / 1000)

    async def _expire(self, elicitation_id: str, seconds: float) -> None:
        await trio.sleep(seconds)
        if self.dialogs.pop(elicitation_id, None) is not None:
            await self.link.send("elicitation_closed", elicitation_id=elicitation_id, state=ElicitationState.expired.value,
                                 reason=f"no answer within {seconds:g} s: pi blocked the action")
