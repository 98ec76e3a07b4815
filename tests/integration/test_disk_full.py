"""A full disk under load: honest answers, reads go on, and the core comes back by itself.

The home lives on a small tmpfs this test mounts (CI runs as root; without root the test
fails, it never skips). Commands are submitted by concurrent HTTP clients while the disk is
filled: every answer is ``accepted`` (200) or ``failed`` (503), never a reset connection or a
5xx of another kind. Once space is freed the core takes writes again without a restart, and
after an orderly stop ``replay --check`` is clean with every acknowledged command present.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from patchbay.replay import replay_journal
from tests.support.processes import Deployment, run_cli, wait_for

pytestmark = pytest.mark.slow
TMPFS_SIZE = "48m"
CLIENTS = 6
TEXT = "x" * 6000  # a large payload fills the WAL quickly


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the disk-full test mounts a tmpfs and needs root (CI runs as root)")
    mount = tmp_path / "pb"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; returns it (delete it to free the space)."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as handle:
        for size in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    handle.write(chunk[:size])
                except OSError:
                    break
    return filler


class Load:
    """``CLIENTS`` threads submitting until told to stop; every answer is kept."""

    def __init__(self, url: str, token: str, tag: str) -> None:
        self.url, self.token, self.tag = url, token, tag
        self.answers: list[tuple[str, int, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(lane,)) for lane in range(CLIENTS)]

    def _run(self, lane: int) -> None:
        http = httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.token}"})
        number = 0
        try:
            while not self.stop.is_set():
                number += 1
                command_id = f"{self.tag}-{lane}-{number}"
                body = {"command_id": command_id, "idempotency_key": command_id, "kind": "instruct",
                        "target": "shell-1/demo", "payload": {"text": f"true {TEXT}"}}
                answer = http.post("/api/commands", json=body)
                with self._lock:
                    self.answers.append((command_id, answer.status_code, answer.json()))
        except BaseException as error:  # noqa: BLE001 - a reset or a timeout: the test fails on it
            self.errors.append(error)
        finally:
            http.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for _, code, _ in self.answers if code == status)


def test_a_full_disk_answers_failed_keeps_reads_and_recovers_by_itself(small_disk: Path, tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    try:
        d.serve()
        d.shell_adapter()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        token = api.http.headers["Authorization"].split()[1]
        filler: Path | None = None
        with Load(d.url, token, "full") as load:
            wait_for(lambda: load.count(200) >= 20, timeout=60, what="commands accepted before the disk fills")
            filler = fill(small_disk)
            wait_for(lambda: load.count(503) >= 10 or load.errors, timeout=90, what="submissions refused on a full disk")
            status = httpx.get(d.url + "/api/status", headers=api.http.headers).json()
            assert status["journal_writable"] is False and status["journal_write_failures"] >= 1, status
            assert "full" in (status["journal_error"] or "").lower(), status
            assert api.http.get("/api/commands?limit=5").status_code == 200  # reads go on
            assert api.http.get("/api/sessions").status_code == 200
        assert load.errors == []
        refused = [(c, a) for c, code, a in load.answers if code == 503]
        assert all(a["outcome"] == "failed" and a["command"] is None for _, a in refused)
        assert {code for _, code, _ in load.answers} <= {200, 503}, "only accepted or failed, never another status"
        assert filler is not None
        filler.unlink()  # space returns: the core takes writes again by itself, no restart
        wait_for(lambda: httpx.get(d.url + "/api/status").json()["journal_writable"], timeout=30,
                 what="the journal taking writes again")
        with Load(d.url, token, "after") as after:
            wait_for(lambda: after.count(200) >= 20 or after.errors, timeout=60, what="commands accepted again")
        assert after.errors == []
        acknowledged = [c for c, code, _ in load.answers + after.answers if code == 200]
        assert d.serve_proc is not None
        d.serve_proc.kill(signal.SIGTERM)  # an orderly stop
        assert d.serve_proc.process.returncode == 0, "\n".join(d.serve_proc.lines[-20:])
        print(f"disk full: {load.count(200)} accepted, {len(refused)} failed (503); after: {after.count(200)} accepted")
        result = run_cli(d.env, "replay", "--check", "--json", str(d.home / "journal.db"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["violations"] == []
        state = replay_journal(d.home / "journal.db").state
        present = set(state.commands) | set(state.archived)
        missing = [c for c in acknowledged if c not in present]
        assert missing == [], f"{len(missing)} acknowledged commands are missing"
        refused_present = [c for c, _ in refused if c in present]
        assert refused_present == [], "a command answered failed must not be in the journal"
    finally:
        d.stop()


def test_a_journal_that_takes_no_writes_at_start_is_a_clear_refusal_and_nothing_is_lost(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    try:
        d.serve()
        api = d.api()
        assert api.http.get("/api/status").status_code == 200
        assert d.serve_proc is not None
        d.serve_proc.kill(signal.SIGTERM)
        before = replay_journal(d.home / "journal.db").state.last_lsn
        connection = apsw.Connection(str(d.home / "journal.db"))  # every event write fails from now on
        connection.execute("CREATE TRIGGER full BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        connection.close()
        refused = run_cli(d.env, "serve", "--listen", "127.0.0.1:0", timeout=60)
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr, refused.stderr
        assert "cannot take writes" in refused.stderr and "free space" in refused.stderr, refused.stderr
        connection = apsw.Connection(str(d.home / "journal.db"))
        connection.execute("DROP TRIGGER full")
        connection.close()
        d.serve()  # starts again once the journal takes writes
        assert d.api().http.get("/api/status").json()["journal_writable"] is True
        assert replay_journal(d.home / "journal.db").state.last_lsn > before
    finally:
        d.stop()
