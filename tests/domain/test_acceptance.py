"""The acceptance pipeline (SPEC §5), decided purely."""

from __future__ import annotations

import attrs
import pytest

from patchbay.domain import access
from patchbay.domain.acceptance import Submission, decide_submission
from patchbay.domain.events import EventKind, Fact
from patchbay.registry import Failure, SubmissionOutcome
from tests.domain.builders import ISSUER, World, ready_world


def instruct(command_id: str = "c1", key: str = "k1", text: str = "echo hi", **extra: object) -> Submission:
    return Submission(command_id=command_id, idempotency_key=key, kind="instruct", target="shell-1/demo",
                      payload={"text": text}, **extra)  # type: ignore[arg-type]


def test_valid_submission_is_accepted_with_one_accepted_fact() -> None:
    world = ready_world()
    decision = decide_submission(world.state, instruct(), ISSUER, world.now)
    assert decision.outcome is SubmissionOutcome.accepted
    assert [f.kind.value for f in decision.facts] == ["command.accepted"]
    world.fold(decision.facts)
    record = world.state.commands["c1"]
    assert (record.state.value, record.generation, record.grant_id) == ("accepted", 1, "grant-1")


@pytest.mark.parametrize(
    ("submission", "failure"),
    [
        (instruct(command_id=""), Failure.validation_failed),
        (instruct(key="has space"), Failure.validation_failed),
        (attrs.evolve(instruct(), kind="teleport"), Failure.validation_failed),
        (attrs.evolve(instruct(), target="no-slash"), Failure.validation_failed),
        (instruct(text="   "), Failure.validation_failed),
        (attrs.evolve(instruct(), target="shell-1/missing"), Failure.target_not_found),
        (instruct(generation=7), Failure.target_not_found),
        (instruct(expires_at=10.0), Failure.expired),
    ],
)
def test_bad_submissions_are_rejected_before_any_command_record(submission: Submission, failure: Failure) -> None:
    world = ready_world()
    decision = decide_submission(world.state, submission, ISSUER, world.now)
    assert (decision.outcome, decision.failure) == (SubmissionOutcome.rejected, failure)
    world.fold(decision.facts)
    assert world.state.commands == {}
    assert [f.kind.value for f in decision.facts] == ["submission.refused"]


def test_retry_with_same_id_and_key_returns_the_existing_record() -> None:
    world = ready_world()
    world.fold(decide_submission(world.state, instruct(), ISSUER, world.now).facts)
    again = decide_submission(world.state, instruct(), ISSUER, world.now)
    assert again.outcome is SubmissionOutcome.accepted and again.duplicate and again.facts == ()
    assert again.command_id == "c1"


def test_retry_with_same_key_and_different_payload_is_rejected() -> None:
    world = ready_world()
    world.fold(decide_submission(world.state, instruct(), ISSUER, world.now).facts)
    other = decide_submission(world.state, instruct(text="rm -rf /"), ISSUER, world.now)
    assert (other.outcome, other.failure) == (SubmissionOutcome.rejected, Failure.validation_failed)
    assert "different request" in other.reason


def test_same_key_with_a_new_command_id_is_rejected_and_names_the_owner() -> None:
    world = ready_world()
    world.fold(decide_submission(world.state, instruct(), ISSUER, world.now).facts)
    other = decide_submission(world.state, instruct(command_id="c2"), ISSUER, world.now)
    assert other.outcome is SubmissionOutcome.rejected and "c1" in other.reason


def test_retry_after_terminal_returns_the_terminal_record_even_if_the_target_went_offline() -> None:
    world = ready_world()
    world.fold(decide_submission(world.state, instruct(), ISSUER, world.now).facts)
    world.session(connectivity="offline")
    again = decide_submission(world.state, instruct(), ISSUER, world.now)
    assert again.outcome is SubmissionOutcome.accepted and again.duplicate


def test_no_grant_for_the_kind_means_authorization_denied() -> None:
    world = World().operator(grant_kinds=["query"]).adapter().session()
    decision = decide_submission(world.state, instruct(), ISSUER, world.now)
    assert decision.failure is Failure.authorization_denied


def test_grant_scoped_to_another_session_does_not_authorize() -> None:
    world = World().operator(scope={"type": "session", "target": "shell-1/other"}).adapter().session()
    assert decide_submission(world.state, instruct(), ISSUER, world.now).failure is Failure.authorization_denied


def test_revoked_grant_stops_new_acceptance() -> None:
    world = ready_world()
    world.fold(access.decide_grant_revocation(world.state, "grant-1", "test").facts)
    assert decide_submission(world.state, instruct(), ISSUER, world.now).failure is Failure.authorization_denied


def test_issuer_with_a_foreign_endpoint_is_refused() -> None:
    world = ready_world()
    forged = attrs.evolve(ISSUER, endpoint_id="end-other")
    decision = decide_submission(world.state, instruct(), forged, world.now)
    assert decision.failure is Failure.authorization_denied and "endpoint" in decision.reason


def test_lockdown_rejects_every_new_submission() -> None:
    world = ready_world()
    world.fold(access.decide_lockdown_enter(world.state, "stolen laptop", "test").facts)
    # Lockdown also ends every operator session, so the issuer check refuses first.
    decision = decide_submission(world.state, instruct(), ISSUER, world.now)
    assert decision.failure is Failure.authorization_denied


def test_offline_target_is_rejected_as_target_offline() -> None:
    world = ready_world().session(connectivity="offline")
    assert decide_submission(world.state, instruct(), ISSUER, world.now).failure is Failure.target_offline


def question_world(options: list[str]) -> World:
    world = ready_world()
    world.fold([Fact(EventKind.elicitation_opened, "elicitation:q1", {
        "elicitation_id": "q1", "elicitation_kind": "question", "target": "shell-1/demo", "generation": 1,
        "title": "Pick one", "options": options})])
    return world


def answer(value: object = None, *, decline: bool = False) -> Submission:
    payload: dict[str, object] = {"elicitation_id": "q1"}
    payload.update({"decline": True} if decline else {"answer": value})
    return Submission(command_id="a1", idempotency_key="a1", kind="elicitation-response", target="shell-1/demo",
                      payload=payload)


def test_a_choice_question_accepts_only_one_of_its_options() -> None:
    world = question_world(["red", "blue"])
    refused = decide_submission(world.state, answer("green"), ISSUER, world.now)
    assert (refused.outcome, refused.failure) == (SubmissionOutcome.rejected, Failure.validation_failed)
    assert "'red', 'blue'" in refused.reason
    assert world.state.elicitations["q1"].state.value == "pending"
    accepted = decide_submission(world.state, answer("blue"), ISSUER, world.now)
    assert accepted.outcome is SubmissionOutcome.accepted
    declined = decide_submission(world.state, answer(decline=True), ISSUER, world.now)
    assert declined.outcome is SubmissionOutcome.accepted


def test_a_free_text_question_accepts_any_answer() -> None:
    world = question_world([])
    decision = decide_submission(world.state, answer("anything at all"), ISSUER, world.now)
    assert decision.outcome is SubmissionOutcome.accepted
