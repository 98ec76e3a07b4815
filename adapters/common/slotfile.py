"""Where a slot's state file lives, and writing it so that a crash leaves the old or the new.

A slot name is 1-128 characters of A-Z a-z 0-9 . _ : - (not starting with a punctuation
mark); its file is ``<state_dir>/slots/<name, ':' as '_'>.json``. ``write_atomically`` writes
a temporary file beside it, fsyncs it and renames it over the old one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def slot_file(state_dir: Path, slot: str) -> Path:
    """The state file of ``slot``; ValueError for a name that is not a slot name."""
    if not _NAME.match(slot):
        raise ValueError(f"slot name {slot!r} must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return state_dir / "slots" / f"{slot.replace(':', '_')}.json"


def damaged(path: Path, error: Exception) -> ValueError:
    """The error for a state file that cannot be read back."""
    return ValueError(f"slot state {path} is damaged ({error}); move it away to start the slot afresh")


def write_atomically(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
