"""What a Pi slot must remember across adapter restarts: its session generation, and the last
Pi session entry the core has (the cursor transcript repair continues from).

The session generation only moves forward (SPEC §2), so it is written (atomically, fsynced)
before any frame reports it. The Pi session id it belongs to is kept beside it: after a
restart, a slot whose pi resumed a *different* session reports a new generation rather than
pretending the conversation is the same one.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
from patchbay_adapters.common.slotfile import damaged, slot_file, write_atomically


@attrs.define
class SlotState:
    path: Path
    generation: int = 1
    pi_session_id: str | None = None
    entry_session: str | None = None  # the Pi session the entry cursor belongs to
    entry_cursor: str | None = None  # the last session entry the core has acknowledged
    pi_pid: int | None = None  # the slot's last pi (its process group), to stop if orphaned

    @classmethod
    def load(cls, state_dir: Path, slot: str) -> SlotState:
        path = slot_file(state_dir, slot)
        try:
            raw = json.loads(path.read_text())
            return cls(path, max(1, int(raw.get("generation", 1))), raw.get("pi_session_id"),
                       raw.get("entry_session"), raw.get("entry_cursor"), raw.get("pi_pid"))
        except FileNotFoundError:
            return cls(path)
        except (ValueError, TypeError, AttributeError) as error:
            raise damaged(path, error) from None

    def save(self) -> None:
        write_atomically(self.path, {"generation": self.generation, "pi_session_id": self.pi_session_id,
                                     "entry_session": self.entry_session, "entry_cursor": self.entry_cursor,
                                     "pi_pid": self.pi_pid})

    def observe_session(self, pi_session_id: str | None) -> bool:
        """Record the Pi session this slot now runs; True when that is a replacement (bump)."""
        if pi_session_id is None or pi_session_id == self.pi_session_id:
            return False
        replaced = self.pi_session_id is not None
        if replaced:
            self.generation += 1
        self.pi_session_id = pi_session_id
        self.save()
        return replaced


def adopt_session(source: Path, target: Path, cwd: Path) -> None:
    """Copy a Pi session file into a new slot's session directory, its header naming the slot's
    directory: pi 1.6's ``--continue`` resumes only sessions whose header has its cwd. A file
    whose first line is not a session header is copied unchanged."""
    lines = source.read_bytes().split(b"\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if isinstance(header, dict) and header.get("type") == "session":
        header["cwd"] = str(cwd)
        lines[0] = json.dumps(header, ensure_ascii=False).encode()
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(b"\n".join(lines))
    tmp.replace(target)
