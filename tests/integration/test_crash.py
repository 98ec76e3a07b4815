"""CrashNoAcceptedLost with a real process: SIGKILL a writer at random moments, 20 times."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from patchbay.replay import replay_journal

pytestmark = pytest.mark.slow
ROUNDS = 20


def test_every_acknowledged_acceptance_survives_sigkill(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    rng = random.Random(20261124)
    acknowledged: list[str] = []
    for _ in range(ROUNDS):
        writer = subprocess.Popen([sys.executable, "-m", "tests.support.crash_writer", str(journal)],
                                  stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        target = rng.randint(1, 400)
        seen = 0
        for line in writer.stdout:
            acknowledged.append(line.strip())
            seen += 1
            if seen >= target:
                break
        writer.kill()  # SIGKILL, mid-stream: more acceptances may be in flight
        writer.wait()
        for line in writer.stdout:  # ids written before the kill but not yet read count too
            if line.endswith("\n"):
                acknowledged.append(line.strip())
    result = replay_journal(journal)
    assert result.violations == []
    missing = [c for c in acknowledged if c not in result.state.commands]
    assert missing == [], f"{len(missing)} acknowledged commands vanished"
    assert len(acknowledged) >= ROUNDS
    for command_id in acknowledged:
        assert result.state.commands[command_id].state.value in ("accepted", "delivered", "failed")
