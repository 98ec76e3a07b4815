"""The Pi adapter's runtime: slots by workspace name, the manifest, delivery and spawn.

``build_runtime`` is what ``patchbay adapter run pi`` calls. Each ``--workspace NAME:DIR`` is a
slot whose ``runtime_session_id`` is NAME; cwd, project, model and the Pi session id are
metadata. ``spawn`` adds a slot in a directory under a ``--spawn-root``, after taking an
exclusive core lease on that directory (``dir:<path>`` in the adapter's scope); the lease is
renewed while the slot lives and released if the launch fails, so the directory can be
retried at once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.common.link import AdapterLink
from patchbay_adapters.common.sigterm import SigtermStop
from patchbay_adapters.pi import actions, commands
from patchbay_adapters.pi.mapping import (
    SUPPORTED_KINDS,
    check_pi_args,
    pi_environment,
)
from patchbay_adapters.pi.process import LaunchFailed
from patchbay_adapters.pi.records import PiConfig
from patchbay_adapters.pi.slot import Slot
from patchbay_adapters.pi.state import SlotState, adopt_session
from patchbay_adapters.pi.support import probe

from patchbay.registry import CommandKind, CommandState, Failure, IdempotencyStrength, SnapshotTier

EXTENSION = Path(__file__).with_name("extension") / "approval.ts"
LEASE_TTL = 60.0


class PiRuntime:
    def __init__(self, workspaces: dict[str, Path], config: PiConfig, *, spawn_roots: list[Path] | None = None) -> None:
        self.workspaces = dict(workspaces)
        self.config = config
        self.spawn_roots = [p.resolve() for p in (spawn_roots or [])]
        self.slots: dict[str, Slot] = {}
        self.link: AdapterLink | None = None
        self._nursery: trio.Nursery | None = None
        self._sigterm = SigtermStop()

    def manifest(self) -> dict[str, Any]:
        kinds = SUPPORTED_KINDS + ([CommandKind.spawn] if self.spawn_roots else [])
        return {"kinds": kinds, "streaming": True, "snapshot_tier": SnapshotTier.partial, "cancellation": True,
                "session_replacement": True, "idempotency": IdempotencyStrength.at_patchbay_boundary, "attachment": "websocket",
                "steer": True, "spawn": bool(self.spawn_roots),
                "features": sorted(self.config.support.features),
                "runtime": {"pi": self.config.support.pi_version, "node": self.config.support.node_version},
                "failure_modes": [
                    "pi exits mid-turn: the turn's commands fail with execution_outcome_unknown; pi restarts "
                    "with --continue",
                    "adapter restart: running commands fail with execution_outcome_unknown; queued ones are "
                    "redelivered",
                    "snapshot is partial: rebuilt from pi's get_state/get_messages, never from a cache",
                    "an approval that is not answered in time expires and the tool is blocked",
                ]}

    async def run(self, link: AdapterLink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start one supervised slot per workspace; runs until cancelled (pi stopped cleanly).

        SIGTERM stops every slot the clean way (a busy pi is aborted before its stdin closes),
        reports the slots offline (waiting, bounded, for the core to have applied every report),
        then terminates the process with SIGTERM's default action, as if nothing caught it.
        """
        self.link = link
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._sigterm.watch(nursery)
            for name, directory in self.workspaces.items():
                slot = self.slots[name] = Slot(name, directory, self.config, link)
                await nursery.start(slot.run_slot)
            task_status.started()
        await self._sigterm.finish(self.slots.values())

    async def attached(self) -> None:
        """After every (re)attach: report each slot again from pi itself."""
        for slot in list(self.slots.values()):
            await slot.resync()

    async def deliver(self, command: dict[str, Any]) -> None:
        link = self.link
        assert link is not None
        kind = command["kind"]
        slot = self.slots.get(command["runtime_session_id"])
        busy = slot is not None and slot.run is not None
        plan = actions.plan(kind, command.get("payload") or {}, busy=busy, spawn_enabled=bool(self.spawn_roots),
                            features=self.config.support.features)
        if plan.how == "reject":
            await link.report(command["command_id"], CommandState.rejected.value,
                              failure=plan.failure.value if plan.failure else None, reason=plan.reason)
        elif plan.how == "spawn":
            assert self._nursery is not None
            self._nursery.start_soon(self._spawn, command)
        elif slot is None:
            await link.report(command["command_id"], CommandState.rejected.value,
                              failure=Failure.target_not_found.value,
                              reason=f"no slot {command['runtime_session_id']} in this adapter")
        elif command.get("generation") is not None and command["generation"] < slot.generation:
            await link.report(command["command_id"], CommandState.superseded.value,
                              failure=Failure.superseded.value,
                              reason=f"bound to generation {command['generation']}; the slot is at {slot.generation}")
        else:
            await commands.deliver(slot, command, plan)

    async def withdraw(self, command_id: str, reason: str) -> None:
        for slot in list(self.slots.values()):
            await commands.withdraw(slot, command_id, reason)

    # -- spawn -----------------------------------------------------------------------------

    async def _spawn(self, command: dict[str, Any]) -> None:
        link = self.link
        assert link is not None and self._nursery is not None
        command_id = command["command_id"]
        payload = command.get("payload") or {}
        refusal = self._check_spawn(payload)
        if isinstance(refusal, str):
            await link.report(command_id, CommandState.rejected.value, failure=Failure.validation_failed.value,
                              reason=refusal)
            return
        name, directory, resume = refusal
        await link.report(command_id, CommandState.delivered.value)
        answer = await link.send("lease", wait=True, op="acquire", resource=f"dir:{directory}",
                                 scope=link.adapter_id, ttl=LEASE_TTL)
        if answer is None or answer.get("type") != "ack":
            reason = (answer or {}).get("error", "the core did not answer the lease request")
            await link.report(command_id, CommandState.rejected.value, failure=Failure.delivery_rejected.value,
                              reason=f"spawn refused: {reason}")
            return
        lease_id = str(answer["lease_id"])
        if not await self._claim_slot(name, command_id, lease_id):
            return
        slot = Slot(name, directory, self.config, link, spawned=True)
        slot.lease_id = lease_id
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if resume is not None:
                slot.session_dir.mkdir(parents=True, exist_ok=True)
                adopt_session(resume, slot.session_dir / resume.name, directory)
            self.slots[name] = slot
            await self._nursery.start(self._slot_with_lease, slot)
        except Exception as error:
            problem = launch_problem(error)
            if problem is None:
                raise
            self.slots.pop(name, None)
            if slot.lease_id is not None:  # not yet released by the slot's own ending
                slot.lease_id = None
                await link.send("lease", op="release", lease_id=lease_id)
            await link.report(command_id, CommandState.failed.value, failure=Failure.execution_failed.value,
                              reason=f"spawn failed (the directory lease is released): {problem}")
            return
        await link.report(command_id, CommandState.completed.value, result={
            "target": f"{link.adapter_id}/{name}", "directory": str(directory), "lease_id": lease_id,
            "generation": slot.generation, "pi_session_id": slot.metadata.get("pi_session_id")})

    async def _claim_slot(self, name: str, command_id: str, lease_id: str) -> bool:
        assert self.link is not None
        if name not in self.slots:
            return True
        await self.link.send("lease", op="release", lease_id=lease_id)
        await self.link.report(command_id, CommandState.rejected.value, failure=Failure.validation_failed.value,
                               reason=f"slot {name} already exists")
        return False

    def _check_spawn(self, payload: dict[str, Any]) -> tuple[str, Path, Path | None] | str:
        requested = payload.get("directory")
        if not isinstance(requested, str) or not requested:
            return "spawn needs a 'directory'"
        path = Path(requested)
        directory = (path if path.is_absolute() else self.spawn_roots[0] / path).resolve()
        if not any(directory == root or root in directory.parents for root in self.spawn_roots):
            return f"{directory} is not under an allowed spawn root ({', '.join(map(str, self.spawn_roots))})"
        name = str(payload.get("name") or directory.name)
        if name in self.slots:
            return f"slot {name} already exists"
        try:
            SlotState.load(self.config.state_dir, name)
        except ValueError as problem:
            return str(problem)
        resume_value = payload.get("resume")
        resume = None
        if resume_value is not None:
            resume = Path(str(resume_value))
            if not resume.is_absolute() or resume.suffix != ".jsonl" or not resume.is_file():
                return "spawn 'resume' must be the absolute path of an existing Pi session file (.jsonl)"
        return name, directory, resume

    async def _slot_with_lease(self, slot: Slot, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a spawned slot and keep its lease renewed; the lease is released when it ends."""
        assert self.link is not None
        link = self.link
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(slot.run_slot)
                nursery.start_soon(self._renew, slot)
                task_status.started()
        finally:
            lease_id, slot.lease_id = slot.lease_id, None
            if lease_id is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await link.send("lease", op="release", lease_id=lease_id)

    async def _renew(self, slot: Slot) -> None:
        assert self.link is not None
        while slot.lease_id is not None:
            await trio.sleep(LEASE_TTL / 3)
            await self.link.send("lease", op="renew", lease_id=slot.lease_id, ttl=LEASE_TTL)


def launch_problem(error: BaseException) -> OSError | LaunchFailed | None:
    """The launch failure inside ``error`` (nurseries wrap it in exception groups), if any."""
    if isinstance(error, (OSError, LaunchFailed)):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = launch_problem(inner)
            if found is not None:
                return found
    return None


def build_runtime(spaces: dict[str, Path], *, spawn_roots: list[Path], pi_path: str, pi_args: list[str],
                  pi_env: list[str], state_dir: Path | None = None, approve: str = "bash,edit,write",
                  approval_timeout: float = 300.0) -> PiRuntime:
    """The runtime ``patchbay adapter run pi`` runs; raises ConfigurationError on bad options."""
    check_pi_args(pi_args)
    env = pi_environment(os.environ, pi_env)
    resolved = shutil.which(pi_path, path=env.get("PATH")) or pi_path
    config = PiConfig(pi_path=resolved, pi_args=list(pi_args), env=env,
                      state_dir=(state_dir or Path.home() / ".local" / "state" / "patchbay-pi").resolve(),
                      extension=EXTENSION, approve=approve, approval_timeout=approval_timeout,
                      support=probe(resolved, env))
    for name in spaces:
        SlotState.load(config.state_dir, name)  # a bad name or damaged state fails now, with its fix
    return PiRuntime(spaces, config, spawn_roots=spawn_roots)
