"""The ACP adapter's runtime: one supervised agent per workspace slot, the manifest, delivery.

``build_runtime`` is what ``patchbay adapter run acp`` calls. Each ``--workspace NAME:DIR`` is
a slot whose ``runtime_session_id`` is NAME; the agent, its ACP session id, its modes and
its slash commands are metadata.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.acp import commands
from patchbay_adapters.acp.mapping import SUPPORTED_KINDS, agent_environment
from patchbay_adapters.acp.presets import preset
from patchbay_adapters.acp.records import AcpConfig, SlotState
from patchbay_adapters.acp.slot import Slot
from patchbay_adapters.common.environment import ConfigurationError
from patchbay_adapters.common.link import AdapterLink
from patchbay_adapters.common.sigterm import SigtermStop

from patchbay.registry import CommandState, Failure, IdempotencyStrength, SnapshotTier


class AcpRuntime:
    def __init__(self, workspaces: dict[str, Path], config: AcpConfig) -> None:
        self.workspaces = dict(workspaces)
        self.config = config
        self.slots: dict[str, Slot] = {}
        self.link: AdapterLink | None = None
        self._sigterm = SigtermStop()

    def manifest(self) -> dict[str, Any]:
        return {"kinds": list(SUPPORTED_KINDS), "streaming": True, "snapshot_tier": SnapshotTier.partial,
                "cancellation": True, "session_replacement": True,
                "idempotency": IdempotencyStrength.at_patchbay_boundary, "attachment": "websocket",
                "steer": False, "spawn": False,
                "failure_modes": [
                    "the agent exits mid-turn: the turn's commands fail with execution_outcome_unknown; the "
                    "agent restarts and loads its session (session/load), or starts a new generation",
                    "adapter restart: running commands fail with execution_outcome_unknown; queued ones are "
                    "redelivered",
                    "an unanswered permission expires: the agent is told to reject, the tool does not run",
                    "snapshot is partial: the agent keeps the conversation; the adapter reports its session",
                ]}

    async def run(self, link: AdapterLink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start one supervised slot per workspace; runs until cancelled (agents stopped cleanly).

        SIGTERM stops every slot the clean way (a running turn is cancelled before the agent
        is closed), reports the slots offline, then ends the process with SIGTERM's default.
        """
        self.link = link
        async with trio.open_nursery() as nursery:
            self._sigterm.watch(nursery)
            for name, directory in self.workspaces.items():
                slot = self.slots[name] = Slot(name, directory, self.config, link)
                await nursery.start(slot.run_slot)
            task_status.started()
        await self._sigterm.finish(self.slots.values())

    async def attached(self) -> None:
        for slot in list(self.slots.values()):
            await slot.resync()

    async def deliver(self, command: dict[str, Any]) -> None:
        link = self.link
        assert link is not None
        slot = self.slots.get(command["runtime_session_id"])
        if slot is None:
            await link.report(command["command_id"], CommandState.rejected.value,
                              failure=Failure.target_not_found.value,
                              reason=f"no slot {command['runtime_session_id']} in this adapter")
            return
        if command.get("generation") is not None and command["generation"] < slot.generation:
            await link.report(command["command_id"], CommandState.superseded.value,
                              failure=Failure.superseded.value,
                              reason=f"bound to generation {command['generation']}; the slot is at {slot.generation}")
            return
        plan = commands.plan_for(slot, command)
        if plan.how == "reject":
            await link.report(command["command_id"], CommandState.rejected.value,
                              failure=plan.failure.value if plan.failure else None, reason=plan.reason)
            return
        await commands.deliver(slot, command, plan)

    async def withdraw(self, command_id: str, reason: str) -> None:
        for slot in list(self.slots.values()):
            await commands.withdraw(slot, command_id, reason)


def build_runtime(spaces: dict[str, Path], *, agent: str | None, agent_command: str | None, agent_env: list[str],
                  state_dir: Path, agent_mode: str | None = None, approval_timeout: float = 300.0,
                  fs: bool = True, restart_after_cancel: bool | None = None) -> AcpRuntime:
    """The runtime ``patchbay adapter run acp`` runs; raises ConfigurationError on bad options."""
    if not spaces:
        raise ConfigurationError("give at least one --workspace NAME:DIR")
    chosen = preset(agent) if agent else None
    if agent_command:
        argv = shlex.split(agent_command)
    elif chosen is not None:
        argv = list(chosen.command)
    else:
        raise ConfigurationError("give --agent-command 'CMD ARGS…' or --agent claude|codex|gemini|opencode")
    if not argv:
        raise ConfigurationError("--agent-command is empty")
    env = agent_environment(os.environ, agent_env, chosen.env if chosen else None)
    found = shutil.which(argv[0], path=env.get("PATH"))
    if found is None and not Path(argv[0]).is_file():
        raise ConfigurationError(f"the agent command {argv[0]!r} is not found (PATH={env.get('PATH', '')})")
    argv[0] = os.path.abspath(found or argv[0])  # the agent runs in its workspace, not here
    if restart_after_cancel is None:
        restart_after_cancel = chosen.restart_after_cancel if chosen else False
    config = AcpConfig(command=argv, env=env, state_dir=state_dir.resolve(), agent_mode=agent_mode,
                       approval_timeout=approval_timeout, fs=fs, restart_after_cancel=restart_after_cancel)
    for name in spaces:
        SlotState.load(config.state_dir, name)  # a bad name or damaged state fails now, with its fix
    return AcpRuntime(spaces, config)
