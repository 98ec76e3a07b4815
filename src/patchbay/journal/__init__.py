"""The journal: an apsw (SQLite, WAL) append-only event log with checkpoints and group commit.

``JournalStore`` is the file (synchronous, one connection); ``JournalWriter`` is the single
writer service: a thread of its own that batches appends into one durable transaction each,
answering each ``AppendRequest`` in the trio thread once it is durable.
"""

from patchbay.journal._errors import (
    ForeignDomain,
    JournalClosed,
    JournalError,
    JournalWriteFailed,
    NotAJournal,
    UnsupportedSchema,
)
from patchbay.journal._head import read_head, write_head
from patchbay.journal._migrations import SCHEMA_VERSION
from patchbay.journal._store import Checkpoint, JournalStore, NewEvent, StoredEvent
from patchbay.journal._writer import AppendRequest, JournalWriter

__all__ = [
    "SCHEMA_VERSION",
    "AppendRequest",
    "Checkpoint",
    "ForeignDomain",
    "JournalClosed",
    "JournalError",
    "JournalStore",
    "JournalWriteFailed",
    "JournalWriter",
    "NewEvent",
    "NotAJournal",
    "StoredEvent",
    "UnsupportedSchema",
    "read_head",
    "write_head",
]
