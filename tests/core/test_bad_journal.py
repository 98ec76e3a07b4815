"""A home whose journal already holds values a checkpoint once could not encode must start and serve.

Today's validation keeps such values out, but a journal written before it (lone surrogates,
integers past 64 bits, 300-deep nesting in a command payload, ``seq`` 10**30 in a session
frame) must never brick the home: checkpoints of it are written and read back exactly, and a
checkpoint that fails anyway is counted and skipped, never fatal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from patchbay.core import _state as core_state_module
from patchbay.core.checkpoint import load_checkpoint
from patchbay.journal import JournalStore, NewEvent
from patchbay.registry import SubmissionOutcome
from patchbay.replay import replay_journal, run_replay
from tests.core.harness import running_core

DEEP: Any = json.loads('{"d":' * 300 + "1" + "}" * 300)
BAD_PAYLOADS: dict[str, dict[str, Any]] = {
    "c-surrogate": {"text": "cut inside an emoji \ud83d", "note": "\ud83d"},
    "c-big": {"text": "true", "n": 10 ** 400, "neg": -(10 ** 30)},
    "c-deep": {"text": "true", "deep": DEEP},
}


async def _journal_with_a_normal_command(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        assert (await h.submit("c-normal", "echo hi")).outcome is SubmissionOutcome.accepted


def write_as_old_main_did(path: Path) -> None:
    """Append, straight into the journal, the events today's main accepted and stored."""
    store = JournalStore.open(path)
    try:
        events = list(store.read())
        accepted = next(e for e in events if e.kind == "command.accepted")
        session = next(e for e in events if e.kind == "session.reported")
        bad = []
        for command_id, payload in BAD_PAYLOADS.items():
            bad.append(NewEvent(kind=accepted.kind, entity=f"command:{command_id}", ts=accepted.ts, payload={
                **accepted.payload, "command_id": command_id, "idempotency_key": f"key-{command_id}",
                "payload": payload}))
        frame = session.payload["adapter_frame"]
        bad.append(NewEvent(kind=session.kind, entity="session:shell-1/huge", ts=session.ts, payload={
            **session.payload, "runtime_session_id": "huge", "target": "shell-1/huge", "generation": 10 ** 30,
            "adapter_frame": [frame[0], frame[1], 10 ** 30]}))
        store.append_batch(bad)
    finally:
        store.close()


def _exact(value: Any) -> str:
    return json.dumps(value, sort_keys=True)  # tells 10**400 from 1e400 and keeps "\ud83d"


async def test_a_journal_holding_unencodable_values_starts_checkpoints_and_restarts_exactly(tmp_path: Path) -> None:
    await _journal_with_a_normal_command(tmp_path)
    path = tmp_path / "journal.db"
    write_as_old_main_did(path)
    for _ in range(2):  # a checkpoint of it, then a start from that checkpoint and another one
        async with running_core(tmp_path, fresh=False) as h:
            lsn = await h.core.journal.checkpoint(paced=False)
            assert lsn == h.core.state.last_lsn
            assert h.core.health.checkpoint_failures == 0
            await h.login()
            assert (await h.submit("c-after", "echo after")).outcome is SubmissionOutcome.accepted
    store = JournalStore.open(path, read_only=True)
    loaded = load_checkpoint(store)
    store.close()
    assert loaded is not None, "the checkpoint must be readable, not skipped"
    replayed = replay_journal(path)
    assert replayed.violations == []
    state = replayed.state
    for command_id, payload in BAD_PAYLOADS.items():
        assert _exact(state.commands[command_id].payload) == _exact(payload)
    assert state.sessions["shell-1/huge"].generation == 10 ** 30
    # the checkpoint holds exactly what replay from LSN 0 builds (big integers stay integers)
    from_checkpoint, lsn, _ = loaded
    assert lsn <= state.last_lsn
    for command_id, payload in BAD_PAYLOADS.items():
        assert _exact(from_checkpoint.commands[command_id].payload) == _exact(payload)
    assert from_checkpoint.sessions["shell-1/huge"] == state.sessions["shell-1/huge"]
    assert from_checkpoint.adapter_frames == {k: v for k, v in state.adapter_frames.items()
                                              if k in from_checkpoint.adapter_frames}


async def test_a_checkpoint_that_fails_is_counted_and_skipped_and_the_core_keeps_serving(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> bytes:
        raise TypeError("Integer exceeds 64-bit range")

    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        await adapter.attach()
        await adapter.session()
        monkeypatch.setattr(core_state_module, "pack_pieces", broken)
        h.core._checkpointing = True
        await h.core._checkpoint(paced=False)
        assert (h.core.health.checkpoint_failures, h.core.health.last_checkpoint_error) == (
            1, "TypeError: Integer exceeds 64-bit range")
        assert not h.core._checkpointing
        assert (await h.submit("c-1", "echo still here")).outcome is SubmissionOutcome.accepted
        monkeypatch.undo()  # the next one is tried, and written
        h.core._checkpointing = True
        await h.core._checkpoint(paced=False)
        assert h.core.health.checkpoint_failures == 1
        view = h.core.health.view()
        assert attrs.asdict(h.core.health)["checkpoint_failures"] == view["checkpoint_failures"] == 1
    assert replay_journal(tmp_path / "journal.db").violations == []


LEASES = {"l-huge": 1e300, "l-nan": float("nan"), "l-inf": float("inf")}


async def test_leases_with_times_that_are_not_times_start_restart_and_replay_reports_them(tmp_path: Path) -> None:
    await _journal_with_a_normal_command(tmp_path)
    path = tmp_path / "journal.db"
    store = JournalStore.open(path)
    store.append_batch([NewEvent(kind="lease.acquired", entity=f"lease:{lease_id}", ts=1.0, payload={
        "lease_id": lease_id, "resource": f"dir:/{lease_id}", "scope": "shell-1", "holder": "shell-1",
        "expires_at": expires_at}) for lease_id, expires_at in LEASES.items()])
    store.close()
    for _ in range(2):  # a checkpoint (non-finite times in it), then a start from it
        async with running_core(tmp_path, fresh=False) as h:
            assert set(LEASES) <= set(h.core.state.leases)
            await h.core.journal.checkpoint(paced=False)
    lines: list[str] = []
    assert run_replay(path, check=True, until_lsn=None, command_id=None, target=None, as_json=False,
                      echo=lines.append) == 1
    reported = [line for line in lines if line.startswith("VIOLATION FiniteTimes")]
    assert len(reported) == 3 and all("expires_at" in line for line in reported), lines
    assert run_replay(path, check=True, until_lsn=None, command_id=None, target=None, as_json=True,
                      echo=lines.append) == 1
