"""A checkpoint's steps in the event loop take a bounded share of it (``_state._Pace``)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import trio

from patchbay.core._state import _Pace


def steps(clock: Any, count: int, each: float, worked: list[float]) -> Generator[None, None, str]:
    for _ in range(count):
        clock.jump(each)  # a step that took ``each`` seconds of the loop
        worked.append(each)
        yield
    return "done"


async def test_a_small_checkpoint_runs_at_once(autojump_clock: Any) -> None:
    begin = trio.current_time()
    worked: list[float] = []
    assert await _Pace().run(steps(autojump_clock, 4, 0.001, worked)) == "done"
    assert trio.current_time() - begin == sum(worked)  # under FREE: no pause between steps


async def test_a_large_checkpoint_takes_at_most_its_share_of_the_loop(autojump_clock: Any) -> None:
    begin = trio.current_time()
    worked: list[float] = []
    assert await _Pace().run(steps(autojump_clock, 200, 0.001, worked)) == "done"
    elapsed = trio.current_time() - begin
    assert elapsed > 0.9 * sum(worked) / _Pace.SHARE  # paused after each step beyond FREE
    assert sum(worked) / elapsed <= _Pace.SHARE * 1.1
