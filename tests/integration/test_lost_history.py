"""Lost durable history is never silent: a journal shorter than what was known of it is reported.

SQLite cannot always tell that WAL frames were lost (a deleted or truncated ``-wal``), or that
an older copy of the journal was put back. Patchbay can: the head file it writes beside the
journal while commits come and at an orderly stop, and a client's stream cursor, know LSNs the
journal no longer has. Either is logged, flagged in ``GET /api/status`` and journaled as a
``journal.history_lost`` audit record.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.processes import PASSWORD, Deployment, run_cli, wait_for

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


def test_wal_frames_lost_after_a_kill_are_reported(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    journal = d.home / "journal.db"
    try:
        d.serve()
        api = d.api()
        for number in range(5):  # committed, acknowledged, in the WAL only
            answer = api.http.post("/api/grants", json={"scope": {"type": "all"}, "kinds": ["query"],
                                                        "provenance": f"grant {number}"})
            assert answer.status_code == 200, answer.text
        lsn = _last_lsn(api)
        wait_for(lambda: (json.loads(Path(f"{journal}-head").read_text())["lsn"] >= lsn
                          if Path(f"{journal}-head").exists() else False), timeout=10, what="the head file")
        assert d.serve_proc is not None
        d.serve_proc.kill()  # SIGKILL: the WAL is not merged
        assert Path(f"{journal}-wal").stat().st_size > 0
        Path(f"{journal}-wal").unlink()  # the WAL is lost, with acknowledged commits in it
        Path(f"{journal}-shm").unlink(missing_ok=True)
        d.serve()
        assert d.serve_proc is not None
        d.serve_proc.wait_line(re.compile("DURABLE HISTORY WAS LOST"), timeout=10)
        status = d.api().http.get("/api/status").json()
        assert status["history_lost"] is True and status["history_evidence"][0]["claimed"] >= lsn
    finally:
        d.stop()


def _point_cli_at(cli_config: Path, url: str) -> None:
    """The same core restarted on another port (port 0): the saved login follows it."""
    saved = json.loads(cli_config.read_text())
    cli_config.write_text(json.dumps(dict(saved, url=url)))


def _last_lsn(api: Any) -> int:
    return int(api.http.get("/api/commands?limit=1").json()["lsn"])


def test_a_cli_knowing_an_lsn_beyond_the_head_is_evidence_and_still_works(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    journal = d.home / "journal.db"
    cli_config = tmp_path / "cli.json"
    try:
        d.serve()
        logged_in = run_cli(d.env, "login", "--url", d.url, "--password-stdin", stdin=PASSWORD + "\n")
        assert logged_in.returncode == 0, logged_in.stderr
        _stop(d)  # the login is merged into the journal file: it survives what follows
        _point_cli_at(cli_config, d.serve())
        for number in range(3):  # committed and acknowledged, in the WAL only
            added = run_cli(d.env, "grants", "add", "--kind", "query", "--json")
            assert added.returncode == 0, f"grant {number}: {added.stderr}"
        listed = run_cli(d.env, "grants", "list")
        assert listed.returncode == 0 and "lost history" not in listed.stderr, listed.stderr
        saved = json.loads(cli_config.read_text())
        assert oct(cli_config.stat().st_mode & 0o777) == "0o600"
        domain, _, known = saved["known_lsn"].rpartition(":")
        known_lsn = int(known)
        assert d.serve_proc is not None
        d.serve_proc.kill()  # SIGKILL: the WAL is not merged
        Path(f"{journal}-wal").unlink()  # the WAL is lost, with acknowledged commits in it
        Path(f"{journal}-shm").unlink(missing_ok=True)
        Path(f"{journal}-head").unlink()  # and the head file: only the CLI remembers
        _point_cli_at(cli_config, d.serve())
        after = run_cli(d.env, "grants", "list")
        assert after.returncode == 0, after.stderr  # the command still works
        assert "has lost history it had acknowledged" in after.stderr
        assert f"saw LSN {known_lsn}" in after.stderr
        api = d.api()
        status = api.http.get("/api/status").json()
        assert status["authority_domain_id"] == domain and status["history_lost"] is True
        source = f"cli:{saved['endpoint_id']}"
        (evidence,) = [e for e in status["history_evidence"] if e["source"] == source]
        assert evidence["claimed"] == known_lsn and evidence["head"] < known_lsn

        def audited() -> list[dict[str, Any]]:
            audit = api.http.get("/api/audit", params={"kind": "journal.history_lost"}).json()
            return [r for r in audit["records"] if r["kind"] == "journal.history_lost"
                    and r["details"]["source"] == source]

        (record,) = wait_for(audited, timeout=10, what="the history_lost audit record")
        assert record["details"]["claimed"] == known_lsn
        assert json.loads(cli_config.read_text())["known_lsn"] == saved["known_lsn"]  # kept, not lowered
        for garbage in (f"{domain}:{2**64}", f"{domain}:-5", f"{domain}:1e9", "no-lsn", f":{known_lsn + 9}",
                        f"other-domain:{known_lsn + 9}"):
            answer = api.http.get("/api/grants", headers={"X-Patchbay-Known-LSN": garbage})
            assert answer.status_code == 200, (garbage, answer.text)
        sources = [e["source"] for e in api.http.get("/api/status").json()["history_evidence"]]
        assert sources == [source]  # none of those was evidence
    finally:
        d.stop()
