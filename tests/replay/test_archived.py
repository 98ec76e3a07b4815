"""`patchbay replay` on a journal whose settled commands are archived by the reducer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchbay.cli import main
from patchbay.domain import model
from tests.replay.scenario import scenario_journal


def replay(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["replay", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.output)
    return summary


def test_replay_checks_counts_and_shows_archived_commands_as_before(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    journal = scenario_journal(tmp_path)
    full = replay(str(journal), "--check", "--command", "done")
    monkeypatch.setattr(model, "SETTLED_WINDOW", 1)
    archived = replay(str(journal), "--check", "--command", "done")
    assert archived["violations"] == [] and archived["commands"] == full["commands"] == 6
    assert archived["command"] == full["command"] and archived["command"] is not None
    assert archived["timeline"] == full["timeline"]
