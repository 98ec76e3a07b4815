"""The shell adapter: each workspace is a runtime session; ``instruct`` runs a command line.

One job at a time per workspace; later instructs wait in the workspace's queue (they stay
``delivered`` in the core until they start, and the core redelivers them if this process
restarts). A job runs as ``/bin/sh -c TEXT`` in its own process group, with stdout and stderr
streamed as observations. Exit 0 → ``completed``; non-zero → ``failed``/``execution_failed``;
``cancel`` → SIGTERM, then SIGKILL after a grace period → ``cancelled``; ``interrupt`` → SIGINT.
Before starting a job the adapter reports ``running`` and waits for the core's ack, so the
core never sees a job that may have had effects as merely ``delivered``.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import subprocess
from collections import deque
from pathlib import Path
from typing import Any

import attrs
import trio
from patchbay_adapters.common.link import AdapterLink

from patchbay.registry import (
    CommandKind,
    CommandState,
    Failure,
    IdempotencyStrength,
    SessionActivityState,
    SnapshotTier,
)

log = logging.getLogger(__name__)

OUTPUT_TAIL = 8 * 1024
CHUNK_FLUSH_BYTES = 4096
CHUNK_FLUSH_SECONDS = 0.05
QUEUE_LIMIT = 10_000
LEASE_TTL = 60.0

SUPPORTED = [CommandKind.instruct, CommandKind.cancel, CommandKind.interrupt, CommandKind.query]


@attrs.define
class Job:
    command: dict[str, Any]
    process: trio.Process | None = None
    cancelled_by: str | None = None
    interrupted: bool = False


@attrs.define
class Workspace:
    name: str
    directory: Path
    generation: int = 1
    queue: deque[dict[str, Any]] = attrs.field(factory=deque)
    current: Job | None = None
    wake: trio.Event = attrs.field(factory=trio.Event)
    lease_id: str | None = None

    @property
    def activity(self) -> SessionActivityState:
        return SessionActivityState.working if self.current is not None else SessionActivityState.idle


class ShellRuntime:
    def __init__(self, workspaces: dict[str, Path], *, spawn_roots: list[Path] | None = None,
                 grace: float = 3.0) -> None:
        self.workspaces = {name: Workspace(name, path) for name, path in workspaces.items()}
        self.spawn_roots = [p.resolve() for p in (spawn_roots or [])]
        self.grace = grace
        self.link: AdapterLink | None = None
        self._nursery: trio.Nursery | None = None
        self._hostname = socket.gethostname()

    def manifest(self) -> dict[str, Any]:
        kinds = SUPPORTED + ([CommandKind.spawn] if self.spawn_roots else [])
        return {"kinds": kinds, "streaming": True, "snapshot_tier": SnapshotTier.authoritative,
                "cancellation": True, "session_replacement": False,
                "idempotency": IdempotencyStrength.at_patchbay_boundary, "attachment": "websocket",
                "failure_modes": ["job killed with the adapter process: its outcome is unknown"],
                "steer": False, "spawn": bool(self.spawn_roots)}

    async def run(self, link: AdapterLink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the workspace workers; runs until cancelled (jobs are killed by group then)."""
        self.link = link
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for workspace in self.workspaces.values():
                nursery.start_soon(self._worker, workspace)
            task_status.started()

    # -- the link's callbacks --------------------------------------------------------------

    async def attached(self) -> None:
        for workspace in list(self.workspaces.values()):
            await self._report_session(workspace)

    async def _report_session(self, workspace: Workspace) -> None:
        assert self.link is not None
        await self.link.session(workspace.name, workspace.generation, label=workspace.name,
                                metadata={"cwd": str(workspace.directory), "host": self._hostname,
                                          "queued": len(workspace.queue)},
                                activity=workspace.activity, snapshot_tier=SnapshotTier.authoritative)

    async def deliver(self, command: dict[str, Any]) -> None:
        """Take one delivered command; one this adapter cannot read is rejected, never fatal."""
        assert self.link is not None
        try:
            await self._take(command)
        except (KeyError, TypeError, ValueError, AttributeError) as problem:
            command_id = command.get("command_id") if isinstance(command, dict) else None
            log.warning("shell adapter: unreadable delivery %s: %s", ascii(command_id), ascii(problem))
            if isinstance(command_id, str):
                await self.link.report(command_id, CommandState.rejected, failure=Failure.delivery_rejected,
                                       reason=f"the shell adapter cannot read this command: {ascii(problem)[:200]}")

    async def _take(self, command: dict[str, Any]) -> None:
        assert self.link is not None
        kind = command["kind"]
        workspace = self.workspaces.get(command["runtime_session_id"])
        if workspace is None and kind != CommandKind.spawn:
            await self.link.report(command["command_id"], CommandState.rejected, failure=Failure.target_not_found,
                                   reason=f"no workspace {command['runtime_session_id']} in this adapter")
            return
        if kind == CommandKind.instruct:
            assert workspace is not None
            if len(workspace.queue) >= QUEUE_LIMIT:
                await self.link.report(command["command_id"], CommandState.rejected, failure=Failure.delivery_rejected,
                                       reason="the workspace queue is full")
                return
            workspace.queue.append(command)
            await self.link.report(command["command_id"], CommandState.delivered)
            workspace.wake.set()
        elif kind in (CommandKind.cancel, CommandKind.interrupt):
            assert workspace is not None
            await self._stop(workspace, command)
        elif kind == CommandKind.query:
            assert workspace is not None
            await self.link.report(command["command_id"], CommandState.delivered)
            await self.link.report(command["command_id"], CommandState.completed, result=self._status(workspace))
        elif kind == CommandKind.spawn and self.spawn_roots:
            assert self._nursery is not None
            self._nursery.start_soon(self._spawn, command)  # it waits for the core's lease answer
        else:
            await self.link.report(command["command_id"], CommandState.rejected, failure=Failure.unsupported_command,
                                   reason=f"the shell adapter does not support {kind}")

    async def withdraw(self, command_id: str, reason: str) -> None:
        for workspace in self.workspaces.values():
            for queued in list(workspace.queue):
                if queued["command_id"] == command_id:
                    workspace.queue.remove(queued)
            job = workspace.current
            if job is not None and job.command["command_id"] == command_id:
                job.cancelled_by = f"withdrawn ({reason})"
                await self._terminate(job)

    # -- jobs ------------------------------------------------------------------------------

    def _status(self, workspace: Workspace) -> dict[str, Any]:
        current = workspace.current.command["command_id"] if workspace.current else None
        return {"workspace": workspace.name, "cwd": str(workspace.directory), "activity": workspace.activity,
                "running_command": current, "queued_commands": [c["command_id"] for c in workspace.queue]}

    async def _worker(self, workspace: Workspace) -> None:
        while True:
            while not workspace.queue:
                workspace.wake = trio.Event()
                await workspace.wake.wait()
            command = workspace.queue.popleft()
            try:
                await self._run_job(workspace, Job(command))
            except Exception as problem:  # a bug or an odd command: it fails, the queue goes on
                log.exception("shell adapter: command %s failed in the adapter", ascii(command.get("command_id")))
                workspace.current = None
                await self._fail(command, f"the shell adapter failed running it: {ascii(problem)[:200]}")

    async def _fail(self, command: dict[str, Any], reason: str) -> None:
        assert self.link is not None
        await self.link.report(command["command_id"], CommandState.failed, failure=Failure.execution_failed,
                               reason=reason)

    async def _run_job(self, workspace: Workspace, job: Job) -> None:
        link = self.link
        assert link is not None
        command_id = job.command["command_id"]
        # No timeout: the frame is resent after every reconnect until the core answers it, and
        # giving up here would leave a command the core may already show as running unstarted.
        answer = await link.send("report", wait=True, timeout=math.inf, command_id=command_id, state=CommandState.running)
        if answer is None or answer.get("type") != "ack":
            return  # the core settled it meanwhile (cancelled, superseded, expired): do not run
        workspace.current = job
        await self._report_session(workspace)
        tail = bytearray()
        try:
            job.process = await trio.lowlevel.open_process(
                ["/bin/sh", "-c", job.command["payload"]["text"]], cwd=str(workspace.directory),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
        except (OSError, ValueError, TypeError, KeyError) as problem:
            # ValueError: text that cannot be a command line (a lone surrogate cannot be encoded,
            # a NUL cannot be passed); the reason is ASCII so the report itself always passes.
            workspace.current = None
            await self._fail(job.command, f"could not start: {ascii(problem)[:300]}")
            await self._report_session(workspace)
            return
        try:
            await self._stream_output(workspace, job, tail)
            code = await job.process.wait()
        finally:
            if job.process.returncode is None:
                with trio.CancelScope(shield=True):
                    _signal_group(job.process, signal.SIGKILL)
                    await job.process.wait()
        workspace.current = None
        result = {"exit_code": code, "output": bytes(tail).decode("utf-8", "replace")}
        if job.cancelled_by is not None:
            await link.report(command_id, CommandState.cancelled, failure=Failure.cancelled, result=result, reason=job.cancelled_by)
        elif job.interrupted and code != 0:
            await link.report(command_id, CommandState.cancelled, failure=Failure.cancelled, result=result, reason="interrupted (SIGINT)")
        elif code == 0:
            await link.report(command_id, CommandState.completed, result=result)
        else:
            await link.report(command_id, CommandState.failed, failure=Failure.execution_failed, result=result,
                              reason=f"exit code {code}")
        await self._report_session(workspace)

    async def _stream_output(self, workspace: Workspace, job: Job, tail: bytearray) -> None:
        """Forward the job's output as observations: a chunk goes out once ``CHUNK_FLUSH_BYTES``
        are pending or the output has been quiet for ``CHUNK_FLUSH_SECONDS`` (so a prompt or a
        progress line without a newline shows up at once, and a flood is batched)."""
        assert job.process is not None and job.process.stdout is not None and self.link is not None
        stdout = job.process.stdout
        pending = bytearray()
        while True:
            chunk = None
            with trio.move_on_after(CHUNK_FLUSH_SECONDS if pending else math.inf):
                chunk = await stdout.receive_some(65536)  # cancel-safe: nothing is lost on timeout
                if not chunk:
                    break
            if chunk is None:
                await self._flush(workspace, job, pending)
                continue
            pending += chunk
            tail += chunk
            if len(tail) > OUTPUT_TAIL:
                del tail[: len(tail) - OUTPUT_TAIL]
            if len(pending) >= CHUNK_FLUSH_BYTES:
                await self._flush(workspace, job, pending)
        await self._flush(workspace, job, pending)

    async def _flush(self, workspace: Workspace, job: Job, pending: bytearray) -> None:
        if not pending or self.link is None:
            return
        text = bytes(pending).decode("utf-8", "replace")
        pending.clear()
        await self.link.observe(workspace.name, workspace.generation, {"type": "output", "text": text},
                                command_id=job.command["command_id"], activity=SessionActivityState.working)

    async def _stop(self, workspace: Workspace, command: dict[str, Any]) -> None:
        """cancel: SIGTERM then SIGKILL; interrupt: SIGINT. The target gets its own outcome."""
        link = self.link
        assert link is not None
        await link.report(command["command_id"], CommandState.delivered)
        target_id = command["payload"].get("command_id")
        for queued in list(workspace.queue):
            if target_id is not None and queued["command_id"] == target_id:
                workspace.queue.remove(queued)
                await link.report(target_id, CommandState.cancelled, failure=Failure.cancelled,
                                  reason=f"cancelled by {command['command_id']} before it started")
                await link.report(command["command_id"], CommandState.completed,
                                  result={"target_command_id": target_id, "effect": CommandState.cancelled})
                return
        job = workspace.current
        if job is None or (target_id is not None and job.command["command_id"] != target_id):
            await link.report(command["command_id"], CommandState.completed,
                              result={"target_command_id": target_id, "effect": "not_running"},
                              reason="nothing to stop: the target is not running here")
            return
        if command["kind"] == CommandKind.interrupt:
            job.interrupted = True
            _signal_group(job.process, signal.SIGINT)
            effect = "interrupted"
        else:
            job.cancelled_by = f"cancelled by {command['command_id']}"
            await self._terminate(job)
            effect = CommandState.cancelled
        await link.report(command["command_id"], CommandState.completed,
                          result={"target_command_id": job.command["command_id"], "effect": effect})

    async def _terminate(self, job: Job) -> None:
        """SIGTERM the job's group now and SIGKILL it after the grace period (in the background
        of the runtime's nursery, owned by it)."""
        if job.process is None or job.process.returncode is not None:
            return
        _signal_group(job.process, signal.SIGTERM)
        assert self._nursery is not None
        self._nursery.start_soon(self._kill_after_grace, job.process)

    async def _kill_after_grace(self, process: trio.Process) -> None:
        with trio.move_on_after(self.grace):
            await process.wait()
        if process.returncode is None:
            _signal_group(process, signal.SIGKILL)

    # -- spawn -----------------------------------------------------------------------------

    async def _spawn(self, command: dict[str, Any]) -> None:
        link = self.link
        assert link is not None and self._nursery is not None
        command_id = command["command_id"]
        requested = Path(command["payload"]["directory"])
        root = self.spawn_roots[0]
        directory = (requested if requested.is_absolute() else root / requested).resolve()
        if not any(directory == r or r in directory.parents for r in self.spawn_roots):
            await link.report(command_id, CommandState.rejected, failure=Failure.validation_failed,
                              reason=f"{directory} is not under an allowed spawn root")
            return
        name = str(command["payload"].get("name") or directory.name)
        if name in self.workspaces:
            await link.report(command_id, CommandState.rejected, failure=Failure.validation_failed,
                              reason=f"workspace {name} already exists")
            return
        await link.report(command_id, CommandState.delivered)
        answer = await link.send("lease", wait=True, timeout=math.inf, op="acquire", resource=f"dir:{directory}",
                                 scope=link.adapter_id, ttl=LEASE_TTL)
        if answer is None:
            await link.report(command_id, CommandState.failed, failure=Failure.execution_failed,
                              reason="spawn failed: the core did not answer the lease request")
            return
        if answer.get("type") != "ack":
            await link.report(command_id, CommandState.rejected, failure=Failure.delivery_rejected,
                              reason=f"spawn refused: {answer.get('error')}")
            return
        lease_id = answer["lease_id"]
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as problem:
            await link.send("lease", op="release", lease_id=lease_id)
            await link.report(command_id, CommandState.failed, failure=Failure.execution_failed, reason=f"spawn failed: {problem}")
            return
        workspace = Workspace(name, directory, lease_id=lease_id)
        self.workspaces[name] = workspace
        self._nursery.start_soon(self._worker, workspace)
        self._nursery.start_soon(self._renew_lease, workspace)
        await self._report_session(workspace)
        await link.report(command_id, CommandState.completed, result={"target": f"{link.adapter_id}/{name}",
                                                           "directory": str(directory), "lease_id": lease_id})

    async def _renew_lease(self, workspace: Workspace) -> None:
        assert self.link is not None
        while workspace.lease_id is not None:
            await trio.sleep(LEASE_TTL / 3)
            await self.link.send("lease", op="renew", lease_id=workspace.lease_id, ttl=LEASE_TTL)


def _signal_group(process: trio.Process | None, sig: int) -> None:
    if process is None or process.returncode is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
