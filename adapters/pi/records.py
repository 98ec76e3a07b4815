"""Plain records shared by the slot and its command handlers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import trio
from patchbay_adapters.pi.support import PiSupport


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
    support: PiSupport = PiSupport("1.6.0", None)

    def has(self, feature: str) -> bool:
        return feature in self.support.features


@attrs.define
class Run:
    """One pi agent run (``agent_start`` … ``agent_end``) and the commands that joined it."""

    commands: list[str]
    cancelled_by: str | None = None
    started: bool = False
    done: trio.Event = attrs.field(factory=trio.Event)
    steers: dict[str, str] = attrs.field(factory=dict)  # steer command id -> its text (clear_queue)
    ended: dict[str, Any] | None = None  # agent_end seen; pi 1.6 closes the run on agent_settled


@attrs.define
class Dialog:
    ui_id: str
    method: str
    options: list[str]
