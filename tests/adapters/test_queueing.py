"""The queue both agent adapters share: a cancel of a command that still waits takes it out."""

from __future__ import annotations

from collections import deque
from typing import Any, cast

from patchbay_adapters.common.link import AdapterLink
from patchbay_adapters.common.queueing import cancel_queued


class Reports:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def report(self, command_id: str, state: str, **fields: Any) -> None:
        self.sent.append((command_id, state, fields))


class FakeSlot:
    def __init__(self, *ids: str) -> None:
        self.queue: deque[dict[str, Any]] = deque({"command_id": i} for i in ids)
        self.reports = Reports()
        self.link = cast(AdapterLink, self.reports)
        self.session_reports = 0

    async def report_session(self, *, wait: bool = False) -> None:
        self.session_reports += 1

    def notify(self) -> None:
        return None


async def test_a_queued_target_is_cancelled_before_it_starts_and_the_cancel_completes() -> None:
    slot = FakeSlot("a", "b", "c")
    assert await cancel_queued(slot, "stop-1", "b")
    assert [q["command_id"] for q in slot.queue] == ["a", "c"]
    (target, target_state, target_fields), (cancel, cancel_state, cancel_fields) = slot.reports.sent
    assert (target, target_state, target_fields["failure"]) == ("b", "cancelled", "cancelled")
    assert (cancel, cancel_state) == ("stop-1", "completed")
    assert cancel_fields["result"] == {"target_command_id": "b", "effect": "cancelled"}
    assert slot.session_reports == 1


async def test_a_target_not_in_the_queue_or_none_is_left_to_the_running_turn() -> None:
    slot = FakeSlot("a")
    assert not await cancel_queued(slot, "stop-1", "zz")
    assert not await cancel_queued(slot, "stop-2", None)
    assert [q["command_id"] for q in slot.queue] == ["a"] and slot.reports.sent == []
    assert slot.session_reports == 0
