"""The known-LSN header: only ``<this domain>:<64-bit integer>`` beyond the head is evidence."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from patchbay.cli._known_lsn import KnownLsn
from patchbay.web._known_lsn import head_value, report_known_lsn
from patchbay.wire.known_lsn import KNOWN_LSN_HEADER, parse_claim


class FakeCore:
    def __init__(self, head: int) -> None:
        self.domain_id = "dom-1"
        self.state = SimpleNamespace(last_lsn=head)
        self.claims: list[tuple[str, int]] = []

    def history_beyond_head(self, source: str, claimed: int) -> None:
        self.claims.append((source, claimed))


@pytest.mark.parametrize("value", [None, "", "garbage", "dom-1", "dom-1:", ":50", "dom-1:-5", "dom-1:1e3",
                                   "dom-1:5.0", "dom-1: 50x", f"dom-1:{2**63}", f"dom-1:{'9' * 40}",
                                   "dom 1:50", "dom-1:50\n:60", "d" * 300 + ":50", "dom-1:٥٠"])
def test_a_garbage_header_is_ignored(value: str | None) -> None:
    core = FakeCore(head=10)
    report_known_lsn(core, {KNOWN_LSN_HEADER: value}, "ep-1")  # type: ignore[arg-type]
    assert core.claims == []


def test_only_a_claim_beyond_the_head_of_this_domain_is_evidence() -> None:
    core = FakeCore(head=10)
    for value in ("dom-1:10", "dom-1:3", "dom-2:99"):
        report_known_lsn(core, {KNOWN_LSN_HEADER: value}, "ep-1")  # type: ignore[arg-type]
    assert core.claims == []
    report_known_lsn(core, {KNOWN_LSN_HEADER: f"dom-1:{2**63 - 1}"}, "ep-1")  # type: ignore[arg-type]
    assert core.claims == [("cli:ep-1", 2**63 - 1)]
    assert parse_claim(head_value(core)) == ("dom-1", 10)  # type: ignore[arg-type]


def _login(path: Path, **extra: Any) -> None:
    path.write_text(json.dumps({"url": "http://x", "token": "t-1", "session_id": "s", "endpoint_id": "e", **extra}))


def test_the_cli_keeps_the_highest_head_and_warns_once_when_it_goes_back(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cli.json"
    _login(path)
    known = KnownLsn(None, "t-1", "http://x", path)
    known.observe("dom-1:7")
    known.observe("garbage")
    assert json.loads(path.read_text())["known_lsn"] == "dom-1:7" and path.stat().st_mode & 0o777 == 0o600
    known.observe("dom-1:3")
    known.observe("dom-1:2")
    assert capsys.readouterr().err.count("has lost history it had acknowledged") == 1
    assert known.header == "dom-1:7" and json.loads(path.read_text())["known_lsn"] == "dom-1:7"
    known.observe("dom-2:1")  # another authority domain (a new journal): follow it, no warning
    assert known.header == "dom-2:1" and capsys.readouterr().err == ""


def test_storing_the_known_lsn_never_fails_a_command(tmp_path: Path) -> None:
    missing = KnownLsn(None, "t-1", "http://x", tmp_path / "absent" / "cli.json")
    missing.observe("dom-1:7")  # no login file: nothing written, no error
    assert missing.header == "dom-1:7" and not (tmp_path / "absent").exists()
    other = tmp_path / "other.json"
    _login(other, token="someone-else")
    KnownLsn(None, "t-1", "http://x", other).observe("dom-1:7")  # another login now: left alone
    assert "known_lsn" not in json.loads(other.read_text())
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    KnownLsn(None, "t-1", "http://x", broken).observe("dom-1:7")
    assert broken.read_text() == "{not json"
