"""One pi child process: launch in its own process group, and a clean or forced stop.

Clean stop order matters: closing pi's stdin makes it exit at once, even mid-turn, so a busy
pi is first asked to ``abort`` (and its run allowed to end) before stdin is closed; only a pi
that does not exit after that gets SIGTERM, then SIGKILL, sent to its whole group (tools it
started die with it). A pi left running by an adapter process that died is stopped by the
next one before it starts its own (``stop_orphan``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import attrs
import trio
from patchbay_adapters.pi.rpc import RpcClient

log = logging.getLogger("patchbay.adapter.pi")

STDERR_TAIL = 8 * 1024


class LaunchFailed(Exception):
    """pi could not be started or did not answer in time."""


@attrs.define
class PiProcess:
    process: trio.Process
    rpc: RpcClient
    stderr_tail: bytearray = attrs.field(factory=bytearray)

    @classmethod
    async def launch(cls, argv: list[str], *, cwd: Path, env: dict[str, str], slot: str) -> PiProcess:
        try:
            process = await trio.lowlevel.open_process(
                argv, cwd=str(cwd), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True)
        except OSError as error:
            raise LaunchFailed(f"cannot start {argv[0]}: {error}") from None
        assert process.stdin is not None and process.stdout is not None
        return cls(process, RpcClient(process.stdin, process.stdout, prefix=f"pb-{slot}"))

    @property
    def pid(self) -> int:
        return self.process.pid

    async def drain_stderr(self) -> None:
        """Keep the tail of pi's stderr (diagnostics for an exit); never blocks pi."""
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

    async def close(self, grace: float) -> int | None:
        """Close stdin (pi exits), then TERM and KILL the group if it lingers; returns the code."""
        assert self.process.stdin is not None
        try:
            await self.process.stdin.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        with trio.move_on_after(grace):
            return await self.process.wait()
        self.signal_group(signal.SIGTERM)
        with trio.move_on_after(grace):
            return await self.process.wait()
        self.signal_group(signal.SIGKILL)
        return await self.process.wait()


def stop_orphan(pid: int | None, marker: str, grace: float = 5.0) -> bool:
    """Stop a pi a previous adapter process started and left running (its process group), if
    ``pid`` still is that pi (its command line names ``marker``, the slot's session directory):
    an orphaned pi goes on with its turn and appends to the session the next pi resumes. Blocking
    (bounded by ``grace``): run it in a thread."""
    if pid is None:
        return False
    try:
        if marker not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0"):
            return False
        os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError):
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and "State:\tZ" not in _status(pid):
        time.sleep(0.02)  # not our child: nothing to wait on but /proc
    log.warning("stopped pi %d, left running by a previous adapter process", pid)
    return True


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "State:\tZ (gone)"
