"""One pi child process: launch in its own process group, and a clean or forced stop.

Clean stop order matters: closing pi's stdin makes it exit at once, even mid-turn, so a busy
pi is first asked to ``abort`` (and its run allowed to end) before stdin is closed; only a pi
that does not exit after that gets SIGTERM, then SIGKILL, sent to its whole group (tools it
started die with it). A pi left running by an adapter process that died is stopped by the
next one before it starts its own (``stop_orphan``). Launch, stderr tail and the stop itself
are the shared ``common.child.Child``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import trio
from patchbay_adapters.common.child import Child, LaunchFailed, open_group
from patchbay_adapters.pi.rpc import RpcClient

__all__ = ["LaunchFailed", "PiProcess", "stop_orphan"]

log = logging.getLogger("patchbay.adapter.pi")


class PiProcess(Child):
    def __init__(self, process: trio.Process, *, slot: str) -> None:
        super().__init__(process)
        self.rpc = RpcClient(self.stdin, self.stdout, prefix=f"pb-{slot}")

    @classmethod
    async def start(cls, argv: list[str], *, cwd: Path, env: dict[str, str], slot: str) -> PiProcess:
        return cls(await open_group(argv, cwd=cwd, env=env), slot=slot)

    async def close(self, grace: float, *, leftovers: bool = False) -> int:
        """Close stdin (pi exits), then TERM and KILL the group if it lingers; returns the code.
        Tools a cleanly exited pi left behind are not killed."""
        return await super().close(grace, leftovers=leftovers)


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
