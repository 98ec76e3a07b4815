"""The reducer's window of settled commands, and full records rebuilt from their own events."""

from __future__ import annotations

import attrs
import pytest

from patchbay.core import checkpoint
from patchbay.core.checkpoint import decode_state, encode_state
from patchbay.domain import history, lifecycle, model
from patchbay.domain.acceptance import Submission, decide_submission
from patchbay.domain.model import CoreState
from patchbay.domain.reducer import apply
from patchbay.registry import CommandState, SubmissionOutcome
from tests.domain.builders import ISSUER, World, ready_world

WINDOW = 4


@pytest.fixture(autouse=True)
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "SETTLED_WINDOW", WINDOW)


def submit(world: World, command_id: str, text: str = "true", key: str | None = None) -> SubmissionOutcome:
    submission = Submission(command_id=command_id, idempotency_key=key or f"k-{command_id}", kind="instruct",
                            target="shell-1/demo", payload={"text": text})
    decision = decide_submission(world.state, submission, ISSUER, world.now)
    world.fold(decision.facts)
    return decision.outcome


def settle(world: World, command_id: str, state: str = "completed") -> None:
    for step in ("delivered", state):
        outcome = lifecycle.decide_adapter_report(world.state, "shell-1", command_id, step, None,
                                                  {"exit_code": 0} if step == "completed" else None, None)
        assert outcome.ok
        world.fold(outcome.facts)


def test_memory_holds_live_commands_and_the_window_whatever_the_history() -> None:
    world = ready_world()
    submit(world, "live")
    for index in range(50):
        submit(world, f"c{index}")
        settle(world, f"c{index}", "failed" if index % 2 else "completed")
    state = world.state
    assert len(state.commands) == WINDOW + 1 and "live" in state.commands
    assert len(state.archived) == 50 - WINDOW and state.command_count() == 51
    assert list(state.settled) == [f"c{index}" for index in range(50 - WINDOW, 50)]
    assert state.archived["c1"].state is CommandState.failed and state.archived["c0"].failure is None


def test_an_archived_record_rebuilt_from_its_events_is_the_record_before_archiving() -> None:
    world = ready_world()
    submit(world, "c0")
    settle(world, "c0")
    before = world.state.commands["c0"]
    for index in range(1, WINDOW + 1):
        submit(world, f"c{index}")
        settle(world, f"c{index}")
    assert "c0" in world.state.archived
    own = [e for e in world.events if e.entity in history.entities(world.state.archived["c0"])]
    assert history.rebuild_command("c0", reversed(own)) == before


def test_deciders_treat_an_archived_command_as_the_settled_command_it_is() -> None:
    world = ready_world()
    submit(world, "c0", "echo once")
    settle(world, "c0")
    for index in range(1, WINDOW + 1):
        submit(world, f"c{index}")
        settle(world, f"c{index}")
    assert "c0" in world.state.archived
    lsn = world.state.last_lsn
    assert submit(world, "c0", "echo once") is SubmissionOutcome.accepted  # the original, with its outcome
    assert world.state.last_lsn == lsn  # a duplicate journals nothing
    assert submit(world, "c0", "echo twice") is SubmissionOutcome.rejected  # same key, other payload
    assert submit(world, "c0", "echo once", key="other") is SubmissionOutcome.rejected  # id reused
    late = lifecycle.decide_adapter_report(world.state, "shell-1", "c0", "failed", "execution_failed", None, None)
    assert [f.kind.value for f in late.facts] == ["command.late_outcome"]
    world.fold(late.facts)
    assert world.state.archived["c0"].state is CommandState.completed  # the first terminal stays


def test_fold_is_the_same_from_any_checkpointed_prefix() -> None:
    world = ready_world()
    for index in range(3 * WINDOW):
        submit(world, f"c{index}")
        settle(world, f"c{index}")
    for cut in range(0, len(world.events), 7):
        prefix = CoreState()
        for event in world.events[:cut]:
            apply(prefix, event)
        resumed = decode_state(encode_state(prefix))
        assert resumed == prefix
        assert resumed is not None
        for event in world.events[cut:]:
            apply(resumed, event)
        assert resumed == world.state


def test_a_checkpoint_is_encoded_in_bounded_steps_and_decodes_to_the_same_state(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The core yields to the event loop at every step of ``encode_state_steps``: each step
    encodes at most a few dozen full records or one chunk of an archive column, so a large
    state never holds the loop for long; joined, the steps are the checkpoint document."""
    monkeypatch.setattr(checkpoint, "_ITEMS_PER_CHUNK", 10)
    world = ready_world()
    for index in range(300):
        submit(world, f"c{index}")
        if index % 3:
            settle(world, f"c{index}", "failed" if index % 2 else "completed")
    state = world.state
    live = len(state.commands)
    assert live > 3 * checkpoint._RECORDS_PER_STEP and len(state.archived) > 100
    sizes: list[int] = []
    out: list[bytes] = []
    for _ in checkpoint.encode_state_steps(state, out):
        sizes.append(len(out))
    assert len(sizes) >= live // checkpoint._RECORDS_PER_STEP + len(state.archived) // 10
    grown = [after - before for before, after in zip([0, *sizes], sizes, strict=False)]
    # pieces added between two yields: a run of records (the first step also opens every field)
    assert grown[0] <= checkpoint._RECORDS_PER_STEP + 3 * len(attrs.fields(CoreState))
    assert max(grown[1:]) <= checkpoint._RECORDS_PER_STEP + 8
    document = b"".join(out)
    assert document == encode_state(state)
    assert decode_state(document) == state


def test_a_stored_checkpoint_is_compressed_and_an_uncompressed_one_still_reads() -> None:
    world = ready_world()
    for index in range(40):
        submit(world, f"c{index}")
        settle(world, f"c{index}")
    document = encode_state(world.state)
    stored = checkpoint.pack(document)
    assert len(stored) < len(document) // 3 and stored[:1] != b"{"
    assert checkpoint.unpack(stored) == document
    assert decode_state(stored) == world.state
    assert decode_state(document) == world.state  # written before checkpoints were compressed


def test_a_checkpoint_reuses_the_encoding_of_every_record_that_did_not_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = ready_world()
    for index in range(30):
        submit(world, f"c{index}")
    encoded: list[object] = []
    real = checkpoint._converter.unstructure

    def counting(value: object, *args: object) -> object:
        if isinstance(value, model.CommandRecord):
            encoded.append(value)
        return real(value, *args)

    monkeypatch.setattr(checkpoint._converter, "unstructure", counting)
    cache = checkpoint.EncodedRecords()

    def encode() -> bytes:
        out: list[bytes] = []
        for _ in checkpoint.encode_state_steps(world.state, out, cache):
            pass
        return b"".join(out)

    first = encode()
    assert len(encoded) == 30 and first == encode_state(world.state)
    encoded.clear()
    assert encode() == first and encoded == []  # nothing changed: nothing encoded again
    settle(world, "c3")  # a new record for c3; the others are the same objects
    submit(world, "c30")
    encoded.clear()
    third = encode()
    assert sorted(record.command_id for record in encoded) == ["c3", "c30"]  # type: ignore[attr-defined]
    assert third == encode_state(world.state) and decode_state(third) == world.state
    assert len(cache) >= 31
