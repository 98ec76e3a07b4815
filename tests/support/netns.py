"""Two network namespaces joined by a veth pair: a core host and an adapter host on one machine.

Names are unique per run (pid and random hex), addresses are private test addresses that exist
only inside the two namespaces, and ``close`` deletes both namespaces (which removes the veth
pair) even after a failure. Needs root and ``ip`` from iproute2.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

CORE_ADDRESS = "10.231.0.1"
ADAPTER_ADDRESS = "10.231.0.2"
PREFIX = 30


def available() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


class Pair:
    """``core`` and ``adapter`` namespaces; ``core_link``/``adapter_link`` their veth ends."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000:05d}{secrets.token_hex(2)}"
        self.core = f"pbt-{tag}-core"
        self.adapter = f"pbt-{tag}-adapter"
        self.core_link = f"pbc{tag}"  # interface names have at most 15 characters
        self.adapter_link = f"pba{tag}"
        self._made: list[str] = []

    def open(self) -> Pair:
        for name in (self.core, self.adapter):
            ip("netns", "add", name)
            self._made.append(name)
        ip("link", "add", self.core_link, "netns", self.core, "type", "veth", "peer", "name", self.adapter_link,
           "netns", self.adapter)
        for namespace, link, address in ((self.core, self.core_link, CORE_ADDRESS),
                                         (self.adapter, self.adapter_link, ADAPTER_ADDRESS)):
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("-n", namespace, "addr", "add", f"{address}/{PREFIX}", "dev", link)
            ip("-n", namespace, "link", "set", link, "up")
        return self

    def exec_argv(self, namespace: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``namespace`` (``ip netns exec`` execs it: same PID)."""
        return ["ip", "netns", "exec", namespace, *argv]

    def cut(self) -> None:
        """Take the core's end of the link down: both sides go silent, nothing is closed."""
        ip("-n", self.core, "link", "set", self.core_link, "down")

    def heal(self) -> None:
        ip("-n", self.core, "link", "set", self.core_link, "up")

    def close(self) -> None:
        for name in reversed(self._made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self._made.clear()
