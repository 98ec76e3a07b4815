"""Lost durable history is never silent: a journal shorter than what was known of it is reported.

SQLite cannot always tell that WAL frames were lost (a deleted or truncated ``-wal``), or that
an older copy of the journal was put back. Patchbay can: the head file it writes beside the
journal after checkpoints and at an orderly stop, and a client's stream cursor, know LSNs the
journal no longer has. Either is logged, flagged in ``GET /api/status`` and journaled as a
``journal.history_lost`` audit record.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.processes import Deployment

pytestmark = pytest.mark.slow


def _stop(d: Deployment) -> None:
    assert d.serve_proc is not None
    d.serve_proc.kill(signal.SIGTERM)
    assert d.serve_proc.process.returncode == 0


def test_a_journal_older_than_its_head_and_a_cursor_beyond_it_are_reported_loudly(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    journal = d.home / "journal.db"
    try:
        d.serve()
        d.api()  # a login: events
        _stop(d)
        shutil.copyfile(journal, tmp_path / "older.db")  # the journal as it was then
        d.serve()
        for _ in range(3):
            d.api()
        _stop(d)
        head = json.loads(Path(f"{journal}-head").read_text())["lsn"]
        shutil.copyfile(tmp_path / "older.db", journal)  # durable history lost
        d.serve()
        assert d.serve_proc is not None
        d.serve_proc.wait_line(re.compile("DURABLE HISTORY WAS LOST"), timeout=10)
        api = d.api()
        status = api.http.get("/api/status").json()
        assert status["history_lost"] is True
        (evidence,) = status["history_evidence"]
        assert evidence["claimed"] == head and evidence["head"] < head and "head file" in evidence["source"]
        audit = api.http.get("/api/audit", params={"kind": "journal.history_lost"}).json()
        records = [r for r in audit["records"] if r["kind"] == "journal.history_lost"]
        assert records and records[0]["details"]["claimed"] == head

        async def stream_with_cursor(cursor: int) -> None:
            url = d.url.replace("http://", "ws://") + f"/api/stream?cursor={cursor}&domain={status['authority_domain_id']}"
            headers = [(b"Authorization", api.http.headers["Authorization"].encode())]
            async with open_websocket_url(url, extra_headers=headers) as ws:
                with trio.fail_after(30):
                    hello = json.loads(await ws.get_message())
                assert hello["verdict"] == "snapshot"

        trio.run(stream_with_cursor, head + 1000)
        sources = {e["source"] for e in api.http.get("/api/status").json()["history_evidence"]}
        assert "a client's stream cursor" in sources
    finally:
        d.stop()
