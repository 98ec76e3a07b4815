"""Careful opening: tell a journal SQLite can recover from one that is really damaged, read-only.

A file is checked (SQLite header, size, our meta table, schema version, authority domain)
through a read-only connection *before* anything may write to it, so a foreign, damaged or
newer file is reported and left byte-for-byte untouched.

The size check needs care. A main file shorter than its header declares is a truncated copy
when nothing else holds the missing pages; but while SQLite copies WAL pages back into the
main file (a WAL checkpoint) page 1 already declares the new size, and a kill or a full disk
in the middle leaves exactly that shape, with every page still in the ``-wal`` beside it.
Then SQLite's own recovery (reading through the WAL) is asked first, and ``PRAGMA
quick_check`` decides: intact data is opened (SQLite finishes the write-back itself), real
damage is refused with the files untouched.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import apsw

from patchbay.journal._errors import ForeignDomain, NotAJournal, UnsupportedSchema
from patchbay.journal._migrations import SCHEMA_VERSION

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_HEADER_SIZE = 100
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_HEADER_SIZE = 32
RECOVERY = "docs/RUNBOOK.md, \"Recovery\""


def damaged(path: Path, what: str) -> NotAJournal:
    """The refusal for a journal SQLite reports damaged: what is wrong, that nothing was
    changed, and what to do."""
    return NotAJournal(
        f"{path} is damaged: {what}. Nothing was written to it. Keep the whole home folder as it is "
        f"(copy it aside), run `patchbay replay --check {path}` on the copy to see how far it reads, and "
        f"restore journal.db from your latest backup ({RECOVERY})")


def wal_path(path: Path) -> Path:
    return Path(f"{path}-wal")


def has_wal_frames(path: Path) -> bool:
    """A ``-wal`` beside the file with a valid WAL header and at least one frame."""
    try:
        with wal_path(path).open("rb") as handle:
            header = handle.read(_WAL_HEADER_SIZE)
            page_size = int.from_bytes(header[8:12], "big") if len(header) == _WAL_HEADER_SIZE else 0
            return (int.from_bytes(header[:4], "big") in _WAL_MAGIC and page_size >= 512
                    and wal_path(path).stat().st_size >= _WAL_HEADER_SIZE + 24 + page_size)
    except OSError:
        return False


def read_only_connection(path: Path) -> apsw.Connection:
    """A connection that cannot change the file or leave anything beside it.

    With a ``-wal`` beside the file a writer is live (or was killed): read through its WAL,
    where the newest commits are. Without one the journal is closed: open it as immutable, so
    SQLite takes no locks and creates no ``-wal``/``-shm`` files next to it.
    """
    if wal_path(path).exists():
        connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        connection.set_busy_timeout(5000)
        return connection
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?immutable=1"
    return apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def size_problem(header: bytes, size: int) -> str | None:
    """What is wrong with the main file's size against its own header, or None."""
    if len(header) < SQLITE_HEADER_SIZE:
        return f"{size} bytes, shorter than the SQLite header itself"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512:
        return f"its header declares an impossible page size ({page_size})"
    declared_pages = int.from_bytes(header[28:32], "big")
    declared_valid = header[24:28] == header[92:96]  # the in-header size is current
    if size % page_size:
        return f"{size} bytes, not a whole number of {page_size}-byte pages"
    if declared_valid and size < declared_pages * page_size:
        return f"{size} bytes, less than the {declared_pages * page_size} its SQLite header declares"
    return None


def quick_check(path: Path) -> str | None:
    """``PRAGMA quick_check`` read-only through the WAL: None when SQLite finds the data
    intact, else what it found."""
    try:
        connection = read_only_connection(path)
    except apsw.Error as error:
        return f"SQLite cannot open it ({error})"
    try:
        rows = [str(row[0]) for row in connection.execute("PRAGMA quick_check")]
    except apsw.Error as error:
        return f"SQLite's quick_check failed ({error})"
    finally:
        connection.close()
    return None if rows == ["ok"] else "SQLite's quick_check reports: " + "; ".join(rows[:3])


def _check_size(path: Path, header: bytes, size: int) -> None:
    problem = size_problem(header, size)
    if problem is None:
        return
    if not has_wal_frames(path):
        raise NotAJournal(
            f"{path} is truncated ({problem}) and no {wal_path(path).name} beside it holds the rest: part of "
            f"the journal is missing. Nothing was written to it. Restore journal.db from a backup or a "
            f"complete copy ({RECOVERY})")
    # An interrupted WAL write-back (a kill or a full disk during a checkpoint) looks like this
    # too, with every page still in the WAL: let SQLite read through it, and believe quick_check.
    found = quick_check(path)
    if found is not None:
        raise damaged(path, f"{problem}, and reading through {wal_path(path).name} does not complete it ({found})")


def inspect(path: Path, expected_domain: str | None) -> tuple[int, str]:
    """Validate an existing file read-only; returns (schema version, domain id)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(SQLITE_HEADER_SIZE)
        size = path.stat().st_size
    except OSError as error:
        raise NotAJournal(f"{path}: cannot read ({error})") from None
    if header[:len(SQLITE_HEADER)] != SQLITE_HEADER:
        raise NotAJournal(f"{path} is not a SQLite file, so not a Patchbay journal; check the path")
    _check_size(path, header, size)
    try:
        connection = read_only_connection(path)
    except apsw.Error as error:
        raise NotAJournal(f"{path}: SQLite cannot open it ({error})") from None
    try:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])  # type: ignore[index]
        has_meta = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()[0]  # type: ignore[index]
        if not has_meta:
            raise NotAJournal(f"{path} is a SQLite database but not a Patchbay journal (no meta table)")
        if version > SCHEMA_VERSION:
            raise UnsupportedSchema(f"{path} has journal schema {version}; this Patchbay knows up to "
                                    f"{SCHEMA_VERSION}: upgrade Patchbay to open it")
        row = connection.execute("SELECT value FROM meta WHERE key='authority_domain_id'").fetchone()
        if row is None:
            raise NotAJournal(f"{path} has no authority domain: not a Patchbay journal")
        domain = str(row[0])
    except apsw.Error as error:
        raise damaged(path, f"SQLite cannot read its tables ({error})") from None
    finally:
        connection.close()
    if expected_domain is not None and domain != expected_domain:
        raise ForeignDomain(f"{path} belongs to authority domain {domain!r}, not {expected_domain!r}: "
                            "this journal is from another Patchbay home")
    return version, domain
