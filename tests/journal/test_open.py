"""Opening a journal after a kill or a full disk: recoverable WAL states open, real damage is
refused unwritten, with a message that says what is wrong and what to do.

The interrupted WAL write-back is built exactly: a writer is "killed" (its files copied while
it is open, WAL autocheckpoint off) and then page 1, as the WAL holds it, is written into the
main file, as SQLite does first when it copies the WAL back. The main file is then shorter
than its header declares while every page is in the WAL.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import apsw
import pytest
import trio

from patchbay.core import Core
from patchbay.journal import JournalStore, NewEvent, NotAJournal
from patchbay.journal._open import size_problem
from patchbay.replay import replay_journal, run_replay

DOMAIN = "dom-open"
_WAL_HEADER, _FRAME_HEADER = 32, 24


def _events(count: int, tag: str) -> list[NewEvent]:
    return [NewEvent(kind="test.event", entity=f"{tag}{i}", payload={"i": i, "pad": "x" * 300}, ts=1.0)
            for i in range(count)]


def killed_writer(directory: Path) -> Path:
    """A journal as a SIGKILL leaves it: 200 events in the main file, 2,000 more only in the WAL."""
    source = directory / "live"
    source.mkdir()
    store = JournalStore.create(source / "journal.db", DOMAIN)
    store.append_batch(_events(200, "a"))
    store.close()  # merged into the main file; the WAL is gone
    store = JournalStore.open(source / "journal.db", expected_domain=DOMAIN)
    store._db.execute("PRAGMA wal_autocheckpoint=0")
    for batch in range(10):
        store.append_batch(_events(200, f"b{batch}-"))
    home = directory / "home"
    home.mkdir()
    for name in ("journal.db", "journal.db-wal"):
        shutil.copyfile(source / name, home / name)
    store.close()
    return home / "journal.db"


def _wal_pages(path: Path) -> dict[int, bytes]:
    """The newest image of each page in the WAL (frames of its current salt only)."""
    data = Path(f"{path}-wal").read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    pages: dict[int, bytes] = {}
    offset = _WAL_HEADER
    while offset + _FRAME_HEADER + page_size <= len(data):
        header = data[offset:offset + _FRAME_HEADER]
        if header[8:16] != salts:
            break
        pages[int.from_bytes(header[:4], "big")] = data[offset + _FRAME_HEADER:offset + _FRAME_HEADER + page_size]
        offset += _FRAME_HEADER + page_size
    return pages


def interrupted_write_back(directory: Path) -> Path:
    """Page 1 (with the new size) copied back from the WAL, the file not yet extended."""
    path = killed_writer(directory)
    with path.open("r+b") as handle:
        handle.write(_wal_pages(path)[1])
    return path


def digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.parent.iterdir())
            if not p.name.endswith("-shm")}  # the WAL index is a cache SQLite rebuilds from the WAL


def test_an_interrupted_wal_write_back_opens_with_every_event(tmp_path: Path) -> None:
    path = interrupted_write_back(tmp_path)
    header = path.read_bytes()[:100]
    assert size_problem(header, path.stat().st_size) is not None  # what today's main refused as truncated
    reader = JournalStore.open(path, read_only=True)
    assert reader.count() == 2200
    reader.close()
    store = JournalStore.open(path, expected_domain=DOMAIN)
    assert store.count() == 2200 and store.last_lsn() == 2200
    assert [e.lsn for e in store.append_batch(_events(1, "c"))] == [2201]
    store.close()  # SQLite finishes the write-back: the main file is whole again
    assert size_problem(path.read_bytes()[:100], path.stat().st_size) is None
    assert replay_journal(path).events == 2201


def test_a_truncated_main_file_whose_wal_does_not_hold_the_rest_is_refused_untouched(tmp_path: Path) -> None:
    path = interrupted_write_back(tmp_path)
    missing = set(range(2, 60)) - set(_wal_pages(path))  # pages only the main file held
    assert missing
    page_size = int.from_bytes(path.read_bytes()[16:18], "big")
    with path.open("r+b") as handle:
        handle.truncate(min(missing) * page_size - page_size)
    before = digest(path)
    for read_only in (True, False):
        with pytest.raises(NotAJournal, match="is damaged") as raised:
            JournalStore.open(path, expected_domain=DOMAIN, read_only=read_only)
        assert "does not complete it" in str(raised.value) and "Nothing was written" in str(raised.value)
    assert digest(path) == before


def test_a_truncated_file_without_a_wal_says_it_is_truncated_and_to_restore(tmp_path: Path) -> None:
    path = killed_writer(tmp_path)
    Path(f"{path}-wal").unlink()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 // 4096 * 4096])
    before = digest(path)
    with pytest.raises(NotAJournal, match="truncated.*no journal.db-wal beside it.*Restore journal.db"):
        JournalStore.open(path, expected_domain=DOMAIN)
    assert digest(path) == before


def _closed_journal(path: Path, count: int = 3000) -> Path:
    store = JournalStore.create(path, DOMAIN)
    for start in range(0, count, 500):
        store.append_batch(_events(500, f"e{start}-"))
    store.close()
    return path


def test_a_damaged_journal_is_refused_before_anything_is_written_to_it(tmp_path: Path) -> None:
    path = _closed_journal(tmp_path / "journal.db")
    size = path.stat().st_size
    with path.open("r+b") as handle:  # 64 bytes flipped in the middle of the file
        handle.seek(size // 2)
        chunk = handle.read(64)
        handle.seek(size // 2)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    before = digest(path)
    with pytest.raises(NotAJournal, match="is damaged.*Nothing was written"):
        Core(path, expected_domain=DOMAIN)
    assert digest(path) == before  # not even the core generation


def test_a_garbage_payload_is_one_clear_line_in_serve_and_replay(tmp_path: Path) -> None:
    path = _closed_journal(tmp_path / "journal.db", count=500)
    connection = apsw.Connection(str(path))
    connection.execute("UPDATE events SET payload = '{not json' WHERE lsn = 250")
    connection.close()
    with pytest.raises(NotAJournal, match=r"the payload of the event at LSN 250 is not JSON") as raised:
        Core(path, expected_domain=DOMAIN)
    assert "\n" not in str(raised.value)
    lines: list[str] = []
    assert run_replay(path, check=True, until_lsn=None, command_id=None, target=None, as_json=False,
                      echo=lines.append) == 1
    assert len(lines) == 1 and lines[0].startswith("error:") and "LSN 250" in lines[0]


def test_a_core_on_a_journal_recovered_through_its_wal_starts(tmp_path: Path) -> None:
    path = interrupted_write_back(tmp_path)

    async def start() -> int:
        core = Core(path, expected_domain=DOMAIN)
        async with trio.open_nursery() as nursery:
            await nursery.start(core.run)
            last = core.state.last_lsn
            nursery.cancel_scope.cancel()
        return last

    assert trio.run(start) >= 2200
    assert replay_journal(path).violations == []
