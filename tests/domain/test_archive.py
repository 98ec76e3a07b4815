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


def _in_order(state: CoreState) -> list[object]:
    """Every field with each dict's items in order: ``==`` on dicts ignores order, and the
    order of a dict (commands, the archive) is part of the state."""
    return [list(value.items()) if isinstance(value, dict) else value
            for value in (getattr(state, field.name) for field in attrs.fields(CoreState))]


def _delta(state: CoreState, base: checkpoint.Base) -> checkpoint.Changes | None:
    steps = checkpoint.changes_steps(state, base)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def _encode(state: CoreState, changes: checkpoint.Changes | None = None) -> bytes:
    out: list[bytes] = []
    for _ in checkpoint.encode_state_steps(state, out, checkpoint.EncodedRecords(), changes):
        pass
    return b"".join(out)


def test_a_delta_checkpoint_holds_only_what_changed_and_rebuilds_the_state_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "_ITEMS_PER_CHUNK", 7)
    world = ready_world()
    for index in range(40):
        submit(world, f"c{index}")
        if index % 2:
            settle(world, f"c{index}")
    base = checkpoint.Base(world.state.last_lsn, world.state.clone(), (world.state.last_lsn,))
    base_document = checkpoint.pack(_encode(base.state))
    for command_id in ("c2", "c0"):  # replaced in place: their records are new objects
        outcome = lifecycle.decide_adapter_report(world.state, "shell-1", command_id, "delivered", None, None, None)
        world.fold(outcome.facts)
    for index in range(40, 46):  # new ones; the window archives older settled ones
        submit(world, f"c{index}")
        settle(world, f"c{index}")
    changes = _delta(world.state, base)
    assert changes is not None and changes.base_lsn == base.lsn
    assert changes.changed["commands"][:2] == ["c0", "c2"]  # in the state's order
    assert set(changes.changed["commands"]) <= {"c0", "c2", *(f"c{i}" for i in range(40, 46))}
    # archived since the base: full records of the base that left the window, and new ones
    assert changes.changed["archived"] == [*changes.removed["commands"], "c40", "c41"]
    assert changes.removed["archived"] == []
    assert changes.changed["idempotency"] == [f"k-c{i}" for i in range(40, 46)]
    delta = _encode(world.state, changes)
    assert len(delta) < len(_encode(world.state)) / 2
    decoded = checkpoint.decode_state(checkpoint.pack(delta), base_document)
    assert decoded is not None and _in_order(decoded) == _in_order(world.state)
    for _ in range(3):  # more changes: the delta against the same base holds them too
        submit(world, f"c{len(world.state.idempotency)}")
    later = checkpoint.decode_state(_encode(world.state, _delta(world.state, base)), base_document)
    assert later is not None and _in_order(later) == _in_order(world.state)


def test_a_delta_is_refused_when_it_could_not_rebuild_the_order_or_would_hold_most_of_the_state() -> None:
    world = ready_world()
    for index in range(10):
        submit(world, f"c{index}")
    base = checkpoint.Base(world.state.last_lsn, world.state.clone(), (world.state.last_lsn,))
    moved = world.state.clone()
    moved.idempotency["k-c3"] = moved.idempotency.pop("k-c3")  # removed and added again: now last
    assert _delta(moved, base) is None
    behind = world.state.clone()
    behind.idempotency = {"new": "c9", **behind.idempotency}  # a new key before the base's keys
    assert _delta(behind, base) is None
    for index in range(10, 40):
        submit(world, f"c{index}")
    assert _delta(world.state, base) is None  # more than half of the entries are new
    assert _delta(world.state, checkpoint.Base(world.state.last_lsn, world.state.clone(), (world.state.last_lsn,))) is not None


def test_a_delta_without_its_base_is_not_a_state() -> None:
    world = ready_world()
    submit(world, "c0")
    base = checkpoint.Base(world.state.last_lsn, world.state.clone(), (world.state.last_lsn,))
    submit(world, "c1")
    delta = _encode(world.state, _delta(world.state, base))
    assert checkpoint.decode_state(delta) is None
    assert checkpoint.decode_state(delta, delta) is None  # a delta is never a base
    with pytest.raises(ValueError, match="needs its base"):
        checkpoint.state_of(checkpoint.read_document(delta) or {})


def test_packing_the_pieces_gives_the_stored_form_of_the_joined_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "_PACK_GROUP", 100)
    world = ready_world()
    for index in range(50):
        submit(world, f"c{index}")
    out: list[bytes] = []
    for _ in checkpoint.encode_state_steps(world.state, out):
        pass
    packed = checkpoint.pack_pieces(out)
    assert checkpoint.unpack(packed) == encode_state(world.state)
    assert checkpoint.decode_state(packed) == world.state
