"""A supervised stdio child in its own process group: launch, stderr tail, and a clean stop.

A clean stop closes the child's stdin and waits ``grace``; a child that ignores a closed
stdin (claude-agent-acp and codex-acp do) gets SIGTERM, then SIGKILL, sent to its whole group,
so the tools it started die with it. Signals go to the group of the PID started here, never
to processes found by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import trio

STDERR_TAIL = 8 * 1024


def started_at(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None if it is gone.
    With the PID it names one process: a PID reused later has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def kill_orphaned_group(pid: int, started: int) -> bool:
    """SIGKILL the group of a child a previous adapter process left running (it was killed
    without its cleanup), if ``pid`` is still that very process; True if it was."""
    if started_at(pid) != started:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class LaunchFailed(Exception):
    """The child could not be started, or did not answer in time."""


async def open_group(argv: list[str], *, cwd: Path, env: dict[str, str]) -> trio.Process:
    """Start ``argv`` with piped stdio as the leader of a new process group."""
    try:
        return await trio.lowlevel.open_process(
            argv, cwd=str(cwd), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True)
    except OSError as error:
        raise LaunchFailed(f"cannot start {argv[0]}: {error}") from None


class Child:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stderr_tail = bytearray()
        assert process.stdin is not None and process.stdout is not None
        self.stdin: trio.abc.SendStream = process.stdin
        self.stdout: trio.abc.ReceiveStream = process.stdout

    @classmethod
    async def launch(cls, argv: list[str], *, cwd: Path, env: dict[str, str]) -> Child:
        return cls(await open_group(argv, cwd=cwd, env=env))

    @property
    def pid(self) -> int:
        return self.process.pid

    async def drain_stderr(self) -> None:
        """Keep the tail of the child's stderr (diagnostics for an exit); never blocks it."""
        assert self.process.stderr is not None
        try:
            async for chunk in self.process.stderr:
                self.stderr_tail += chunk
                if len(self.stderr_tail) > STDERR_TAIL:
                    del self.stderr_tail[: len(self.stderr_tail) - STDERR_TAIL]
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    def stderr_text(self, limit: int = 1000) -> str:
        return bytes(self.stderr_tail[-limit:]).decode("utf-8", "replace").strip()

    def signal_group(self, sig: int) -> None:
        if self.process.returncode is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the group once its leader has exited (tools it started)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    async def close(self, grace: float, *, leftovers: bool = True) -> int:
        """Close stdin, then TERM and KILL the group if the child lingers; returns its code.
        With ``leftovers`` the group is SIGKILLed once the child has exited, even a clean exit
        (without it, tools it started outlive a child that exits of itself)."""
        try:
            await self.stdin.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        code = None
        with trio.move_on_after(grace):
            code = await self.process.wait()
        if code is None:
            self.signal_group(signal.SIGTERM)
            with trio.move_on_after(grace):
                code = await self.process.wait()
        if code is None:
            self.signal_group(signal.SIGKILL)
            code = await self.process.wait()
        if leftovers:
            self.kill_leftovers()
        return code
