"""`patchbay replay --check` runs the same journal checks as the vectors, so an operator can
verify a production journal: a journal written under a broken rule is flagged by the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from patchbay.cli import main
from patchbay.conformance import load_vector, run_vector

ROOT = Path(__file__).resolve().parents[2]
CASES = [
    ("boundary-dedup.json", "dedup_off", "BoundaryDedup"),
    ("labels-cannot-override-identity.json", "label_routing", "LabelsCannotOverrideIdentity"),
    ("timeout-neither.json", "timeout_is_success", "TimeoutNeitherSuccessNorDenial"),
    ("typed-correlation.json", "reply_correlation_off", "TypedCorrelation"),
]


def _replay_check(journal: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["replay", str(journal), "--check"])
    return result.exit_code, result.output


@pytest.mark.parametrize("name, fault, prop", CASES, ids=[c[2] for c in CASES])
async def test_replay_check_flags_a_journal_written_under_a_broken_rule(
        tmp_path: Path, name: str, fault: str, prop: str) -> None:
    vector = load_vector(ROOT / "vectors" / name)
    clean_dir, broken_dir = tmp_path / "clean", tmp_path / "broken"
    clean_dir.mkdir()
    broken_dir.mkdir()
    assert (await run_vector(vector, keep=clean_dir)).passed
    assert (await run_vector(vector, fault=fault, keep=broken_dir)).killed
    code, output = await trio.to_thread.run_sync(_replay_check, clean_dir / "journal.db")
    assert code == 0 and "no violations" in output, output
    code, output = await trio.to_thread.run_sync(_replay_check, broken_dir / "journal.db")
    assert code == 1 and f"VIOLATION {prop} violated" in output, output
