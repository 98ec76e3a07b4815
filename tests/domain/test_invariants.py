"""The journal checker's command rules, pair by pair, against the registry's transition table."""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs
import pytest

from patchbay.domain.events import EventKind
from patchbay.domain.invariants import JournalChecker
from patchbay.registry import COMMAND_TRANSITIONS, CommandState


@attrs.frozen
class Raw:
    lsn: int
    kind: str
    ts: float
    payload: dict[str, Any]


def _path_to(state: CommandState) -> list[CommandState]:
    """The shortest allowed walk from accepted to ``state`` (breadth first over the table)."""
    walks: deque[list[CommandState]] = deque([[CommandState.accepted]])
    while walks:
        walk = walks.popleft()
        if walk[-1] is state:
            return walk[1:]
        walks.extend([*walk, nxt] for nxt in COMMAND_TRANSITIONS.get(walk[-1], ()) if nxt not in walk)
    raise AssertionError(f"{state} cannot be reached")


def _journal(states: list[Any], *, as_enums: bool, frame: bool = True) -> list[Raw]:
    def kind(k: EventKind) -> str:
        return k if as_enums else k.value

    events = [
        Raw(1, kind(EventKind.grant_created), 1.0, {"grant_id": "g", "subject": "op", "kinds": ["instruct"]}),
        Raw(2, kind(EventKind.command_accepted), 2.0, {
            "command_id": "c1", "idempotency_key": "k1", "kind": "instruct", "target": "a/s", "adapter_id": "a",
            "runtime_session_id": "s", "generation": 1, "grant_id": "g", "deployment_scope": "",
            "issuer": {"operator_id": "op", "endpoint_id": "e", "session_id": "x"}}),
    ]
    for state in states:
        payload: dict[str, Any] = {"command_id": "c1", "state": state}
        if frame:
            payload["adapter_frame"] = ["a", 1, len(events)]
        events.append(Raw(len(events) + 1, kind(EventKind.command_transitioned), 3.0, payload))
    return events


PAIRS = [(current, target) for current in CommandState for target in CommandState]


@pytest.mark.parametrize("as_enums", [False, True], ids=["str-kinds", "enum-kinds"])
@pytest.mark.parametrize("current, target", PAIRS, ids=[f"{c.value}->{t.value}" for c, t in PAIRS])
def test_every_transition_is_judged_by_the_registry_table_with_the_same_message(
        current: CommandState, target: CommandState, as_enums: bool) -> None:
    checker = JournalChecker()
    lsn = len(_path_to(current)) + 3
    checker.check_all(_journal([s.value for s in [*_path_to(current), target]], as_enums=as_enums))
    if current.terminal:
        expected = [f"TerminalFinality violated at LSN {lsn}: command c1 moved from terminal {current.value} "
                    f"to {target.value}"]
    elif target not in COMMAND_TRANSITIONS[current]:
        expected = [f"TerminalFinality violated at LSN {lsn}: command c1: {current.value} -> {target.value} "
                    "is not an allowed transition"]
    else:
        expected = []
    assert [str(v) for v in checker.violations] == expected
    assert checker.command_states() == {"c1": (current if expected else target).value}


def test_running_to_completed_without_the_adapter_reporting_it_is_flagged() -> None:
    checker = JournalChecker()
    checker.check_all(_journal(["delivered", "running", "completed"], as_enums=False, frame=False))
    assert [str(v) for v in checker.violations] == [
        "TimeoutNeitherSuccessNorDenial violated at LSN 5: command c1 completed without its adapter reporting it"]


def test_a_state_that_is_no_command_state_is_an_error_not_a_silent_pass() -> None:
    with pytest.raises(ValueError, match="'exploded' is not a valid CommandState"):
        JournalChecker().check_all(_journal(["delivered", "exploded"], as_enums=False))
