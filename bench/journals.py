"""Build big, valid journals quickly.

The prefix (adapter attachment, N session reports, one operator session, one complete command
cycle) is produced by a real in-process core, so every event is one the core really writes.
The history is then that command cycle repeated with fresh ids, spread over the sessions,
written straight through the journal store in big transactions (``synchronous=OFF``: this is
set-up, not a measurement) and folded through the same reducer, so a checkpoint of the final
state can be saved exactly as the live core saves one. ``patchbay replay --check`` accepts the
result (the bench checks it).
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import trio
from common import BENCH_ADAPTER, Home, attach_bench_adapter

from patchbay.core import Core
from patchbay.core._state import recover_state
from patchbay.core.checkpoint import encode_state, pack
from patchbay.domain.acceptance import Submission
from patchbay.domain.model import Issuer
from patchbay.domain.reducer import apply
from patchbay.journal import JournalStore, NewEvent

CHUNK = 20_000


async def _prefix(home: Home, sessions: int) -> list[dict[str, Any]]:
    """Run a real core once: attach, report sessions, one command cycle; return its 4 events."""
    core = Core(home.journal, expected_domain=home.domain)
    credential = home.credential_file.read_text().strip()
    async with trio.open_nursery() as nursery:
        await nursery.start(core.run)
        connection = await attach_bench_adapter(core, credential, generation=1,
                                                kinds=["instruct", "cancel", "interrupt", "query"])
        seq = 0

        async def frame(frame_type: str, **fields: Any) -> None:
            nonlocal seq
            seq += 1
            answer = json.loads(await core.adapters.handle(connection, json.dumps(
                {"type": frame_type, "seq": seq, **fields})))
            if answer.get("type") != "ack":
                raise RuntimeError(f"the core refused a set-up frame: {answer}")

        for index in range(sessions):
            await frame("session", runtime_session_id=f"s{index:03d}", generation=1, activity="idle",
                        snapshot_tier="authoritative", label="", metadata={}, connectivity="live")
        login = await core.create_operator_session(session_kind="cli", address="127.0.0.1", label="bench")
        issuer = Issuer(login.operator_id, login.endpoint_id, login.session_id, "cli")
        result = await core.submit(Submission(command_id="tmpl", idempotency_key="tmpl", kind="instruct",
                                              target=f"{BENCH_ADAPTER}/s000", payload={"text": "true"}), issuer)
        if result.command is None:
            raise RuntimeError(f"the template command was refused: {result.reason}")
        for state in ("delivered", "running"):
            await frame("report", command_id="tmpl", state=state)
        await frame("report", command_id="tmpl", state="completed", result={"exit_code": 0, "output": ""})
        await core.adapters.detached(connection, "bench journal built")
        await core.journal.drained()
        template = [{"kind": e.kind, "entity": e.entity, "payload": e.payload}
                    for e in core.events_after(0, entity="command:tmpl")]
        nursery.cancel_scope.cancel()
    return template


def _cycle(template: list[dict[str, Any]], command_id: str, target: str, seq: int, ts: float) -> list[NewEvent]:
    events = []
    for item in template:
        payload = copy.deepcopy(item["payload"])
        payload["command_id"] = command_id
        if "idempotency_key" in payload:
            payload["idempotency_key"] = command_id
        if "target" in payload:
            payload["target"] = target
        if "runtime_session_id" in payload:
            payload["runtime_session_id"] = target.split("/", 1)[1]
        if "adapter_frame" in payload:
            payload["adapter_frame"] = [payload["adapter_frame"][0], payload["adapter_frame"][1], seq]
            seq += 1
        events.append(NewEvent(kind=item["kind"], entity=f"command:{command_id}", payload=payload, ts=ts))
    return events


def build(home: Home, *, events: int, sessions: int, checkpoint: bool = True) -> dict[str, Any]:
    """Grow ``home``'s journal to about ``events`` events; returns what was built and how fast."""
    started = time.perf_counter()
    template = trio.run(_prefix, home, sessions)
    store = JournalStore.open(home.journal, expected_domain=home.domain, synchronous="OFF")
    try:
        state, _ = recover_state(store)
        seq = 1_000
        ts = time.time() - 3600
        count = 0
        pending: list[NewEvent] = []
        index = 0
        while store.last_lsn() + len(pending) + len(template) <= events:
            index += 1
            cycle = _cycle(template, f"hist-{index:07d}", f"{BENCH_ADAPTER}/s{index % sessions:03d}", seq, ts)
            seq += len(cycle)
            pending.extend(cycle)
            if len(pending) >= CHUNK:
                for stored in store.append_batch(pending):
                    apply(state, stored)
                count += len(pending)
                pending = []
        if pending:
            for stored in store.append_batch(pending):
                apply(state, stored)
            count += len(pending)
        if checkpoint:
            store.save_checkpoint(state.last_lsn, pack(encode_state(state)))
        last = store.last_lsn()
    finally:
        store.close()
    generation = home.credential_file.with_name(home.credential_file.name + ".generation")
    generation.write_text("1\n")
    return {"events": last, "commands": index + 1, "sessions": sessions, "seconds": time.perf_counter() - started,
            "checkpoint": checkpoint}
