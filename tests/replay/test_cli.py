"""`patchbay init` and `patchbay replay` as a user runs them (click, in process)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import apsw
import pytest
from click.testing import CliRunner, Result

from patchbay.cli import main
from patchbay.journal import JournalStore
from patchbay.replay import replay_journal
from tests.core.harness import DOMAIN
from tests.replay.scenario import TARGET, scenario_journal


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return scenario_journal(tmp_path)


def append_raw(path: Path, kind: str, payload: dict[str, Any], *, lsn: int | None = None) -> None:
    """Write an event by hand, as a buggy or tampering writer would: still valid SQLite."""
    connection = apsw.Connection(str(path))
    last = connection.execute("SELECT max(lsn) FROM events").fetchone()[0]  # type: ignore[index]
    connection.execute(
        "INSERT INTO events(domain, lsn, core_generation, kind, entity, ts, payload) VALUES (?,?,?,?,?,?,?)",
        (DOMAIN, lsn or last + 1, 9, kind, "hand", 1_800_000_010.0, json.dumps(payload)))
    connection.close()


def test_replay_check_passes_on_a_journal_written_by_the_core(journal: Path) -> None:
    result = run("replay", str(journal), "--check")
    assert result.exit_code == 0, result.output
    assert "check: no violations" in result.output and "commands" in result.output


def test_replay_json_summarizes_the_rebuilt_state(journal: Path) -> None:
    result = run("replay", str(journal), "--check", "--json")
    summary = json.loads(result.output)
    assert result.exit_code == 0
    assert summary["authority_domain_id"] == DOMAIN and summary["violations"] == []
    assert summary["last_lsn"] == summary["events"] == JournalStore.open(journal, read_only=True).last_lsn()
    assert summary["commands"] == 6 and summary["sessions"] == 1 and summary["leases"] == 1


def test_replay_until_rebuilds_the_state_at_that_lsn(journal: Path) -> None:
    accepted_at = replay_journal(journal).state.commands["held"].accepted_lsn
    before = json.loads(run("replay", str(journal), "--until", str(accepted_at - 1), "--json",
                            "--command", "held").output)
    at = json.loads(run("replay", str(journal), "--until", str(accepted_at), "--json", "--command", "held").output)
    assert before["last_lsn"] == accepted_at - 1 and before["command"] is None
    assert at["command"]["state"] == "accepted"


def test_replay_command_prints_the_commands_timeline(journal: Path) -> None:
    summary = json.loads(run("replay", str(journal), "--command", "done", "--json").output)
    assert summary["command"]["state"] == "completed"
    kinds = [(entry["kind"], entry["payload"].get("state")) for entry in summary["timeline"]]
    assert kinds == [("command.accepted", None), ("command.transitioned", "delivered"),
                     ("command.transitioned", "running"), ("command.transitioned", "completed"),
                     ("command.late_outcome", None)]
    text = run("replay", str(journal), "--command", "done").output
    assert "command.late_outcome" in text and "prompt" not in text


def test_replay_session_prints_the_sessions_timeline(journal: Path) -> None:
    summary = json.loads(run("replay", str(journal), "--session", TARGET, "--json").output)
    assert summary["session"]["generation"] == 2
    kinds = [entry["kind"] for entry in summary["timeline"]]
    assert "session.superseded" in kinds and "session.stale_event" in kinds


CORRUPTIONS = [
    ("second terminal state", "command.transitioned",
     {"command_id": "done", "state": "failed", "failure": "execution_failed", "result": None, "reason": "x"},
     "TerminalFinality", "command done moved from terminal completed to failed"),
    ("transition outside the table", "command.transitioned",
     {"command_id": "after-bump", "state": "accepted", "failure": None, "result": None, "reason": "x"},
     "TerminalFinality", "delivered -> accepted is not an allowed transition"),
    ("transition of an unknown command", "command.transitioned",
     {"command_id": "ghost", "state": "completed", "failure": None, "result": None, "reason": "x"},
     "CommandDurability", "never accepted"),
    ("mutation of a tombstoned generation", "session.activity",
     {"target": TARGET, "generation": 1, "activity": "working"},
     "LateGenerationInert", "tombstoned generation 1"),
    ("generation going back", "session.reported",
     {"target": TARGET, "adapter_id": "shell-1", "runtime_session_id": "demo", "generation": 1},
     "GenerationMonotonic", "went back from generation 2 to 1"),
    ("second live lease holder", "lease.acquired",
     {"lease_id": "lease-intruder", "resource": "repo", "scope": "write", "holder": "adapter:evil",
      "expires_at": 2e9},
     "LeaseExclusive", "while lease"),
]


@pytest.mark.parametrize(("case", "kind", "payload", "prop", "detail"), CORRUPTIONS,
                         ids=[c[0] for c in CORRUPTIONS])
def test_replay_check_names_the_violation_in_a_corrupted_but_valid_journal(
        journal: Path, case: str, kind: str, payload: dict[str, Any], prop: str, detail: str) -> None:
    assert run("replay", str(journal), "--check").exit_code == 0
    append_raw(journal, kind, payload)
    result = run("replay", str(journal), "--check")
    assert result.exit_code == 1
    assert f"VIOLATION {prop} violated at LSN" in result.output and detail in result.output
    summary = json.loads(run("replay", str(journal), "--check", "--json").output)
    assert any(prop in violation for violation in summary["violations"])


def test_replay_check_reports_a_gap_in_the_lsns(journal: Path) -> None:
    last = replay_journal(journal).state.last_lsn
    append_raw(journal, "core.started", {"core_generation": 9}, lsn=last + 2)
    result = run("replay", str(journal), "--check")
    assert result.exit_code == 1 and f"LSN gap: expected {last + 1}, found {last + 2}" in result.output


def test_replay_without_check_rebuilds_even_a_violating_journal(journal: Path) -> None:
    append_raw(journal, "command.transitioned", {"command_id": "done", "state": "failed", "failure": None})
    result = run("replay", str(journal))
    assert result.exit_code == 0 and "VIOLATION" not in result.output


@pytest.mark.parametrize("content", [b"not a database at all\n" * 50, b""], ids=["text", "empty"])
def test_replay_of_a_file_that_is_not_a_journal_is_a_clear_error_and_touches_nothing(
        tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = run("replay", str(path), "--check")
    assert result.exit_code == 1 and "error:" in result.output and "not a SQLite file" in result.output
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_replay_of_a_closed_journal_leaves_no_files_beside_it(journal: Path) -> None:
    before = sorted(p.name for p in journal.parent.iterdir())
    digest = hashlib.sha256(journal.read_bytes()).hexdigest()
    assert run("replay", str(journal), "--check").exit_code == 0
    assert sorted(p.name for p in journal.parent.iterdir()) == before
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == digest


# -- init ------------------------------------------------------------------------------------


def test_init_creates_the_home_config_journal_and_operator(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run("init", "--home", str(home), "--password-stdin", input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert "initialized Patchbay home" in result.output
    assert (home / "patchbay.toml").exists() and (home / "journal.db").exists()
    assert (home.stat().st_mode & 0o777) == 0o700
    state = replay_journal(home / "journal.db").state
    assert state.operators["operator"].startswith("$argon2id$")  # a strong KDF, never the password
    assert "a long enough password" not in (home / "journal.db").read_bytes().decode("latin-1")
    assert [g.kinds for g in state.grants.values()] and state.authority_domain_id.startswith("dom-")
    assert run("replay", str(home / "journal.db"), "--check").exit_code == 0


def test_init_refuses_an_existing_home_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run("init", "--home", str(home), "--password-stdin", input="a long enough password\n")
    digest = hashlib.sha256((home / "journal.db").read_bytes()).hexdigest()
    again = run("init", "--home", str(home), "--password-stdin", input="another password\n")
    assert again.exit_code == 1 and "already holds a Patchbay home" in again.output
    assert hashlib.sha256((home / "journal.db").read_bytes()).hexdigest() == digest


def test_init_refuses_a_short_password(tmp_path: Path) -> None:
    result = run("init", "--home", str(tmp_path / "home"), "--password-stdin", input="short\n")
    assert result.exit_code == 1 and "at least 8 characters" in result.output
    assert not (tmp_path / "home" / "journal.db").exists()
