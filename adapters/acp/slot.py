"""One ACP slot: a workspace (runtime session) driven by one supervised agent process.

The slot's ``run_slot`` supervises the agent: one that exits is started again after a growing
backoff (reset once it stayed up a while). Each start runs ``initialize``, then opens the
slot's session: ``session/load`` of the remembered session when the agent declares
``loadSession`` (the history it replays is not observed again), otherwise ``session/new``
with a generation bump and a visible notice. Whatever was in flight when the agent went away
gets an honest outcome: the turn's commands ``failed``/``execution_outcome_unknown`` (or
``cancelled`` when a cancel was under way); pending permissions are withdrawn.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections import deque
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.acp import commands, incoming
from patchbay_adapters.acp.jsonrpc import Peer, RpcFailure
from patchbay_adapters.acp.records import AcpConfig, Asked, SlotState, Turn
from patchbay_adapters.acp.transcript import Transcript
from patchbay_adapters.common.child import Child, LaunchFailed, kill_orphaned_group, started_at
from patchbay_adapters.common.link import AdapterLink
from patchbay_adapters.common.slotevents import SlotEvents

from patchbay.registry import (
    CommandState,
    ElicitationState,
    Failure,
    SessionActivityState,
    SessionConnectivityState,
    SnapshotTier,
)

log = logging.getLogger("patchbay.adapter.acp")

STABLE_AFTER = 30.0
PROTOCOL_VERSION = 1


class Slot(SlotEvents[Transcript]):
    def __init__(self, name: str, directory: Path, config: AcpConfig, link: AdapterLink) -> None:
        super().__init__()
        self.name = name
        self.directory = directory
        self.config = config
        self.link = link
        self.state = SlotState.load(config.state_dir, name)
        self.queue: deque[dict[str, Any]] = deque()
        self.turn: Turn | None = None
        self.child: Child | None = None
        self.peer: Peer | None = None
        self.asked: dict[str, Asked] = {}
        self.transcript = Transcript()
        self.session_id: str | None = None
        self.replaying = False
        self.capabilities: dict[str, Any] = {}
        self.agent_info: dict[str, Any] = {}
        self.modes: dict[str, Any] = {}
        self.models: dict[str, Any] = {}
        self.available_commands: list[str] = []
        self.activity = SessionActivityState.unknown
        self.connectivity = SessionConnectivityState.unknown
        self.restarts = 0
        self.recycling: str | None = None
        self.offline_reason: str | None = None
        self.executing: str | None = None
        self.nursery: trio.Nursery | None = None
        self.process_nursery: trio.Nursery | None = None
        self._host = socket.gethostname()

    @property
    def generation(self) -> int:
        return self.state.generation

    @property
    def current_command(self) -> str | None:
        if self.turn is not None and self.turn.commands:
            return self.turn.commands[0]
        return self.executing

    @property
    def live_peer(self) -> Peer | None:
        live = self.connectivity == SessionConnectivityState.live and self.session_id is not None
        return self.peer if live and self.recycling is None else None

    @property
    def mode_ids(self) -> list[str]:
        modes = self.modes.get("availableModes")
        return [str(m.get("id")) for m in modes if isinstance(m, dict)] if isinstance(modes, list) else []

    # -- supervision -----------------------------------------------------------------------

    async def run_slot(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(commands.worker, self)
            task_status.started()
            backoff = self.config.backoff_initial
            while True:
                began = trio.current_time()
                try:
                    await self._lifetime()
                except LaunchFailed as failure:
                    log.warning("acp slot %s: %s", self.name, failure)
                    await self.observe({"type": "error", "source": "agent", "text": str(failure)})
                if trio.current_time() - began > STABLE_AFTER:
                    backoff = self.config.backoff_initial
                self.restarts += 1
                if self.recycling is not None:  # a planned restart: at once
                    self.recycling = None
                    continue
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)

    async def _lifetime(self) -> None:
        """One agent process from launch to exit; raises LaunchFailed if it never got a session."""
        if self.state.agent is not None:
            if kill_orphaned_group(*self.state.agent):
                await self.observe({"type": "notice", "level": "warning",
                                    "text": f"stopped agent pid {self.state.agent[0]}, left running by an adapter "
                                            "process that was killed"})
            self.state.agent = None
        child = await Child.launch(self.config.command, cwd=self.directory, env=self.config.env)
        started = started_at(child.pid)
        self.state.agent = (child.pid, started) if started is not None else None
        self.state.save()
        peer = Peer(child.stdin, child.stdout)
        self.child, self.peer = child, peer
        failed: LaunchFailed | None = None
        try:
            async with trio.open_nursery() as nursery:
                self.process_nursery = nursery
                nursery.start_soon(self._read, child, peer, nursery.cancel_scope)
                nursery.start_soon(child.drain_stderr)
                nursery.start_soon(self.flush_held, self.observe)
                try:
                    await self._open(peer)
                except RpcFailure as failure:
                    failed = LaunchFailed(f"the agent did not start ({failure.detail}): {child.stderr_text()}")
                    nursery.cancel_scope.cancel()
                else:
                    self.connectivity = SessionConnectivityState.live
                    self.activity = SessionActivityState.idle
                    await self.report_session()
                    self.notify()
                    await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                code = child.process.returncode
                if code is None:
                    code = await self._stop(child, peer)
                else:
                    child.kill_leftovers()
                self.state.agent = None
                self.state.save()
                with trio.move_on_after(self.config.grace * 2):
                    await self._exited(child, code)
        if failed is not None:
            raise failed

    async def _read(self, child: Child, peer: Peer, scope: trio.CancelScope) -> None:
        await peer.run(lambda message: incoming.handle(self, peer, message), self._on_failure)
        with trio.move_on_after(self.config.grace):
            await child.process.wait()
        scope.cancel()

    async def _open(self, peer: Peer) -> None:
        """``initialize`` and the slot's session (loaded, or new with a notice)."""
        timeout = self.config.startup_timeout
        answer = await peer.request("initialize", {
            "protocolVersion": PROTOCOL_VERSION,
            "clientCapabilities": {"fs": {"readTextFile": self.config.fs, "writeTextFile": self.config.fs},
                                   "terminal": False},
            "clientInfo": {"name": "patchbay", "version": "0.1.0"}}, timeout=timeout)
        capabilities = answer.get("agentCapabilities")
        self.capabilities = capabilities if isinstance(capabilities, dict) else {}
        info = answer.get("agentInfo")
        self.agent_info = info if isinstance(info, dict) else {}
        remembered = self.state.session_id
        params = {"cwd": str(self.directory), "mcpServers": []}
        if remembered is not None and self.capabilities.get("loadSession"):
            self.replaying = True
            self.session_id = remembered  # the replay's updates carry this id
            try:
                loaded = await peer.request("session/load", {"sessionId": remembered, **params}, timeout=timeout)
            except RpcFailure as failure:
                if failure.kind != "refused":
                    raise
                await self.observe({"type": "notice", "level": "warning",
                                    "text": f"the agent could not load session {remembered} ({failure.detail}); "
                                            "a new session starts a new generation"})
            else:
                self._remember(loaded)
                await self.observe({"type": "resync", "session_id": remembered, "resumed": True,
                                    "replaced": False})
                return
            finally:
                self.replaying = False
        created = await peer.request("session/new", params, timeout=timeout)
        await self.start_session(created, resumed_from=remembered)
        if self.config.agent_mode and self.config.agent_mode in self.mode_ids:
            await peer.request("session/set_mode", {"sessionId": self.session_id, "modeId": self.config.agent_mode},
                               timeout=timeout)
            self.modes["currentModeId"] = self.config.agent_mode

    async def start_session(self, created: dict[str, Any], *, resumed_from: str | None) -> None:
        """Take a ``session/new`` answer as the slot's session (a new generation unless first)."""
        session_id = created.get("sessionId")
        if not isinstance(session_id, str) or not session_id:
            raise RpcFailure("protocol", "session/new answered without a sessionId")
        first = self.state.session_id is None
        self.state.replace_session(session_id)
        self.session_id = session_id
        self.transcript = Transcript()
        self._remember(created)
        await self.report_session(wait=True)
        if resumed_from is not None and not self.capabilities.get("loadSession"):
            await self.observe({"type": "notice", "level": "warning",
                                "text": f"this agent cannot resume a session: session {resumed_from} was replaced "
                                        f"by {session_id} (generation {self.generation})"})
        await self.observe({"type": "resync", "session_id": session_id, "resumed": False, "replaced": not first})

    def _remember(self, answer: dict[str, Any]) -> None:
        modes, models = answer.get("modes"), answer.get("models")
        self.modes = modes if isinstance(modes, dict) else {}
        self.models = models if isinstance(models, dict) else {}

    async def _stop(self, child: Child, peer: Peer) -> int:
        """Clean stop: cancel a running turn and let it end (bounded), then close the agent."""
        turn = self.turn
        if turn is not None and peer.closed is None and self.session_id is not None:
            if turn.cancelled_by is None:
                turn.cancelled_by = "the adapter is shutting down"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer.run, lambda message: incoming.handle(self, peer, message), self._on_failure)
                with trio.move_on_after(self.config.grace):
                    await incoming.cancel_turn(self, peer)
                    await turn.done.wait()
                nursery.cancel_scope.cancel()
        return await child.close(self.config.grace)

    async def _exited(self, child: Child, code: int) -> None:
        """The agent is gone: settle the turn, withdraw its permissions, report the slot down
        (``unknown`` for a planned restart: commands are still taken and wait in the queue)."""
        self.connectivity = SessionConnectivityState.failed if self.recycling is None \
            else SessionConnectivityState.unknown
        self.activity = SessionActivityState.unknown
        self.child = self.peer = None
        self.session_id = None
        self.process_nursery = None
        stderr = child.stderr_text(300)
        reason = f"the agent exited (code {code})" + (f": {stderr}" if stderr else "")
        turn = self.turn
        if turn is not None:
            if turn.cancelled_by is not None:
                await self.finish_turn(turn, CommandState.cancelled, Failure.cancelled, None,
                                       f"{turn.cancelled_by}; {reason}")
            else:
                await self.finish_turn(turn, CommandState.failed, Failure.execution_outcome_unknown, None,
                                       f"{reason} during the turn; the prompt may have partly run")
        for elicitation_id in list(self.asked):
            await self.link.send("elicitation_closed", elicitation_id=elicitation_id,
                                 state=ElicitationState.withdrawn.value, reason=reason)
        self.asked.clear()
        if self.recycling is not None:
            await self.observe({"type": "notice", "level": "info", "text": f"the agent was restarted: {self.recycling}"},
                               activity=SessionActivityState.unknown)
        else:
            await self.observe({"type": "error", "source": "agent", "text": f"{reason}; restarting"},
                               activity=SessionActivityState.unknown)
        await self.report_session()
        self.notify()

    async def finish_turn(self, turn: Turn, state: CommandState, failure: Failure | None,
                          result: dict[str, Any] | None, reason: str | None) -> None:
        """Settle every command of ``turn`` once (a second call does nothing)."""
        if turn.done.is_set():
            return
        turn.done.set()
        if self.turn is turn:
            self.turn = None
        for observation in self.transcript.flush():
            await self.observe(observation)
        self.activity = SessionActivityState.idle if self.connectivity == SessionConnectivityState.live \
            else SessionActivityState.unknown
        for command_id in turn.commands:
            await self.link.report(command_id, state.value, failure=failure.value if failure else None,
                                   result=result, reason=reason)
        await self.report_session()
        self.notify()

    def recycle(self, reason: str) -> None:
        """Restart the agent now (it resumes its session): no command reaches it meanwhile."""
        if self.child is not None and self.recycling is None:
            self.recycling = reason
            self.child.signal_group(signal.SIGTERM)
            self.notify()

    # -- reporting -------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return {"cwd": str(self.directory), "project": self.directory.name, "host": self._host,
                "queued": len(self.queue), "restarts": self.restarts,
                "agent_pid": self.child.pid if self.child is not None else None,
                "agent": self.agent_info.get("name") or Path(self.config.command[0]).name,
                "agent_version": self.agent_info.get("version"), "acp_session_id": self.state.session_id,
                "load_session": bool(self.capabilities.get("loadSession")),
                "mode": self.modes.get("currentModeId"), "modes": self.mode_ids,
                "model": self.models.get("currentModelId"), "commands": self.available_commands,
                **({"offline_reason": self.offline_reason} if self.offline_reason else {})}

    async def report_session(self, *, wait: bool = False) -> None:
        await self.link.session(self.name, self.generation, label=self.name, metadata=self.metadata(),
                                activity=self.activity, snapshot_tier=SnapshotTier.partial.value,
                                connectivity=self.connectivity, wait=wait)

    async def report_offline(self, reason: str) -> None:
        """The slot goes away with the adapter: say so, and wait for the core's answer."""
        self.connectivity, self.activity = SessionConnectivityState.offline, SessionActivityState.unknown
        self.offline_reason = reason
        await self.report_session(wait=True)

    async def observe(self, observation: dict[str, Any], *, activity: str | None = None) -> None:
        await self.link.observe(self.name, self.generation, observation, command_id=self.current_command,
                                activity=activity)

    async def resync(self) -> None:
        await self.report_session()

    async def _on_failure(self, failure: RpcFailure) -> None:
        log.warning("acp slot %s: %s", self.name, failure)
        await self.observe({"type": "error", "source": "rpc", "kind": failure.kind, "text": failure.detail})
