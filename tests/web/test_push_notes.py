"""What is pushed (pure): from committed events, with the state they left; never any text."""

from __future__ import annotations

import json
from typing import Any

from patchbay.domain import lifecycle
from patchbay.domain.acceptance import Submission, decide_submission
from patchbay.domain.events import EventKind, Fact
from patchbay.web._push_notes import notification_for
from tests.domain.builders import ISSUER, World, ready_world

SECRET = "rm -rf the-secret-project"


def run(world: World, command_id: str, *steps: tuple[str, str | None], start: float = 1000.0, took: float = 0.0) -> Any:
    submission = Submission(command_id=command_id, idempotency_key=command_id, kind="instruct",
                            target="shell-1/demo", payload={"text": SECRET})
    world.fold(decide_submission(world.state, submission, ISSUER, world.now).facts)
    last = None
    for state, failure in steps:
        world.now = start + (took if state not in ("delivered", "running") else 0.0)
        outcome = lifecycle.decide_adapter_report(world.state, "shell-1", command_id, state, failure,
                                                  {"exit_code": 0} if state == "completed" else None, None)
        assert outcome.ok, outcome
        last = world.fold(outcome.facts)[-1]
    return last


def note(world: World, event: Any, finished_after_s: float = 20.0) -> dict[str, Any] | None:
    found = notification_for(event, world.state, finished_after_s)
    assert found is None or SECRET not in json.dumps(found)
    return found


def test_commands_that_end_badly_or_run_long_are_pushed_quick_ones_are_not() -> None:
    world = ready_world()
    failed = note(world, run(world, "c-1", ("delivered", None), ("running", None), ("failed", "execution_failed")))
    assert failed is not None and (failed["kind"], failed["state"], failed["command_id"]) == ("command", "failed", "c-1")
    assert failed["tag"] == "session:shell-1/demo" and failed["url"] == "/#/session/shell-1/demo"
    unknown = note(world, run(world, "c-2", ("delivered", None), ("failed", "execution_outcome_unknown")))
    assert unknown is not None and unknown["failure"] == "execution_outcome_unknown"
    assert note(world, run(world, "c-3", ("delivered", None), ("running", None), ("completed", None), took=5)) is None
    long = note(world, run(world, "c-4", ("delivered", None), ("running", None), ("completed", None), took=30))
    assert long is not None and long["state"] == "completed" and long["title"] == "Message finished"
    assert note(world, run(world, "c-5", ("delivered", None))) is None


def test_an_approval_waiting_is_pushed_without_its_title_and_offline_only_with_work_running() -> None:
    world = ready_world()
    opened = world.fold([Fact(EventKind.elicitation_opened, "elicitation:e-1", {
        "elicitation_id": "e-1", "elicitation_kind": "approval", "target": "shell-1/demo", "generation": 1,
        "command_id": None, "title": SECRET, "body": SECRET, "options": [], "expires_at": None})])[-1]
    found = note(world, opened)
    assert found is not None and (found["kind"], found["state"], found["elicitation_id"]) == ("approval", "pending", "e-1")
    assert found["body"] == "demo (shell-1/demo)"

    def offline(world: World) -> Any:
        return world.fold([Fact(EventKind.session_connectivity, "session:shell-1/demo", {
            "target": "shell-1/demo", "generation": 1, "connectivity": "offline", "reason": "silent"})])[-1]

    assert note(world, offline(world)) is None  # nothing was running
    busy = ready_world()
    run(busy, "c-9", ("delivered", None), ("running", None))
    gone = note(busy, offline(busy))
    assert gone is not None and (gone["kind"], gone["state"]) == ("session", "offline")
