"""A bench adapter process: the real adapter link (``patchbay_adapters.common.link``) with a
runtime that reports N live sessions, optionally completes every delivered command at once,
and optionally streams output deltas (observation frames) at a fixed rate.

Prints ``bench adapter ready`` once every session report is acknowledged, and
``bench adapter streamed N`` when a streaming period ends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import trio
from patchbay_adapters.common.link import AdapterLink, next_generation, read_credential


class BenchRuntime:
    def __init__(self, sessions: int, complete: bool) -> None:
        self.names = [f"s{index:03d}" for index in range(sessions)]
        self.complete = complete
        self.link: AdapterLink | None = None
        self.reported = trio.Event()

    def manifest(self) -> dict[str, Any]:
        return {"kinds": ["instruct", "cancel", "interrupt", "query"], "cancellation": True,
                "idempotency": "at-patchbay-boundary", "snapshot_tier": "authoritative"}

    async def attached(self) -> None:
        assert self.link is not None
        for name in self.names[:-1]:
            await self.link.session(name, 1, activity="idle", snapshot_tier="authoritative")
        await self.link.session(self.names[-1], 1, activity="idle", snapshot_tier="authoritative", wait=True)
        self.reported.set()

    async def deliver(self, command: dict[str, Any]) -> None:
        if self.complete and self.link is not None:
            await self.link.report(command["command_id"], "completed", result={"exit_code": 0})

    async def withdraw(self, command_id: str, reason: str) -> None:
        return None


async def stream(link: AdapterLink, names: list[str], rate: float, seconds: float) -> int:
    """Send observation frames at ``rate`` per second over ``names`` for ``seconds``, a tick's
    worth at a time. What is due is counted from the start, so a late wake-up of this process
    catches up; frames the core did not take in time (the link pushes back) are not sent, and
    the count falls short of ``rate * seconds``."""
    tick = 0.01
    total = int(rate * seconds)
    sent = 0
    begin = trio.current_time()
    while (elapsed := trio.current_time() - begin) < seconds:
        due = min(total, int(rate * (elapsed + tick)))
        while sent < due:
            name = names[sent % len(names)]
            await link.observe(name, 1, {"type": "output", "text": f"delta {sent}\n"}, activity="working")
            sent += 1
        await trio.sleep_until(begin + tick * (1 + int(elapsed / tick)))
    return sent


async def main(args: argparse.Namespace) -> None:
    credential_file = Path(args.credential_file)
    runtime = BenchRuntime(args.sessions, args.complete)
    link = AdapterLink(adapter_id=args.id, core_url=args.url, credential=read_credential(credential_file),
                       deployment_scope="bench", generation=next_generation(credential_file), runtime=runtime)
    runtime.link = link
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        await runtime.reported.wait()
        print("bench adapter ready", flush=True)
        if args.deltas > 0:
            names = runtime.names[: max(1, args.stream_sessions)]
            sent = await stream(link, names, args.deltas, args.stream_seconds)
            print(f"bench adapter streamed {sent}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--id", default="bench")
    parser.add_argument("--credential-file", required=True)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--complete", action="store_true")
    parser.add_argument("--deltas", type=float, default=0.0)
    parser.add_argument("--stream-sessions", type=int, default=1)
    parser.add_argument("--stream-seconds", type=float, default=0.0)
    try:
        trio.run(main, parser.parse_args())
    except KeyboardInterrupt:
        sys.exit(0)
