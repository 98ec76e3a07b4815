"""Submit commands to a core as fast as possible; print each id once it is accepted.

Run: python -m tests.support.crash_writer JOURNAL. Used by the crash test, which kills this
process with SIGKILL at a random moment and checks that every printed id survived.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from patchbay.core import Core, initialize_journal
from patchbay.domain.acceptance import Submission
from patchbay.domain.model import Issuer
from patchbay.wire import adapter as wire

DOMAIN = "dom-crash"


async def main(path: Path) -> None:
    core = Core(path, expected_domain=DOMAIN)
    async with trio.open_nursery() as nursery:
        await nursery.start(core.run)
        if "shell-1" not in core.state.adapters:
            await core.adapters.register("shell-1", "shell", "credential")
        _, hello = wire.decode_frame(json.dumps({
            "type": "hello", "protocol": 1, "adapter_id": "shell-1", "credential": "credential",
            "adapter_generation": core.core_generation, "deployment_scope": "crash", "manifest": {"kinds": ["instruct"]}}))
        connection = await core.adapters.attach(hello)
        await core.adapters.handle(connection, json.dumps({
            "type": "session", "seq": 1, "runtime_session_id": "demo", "generation": 1,
            "snapshot_tier": "authoritative"}))
        login = await core.create_operator_session(session_kind="cli", address="local", label="crash")
        issuer = Issuer(login.operator_id, login.endpoint_id, login.session_id, "cli")
        base = f"g{core.core_generation}"
        sys.stdout.write("ready\n")
        sys.stdout.flush()

        async def submitter(lane: int) -> None:
            number = 0
            while True:
                number += 1
                command_id = f"{base}-{lane}-{number}"
                result = await core.submit(Submission(command_id, command_id, "instruct", "shell-1/demo",
                                                      {"text": "true"}), issuer)
                if result.outcome.value == "accepted":
                    sys.stdout.write(command_id + "\n")
                    sys.stdout.flush()
                while True:  # drain deliveries so the outbox never overflows
                    try:
                        connection.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break

        for lane in range(8):
            nursery.start_soon(submitter, lane)


if __name__ == "__main__":
    journal = Path(sys.argv[1])
    if not journal.exists():  # the first run creates it; later runs reopen what the kill left
        initialize_journal(journal, DOMAIN, "crash-test-password")
    trio.run(main, journal)
