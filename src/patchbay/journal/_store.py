"""The apsw journal file: one append-only, gap-free event log per authority domain.

Opening is careful (``_open``): a file is checked through a read-only connection *before*
anything may write to it, so a foreign, damaged or newer file is reported and left
byte-for-byte untouched, while one SQLite can recover (an interrupted WAL write-back) opens.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw
import attrs
import orjson

from patchbay.domain.records import constructor
from patchbay.journal._errors import JournalClosed, JournalError, JournalWriteFailed, NotAJournal
from patchbay.journal._migrations import MIGRATIONS, SCHEMA_VERSION
from patchbay.journal._open import RECOVERY, damaged, inspect, read_only_connection

READ_BATCH = 2000
_ROWS_PER_INSERT = 4000  # 7 parameters a row, within SQLite's 32,766


@attrs.frozen
class NewEvent:
    """What callers append; the store assigns the LSN and stamps the core generation."""

    kind: str
    entity: str
    payload: dict[str, Any]
    ts: float


@attrs.frozen
class StoredEvent:
    domain: str
    lsn: int
    core_generation: int
    kind: str
    entity: str
    ts: float
    payload: dict[str, Any]


# StoredEvent(...) with the slots set directly: one per event read (~0.45 us instead of ~0.7 us).
_stored_event = constructor(StoredEvent)


@attrs.frozen
class Checkpoint:
    domain: str
    lsn: int
    core_generation: int
    state: bytes


def _checkpoint(row: Any) -> Checkpoint | None:
    """A ``(domain, lsn, core_generation, state)`` row of the checkpoints table, or None."""
    return None if row is None else Checkpoint(str(row[0]), int(row[1]), int(row[2]), bytes(row[3]))


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


# orjson decodes a payload ~3x faster than ``json.loads`` and to the same values, except where
# it cannot: an integer literal beyond 64 bits (orjson silently makes it a float) and what
# orjson refuses (NaN, Infinity, a lone surrogate, very deep nesting). Such a payload is
# decoded by ``json.loads``, so every payload reads back exactly as ``json`` would read it.
# The guard maps every digit to "0" (bytes.translate, one C pass) and looks for 19 in a row:
# no integer literal that orjson would turn into a float is shorter.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _loads(text: str | bytes) -> dict[str, Any]:
    """``json.loads(text)``, through orjson when that gives the same value."""
    try:
        data = text.encode() if isinstance(text, str) else text
        if _LONG_NUMBER not in data.translate(_DIGITS_TO_ZERO):
            value: dict[str, Any] = orjson.loads(data)
            return value
    except (orjson.JSONDecodeError, UnicodeEncodeError):
        pass
    decoded: dict[str, Any] = json.loads(text)
    return decoded


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return ("INSERT INTO events(domain, lsn, core_generation, kind, entity, ts, payload) VALUES "
            + ",".join(["(?,?,?,?,?,?,?)"] * rows))


class JournalStore:
    """Synchronous access to one journal file through one apsw connection.

    apsw refuses concurrent use of a connection from two threads; callers keep one store per
    thread (the core has a writer store, used only from the writer's worker thread, and a
    read-only store for queries).
    """

    def __init__(self, connection: apsw.Connection, path: Path, domain_id: str, core_generation: int,
                 schema_version: int, read_only: bool) -> None:
        self._connection: apsw.Connection | None = connection
        self.path = path
        self._domain_id = domain_id
        self._core_generation = core_generation
        self.schema_version = schema_version
        self.read_only = read_only
        self._last_lsn = self._query_last_lsn()

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, domain_id: str, *, synchronous: str = "FULL") -> JournalStore:
        if path.exists() and path.stat().st_size > 0:
            raise NotAJournal(f"{path} already exists; refusing to create a journal over it")
        connection = apsw.Connection(str(path))
        cls._configure(connection, synchronous)
        with connection:
            for migration in MIGRATIONS:
                migration(connection)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.execute("INSERT INTO meta(key, value) VALUES ('authority_domain_id', ?)", (domain_id,))
            connection.execute("INSERT INTO meta(key, value) VALUES ('core_generation', '1')")
        return cls(connection, path, domain_id, 1, SCHEMA_VERSION, read_only=False)

    @classmethod
    def open(cls, path: Path, *, expected_domain: str | None = None, read_only: bool = False,
             synchronous: str = "FULL", start_generation: bool = True) -> JournalStore:
        """Open a journal checked by ``_open.inspect``. For writing, a new core generation is
        started (journaled in meta) unless ``start_generation`` is False: the core first reads
        what it recovers from, so a journal found damaged there is refused unwritten, and then
        calls ``start_generation``."""
        if not path.exists():
            raise NotAJournal(f"{path} does not exist; create a home with `patchbay init`")
        version, domain = inspect(path, expected_domain)
        connection = read_only_connection(path) if read_only else apsw.Connection(str(path))
        try:
            if not read_only:
                cls._configure(connection, synchronous)
                with connection:
                    for number in range(version, SCHEMA_VERSION):
                        MIGRATIONS[number](connection)
                    if version != SCHEMA_VERSION:
                        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                version = SCHEMA_VERSION
            generation = int(connection.execute(
                "SELECT value FROM meta WHERE key='core_generation'").fetchone()[0])  # type: ignore[index]
            store = cls(connection, path, domain, generation, version, read_only=read_only)
        except (apsw.CorruptError, apsw.NotADBError, UnicodeDecodeError) as error:
            connection.close()
            raise damaged(path, f"SQLite cannot read it ({error})") from None
        if start_generation and not read_only:
            store.start_generation()
        return store

    def start_generation(self) -> int:
        """Journal a new core generation (one per open for writing) and return it."""
        generation = self._core_generation + 1
        try:
            self.set_meta("core_generation", str(generation))
        except apsw.Error as error:
            raise JournalWriteFailed(
                f"{self.path} cannot take writes ({error}); nothing was changed. If the disk is full, free space "
                f"on it and start again ({RECOVERY})") from None
        self._core_generation = generation
        return generation

    @staticmethod
    def _configure(connection: apsw.Connection, synchronous: str) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise ValueError(f"synchronous must be FULL, NORMAL, EXTRA or OFF, not {synchronous!r}")
        connection.set_busy_timeout(5000)
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]  # type: ignore[index]
        if str(mode).lower() != "wal":
            # Readers rely on it: a journal without a -wal beside it is taken to be closed.
            connection.close()
            raise JournalError(f"SQLite could not put the journal in WAL mode (it stayed {mode!r}); "
                               "keep PATCHBAY_HOME on a local filesystem")
        connection.execute(f"PRAGMA synchronous={synchronous.upper()}")

    # -- properties ----------------------------------------------------------------------

    @property
    def domain_id(self) -> str:
        return self._domain_id

    @property
    def core_generation(self) -> int:
        return self._core_generation

    @property
    def _db(self) -> apsw.Connection:
        if self._connection is None:
            raise JournalClosed(f"{self.path} is closed")
        return self._connection

    def _query_last_lsn(self) -> int:
        ((last,),) = self._rows("SELECT max(lsn) FROM events WHERE domain=?", (self._domain_id,))
        return int(last) if last is not None else 0

    # -- writing -------------------------------------------------------------------------

    def append_batch(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append in one transaction: all events get consecutive LSNs, or none is written."""
        if self.read_only:
            raise JournalClosed(f"{self.path} was opened read-only")
        if not events:
            return []
        db = self._db
        first = self._query_last_lsn() + 1  # from the file, not a cache: the file is the truth
        stored = [
            StoredEvent(self._domain_id, first + index, self._core_generation, e.kind, e.entity, e.ts, e.payload)
            for index, e in enumerate(events)
        ]
        values: list[Any] = []
        for s in stored:
            values += (s.domain, s.lsn, s.core_generation, s.kind, s.entity, s.ts, _dumps(s.payload))
        with db:
            # One statement for the batch, not one step per row: apsw gives up the GIL around
            # every SQLite step, and taking it back while the event loop is busy costs up to
            # the interpreter's switch interval each time (a 26-row commit took 125 ms so).
            for start in range(0, len(stored), _ROWS_PER_INSERT):
                count = min(_ROWS_PER_INSERT, len(stored) - start)
                db.execute(_insert_sql(count), values[start * 7:(start + count) * 7])
        self._last_lsn = stored[-1].lsn
        return stored

    def last_lsn(self) -> int:
        return self._query_last_lsn() if self.read_only else self._last_lsn

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events WHERE domain=?", (self._domain_id,)).fetchone()[0])  # type: ignore[index]

    # -- reading -------------------------------------------------------------------------

    def read(self, after_lsn: int = 0, until_lsn: int | None = None, *, entity: str | None = None,
             kinds: Collection[str] | None = None, limit: int | None = None) -> Iterator[StoredEvent]:
        """Events in ascending LSN order, streamed in pages (never the whole log in memory)."""
        yielded = 0
        cursor = after_lsn
        domain = self._domain_id  # every row has it (the query filters on it): one string, not one per row
        new_event = _stored_event
        payload_of = self._payload
        while True:
            page = READ_BATCH if limit is None else min(READ_BATCH, limit - yielded)
            if page <= 0:
                return
            rows = self._page(cursor, until_lsn, entity, kinds, page, descending=False)
            for lsn, generation, kind, entity_, ts, payload in rows:
                yield new_event(domain, int(lsn), int(generation), kind, entity_, float(ts), payload_of(lsn, payload))
            yielded += len(rows)
            if len(rows) < page:
                return
            cursor = int(rows[-1][0])

    def read_descending(self, before_lsn: int | None = None, *, kinds: Collection[str] | None = None,
                        entity: str | None = None, limit: int = 100) -> list[StoredEvent]:
        rows = self._page(before_lsn, None, entity, kinds, limit, descending=True)
        return [self._event(row) for row in rows]

    def _page(self, bound: int | None, until_lsn: int | None, entity: str | None, kinds: Collection[str] | None,
              limit: int, *, descending: bool) -> list[Any]:
        clauses = ["domain = ?"]
        args: list[Any] = [self._domain_id]
        if descending:
            if bound is not None:
                clauses.append("lsn < ?")
                args.append(bound)
        else:
            clauses.append("lsn > ?")
            args.append(bound or 0)
        if until_lsn is not None:
            clauses.append("lsn <= ?")
            args.append(until_lsn)
        if entity is not None:
            clauses.append("entity = ?")
            args.append(entity)
        if kinds is not None:
            kinds = list(kinds)
            if not kinds:
                return []
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            args.extend(kinds)
        order = "DESC" if descending else "ASC"
        sql = (f"SELECT lsn, core_generation, kind, entity, ts, payload FROM events "
               f"WHERE {' AND '.join(clauses)} ORDER BY lsn {order} LIMIT ?")
        args.append(limit)
        return self._rows(sql, args)

    def _rows(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """A query's rows; SQLite finding the file damaged is a refusal that says so."""
        try:
            return list(self._db.execute(sql, args))
        except (apsw.CorruptError, apsw.NotADBError, UnicodeDecodeError) as error:
            raise damaged(self.path, f"SQLite cannot read it ({error})") from None

    def _event(self, row: Any) -> StoredEvent:
        lsn, generation, kind, entity, ts, payload = row
        return _stored_event(self._domain_id, int(lsn), int(generation), kind, entity, float(ts),
                             self._payload(lsn, payload))

    def _payload(self, lsn: int, payload: Any) -> dict[str, Any]:
        """An event's payload, or a one-line refusal naming the event when it is not a JSON
        object (the journal was written to by something else, or damaged)."""
        try:
            value = _loads(payload)
        except (ValueError, TypeError, RecursionError) as error:
            raise damaged(self.path, f"the payload of the event at LSN {lsn} is not JSON ({error})") from None
        if not isinstance(value, dict):
            raise damaged(self.path, f"the payload of the event at LSN {lsn} is not a JSON object")
        return value

    # -- checkpoints and meta ------------------------------------------------------------

    def save_checkpoint(self, lsn: int, state: bytes) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO checkpoints(domain, lsn, core_generation, state, created) VALUES (?,?,?,?,?)",
                (self._domain_id, lsn, self._core_generation, state, time.time()))

    def latest_checkpoint(self, max_lsn: int | None = None) -> Checkpoint | None:
        sql = "SELECT domain, lsn, core_generation, state FROM checkpoints WHERE domain = ?"
        args: list[Any] = [self._domain_id]
        if max_lsn is not None:
            sql += " AND lsn <= ?"
            args.append(max_lsn)
        return _checkpoint(next(iter(self._rows(sql + " ORDER BY lsn DESC LIMIT 1", args)), None))

    def checkpoint_at(self, lsn: int) -> Checkpoint | None:
        return _checkpoint(next(iter(self._rows("SELECT domain, lsn, core_generation, state FROM checkpoints "
                                                "WHERE domain = ? AND lsn = ?", (self._domain_id, lsn))), None))

    def prune_checkpoints(self, keep: int = 2, pinned: Collection[int] = ()) -> None:
        """Delete all but the latest ``keep`` checkpoints and those at the ``pinned`` LSNs
        (the bases the kept delta checkpoints apply to)."""
        marks = ",".join("?" * len(pinned))
        with self._db:
            self._db.execute(
                "DELETE FROM checkpoints WHERE domain = ? AND lsn NOT IN "
                "(SELECT lsn FROM checkpoints WHERE domain = ? ORDER BY lsn DESC LIMIT ?)"
                + (f" AND lsn NOT IN ({marks})" if pinned else ""),
                (self._domain_id, self._domain_id, keep, *pinned))

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
