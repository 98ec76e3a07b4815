"""The journal's head, kept beside it: evidence that durable history was lost.

After a checkpoint commits and when the core stops, the last committed LSN is written (and
fsynced) to ``<journal>-head``, outside SQLite. A journal found shorter than it at the next
start lost durable events (a deleted or truncated ``-wal``, an older copy put back): SQLite
cannot always tell, this file can.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def head_path(journal: Path) -> Path:
    return Path(f"{journal}-head")


def write_head(journal: Path, domain: str, lsn: int) -> None:
    """Record ``lsn`` (durable in the journal) as the head; a failure to write it is ignored
    by callers' choice (it is evidence, not the truth)."""
    path = head_path(journal)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w") as handle:
        handle.write(json.dumps({"authority_domain_id": domain, "lsn": lsn}))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_head(journal: Path, domain: str) -> int | None:
    """The recorded head of this domain's journal, or None (absent, unreadable, another domain)."""
    try:
        recorded = json.loads(head_path(journal).read_text())
        lsn = recorded["lsn"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if recorded.get("authority_domain_id") != domain or not isinstance(lsn, int) or isinstance(lsn, bool):
        return None
    return lsn
