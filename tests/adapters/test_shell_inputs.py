"""No single command takes the shell adapter down (issue #14, item 6): a command line that
cannot be started (a lone surrogate cannot be encoded, a NUL cannot be passed) fails with a
clear reason, an unreadable delivery is rejected, and the commands queued behind them run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.shell.runtime import ShellRuntime

from patchbay.registry import CommandState
from patchbay.wire import _admit

TERMINAL = {CommandState.completed, CommandState.failed, CommandState.rejected, CommandState.cancelled}


class RecordingLink:
    """Just enough of ``AdapterLink`` for a runtime: every frame is acknowledged and kept."""

    adapter_id = "shell-t"

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.changed = trio.Event()

    async def send(self, frame_type: str, *, wait: bool = False, timeout: float = 30.0,
                   **fields: Any) -> dict[str, Any] | None:
        if frame_type == "report":
            self.reports.append(fields)
            self.changed.set()
        return {"type": "ack", "seq": len(self.reports)}

    async def report(self, command_id: str, state: str, *, failure: str | None = None,
                     result: dict[str, Any] | None = None, reason: str | None = None) -> None:
        await self.send("report", command_id=command_id, state=state, failure=failure, result=result, reason=reason)

    async def session(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def observe(self, *args: Any, **kwargs: Any) -> None:
        pass

    def final(self, command_id: str) -> dict[str, Any] | None:
        return next((r for r in reversed(self.reports) if r["command_id"] == command_id and r["state"] in TERMINAL),
                    None)


def instruct(command_id: str, text: Any) -> dict[str, Any]:
    return {"command_id": command_id, "idempotency_key": command_id, "kind": "instruct", "target": "shell-t/w",
            "runtime_session_id": "w", "generation": 1, "payload": {"text": text}, "state": "accepted"}


def test_a_command_that_cannot_start_fails_and_the_queue_behind_it_runs(tmp_path: Path) -> None:
    link = RecordingLink()
    runtime = ShellRuntime({"w": tmp_path})
    wanted = ["surrogate", "nul", "not-text", "no-kind", "after"]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run, link)
            await runtime.deliver(instruct("surrogate", "echo \ud83d"))
            await runtime.deliver(instruct("nul", "echo a\x00b"))
            await runtime.deliver(instruct("not-text", ["echo", "list"]))
            await runtime.deliver({"command_id": "no-kind", "runtime_session_id": "w"})
            await runtime.deliver(instruct("after", "echo still running"))
            with trio.fail_after(20):
                while not all(link.final(c) for c in wanted):
                    link.changed = trio.Event()
                    await link.changed.wait()
            nursery.cancel_scope.cancel()

    trio.run(main)
    for command_id in ("surrogate", "nul", "not-text"):
        final = link.final(command_id)
        assert final is not None and (final["state"], final["failure"]) == ("failed", "execution_failed"), final
        assert final["reason"].startswith("could not start:")
    rejected = link.final("no-kind")
    assert rejected is not None and (rejected["state"], rejected["failure"]) == ("rejected", "delivery_rejected")
    after = link.final("after")
    assert after is not None and after["state"] == "completed" and after["result"]["output"] == "still running\n"
    for report in link.reports:  # every report is one the core admits
        _admit.check(report)
