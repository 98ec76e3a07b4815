"""Journal errors; each message names the file and what to do."""

from __future__ import annotations

from patchbay.errors import PatchbayError


class JournalError(PatchbayError):
    """Root of journal errors."""


class NotAJournal(JournalError):
    """Not SQLite, or SQLite without Patchbay's tables: the file is left untouched."""


class UnsupportedSchema(JournalError):
    """The file's schema version is newer than this code: upgrade Patchbay."""


class ForeignDomain(JournalError):
    """The file belongs to another authority domain (another home)."""


class JournalWriteFailed(JournalError):
    """The batch holding these events did not commit; none of them is in the journal."""


class JournalClosed(JournalError):
    """The store or writer is closed."""
