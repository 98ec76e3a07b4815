"""Plain records shared by the ACP slot, its agent-request handlers and its command handlers."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import trio
from patchbay_adapters.acp.mapping import Permission
from patchbay_adapters.common.slotfile import damaged, slot_file, write_atomically


@attrs.frozen
class AcpConfig:
    command: list[str]
    env: dict[str, str]
    state_dir: Path
    agent_mode: str | None = None
    approval_timeout: float = 300.0
    fs: bool = True
    restart_after_cancel: bool = False  # the agent mis-sequences the turn after a cancelled one
    startup_timeout: float = 60.0
    request_timeout: float = 60.0
    turn_timeout: float = 24 * 3600.0
    grace: float = 3.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0


@attrs.define
class Turn:
    """One ``session/prompt`` and the commands it settles."""

    commands: list[str]
    cancelled_by: str | None = None
    done: trio.Event = attrs.field(factory=trio.Event)


@attrs.define
class Asked:
    """A permission the agent waits for, as a Patchbay elicitation."""

    permission: Permission
    command_id: str | None


@attrs.define
class SlotState:
    """What a slot keeps across restarts: its session generation (only moves forward, written
    and fsynced before any frame reports it) and the ACP session id it belongs to."""

    path: Path
    generation: int = 1
    session_id: str | None = None
    agent: tuple[int, int] | None = None  # (pid, start time) of the running agent, to reap it after a crash

    @classmethod
    def load(cls, state_dir: Path, slot: str) -> SlotState:
        path = slot_file(state_dir, slot)
        try:
            raw = json.loads(path.read_text())
            agent = raw.get("agent")
            return cls(path, max(1, int(raw.get("generation", 1))), raw.get("session_id"),
                       (int(agent[0]), int(agent[1])) if agent else None)
        except FileNotFoundError:
            return cls(path)
        except (ValueError, TypeError, AttributeError) as error:
            raise damaged(path, error) from None

    def save(self) -> None:
        write_atomically(self.path, {"generation": self.generation, "session_id": self.session_id,
                                     "agent": list(self.agent) if self.agent else None})

    def replace_session(self, session_id: str | None) -> None:
        """A new ACP session for this slot: a new generation unless it is the slot's first."""
        if self.session_id is not None:
            self.generation += 1
        self.session_id = session_id
        self.save()
