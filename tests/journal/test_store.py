"""The journal file: the contract every journal store keeps, migrations, and careful opening.

``JournalContract`` is the store contract (gap-free LSNs assigned at commit, all-or-nothing
batches, ordered reads, checkpoints, a core generation per open); ``TestApswJournal`` runs it
against the apsw store. Damaged and foreign files must give a clear error and stay
byte-for-byte untouched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from patchbay.journal import (
    SCHEMA_VERSION,
    ForeignDomain,
    JournalClosed,
    JournalStore,
    NewEvent,
    NotAJournal,
    UnsupportedSchema,
    _migrations,
    _store,
)

DOMAIN = "dom-journal"


def events(count: int, kind: str = "test.event", entity: str = "e") -> list[NewEvent]:
    return [NewEvent(kind=kind, entity=f"{entity}{i}", payload={"i": i}, ts=1000.0 + i) for i in range(count)]


def poison(path: Path) -> None:
    """Make every insert whose payload mentions 'poison' abort its transaction (a real SQLite
    failure inside the commit, not a mock)."""
    connection = apsw.Connection(str(path))
    connection.execute("CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.payload LIKE '%poison%' "
                       "BEGIN SELECT RAISE(ABORT, 'injected write failure'); END")
    connection.close()


class JournalContract:
    """What every journal store must do; subclasses supply ``store``."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[JournalStore]:
        raise NotImplementedError

    def test_lsns_are_gap_free_and_assigned_at_commit(self, store: JournalStore) -> None:
        first = store.append_batch(events(3))
        second = store.append_batch(events(2))
        assert [e.lsn for e in first + second] == [1, 2, 3, 4, 5]
        assert [e.lsn for e in store.read()] == [1, 2, 3, 4, 5]
        assert store.last_lsn() == 5 and store.count() == 5

    def test_events_keep_kind_entity_payload_time_domain_and_core_generation(self, store: JournalStore) -> None:
        store.append_batch([NewEvent(kind="k.one", entity="command:c1", payload={"a": [1, "x"]}, ts=12.5)])
        (event,) = store.read()
        assert (event.domain, event.kind, event.entity, event.payload, event.ts) == (
            DOMAIN, "k.one", "command:c1", {"a": [1, "x"]}, 12.5)
        assert event.core_generation == store.core_generation

    def test_payloads_read_back_exactly_as_json_would_read_them(self, store: JournalStore) -> None:
        # The read path decodes with orjson where that gives json's values; these are the
        # payloads where it would not (or might not): each must still read back identically.
        payloads: list[dict[str, Any]] = [
            {"big": 123456789012345678901234567890, "neg": -9223372036854775809, "u64": 18446744073709551616},
            {"edges": [9223372036854775807, -9223372036854775808, 18446744073709551615, -0, 0]},
            {"floats": [0.1, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, 1e20, 2.5, 1 / 3]},
            {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
            {"lone": "\ud800", "text": "é\u0000\U0001f600", "digits": "1234567890123456789012345"},
            {"deep": json.loads("[" * 500 + "]" * 500)},
            {"nested": {"a": [1, {"b": None, "c": True}], "d": ""}, "id": "c-0000001"},
        ]
        store.append_batch([NewEvent(kind="k", entity="e", payload=p, ts=1.0) for p in payloads])
        # json.dumps tells an int from a float (1e+29 vs 1000...) and NaN from None; sorted keys
        # make the comparison independent of the order the writer stores keys in.
        expected = [json.dumps(json.loads(json.dumps(p)), sort_keys=True) for p in payloads]
        assert [json.dumps(e.payload, sort_keys=True) for e in store.read()] == expected
        assert [json.dumps(e.payload, sort_keys=True) for e in store.read_descending(limit=10)] == expected[::-1]

    def test_a_failed_batch_writes_nothing_and_the_next_batch_continues_without_a_gap(
            self, store: JournalStore) -> None:
        store.append_batch(events(2))
        poison(store.path)
        batch = [*events(3), NewEvent(kind="k", entity="x", payload={"poison": True}, ts=1.0), *events(2)]
        with pytest.raises(apsw.ConstraintError):
            store.append_batch(batch)
        assert [e.lsn for e in store.read()] == [1, 2]
        assert [e.lsn for e in store.append_batch(events(1))] == [3]

    def test_reads_are_ordered_filterable_and_bounded(self, store: JournalStore) -> None:
        store.append_batch(events(5, kind="a") + events(5, kind="b"))
        assert [e.lsn for e in store.read(after_lsn=3, until_lsn=6)] == [4, 5, 6]
        assert [e.lsn for e in store.read(kinds=["b"], limit=2)] == [6, 7]
        assert [e.lsn for e in store.read(entity="e0")] == [1, 6]
        assert [e.lsn for e in store.read_descending(before_lsn=9, kinds=["a", "b"], limit=3)] == [8, 7, 6]
        assert list(store.read(kinds=[])) == []

    def test_reads_page_through_long_logs(self, store: JournalStore, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_store, "READ_BATCH", 7)
        store.append_batch(events(30))
        assert [e.lsn for e in store.read()] == list(range(1, 31))
        assert [e.lsn for e in store.read(limit=10)] == list(range(1, 11))

    def test_checkpoints_are_found_by_lsn_and_pruned(self, store: JournalStore) -> None:
        store.append_batch(events(10))
        for lsn in (3, 6, 9):
            store.save_checkpoint(lsn, f"state@{lsn}".encode())
        latest = store.latest_checkpoint()
        assert latest is not None and (latest.lsn, latest.state, latest.domain) == (9, b"state@9", DOMAIN)
        older = store.latest_checkpoint(max_lsn=7)
        assert older is not None and older.lsn == 6
        store.prune_checkpoints(keep=2)
        assert store.latest_checkpoint(max_lsn=5) is None
        assert store.checkpoint_at(6) is not None and store.checkpoint_at(5) is None
        store.save_checkpoint(10, b"state@10")
        store.prune_checkpoints(keep=1, pinned=[6])  # a base the kept one applies to stays
        assert [lsn for lsn in (6, 9, 10) if store.checkpoint_at(lsn)] == [6, 10]

    def test_a_closed_store_refuses_use(self, store: JournalStore) -> None:
        store.close()
        with pytest.raises(JournalClosed):
            store.append_batch(events(1))


class TestApswJournal(JournalContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[JournalStore]:
        store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
        yield store
        store.close()


# -- opening, generations and migrations ----------------------------------------------------


def test_a_batch_larger_than_one_insert_statement_is_one_transaction_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_store, "_ROWS_PER_INSERT", 7)  # the batch takes several statements
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    batch = [NewEvent(kind="k", entity=f"e{n}", payload={"n": n}, ts=n + 0.25) for n in range(30)]
    stored = store.append_batch(batch)
    assert [e.lsn for e in stored] == list(range(1, 31))
    assert [(e.lsn, e.entity, e.payload, e.ts) for e in store.read()] == [
        (n + 1, f"e{n}", {"n": n}, n + 0.25) for n in range(30)]
    poison(store.path)
    with pytest.raises(apsw.Error):  # a failure in a later statement takes back the earlier ones
        store.append_batch(batch[:20] + [NewEvent(kind="k", entity="bad", payload={"poison": True}, ts=1.0)])
    assert store.count() == 30
    store.close()


def test_the_core_generation_increments_on_every_open_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    JournalStore.create(path, DOMAIN).close()
    generations = []
    for _ in range(3):
        store = JournalStore.open(path, expected_domain=DOMAIN)
        generations.append(store.core_generation)
        store.append_batch(events(1))
        store.close()
    reader = JournalStore.open(path, read_only=True)
    assert generations == [2, 3, 4] and reader.core_generation == 4
    assert [e.core_generation for e in reader.read()] == [2, 3, 4]
    reader.close()
    assert JournalStore.open(path, read_only=True).core_generation == 4  # reading is not a new generation


def test_new_journals_use_wal_and_full_synchronous_by_default(tmp_path: Path) -> None:
    store = JournalStore.create(tmp_path / "journal.db", DOMAIN)
    connection = store._db
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # type: ignore[index]
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[index]  # FULL
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # type: ignore[index]
    store.close()


def test_a_journal_at_an_older_schema_is_migrated_forward_when_opened_for_writing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.db"
    store = JournalStore.create(path, DOMAIN)
    store.append_batch(events(2))
    store.close()

    def v2(connection: apsw.Connection) -> None:
        connection.execute("CREATE TABLE migrated_marker (x INTEGER)")

    monkeypatch.setattr(_migrations, "MIGRATIONS", [*_migrations.MIGRATIONS, v2])
    monkeypatch.setattr(_store, "MIGRATIONS", _migrations.MIGRATIONS)
    monkeypatch.setattr(_store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    reader = JournalStore.open(path, read_only=True)
    assert reader.schema_version == SCHEMA_VERSION  # reading never migrates
    reader.close()
    store = JournalStore.open(path, expected_domain=DOMAIN)
    assert store.schema_version == SCHEMA_VERSION + 1
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1  # type: ignore[index]
    assert store._db.execute("SELECT count(*) FROM migrated_marker").fetchone()[0] == 0  # type: ignore[index]
    assert [e.lsn for e in store.read()] == [1, 2]
    store.close()


def test_creating_over_an_existing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"something precious")
    with pytest.raises(NotAJournal, match="already exists"):
        JournalStore.create(path, DOMAIN)
    assert path.read_bytes() == b"something precious"


# -- damaged and foreign files: a clear error, and never a modified byte --------------------


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def closed_journal(path: Path, domain: str = DOMAIN, count: int = 200) -> Path:
    store = JournalStore.create(path, domain)
    for _ in range(5):
        store.append_batch([NewEvent(kind="k", entity="e", payload={"pad": "x" * 400}, ts=1.0)] * (count // 5))
    store.close()
    return path


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"\x00\x01 this is a log file, not a database\n" * 100)


def sqlite_without_our_tables(path: Path) -> None:
    connection = apsw.Connection(str(path))
    connection.execute("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('hello')")
    connection.close()


def newer_schema(path: Path) -> None:
    closed_journal(path)
    connection = apsw.Connection(str(path))
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    connection.close()


def other_domain(path: Path) -> None:
    closed_journal(path, domain="dom-elsewhere")


def truncated(path: Path) -> None:
    closed_journal(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def header_only(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\x10\x00")


def empty(path: Path) -> None:
    path.write_bytes(b"")


BAD_FILES = [
    (not_sqlite, NotAJournal, "not a SQLite file"),
    (sqlite_without_our_tables, NotAJournal, "not a Patchbay journal"),
    (newer_schema, UnsupportedSchema, "upgrade Patchbay"),
    (other_domain, ForeignDomain, "another Patchbay home"),
    (truncated, NotAJournal, "truncated"),
    (header_only, NotAJournal, "truncated"),
    (empty, NotAJournal, "not a SQLite file"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD_FILES, ids=[m.__name__ for m, _, _ in BAD_FILES])
@pytest.mark.parametrize("read_only", [False, True], ids=["write", "read-only"])
def test_a_damaged_or_foreign_file_gives_a_clear_error_and_is_never_modified(
        tmp_path: Path, make: object, error: type[Exception], message: str, read_only: bool) -> None:
    directory = tmp_path / "home"
    directory.mkdir()
    path = directory / "journal.db"
    make(path)  # type: ignore[operator]
    before = digest(directory)
    expected = None if (read_only and error is ForeignDomain) else DOMAIN
    if read_only and error is ForeignDomain:
        store = JournalStore.open(path, read_only=True)  # replay may read another home's journal
        assert store.domain_id == "dom-elsewhere"
        store.close()
    else:
        with pytest.raises(error, match=message) as raised:
            JournalStore.open(path, expected_domain=expected, read_only=read_only)
        assert str(path) in str(raised.value)
    assert digest(directory) == before
