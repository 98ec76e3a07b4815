"""Command transitions, generation rules, leases and the journal checker."""

from __future__ import annotations

from patchbay.domain import access, lifecycle
from patchbay.domain.acceptance import Submission, decide_submission
from patchbay.domain.events import EventKind, Fact
from patchbay.domain.invariants import JournalChecker
from patchbay.registry import CommandState, Failure
from tests.domain.builders import ISSUER, World, ready_world


def accepted_world(command_id: str = "c1") -> World:
    world = ready_world()
    submission = Submission(command_id=command_id, idempotency_key=f"k-{command_id}", kind="instruct",
                            target="shell-1/demo", payload={"text": "true"})
    world.fold(decide_submission(world.state, submission, ISSUER, world.now).facts)
    return world


def report(world: World, state: str, failure: str | None = None, command_id: str = "c1") -> lifecycle.Outcome:
    outcome = lifecycle.decide_adapter_report(world.state, "shell-1", command_id, state, failure, None, None)
    world.fold(outcome.facts)
    return outcome


def test_first_durable_terminal_wins_and_a_late_outcome_is_recorded_not_applied() -> None:
    world = accepted_world()
    report(world, "delivered")
    report(world, "running")
    report(world, "cancelled", "cancelled")
    late = report(world, "completed")
    record = world.state.commands["c1"]
    assert record.state is CommandState.cancelled
    assert [f.kind.value for f in late.facts] == ["command.late_outcome"]
    assert record.late_outcomes[-1]["candidate_state"] == "completed"


def test_same_terminal_report_twice_is_a_no_op() -> None:
    world = accepted_world()
    report(world, "delivered")
    report(world, "completed")
    assert report(world, "completed").facts == ()


def test_reducer_never_rewrites_a_terminal_state_even_if_the_journal_says_so() -> None:
    world = accepted_world()
    world.fold([Fact(EventKind.command_transitioned, "command:c1", {"command_id": "c1", "state": "failed",
                                                                    "failure": "execution_failed"})])
    world.fold([Fact(EventKind.command_transitioned, "command:c1", {"command_id": "c1", "state": "completed"})])
    assert world.state.commands["c1"].state is CommandState.failed
    violations = JournalChecker().check_all(world.events)
    assert [v.property for v in violations] == ["TerminalFinality"]


def test_disallowed_transition_is_refused() -> None:
    world = accepted_world()
    outcome = report(world, "running")
    assert not outcome.ok and world.state.commands["c1"].state is CommandState.accepted


def test_a_report_for_another_adapters_command_is_refused() -> None:
    world = accepted_world()
    outcome = lifecycle.decide_adapter_report(world.state, "intruder", "c1", "completed", None, None, None)
    assert not outcome.ok and outcome.facts == ()


def test_greater_generation_supersedes_tombstones_and_supersedes_queued_commands() -> None:
    world = accepted_world()
    outcome = lifecycle.decide_session_report(world.state, "shell-1", "host", "demo", 2, "demo", {}, "idle",
                                              "authoritative")
    world.fold(outcome.facts)
    session = world.state.sessions["shell-1/demo"]
    assert session.generation == 2 and session.tombstoned == (1,)
    assert world.state.commands["c1"].state is CommandState.superseded


def test_lower_generation_is_rejected_and_audited() -> None:
    world = ready_world().session(generation=3)
    outcome = lifecycle.decide_session_report(world.state, "shell-1", "host", "demo", 2, "demo", {}, "idle", "none")
    assert not outcome.ok and [f.kind.value for f in outcome.facts] == ["session.generation_rejected"]
    world.fold(outcome.facts)
    assert world.state.sessions["shell-1/demo"].generation == 3


def test_event_for_a_tombstoned_generation_is_a_stale_event() -> None:
    world = ready_world().session(generation=2)
    session, stale = lifecycle.live_session(world.state, "shell-1", "demo", 1, "observation")
    assert session is None and stale is not None and stale.stale
    assert [f.kind.value for f in stale.facts] == ["session.stale_event"]


def test_adapter_loss_gives_running_commands_an_unknown_outcome() -> None:
    world = accepted_world()
    report(world, "delivered")
    report(world, "running")
    world.fold(lifecycle.decide_adapter_lost(world.state, "shell-1", new_attachment=False).facts)
    record = world.state.commands["c1"]
    assert (record.state, record.failure) == (CommandState.failed, Failure.execution_outcome_unknown)


def test_cancel_of_an_undelivered_command_is_settled_by_the_core() -> None:
    world = accepted_world()
    cancel = Submission(command_id="x1", idempotency_key="kx1", kind="cancel", target="shell-1/demo",
                        payload={"command_id": "c1"})
    world.fold(decide_submission(world.state, cancel, ISSUER, world.now).facts)
    outcome, deliver = lifecycle.decide_core_cancel(world.state, world.state.commands["x1"])
    world.fold(outcome.facts)
    assert not deliver
    assert world.state.commands["c1"].state is CommandState.cancelled
    assert world.state.commands["x1"].result == {"target_command_id": "c1", "effect": "cancelled",
                                                 "target_state": "cancelled"}


def test_lease_is_exclusive_until_it_expires() -> None:
    world = ready_world()
    world.fold(access.decide_lease_acquire(world.state, "l1", "dir:/x", "a", "holder-1", 10, world.now).facts)
    second = access.decide_lease_acquire(world.state, "l2", "dir:/x", "a", "holder-2", 10, world.now)
    assert not second.ok and "holder-1" in (second.error or "")
    world.now += 11
    third = access.decide_lease_acquire(world.state, "l3", "dir:/x", "a", "holder-2", 10, world.now)
    assert third.ok
    world.fold(third.facts)
    assert JournalChecker().check_all(world.events) == []


def test_checker_flags_two_live_lease_holders() -> None:
    world = ready_world()
    world.fold([Fact(EventKind.lease_acquired, "lease:a", {"lease_id": "a", "resource": "r", "scope": "s",
                                                           "holder": "h1", "expires_at": world.now + 60}),
                Fact(EventKind.lease_acquired, "lease:b", {"lease_id": "b", "resource": "r", "scope": "s",
                                                           "holder": "h2", "expires_at": world.now + 60})])
    assert [v.property for v in JournalChecker().check_all(world.events)] == ["LeaseExclusive"]


def test_checker_flags_a_second_acceptance_of_one_key() -> None:
    world = accepted_world()
    duplicate = dict(world.events[-1].payload, command_id="c2")
    world.fold([Fact(EventKind.command_accepted, "command:c2", duplicate)])
    assert "BoundaryDedup" in [v.property for v in JournalChecker().check_all(world.events)]


def test_checker_flags_acceptance_after_grant_revocation() -> None:
    world = ready_world()
    accepted = decide_submission(world.state, Submission("c1", "k1", "instruct", "shell-1/demo", {"text": "x"}),
                                 ISSUER, world.now).facts
    world.fold(access.decide_grant_revocation(world.state, "grant-1", "t").facts)
    world.fold(accepted)
    assert "RevocationPreventsFuture" in [v.property for v in JournalChecker().check_all(world.events)]
