"""The event bus: committed events, in LSN order, to bounded subscribers that are cut off when slow."""

from __future__ import annotations

from pathlib import Path

import trio

from patchbay.core.bus import EventBus
from tests.core.harness import running_core


async def test_subscribers_get_every_committed_event_once_in_lsn_order(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        with h.core.bus.subscribe(capacity=10_000) as subscription:
            first = h.core.state.last_lsn + 1
            await h.login()
            adapter = await h.adapter()
            await adapter.attach()
            await adapter.session()
            async with trio.open_nursery() as nursery:
                for n in range(20):
                    nursery.start_soon(h.submit, f"c{n}", "echo")
            await h.settle()
            received = []
            while True:
                try:
                    received.append(subscription.receive.receive_nowait())
                except trio.WouldBlock:
                    break
        assert [e.lsn for e in received] == list(range(first, h.core.state.last_lsn + 1))
        assert sum(1 for e in received if e.kind == "command.accepted") == 20


async def test_a_slow_subscriber_is_cut_off_instead_of_buffered_or_slowing_the_journal() -> None:
    bus: EventBus[int] = EventBus()
    slow = bus.subscribe(capacity=2)
    fast = bus.subscribe(capacity=100)
    bus.publish([1, 2, 3])  # never waits
    assert slow.overflowed and not fast.overflowed
    assert bus.subscriber_count == 1
    assert [slow.receive.receive_nowait(), slow.receive.receive_nowait()] == [1, 2]
    try:
        slow.receive.receive_nowait()
    except trio.EndOfChannel:
        pass  # closed: it resumes from its cursor through the journal, like a reconnecting client
    else:
        raise AssertionError("an overflowed subscription must be closed")
    bus.publish([4])
    assert [fast.receive.receive_nowait() for _ in range(4)] == [1, 2, 3, 4]
