"""The kill loop: ``serve`` SIGKILLed 40 times under concurrent writes, and it always comes back.

Each round starts ``serve`` on the same port, lets HTTP clients submit ``stream`` commands
(the scripted adapter, attached throughout with its own reconnects, streams observations for
each) and checkpoints run (every 300 events), then kills ``serve`` with SIGKILL at a random
moment. Every restart must come back and find what the round before acknowledged; at the end
``replay --check`` is clean and every acknowledged command is in the journal.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import threading
from pathlib import Path

import httpx
import pytest

from patchbay.replay import replay_journal
from tests.support.processes import Deployment, Proc, run_cli, wait_for

pytestmark = pytest.mark.slow
ROUNDS = 40
CLIENTS = 4
TARGET = "fake-1/chat"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Writers:
    """``CLIENTS`` threads submitting until the core goes away; keeps what was acknowledged."""

    def __init__(self, url: str, token: str, tag: str) -> None:
        self.url, self.token, self.tag = url, token, tag
        self.acknowledged: list[str] = []
        self.unexpected: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(lane,)) for lane in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def _run(self, lane: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, timeout=10, headers=headers) as http:
            number = 0
            while not self._stop.is_set():
                number += 1
                command_id = f"{self.tag}-{lane}-{number}"
                try:
                    answer = http.post("/api/commands", json={
                        "command_id": command_id, "idempotency_key": command_id, "kind": "instruct",
                        "target": TARGET, "payload": {"text": "stream 3"}})
                except httpx.HTTPError:
                    return  # the core was killed under this request: it may or may not be recorded
                with self._lock:
                    if answer.status_code == 200:
                        self.acknowledged.append(command_id)
                    elif answer.status_code != 503:
                        self.unexpected.append((answer.status_code, answer.text[:200]))

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def join(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def test_forty_sigkills_under_concurrent_writes_lose_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(20261204)
    d = Deployment(tmp_path)
    d.configure(checkpoint_every="300")
    listen = f"127.0.0.1:{free_port()}"
    acknowledged: list[str] = []
    try:
        d.serve(listen)
        credential = d.add_adapter("fake-1")
        adapter = Proc([sys.executable, str(ROOT / "tests/support/scripted_adapter.py"), "--id", "fake-1",
                        "--core", d.url, "--credential-file", str(credential), "--reconnect-max", "0.3"], d.env, tmp_path / "adapter.log")
        d.procs.insert(0, adapter)
        api = d.api()
        api.wait_session(TARGET, "live")
        token = api.http.headers["Authorization"].split()[1]
        for round_number in range(ROUNDS):
            if round_number:
                d.serve(listen)
                if acknowledged:  # the restart came back with what the last round acknowledged
                    assert api.http.get(f"/api/commands/{acknowledged[-1]}").status_code == 200
            writers = Writers(d.url, token, f"r{round_number}")
            wanted = rng.randint(3, 30)
            try:
                wait_for(lambda w=writers, n=wanted: w.count() >= n, timeout=20, interval=0.01,
                         what=f"{wanted} acceptances in round {round_number}")
            finally:
                assert d.serve_proc is not None
                d.serve_proc.kill()  # SIGKILL, with submissions in flight
                writers.join()
            assert writers.unexpected == []
            acknowledged += writers.acknowledged
        d.serve(listen)  # the last restart, then an orderly stop
        assert api.http.get("/api/status").json()["journal_writable"] is True
        assert d.serve_proc is not None
        d.serve_proc.stop()
        d.procs.remove(d.serve_proc)
        result = run_cli(d.env, "replay", "--check", "--json", str(d.home / "journal.db"))
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        assert json.loads(result.stdout)["violations"] == []
        state = replay_journal(d.home / "journal.db").state
        missing = [c for c in acknowledged if c not in state.commands and c not in state.archived]
        assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged commands are missing"
        assert len(acknowledged) >= 3 * ROUNDS
        print(f"kill loop: {ROUNDS} SIGKILLs, {len(acknowledged)} acknowledged, {state.last_lsn} events")
    finally:
        d.stop()
