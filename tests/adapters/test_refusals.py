"""Unauthenticated refusals cost bounded journal space (``core/_refusals.py``): ids are cut and
hashed, a flood is recorded as ``burst`` records and one summary when the window ends."""

from __future__ import annotations

from typing import Any, cast

import trio

from patchbay.core import Core
from patchbay.core._refusals import BURSTS, WINDOW, BoundedAudit, bounded_id
from patchbay.domain.events import EventKind
from patchbay.wire import _admit


class FakeClock:
    def __init__(self) -> None:
        self.at = 1000.0

    def now(self) -> float:
        return self.at


class FakeCore:
    def __init__(self) -> None:
        self.records: list[tuple[EventKind, str, dict[str, Any]]] = []
        self.armed: dict[Any, float] = {}
        self.clock = FakeClock()
        self.timers = self

    async def record(self, kind: EventKind, entity: str, payload: dict[str, Any]) -> None:
        self.records.append((kind, entity, payload))

    def arm(self, key: Any, deadline: float) -> None:
        self.armed[key] = deadline


def test_a_flood_is_burst_records_then_one_summary_per_window() -> None:
    core = FakeCore()
    audit = BoundedAudit(cast(Core, core))

    async def flood(count: int) -> None:
        for index in range(count):
            ident = bounded_id(f"id-{index}-" + "x" * 10_000 + "\ud83d")
            await audit.refused("hello", EventKind.protocol_error, "adapter:x", {**ident, "reason": "bad"},
                                ident["adapter_id"])

    trio.run(flood, 100)
    burst = BURSTS["hello"]
    assert len(core.records) == burst
    assert core.armed == {("refusal-summary", "hello"): 1000.0 + WINDOW}
    core.clock.at += WINDOW
    trio.run(audit.flush, "hello")
    assert len(core.records) == burst + 1
    summary = core.records[-1][2]
    assert summary["suppressed"] == 100 - burst and len(summary["samples"]) == 5
    for _, _, payload in core.records:
        _admit.check(payload)
        assert len(str(payload)) < 2_000
        assert len(payload["adapter_id"]) <= 65 and len(payload["adapter_id_sha256"]) == 64
    trio.run(flood, 3)  # a new window: recorded one by one again
    assert len(core.records) == burst + 4
    trio.run(audit.flush, "hello")  # nothing suppressed: no summary
    assert len(core.records) == burst + 4


def test_a_plain_short_id_is_kept_as_is() -> None:
    assert bounded_id("shell-1") == {"adapter_id": "shell-1"}
    assert bounded_id(7)["adapter_id"] == "'int'"
